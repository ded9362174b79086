//! Change data capture into a MySQL replica: snapshot then binlog with a
//! live writer, crashes at random moments, schema changes, a restarting
//! source, and SIGTERM.

mod support;

use std::time::Duration;

use mysql::prelude::Queryable;
use support::*;

fn create_workload_tables(src: &MariaDb, db: &str) {
    src.exec(&format!(
        "CREATE DATABASE {db};
         CREATE TABLE {db}.a (id INT PRIMARY KEY, k INT NOT NULL, v VARCHAR(40), d DECIMAL(12,3), f DOUBLE, KEY by_k (k));
         CREATE TABLE {db}.c (g INT NOT NULL, id BIGINT NOT NULL, note TEXT, PRIMARY KEY (g, id));
         CREATE TABLE {db}.u (code VARCHAR(20) NOT NULL, n INT, UNIQUE KEY uq (code));
         CREATE TABLE {db}.n (x INT, y VARCHAR(10));
         INSERT INTO {db}.a SELECT seq, seq % 100, CONCAT('v', seq), seq / 7, seq / 3 FROM {db}.seq_1_to_5000;
         INSERT INTO {db}.c SELECT seq % 10, seq, REPEAT('n', seq % 50) FROM {db}.seq_1_to_3000;
         INSERT INTO {db}.u SELECT CONCAT('c', seq), seq FROM {db}.seq_1_to_1000;
         INSERT INTO {db}.n SELECT seq % 5, 'dup' FROM {db}.seq_1_to_500;"
    ));
}

/// Transactions of inserts, updates (some changing the key), deletes, on
/// tables with a primary key, a composite key, only a unique key, and no key.
fn workload(src: &MariaDb, db: &str, seed: u64, txns: usize) {
    let mut rng = Rng::new(seed);
    let mut conn = src.conn();
    for t in 0..txns {
        let mut tx = conn
            .start_transaction(mysql::TxOpts::default())
            .expect("begin");
        for _ in 0..1 + rng.below(5) {
            let id = 1 + rng.below(20_000);
            let sql = match rng.below(10) {
                0 | 1 => format!("INSERT IGNORE INTO {db}.a (id, k, v, d, f) VALUES ({id}, {}, 'i{t}', {}.5, {})", rng.below(100), rng.below(1000), rng.next() % 1000),
                2 | 3 => format!("UPDATE {db}.a SET v = 'u{t}', f = f + 0.25 WHERE id = {id}"),
                4 => format!("UPDATE IGNORE {db}.a SET id = id + 20000 WHERE id = {id}"),
                5 => format!("DELETE FROM {db}.a WHERE id = {id}"),
                6 => format!("INSERT INTO {db}.c VALUES ({}, {id}, 'x') ON DUPLICATE KEY UPDATE note = CONCAT(note, 'y')", rng.below(10)),
                7 => format!("UPDATE {db}.u SET n = n + 1, code = CONCAT(code, 'z') WHERE code = 'c{}'", rng.below(1000)),
                8 => format!("INSERT INTO {db}.n VALUES ({}, 'w{t}')", rng.below(5)),
                _ => format!("DELETE FROM {db}.n WHERE x = {} LIMIT 1", rng.below(5)),
            };
            tx.query_drop(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        tx.commit().expect("commit");
    }
}

/// `sluice run --until-caught-up` on a pipeline file.
fn catch_up(path: &std::path::Path) -> Run {
    sluice(
        &[
            "run",
            "--progress",
            "log",
            "--until-caught-up",
            path.to_str().unwrap(),
        ],
        &[],
    )
}

/// Starts the pipeline and SIGKILLs it after a random delay, `times` times.
fn crash_at_random(path: &std::path::Path, times: usize, ms: std::ops::Range<u64>, rng: &mut Rng) {
    for _ in 0..times {
        let p = Background::start(path, &[]);
        std::thread::sleep(Duration::from_millis(
            ms.start + rng.below(ms.end - ms.start),
        ));
        p.kill();
    }
}

fn tables(db: &str) -> Vec<(String, String)> {
    ["a", "c", "u", "n"]
        .iter()
        .map(|t| (format!("{db}.{t}"), format!("{db}.{t}")))
        .collect()
}

fn assert_replica_equal(src: &MariaDb, dst: &MariaDb, db: &str) {
    assert_same_table(src, &format!("{db}.a"), dst, &format!("{db}.a"), "id");
    assert_same_table(src, &format!("{db}.c"), dst, &format!("{db}.c"), "g, id");
    assert_same_table(src, &format!("{db}.u"), dst, &format!("{db}.u"), "code");
    assert_same_table(src, &format!("{db}.n"), dst, &format!("{db}.n"), "x, y");
}

fn wait_equal(src: &MariaDb, dst: &MariaDb, db: &str, p: &mut Background) {
    let t = tables(db);
    let pairs: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    wait_until(
        Duration::from_secs(120),
        "the replica equals the source",
        || {
            p.assert_running();
            checksums_equal(src, dst, &pairs)
        },
    );
}

fn cdc_yaml(
    name: &str,
    src: &MariaDb,
    dst: &MariaDb,
    db: &str,
    extra_sink: &str,
) -> std::path::PathBuf {
    write_pipeline(
        name,
        &format!(
            "name: {name}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"{db}.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      url: {}\n{extra_sink}settings:\n  batch_size: 1000\n",
            src.url(),
            dst.url()
        ),
    )
}

#[test]
fn snapshot_then_changes_with_a_live_writer() {
    let (src, dst) = pair();
    create_workload_tables(src, "live");
    let path = cdc_yaml("live", src, dst, "live", "");
    std::thread::scope(|s| {
        let writer = s.spawn(|| workload(src, "live", 7, 1500));
        let mut p = Background::start(&path, &[]);
        // One large transaction of 100k rows, and a multi-statement one.
        src.exec(
            "INSERT INTO live.a SELECT 100000 + seq, seq % 100, 'bulk', seq, seq FROM live.seq_1_to_100000;
             BEGIN; UPDATE live.a SET k = k + 1 WHERE id BETWEEN 100 AND 200; DELETE FROM live.c WHERE g = 3; INSERT INTO live.n VALUES (9, 'txn'); COMMIT",
        );
        writer.join().expect("writer");
        wait_equal(src, dst, "live", &mut p);
        let status = p.terminate(Duration::from_secs(10));
        assert!(status.success(), "SIGTERM should exit 0, got {status}");
    });
    assert_replica_equal(src, dst, "live");
    let parts: u64 = dst.scalar(
        "SELECT COUNT(*) FROM sluice.checkpoints WHERE pipeline = 'live' AND phase = 'cdc'",
    );
    assert!(parts >= 1);
}

#[test]
fn survives_sigkill_at_random_moments() {
    let (src, dst) = pair();
    create_workload_tables(src, "crash");
    let path = cdc_yaml(
        "crash",
        src,
        dst,
        "crash",
        "      apply:\n        parallelism: 3\n",
    );
    let mut rng = Rng::new(0x5eed);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            workload(src, "crash", 11, 800);
            src.exec("ALTER TABLE crash.a ADD COLUMN extra INT DEFAULT 7");
            workload(src, "crash", 12, 800);
        });
        // Crash once while the snapshot is loading (its checkpoint says so)...
        let mut p = Background::start(&path, &[]);
        wait_until(Duration::from_secs(30), "the snapshot starts", || {
            p.assert_running();
            dst.database_exists("sluice")
                && dst.scalar::<u64>("SELECT COUNT(*) FROM sluice.checkpoints WHERE pipeline = 'crash' AND phase = 'snapshot'") > 0
        });
        p.kill();
        // ...then five times at random moments while changes (and the schema change) stream in.
        crash_at_random(&path, 5, 300..1800, &mut rng);
        writer.join().expect("writer");
    });
    let run = catch_up(&path);
    run.assert_ok();
    assert!(run.stdout.contains("stopped: caught up"), "{}", run.stdout);
    assert_eq!(src.show_create("crash.a"), dst.show_create("crash.a"));
    assert_replica_equal(src, dst, "crash");
}

#[test]
fn schema_changes_and_type_matrix_through_the_binlog() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE ddl;
         CREATE TABLE ddl.t (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO ddl.t VALUES (1, 'a'), (2, 'b')",
    );
    // The type matrix table exists but is empty at the snapshot: all its rows come from the binlog.
    let matrix = type_matrix_sql("ddlm");
    let (create, rows) = matrix.split_at(matrix.find("INSERT INTO").expect("matrix inserts"));
    src.exec(create);
    let path = write_pipeline(
        "ddl",
        &format!(
            "name: ddl\nsource:\n  mysql:\n    url: {}\n    include: [\"ddl.*\", \"ddlm.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      url: {}\n      rename:\n        \"ddl.*\": \"ddl_copy.*\"\n",
            src.url(),
            dst.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_until(Duration::from_secs(60), "the snapshot is loaded", || {
        p.assert_running();
        dst.table_exists("ddl_copy", "t")
            && dst.scalar::<u64>(
                "SELECT COUNT(*) FROM sluice.checkpoints WHERE pipeline = 'ddl' AND phase = 'cdc'",
            ) > 0
    });
    src.exec(rows);
    src.exec(
        "ALTER TABLE ddl.t ADD COLUMN n INT NOT NULL DEFAULT 5, ADD COLUMN w DECIMAL(10,2);
         INSERT INTO ddl.t VALUES (3, 'c', 6, 1.25);
         ALTER TABLE ddl.t MODIFY COLUMN v VARCHAR(50) CHARACTER SET latin1;
         UPDATE ddl.t SET v = 'café' WHERE id = 1;
         ALTER TABLE ddl.t DROP COLUMN w;
         INSERT INTO ddl.t VALUES (4, 'd', 7);
         CREATE TABLE ddl.fresh (id INT PRIMARY KEY, s SET('x','y'), e ENUM('p','q'));
         INSERT INTO ddl.fresh VALUES (1, 'x,y', 'q'), (2, '', 'p');
         RENAME TABLE ddl.t TO ddl.t2;
         INSERT INTO ddl.t2 VALUES (5, 'e', 8);
         CREATE TABLE ddl.gone (id INT PRIMARY KEY);
         INSERT INTO ddl.gone VALUES (1);
         DROP TABLE ddl.gone;
         TRUNCATE TABLE ddl.fresh;
         INSERT INTO ddl.fresh VALUES (3, 'y', NULL)",
    );
    wait_until(Duration::from_secs(60), "the schema changes arrive", || {
        p.assert_running();
        dst.table_exists("ddl_copy", "t2")
            && checksums_equal(
                src,
                dst,
                &[
                    ("ddl.t2", "ddl_copy.t2"),
                    ("ddl.fresh", "ddl_copy.fresh"),
                    ("ddlm.matrix", "ddlm.matrix"),
                    ("ddlm.latin", "ddlm.latin"),
                    ("ddlm.binkey", "ddlm.binkey"),
                ],
            )
    });
    assert!(p.terminate(Duration::from_secs(10)).success());
    assert!(!dst.table_exists("ddl_copy", "t"));
    assert!(!dst.table_exists("ddl_copy", "gone"));
    assert_eq!(
        src.show_create("ddl.t2").replace("`t2`", "`x`"),
        dst.show_create("ddl_copy.t2").replace("`t2`", "`x`")
    );
    assert_same_table(src, "ddl.t2", dst, "ddl_copy.t2", "id");
    assert_same_table(src, "ddl.fresh", dst, "ddl_copy.fresh", "id");
    // The same values whether they came from SELECT (snapshot) or the binlog.
    assert_same_table(src, "ddlm.matrix", dst, "ddlm.matrix", "id");
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM ddlm.matrix"), 3004);
}

#[test]
fn resumes_after_the_source_restarts() {
    // Its own servers: restarting the shared source would disturb the other tests.
    let src = MariaDb::start("restart-src");
    let dst = MariaDb::start("restart-dst");
    create_workload_tables(&src, "rs");
    let path = cdc_yaml("restart", &src, &dst, "rs", "");
    let mut p = Background::start(&path, &[]);
    workload(&src, "rs", 21, 200);
    wait_equal(&src, &dst, "rs", &mut p);
    src.restart();
    workload(&src, "rs", 22, 200);
    wait_equal(&src, &dst, "rs", &mut p);
    assert!(p.output().contains("reconnecting"), "{}", p.output());
    assert!(p.terminate(Duration::from_secs(10)).success());
    assert_replica_equal(&src, &dst, "rs");
}

/// The replica's connections killed while changes flow: each partition
/// reconnects and retries its transaction (or finds it committed), and the
/// replica ends equal to the source.
#[test]
fn survives_its_target_connections_being_killed() {
    // Its own servers: killing connections on the shared target would
    // disturb the other tests.
    let src = MariaDb::start("killconn-src");
    let dst = MariaDb::start("killconn-dst");
    create_workload_tables(&src, "kc");
    let path = cdc_yaml("killconn", &src, &dst, "kc", "");
    let mut p = Background::start(&path, &[]);
    wait_following(&dst, "killconn");
    let sluice_connections = |dst: &MariaDb| -> Vec<u64> {
        dst.query(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER = 'root' AND COMMAND <> 'Daemon'",
        )
    };
    for round in 0..3 {
        workload(&src, "kc", 40 + round, 100);
        // The partitions reconnect when they next apply something.
        p.wait_for(
            Duration::from_secs(60),
            "sluice is connected to the target",
            || match sluice_connections(&dst).len() {
                0 => Err(format!("round {round}: no connection yet")),
                _ => Ok(()),
            },
        );
        for id in sluice_connections(&dst) {
            let _ = dst.try_query::<u64>(&format!("KILL CONNECTION {id}"));
        }
    }
    workload(&src, "kc", 50, 100);
    wait_equal(&src, &dst, "kc", &mut p);
    assert!(
        p.output()
            .contains("lost the connection to the target; reconnecting"),
        "{}",
        p.output()
    );
    assert!(p.terminate(Duration::from_secs(10)).success());
    assert_replica_equal(&src, &dst, "kc");
}

/// A source that stays away: after `cdc.reconnect_attempts` lost
/// connections in a row the pipeline stops with the last error and what to
/// do, instead of retrying forever.
#[test]
fn a_source_gone_for_good_stops_the_pipeline() {
    let src = MariaDb::start("gone-src");
    let (_, dst) = pair();
    src.exec("CREATE DATABASE gone; CREATE TABLE gone.t (id INT PRIMARY KEY); INSERT INTO gone.t VALUES (1);");
    let path = cdc_yaml("gone", &src, dst, "gone", "");
    let yaml = std::fs::read_to_string(&path).expect("pipeline");
    std::fs::write(
        &path,
        yaml.replace(
            "      heartbeat_ms: 200\n",
            "      heartbeat_ms: 200\n      reconnect_attempts: 2\n",
        ),
    )
    .expect("pipeline");
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "gone");
    src.stop();
    wait_until(Duration::from_secs(60), "the pipeline gives up", || {
        p.exited()
    });
    let out = p.output();
    assert!(
        out.contains("3 times in a row without progress")
            && out.contains("rerun the pipeline: it resumes from its checkpoint"),
        "{out}"
    );
}

/// With `consistency: transactional` the replica never shows part of a
/// source transaction: money moved between two tables always adds up.
#[test]
fn transactional_apply_never_shows_half_a_transaction() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE bank;
         CREATE TABLE bank.a (id INT PRIMARY KEY, bal INT NOT NULL);
         CREATE TABLE bank.b (id INT PRIMARY KEY, bal INT NOT NULL);
         INSERT INTO bank.a SELECT seq, 1000 FROM bank.seq_1_to_20;
         INSERT INTO bank.b SELECT seq, 1000 FROM bank.seq_1_to_20;",
    );
    let path = cdc_yaml(
        "bank",
        src,
        dst,
        "bank",
        "      apply:\n        consistency: transactional\n",
    );
    let mut p = Background::start(&path, &[]);
    wait_until(Duration::from_secs(60), "the snapshot is loaded", || {
        p.assert_running();
        checksums_equal(src, dst, &[("bank.a", "bank.a"), ("bank.b", "bank.b")])
    });
    let total =
        "SELECT CAST((SELECT SUM(bal) FROM bank.a) + (SELECT SUM(bal) FROM bank.b) AS SIGNED)";
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut rng = Rng::new(99);
            let mut conn = src.conn();
            for _ in 0..1500 {
                let (from, to, x) = (1 + rng.below(20), 1 + rng.below(20), 1 + rng.below(50));
                let mut tx = conn
                    .start_transaction(mysql::TxOpts::default())
                    .expect("begin");
                tx.query_drop(format!(
                    "UPDATE bank.a SET bal = bal - {x} WHERE id = {from}"
                ))
                .expect("debit");
                tx.query_drop(format!("UPDATE bank.b SET bal = bal + {x} WHERE id = {to}"))
                    .expect("credit");
                tx.commit().expect("commit");
            }
        });
        let mut checks = 0;
        while !writer.is_finished() {
            assert_eq!(
                dst.scalar::<i64>(total),
                40_000,
                "the replica showed half a transaction"
            );
            checks += 1;
        }
        writer.join().expect("writer");
        assert!(checks > 10, "only {checks} checks ran during the writes");
    });
    wait_until(Duration::from_secs(60), "the replica catches up", || {
        checksums_equal(src, dst, &[("bank.a", "bank.a"), ("bank.b", "bank.b")])
    });
    assert_eq!(dst.scalar::<i64>(total), 40_000);
    assert!(p.terminate(Duration::from_secs(10)).success());
}

/// `mode: cdc` from a MariaDB GTID position: only later changes arrive.
#[test]
fn changes_only_from_a_gtid_position() {
    let (src, dst) = pair();
    src.exec("CREATE DATABASE gt; CREATE TABLE gt.t (id INT PRIMARY KEY, v INT); INSERT INTO gt.t VALUES (1, 1), (2, 2)");
    let gtid: String = src.scalar("SELECT @@gtid_binlog_pos");
    let path = write_pipeline(
        "gtid",
        &format!(
            "name: gtid\nsource:\n  mysql:\n    url: {}\n    mode: cdc\n    include: [\"gt.*\"]\n    cdc:\n      start:\n        gtid: \"{gtid}\"\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      url: {}\n",
            src.url(),
            dst.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_until(
        Duration::from_secs(30),
        "the table exists on the target",
        || {
            p.assert_running();
            dst.table_exists("gt", "t")
        },
    );
    src.exec("INSERT INTO gt.t VALUES (3, 3); UPDATE gt.t SET v = 20 WHERE id = 2; DELETE FROM gt.t WHERE id = 1");
    wait_until(Duration::from_secs(30), "the changes arrive", || {
        p.assert_running();
        dst.scalar::<u64>("SELECT COUNT(*) FROM gt.t") == 2
    });
    // Row 2 was not copied (no snapshot), so its update arrives as the full new row.
    let rows: Vec<(i32, i32)> = dst.query("SELECT id, v FROM gt.t ORDER BY id");
    assert_eq!(rows, vec![(2, 20), (3, 3)]);
    assert!(p.terminate(Duration::from_secs(10)).success());
}

/// Resuming needs the binlog after the checkpoint; if it is gone (purged
/// from the source) the error says so and what to do.
#[test]
fn purged_binlog_is_a_clear_error() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE pg; CREATE TABLE pg.t (id INT PRIMARY KEY); INSERT INTO pg.t VALUES (1)",
    );
    let path = cdc_yaml("purge", src, dst, "pg", "");
    let run = catch_up(&path);
    run.assert_ok();
    // What a purge leaves behind: a checkpoint in a binlog file the source no longer has.
    dst.exec(
        "UPDATE sluice.checkpoints SET binlog_file = 'binlog.000000' WHERE pipeline = 'purge'",
    );
    let run = catch_up(&path);
    run.assert_fails_with(&[
        "cannot send its binlog from binlog.000000",
        "purged",
        "restart from a new snapshot",
    ]);
}

/// Two sinks on one capture, each with its own checkpoint, through crashes.
#[test]
fn two_sinks_each_with_its_own_checkpoint() {
    let (src, dst) = pair();
    create_workload_tables(src, "fan");
    let path = write_pipeline(
        "fan",
        &format!(
            "name: fan\nsource:\n  mysql:\n    url: {}\n    include: [\"fan.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      name: one\n      url: {}\n      rename:\n        \"fan.*\": \"fan_one.*\"\n  - mysql:\n      name: two\n      url: {}\n      rename:\n        \"fan.*\": \"fan_two.*\"\n      apply:\n        consistency: transactional\n",
            src.url(),
            dst.url(),
            dst.url()
        ),
    );
    let mut rng = Rng::new(0xfa);
    std::thread::scope(|s| {
        let writer = s.spawn(|| workload(src, "fan", 31, 600));
        crash_at_random(&path, 3, 400..1600, &mut rng);
        writer.join().expect("writer");
    });
    let run = catch_up(&path);
    run.assert_ok();
    let sinks: u64 =
        dst.scalar("SELECT COUNT(DISTINCT sink) FROM sluice.checkpoints WHERE pipeline = 'fan'");
    assert_eq!(sinks, 2);
    for copy in ["fan_one", "fan_two"] {
        assert_same_table(src, "fan.a", dst, &format!("{copy}.a"), "id");
        assert_same_table(src, "fan.c", dst, &format!("{copy}.c"), "g, id");
        assert_same_table(src, "fan.u", dst, &format!("{copy}.u"), "code");
        assert_same_table(src, "fan.n", dst, &format!("{copy}.n"), "x, y");
    }
}

/// A statement sluice cannot apply stops the pipeline, naming it and where
/// it is; with `on_unsupported_ddl: skip` it is logged and passed over.
#[test]
fn unsupported_schema_change_stops_with_its_position() {
    let (src, dst) = pair();
    src.exec("CREATE DATABASE trg; CREATE TABLE trg.t (id INT PRIMARY KEY, n INT)");
    let path = cdc_yaml("trg", src, dst, "trg", "");
    let p = Background::start(&path, &[]);
    wait_following(dst, "trg");
    src.exec("CREATE TRIGGER trg.bump BEFORE INSERT ON trg.t FOR EACH ROW SET NEW.n = 1");
    wait_until(Duration::from_secs(30), "sluice stops", || {
        p.output().contains("error:")
    });
    let out = p.output();
    assert!(
        out.contains("TRIGGER trg.bump") && out.contains("binlog at binlog.0"),
        "{out}"
    );
    assert!(out.contains("on_unsupported_ddl: skip"), "{out}");
    drop(p);

    let yaml = std::fs::read_to_string(&path).expect("pipeline").replace(
        "heartbeat_ms: 200",
        "heartbeat_ms: 200\n      on_unsupported_ddl: skip",
    );
    let path = write_pipeline("trg-skip", &yaml);
    src.exec("INSERT INTO trg.t (id) VALUES (1)");
    let run = catch_up(&path);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("skipping CREATE TRIGGER on a selected table"),
        "{}",
        run.stderr
    );
    assert_same_table(src, "trg.t", dst, "trg.t", "id");
}

/// Compressed binlog events cannot be decoded yet: refused with a clear
/// error, never skipped (rows would be lost silently).
#[test]
fn compressed_binlog_is_refused_not_skipped() {
    let src = MariaDb::start_with(
        "compress-src",
        &["--log-bin-compress=ON", "--log-bin-compress-min-len=10"],
    );
    let (_, dst) = pair();
    src.exec("CREATE DATABASE cz; CREATE TABLE cz.t (id INT PRIMARY KEY, v TEXT)");
    let path = cdc_yaml("compress", &src, dst, "cz", "");
    let p = Background::start(&path, &[]);
    wait_following(dst, "compress");
    src.exec("INSERT INTO cz.t VALUES (1, REPEAT('compress me ', 100))");
    wait_until(Duration::from_secs(30), "sluice stops", || {
        p.output().contains("error:")
    });
    let out = p.output();
    assert!(
        out.contains("compressed binlog event") && out.contains("log_bin_compress=OFF"),
        "{out}"
    );
}

/// The Prometheus endpoint while a pipeline runs: rows written, changes
/// applied and lag move; lag returns to 0 on an idle source (heartbeats);
/// SIGUSR1 holds changes back until SIGUSR2.
#[test]
fn metrics_move_and_pause_holds_changes() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE mx; CREATE TABLE mx.t (id INT PRIMARY KEY, v INT);
         INSERT INTO mx.t SELECT seq, 0 FROM mx.seq_1_to_1000;",
    );
    let port = free_tcp_port();
    let path = write_pipeline(
        "mx",
        &format!(
            "name: mx\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"mx.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      name: replica\n      url: {}\nmetrics:\n  listen: 127.0.0.1:{port}\n",
            src.url(),
            dst.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    let written = "pipeline=\"mx\",sink=\"replica\",table=\"mx.t\"";
    p.wait_for(
        Duration::from_secs(60),
        "the snapshot shows in /metrics",
        || {
            let m = scrape(port)?;
            match (
                sample(&m, "sluice_rows_written_total", written),
                sample(
                    &m,
                    "sluice_rows_read_total",
                    "pipeline=\"mx\",table=\"mx.t\"",
                ),
            ) {
                (Some(w), Some(r)) if w >= 1000.0 && r >= 1000.0 => Ok(()),
                other => Err(format!("{other:?}\n{m}")),
            }
        },
    );
    wait_following(dst, "mx");
    src.exec("INSERT INTO mx.t SELECT seq, 1 FROM mx.seq_1001_to_1500; UPDATE mx.t SET v = 2 WHERE id <= 100;");
    let sink = "pipeline=\"mx\",sink=\"replica\"";
    p.wait_for(Duration::from_secs(60), "changes show in /metrics", || {
        let m = scrape(port)?;
        match (
            sample(&m, "sluice_changes_applied_total", sink),
            sample(&m, "sluice_lag_seconds", sink),
            sample(&m, "sluice_checkpoint_age_seconds", sink),
        ) {
            (Some(c), Some(_), Some(_)) if c >= 600.0 => Ok(()),
            other => Err(format!("{other:?}\n{m}")),
        }
    });
    // Idle: heartbeats bring the lag to 0, and it stays there.
    p.wait_for(
        Duration::from_secs(30),
        "the lag of an idle source is 0",
        || {
            let m = scrape(port)?;
            match sample(&m, "sluice_lag_seconds", sink) {
                Some(l) if l == 0.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    let written_before = sample(
        &scrape(port).expect("scrape"),
        "sluice_rows_written_total",
        written,
    );
    assert!(written_before >= Some(1600.0), "{written_before:?}");

    // Pause: a change made now is not applied until resumed.
    let pid = p.pid().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-USR1");
    let log = p.log.clone();
    p.wait_for(
        Duration::from_secs(10),
        "the pipeline says it paused",
        || {
            if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("paused (SIGUSR1)")) {
                Ok(())
            } else {
                Err("no pause line yet".into())
            }
        },
    );
    src.exec("UPDATE mx.t SET v = 3 WHERE id = 1;");
    let held_until = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < held_until {
        p.assert_running();
        assert_eq!(
            dst.scalar::<i32>("SELECT v FROM mx.t WHERE id = 1"),
            2,
            "applied while paused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    signal("-USR2");
    p.wait_for(
        Duration::from_secs(30),
        "the held change arrives after SIGUSR2",
        || match dst.scalar::<i32>("SELECT v FROM mx.t WHERE id = 1") {
            3 => Ok(()),
            v => Err(format!("v = {v}")),
        },
    );
    p.terminate(Duration::from_secs(30));
    assert_same_table(src, "mx.t", dst, "mx.t", "id");
}

/// `max_rows_per_second` on the change stream: one transaction of 11,000
/// rows arrives no faster than 1,000 rows/s, and not much slower.
#[test]
fn a_change_stream_rate_limit_is_held() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE cthrottle; CREATE TABLE cthrottle.t (id INT PRIMARY KEY, v VARCHAR(20));",
    );
    let path = write_pipeline(
        "cthrottle",
        &format!(
            "name: cthrottle\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"cthrottle.*\"]\n    max_rows_per_second: 1000\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      url: {}\nsettings:\n  batch_size: 100\n",
            src.url(),
            dst.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "cthrottle");
    let started = std::time::Instant::now();
    src.exec("INSERT INTO cthrottle.t SELECT seq, CONCAT('v', seq) FROM cthrottle.seq_1_to_11000;");
    p.wait_for(
        Duration::from_secs(60),
        "11000 changed rows arrive",
        || match dst.scalar::<u64>("SELECT COUNT(*) FROM cthrottle.t") {
            11_000 => Ok(()),
            n => Err(format!("{n} rows")),
        },
    );
    let secs = started.elapsed().as_secs_f64();
    let rate = 11_000.0 / secs;
    eprintln!("change stream: 11000 rows in {secs:.2} s, {rate:.0} rows/s");
    assert!(
        (900.0..=1100.0).contains(&rate),
        "11000 rows in {secs:.2} s: {rate:.0} rows/s, outside 1000 ± 10%"
    );
    p.terminate(Duration::from_secs(30));
    assert_same_table(src, "cthrottle.t", dst, "cthrottle.t", "id");
}

/// Every apply partition's checkpoint keeps up, even the partitions that
/// get no rows: the source resumes from the oldest one, and a checkpoint
/// left at the snapshot would make a restart read (or miss, once purged)
/// everything since.
#[test]
fn partitions_without_rows_still_advance_their_checkpoints() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE idleparts;
         CREATE TABLE idleparts.one (id INT PRIMARY KEY, n INT);
         INSERT INTO idleparts.one VALUES (1, 0)",
    );
    let path = cdc_yaml(
        "idleparts",
        src,
        dst,
        "idleparts",
        "      apply:\n        consistency: eventual\n        parallelism: 4\n",
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "idleparts");
    // Every change has the one key: one partition gets them all.
    for n in 1..=50 {
        src.exec(&format!("UPDATE idleparts.one SET n = {n} WHERE id = 1"));
    }
    let (file, offset): (String, u64) = src
        .query::<(String, u64, String, String)>("SHOW MASTER STATUS")
        .into_iter()
        .map(|(f, o, _, _)| (f, o))
        .next()
        .expect("the source writes a binlog");
    wait_until(
        Duration::from_secs(30),
        "all four partitions' checkpoints reach the source's position",
        || {
            p.assert_running();
            let parts: Vec<(String, u64)> = dst.query(
                "SELECT binlog_file, binlog_offset FROM sluice.checkpoints WHERE pipeline = 'idleparts' AND phase = 'cdc'",
            );
            parts.len() == 4 && parts.iter().all(|(f, o)| (f, *o) >= (&file, offset))
        },
    );
    assert_eq!(
        dst.scalar::<u64>("SELECT n FROM idleparts.one WHERE id = 1"),
        50
    );
    assert!(p.terminate(Duration::from_secs(10)).success());
}
