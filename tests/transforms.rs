//! WebAssembly transforms end to end: plugins built from source, a pipeline
//! through them, and hostile plugins that must fail cleanly.

mod support;

use std::time::Duration;

use support::*;

fn transform_yaml(name: &str, src: &MariaDb, dst: &MariaDb, db: &str, transforms: &str) -> String {
    format!(
        "name: {name}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"{db}.*\"]\ntransforms:\n{transforms}sinks:\n  - mysql:\n      url: {}\n      rename:\n        \"{db}.*\": \"{db}_out.*\"\n",
        src.url(),
        dst.url()
    )
}

fn seed(src: &MariaDb, db: &str) {
    src.exec(&format!(
        "CREATE DATABASE {db};
         CREATE TABLE {db}.t (id INT PRIMARY KEY, email VARCHAR(100), n DECIMAL(10,2), d DATETIME(6), b BLOB);
         INSERT INTO {db}.t SELECT seq, CONCAT('user', seq, '@example.com'), seq / 4, '2024-01-01' + INTERVAL seq SECOND, X'00FF' FROM {db}.seq_1_to_500;"
    ));
}

#[test]
fn noop_plugin_passes_everything_through_exactly() {
    let (src, dst) = pair();
    seed(src, "wnoop");
    let yaml = transform_yaml("wnoop", src, dst, "wnoop", "  - plugin: plugins/noop\n");
    run_pipeline("wnoop", &yaml, &[]).assert_ok();
    assert_same_table(src, "wnoop.t", dst, "wnoop_out.t", "id");
}

fn hostile(name: &str, plugin: &str, extra: &str) -> Run {
    let (src, dst) = pair();
    let db = format!("h_{name}");
    seed(src, &db);
    let yaml = transform_yaml(
        &db,
        src,
        dst,
        &db,
        &format!("  - plugin: tests/plugins/{plugin}\n{extra}"),
    );
    let run = run_pipeline(&db, &yaml, &[]);
    assert!(
        !dst.table_exists(&format!("{db}_out"), "t")
            || dst.scalar::<u64>(&format!("SELECT COUNT(*) FROM {db}_out.t")) < 500
    );
    run
}

/// A plugin is untrusted: tables it declares in the server's own schemas
/// or in sluice's are refused before anything is written, naming it.
#[test]
fn a_plugin_cannot_declare_tables_in_system_schemas() {
    let (src, dst) = pair();
    seed(src, "wsys");
    for db in ["mysql", "sluice", "performance_schema", "MySQL"] {
        let yaml = transform_yaml(
            "wsys",
            src,
            dst,
            "wsys",
            &format!(
                "  - plugin: tests/plugins/setter\n    config: {{ declare_database: {db} }}\n"
            ),
        );
        run_pipeline("wsys", &yaml, &[]).assert_fails_with(&[
            "plugin `setter`",
            "wsys.t",
            "application databases",
        ]);
    }
    assert!(!dst.table_exists("mysql", "t") && !dst.table_exists("sluice", "t"));
    assert!(!dst.database_exists("wsys_out"), "nothing written");
}

#[test]
fn a_trapping_plugin_names_itself_the_table_and_the_position() {
    // The plugin's own panic message, not a bare trap.
    hostile("trap", "trap", "").assert_fails_with(&[
        "plugin `trap`",
        "panicked",
        "boom",
        "table h_trap.t at",
    ]);
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    hostile("spin", "spin", "    deadline_ms: 300\n")
        .assert_fails_with(&["plugin `spin`", "exceeded its deadline"]);
}

#[test]
fn an_allocation_bomb_hits_the_memory_limit() {
    hostile("hog", "hog", "    memory_mb: 16\n").assert_fails_with(&["plugin `hog`"]);
}

#[test]
fn a_plugin_cannot_open_files() {
    hostile("files", "files", "").assert_fails_with(&["plugin `files`", "cannot open /etc/passwd"]);
}

#[test]
fn a_plugin_built_for_another_contract_is_refused() {
    let (_, dst) = pair();
    // A later contract and an earlier one (told to rebuild), both by
    // their `contract-version`.
    for (plugin, said) in [
        (
            "v3",
            &["built for contract v3", "this sluice speaks v2"][..],
        ),
        (
            "v1",
            &[
                "built for contract v1",
                "this sluice speaks v2",
                "rebuild it with `sluice plugin build",
            ][..],
        ),
    ] {
        let db = format!("h_{plugin}");
        hostile(plugin, plugin, "").assert_fails_with(said);
        assert!(
            !dst.database_exists(&format!("{db}_out")),
            "nothing may be written ({plugin})"
        );
    }
}

/// `sluice plugin new` makes a project that passes its own test, builds,
/// and works in a pipeline with its config; a bundled plugin copied out of
/// the repository builds too.
#[test]
fn a_new_plugin_builds_and_transforms() {
    // A `plugins` folder, so both plugins below share one target folder.
    let dir = std::env::temp_dir()
        .join(format!("sluice-newplugin-{}", std::process::id()))
        .join("plugins");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = dir.join("upper");
    let _ = std::fs::remove_dir_all(&plugin);
    sluice(&["plugin", "new", plugin.to_str().unwrap()], &[]).assert_ok();
    let test =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["test", "--quiet"])
            .current_dir(&plugin)
            .output()
            .expect("cargo test");
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let built = sluice(&["plugin", "build", plugin.to_str().unwrap()], &[]);
    built.assert_ok();
    assert!(
        built.stdout.trim().ends_with("upper.wasm"),
        "{}",
        built.stdout
    );

    // A bundled plugin copied elsewhere names the SDK by a path that is gone.
    let copy = dir.join("noop-copy");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(copy.join("src")).unwrap();
    for f in ["Cargo.toml", "src/lib.rs"] {
        std::fs::copy(root().join("plugins/noop").join(f), copy.join(f)).unwrap();
    }
    let copied = sluice(&["plugin", "build", copy.to_str().unwrap()], &[]);
    copied.assert_ok();
    assert!(
        copied.stderr.contains("wrote this sluice's SDK"),
        "{}",
        copied.stderr
    );
    assert!(std::fs::read_to_string(copy.join("Cargo.toml"))
        .unwrap()
        .contains("path = \"sluice-sdk\""));
    let events = root().join("plugins/mask/sample.yaml");
    let out = sluice(
        &[
            "plugin",
            "test",
            copied.stdout.trim(),
            "--events",
            events.to_str().unwrap(),
            "--config",
            "{}",
        ],
        &[],
    );
    out.assert_ok();
    assert!(out.stdout.contains("\"keep\""), "{}", out.stdout);

    let (src, dst) = pair();
    seed(src, "wupper");
    let yaml = transform_yaml(
        "wupper",
        src,
        dst,
        "wupper",
        &format!(
            "  - plugin: {}\n    config: {{ column: email }}\n",
            built.stdout.trim()
        ),
    );
    run_pipeline("wupper", &yaml, &[]).assert_ok();
    let expected: Vec<(i32, String)> =
        src.query("SELECT id, UPPER(email) FROM wupper.t ORDER BY id");
    let got: Vec<(i32, String)> = dst.query("SELECT id, email FROM wupper_out.t ORDER BY id");
    assert_eq!(expected, got);
    // A config the plugin rejects stops the pipeline before anything is written.
    let bad = transform_yaml(
        "wupper2",
        src,
        dst,
        "wupper",
        &format!("  - plugin: {}\n", built.stdout.trim()),
    )
    .replace("wupper_out", "wupper_bad");
    run_pipeline("wupper2", &bad, &[])
        .assert_fails_with(&["rejected its config", "config needs `column: NAME`"]);
    assert!(!dst.database_exists("wupper_bad"));
}

/// `mask` gives what the same rules give in SQL, computed independently.
#[test]
fn mask_matches_the_same_rules_in_sql() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE wmask;
         CREATE TABLE wmask.people (id INT PRIMARY KEY, email VARCHAR(100), phone VARCHAR(20), name VARCHAR(64),
           card CHAR(16), note TEXT, birth DATE, kept INT);
         INSERT INTO wmask.people SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT('+1-555-', LPAD(seq, 4, '0')),
           CONCAT('Name ', seq), LPAD(seq, 16, '4'), IF(seq % 3 = 0, NULL, 'private'), '1990-01-01' + INTERVAL seq DAY, seq
           FROM wmask.seq_1_to_300;",
    );
    let transforms = "  - plugin: mask\n    config:\n      salt: \"${MASK_SALT}\"\n      columns:\n        email: email\n        phone: phone\n        name: hash\n        card: { keep_last: 4 }\n        note: redact\n        birth: \"null\"\n";
    let yaml = transform_yaml("wmask", src, dst, "wmask", transforms);
    run_pipeline("wmask", &yaml, &[("MASK_SALT", "pepper")]).assert_ok();
    type Row = (
        i32,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        i32,
    );
    let expected: Vec<Row> = src.query(
        "SELECT id, CONCAT(LEFT(email, 1), '***@', SUBSTRING_INDEX(email, '@', -1)),
                CONCAT('+*-***-', RIGHT(phone, 4)), SHA2(CONCAT('pepper', name), 256),
                CONCAT(REPEAT('*', 12), RIGHT(card, 4)), IF(note IS NULL, NULL, '***'), NULL, kept
         FROM wmask.people ORDER BY id",
    );
    let got: Vec<Row> = dst.query(
        "SELECT id, email, phone, name, card, note, CAST(birth AS CHAR), kept FROM wmask_out.people ORDER BY id",
    );
    assert_eq!(expected.len(), 300);
    assert_eq!(expected, got);
}

fn cdc_transform_yaml(
    name: &str,
    src: &MariaDb,
    dst: &MariaDb,
    db: &str,
    transforms: &str,
) -> std::path::PathBuf {
    write_pipeline(
        name,
        &format!(
            "name: {name}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"{db}.*\"]\n    cdc:\n      heartbeat_ms: 200\ntransforms:\n{transforms}sinks:\n  - mysql:\n      url: {}\nsettings:\n  batch_size: 200\n",
            src.url(),
            dst.url()
        ),
    )
}

/// Polls until `expected` (on the source) and `got` (on the target) return
/// the same rows, while the pipeline keeps running.
fn wait_same_rows<T>(src: &MariaDb, expected: &str, dst: &MariaDb, got: &str, p: &mut Background)
where
    T: mysql::prelude::FromRow + PartialEq + std::fmt::Debug,
{
    p.wait_for(
        Duration::from_secs(120),
        "the target equals the SQL result",
        || {
            let e: Vec<T> = src.query(expected);
            let g: Vec<T> = dst.try_query(got).unwrap_or_default();
            if e == g {
                return Ok(());
            }
            let diff = e.iter().zip(&g).find(|(a, b)| a != b);
            Err(format!(
                "target differs from the SQL result\nexpected {} rows, got {}\nfirst difference: expected {:?}, got {:?}",
                e.len(),
                g.len(),
                diff.map(|(a, _)| a),
                diff.map(|(_, b)| b),
            ))
        },
    );
}

/// The acceptance test: snapshot then changes through mask + filter +
/// rename; the target equals the same transformations written in SQL.
#[test]
fn mask_filter_rename_through_snapshot_and_changes_equal_sql() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE acc;
         CREATE TABLE acc.customers (id INT PRIMARY KEY, email VARCHAR(100), phone VARCHAR(20),
           status VARCHAR(10), total DECIMAL(10,2), note TEXT, created DATETIME(6));
         INSERT INTO acc.customers SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT('+1-555-', LPAD(seq, 4, '0')),
           ELT(1 + seq % 4, 'active', 'vip', 'closed', 'new'), (seq % 50) + 0.25, 'private',
           '2024-01-01' + INTERVAL seq MINUTE FROM acc.seq_1_to_2000;
         CREATE TABLE acc.orders (id INT PRIMARY KEY, customer INT, amount DECIMAL(10,2));
         INSERT INTO acc.orders SELECT seq, seq % 2000, seq / 3 FROM acc.seq_1_to_3000;",
    );
    let transforms = "  - plugin: mask\n    tables: [acc.customers]\n    config:\n      columns: { email: email, phone: phone }\n  - plugin: filter\n    tables: [acc.customers]\n    config:\n      where: \"status IN ('active', 'vip') AND total >= 10\"\n  - plugin: rename\n    config:\n      tables: { \"acc.*\": \"acc_out.*\" }\n      columns:\n        acc.customers: { email: contact, note: null }\n";
    let path = cdc_transform_yaml("acc", src, dst, "acc", transforms);
    let expected = "SELECT id, CONCAT(LEFT(email, 1), '***@', SUBSTRING_INDEX(email, '@', -1)), CONCAT('+*-***-', RIGHT(phone, 4)),
                status, CAST(total AS CHAR), CAST(created AS CHAR)
         FROM acc.customers WHERE status IN ('active', 'vip') AND total >= 10 ORDER BY id";
    let got = "SELECT id, contact, phone, status, CAST(total AS CHAR), CAST(created AS CHAR) FROM acc_out.customers ORDER BY id";
    type Row = (i32, String, String, String, String, String);
    let mut p = Background::start(&path, &[]);
    wait_same_rows::<Row>(src, expected, dst, got, &mut p);
    // Changes that move rows into and out of the filter, in transactions.
    src.exec(
        "UPDATE acc.customers SET status = 'closed' WHERE id % 7 = 0;
         UPDATE acc.customers SET status = 'vip' WHERE id % 11 = 0;
         UPDATE acc.customers SET total = 5 WHERE id BETWEEN 100 AND 150;
         UPDATE acc.customers SET email = CONCAT('new', id, '@example.org') WHERE id % 5 = 0;
         DELETE FROM acc.customers WHERE id % 13 = 0;
         BEGIN; INSERT INTO acc.customers SELECT 5000 + seq, CONCAT('late', seq, '@x.io'), '+1-555-7777', 'active', 99, 'n', NOW(6) FROM acc.seq_1_to_300;
           UPDATE acc.orders SET amount = amount + 1 WHERE id < 100; DELETE FROM acc.orders WHERE id > 2900; COMMIT;
         UPDATE acc.customers SET id = id + 10000 WHERE id BETWEEN 1 AND 20;",
    );
    wait_same_rows::<Row>(src, expected, dst, got, &mut p);
    let status = p.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
    assert!(!dst.table_exists("acc", "customers"), "renamed away");
    let columns: Vec<String> = dst.query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'acc_out' AND TABLE_NAME = 'customers' ORDER BY ORDINAL_POSITION");
    assert_eq!(
        columns,
        ["id", "contact", "phone", "status", "total", "created"]
    );
    // The untouched table only moved database, with the source's own DDL.
    assert_same_table(src, "acc.orders", dst, "acc_out.orders", "id");
}

/// Shard merge: three shards with overlapping keys into one table, with a
/// source column in the key; then changes; then a schema change of a shard
/// stops the pipeline with a clear message.
#[test]
fn route_merges_shards_and_follows_their_changes() {
    let (src, dst) = pair();
    let mut sql = String::from("CREATE DATABASE rt;");
    for n in 1..=3 {
        sql += &format!(
            "CREATE TABLE rt.orders_{n} (id INT PRIMARY KEY, total INT, note VARCHAR(20));
             INSERT INTO rt.orders_{n} SELECT seq, seq * {n}, 'shard {n}' FROM rt.seq_1_to_400;"
        );
    }
    sql += "CREATE TABLE rt.other (id INT PRIMARY KEY); INSERT INTO rt.other VALUES (1), (2);";
    src.exec(&sql);
    let transforms = "  - plugin: route\n    config:\n      routes:\n        - { from: 'rt\\.orders_\\d+', to: rt_out.orders, source_column: src }\n        - { from: 'rt\\.other', to: rt_out.other }\n";
    let path = cdc_transform_yaml("rt", src, dst, "rt", transforms);
    let expected = "SELECT id, total, note, 'rt.orders_1' FROM rt.orders_1 UNION ALL SELECT id, total, note, 'rt.orders_2' FROM rt.orders_2
                    UNION ALL SELECT id, total, note, 'rt.orders_3' FROM rt.orders_3 ORDER BY 4, 1";
    let got = "SELECT id, total, note, src FROM rt_out.orders ORDER BY 4, 1";
    type Row = (i32, i32, String, String);
    let mut p = Background::start(&path, &[]);
    wait_same_rows::<Row>(src, expected, dst, got, &mut p);
    src.exec(
        "UPDATE rt.orders_2 SET total = -1 WHERE id % 3 = 0; DELETE FROM rt.orders_1 WHERE id < 50;
         INSERT INTO rt.orders_3 VALUES (1000, 1, 'late'); UPDATE rt.orders_1 SET id = id + 1000 WHERE id = 60;",
    );
    wait_same_rows::<Row>(src, expected, dst, got, &mut p);
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM rt_out.other"), 2);
    let key: Vec<String> = dst.query("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'rt_out' AND TABLE_NAME = 'orders' AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION");
    assert_eq!(key, ["id", "src"]);
    src.exec("ALTER TABLE rt.orders_2 ADD COLUMN extra INT");
    let mut failed = false;
    wait_until(
        Duration::from_secs(60),
        "the pipeline stops on the schema change",
        || {
            failed = p.exited();
            failed
        },
    );
    let out = p.output();
    assert!(
        out.contains("rt.orders_2")
            && out.contains("rename or reshape")
            && out.contains("on_unsupported_ddl: skip"),
        "{out}"
    );
}

/// One event into two tables (a test plugin that copies every event).
#[test]
fn fan_out_writes_every_event_to_two_tables() {
    let (src, dst) = pair();
    seed(src, "wfan");
    let yaml = transform_yaml(
        "wfan",
        src,
        dst,
        "wfan",
        "  - plugin: tests/plugins/fanout\n",
    );
    run_pipeline("wfan", &yaml, &[]).assert_ok();
    assert_same_table(src, "wfan.t", dst, "wfan_out.t", "id");
    assert_same_table(src, "wfan.t", dst, "wfan_out.t_copy", "id");
}

/// Chained plugins apply in order: rename, then audit columns computed on
/// the renamed table; deletes kept as marked rows.
#[test]
fn chained_rename_and_audit_columns_keep_deleted_rows() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE aud; CREATE TABLE aud.t (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO aud.t SELECT seq, 'v' FROM aud.seq_1_to_100;",
    );
    let transforms = "  - plugin: rename\n    config: { tables: { \"aud.t\": \"aud_out.log\" } }\n  - plugin: audit-columns\n    config: { soft_delete: true }\n";
    let path = cdc_transform_yaml("aud", src, dst, "aud", transforms);
    let mut p = Background::start(&path, &[]);
    type Row = (i32, String, String);
    wait_same_rows::<Row>(
        src,
        "SELECT id, v, 'read' FROM aud.t ORDER BY id",
        dst,
        "SELECT id, v, _op FROM aud_out.log ORDER BY id",
        &mut p,
    );
    src.exec("DELETE FROM aud.t WHERE id <= 10; UPDATE aud.t SET v = 'w' WHERE id = 50; INSERT INTO aud.t VALUES (200, 'x');");
    wait_same_rows::<Row>(
        src,
        "SELECT n.seq, IF(n.seq = 50, 'w', 'v'), CASE WHEN n.seq <= 10 THEN 'delete' WHEN n.seq = 50 THEN 'update' ELSE 'read' END FROM aud.seq_1_to_100 n
         UNION ALL SELECT 200, 'x', 'insert' ORDER BY 1",
        dst,
        "SELECT id, v, _op FROM aud_out.log ORDER BY id",
        &mut p,
    );
    p.terminate(Duration::from_secs(10));
    let (ts, pos): (Option<String>, String) = dst.query::<(Option<String>, String)>(
        "SELECT CAST(_commit_ts AS CHAR), _position FROM aud_out.log WHERE id = 200",
    )[0]
    .clone();
    assert!(
        ts.is_some_and(|t| t.starts_with("20")),
        "commit time of a change"
    );
    assert!(pos.contains(':'), "a binlog position: {pos}");
    let read_ts: Option<String> =
        dst.scalar("SELECT CAST(_commit_ts AS CHAR) FROM aud_out.log WHERE id = 99");
    assert_eq!(read_ts, None, "snapshot rows have no commit time");
}

/// `on_error`: dead-letter writes the failed events to a file and goes on;
/// skip drops them; fail (the default) stops and names the event.
#[test]
fn failed_events_go_to_the_dead_letter_file_or_are_skipped() {
    let (src, dst) = pair();
    seed(src, "wdead");
    let dead = std::env::temp_dir().join(format!("sluice-dead-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&dead);
    let picky = "  - plugin: tests/plugins/picky\n    config: { reject_multiples_of: \"10\" }\n";
    let yaml = transform_yaml(
        "wdead",
        src,
        dst,
        "wdead",
        &format!(
            "{picky}    on_error: dead-letter\n    dead_letter: {}\n",
            dead.display()
        ),
    );
    run_pipeline("wdead", &yaml, &[]).assert_ok();
    let expected: Vec<(i32, String)> =
        src.query("SELECT id, email FROM wdead.t WHERE id % 10 <> 0 ORDER BY id");
    let got: Vec<(i32, String)> = dst.query("SELECT id, email FROM wdead_out.t ORDER BY id");
    assert_eq!(expected, got);
    let text = std::fs::read_to_string(&dead).expect("dead-letter file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 50, "{text}");
    assert!(
        lines.iter().any(|l| l.contains("\"id\":10,")
            && l.contains("user10@example.com")
            && l.contains("id 10 is a multiple of 10")
            && l.contains("\"table\":\"t\"")),
        "{}",
        lines[0]
    );

    let skip = transform_yaml(
        "wskip",
        src,
        dst,
        "wdead",
        &format!("{picky}    on_error: skip\n"),
    )
    .replace("wdead_out", "wskip_out");
    run_pipeline("wskip", &skip, &[]).assert_ok();
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM wskip_out.t"), 450);

    let fail = transform_yaml("wfail", src, dst, "wdead", picky).replace("wdead_out", "wfail_out");
    run_pipeline("wfail", &fail, &[]).assert_fails_with(&[
        "plugin `picky` failed an event of wdead.t",
        "id 10 is a multiple of 10",
    ]);
    assert!(
        !dst.table_exists("wfail_out", "t")
            || dst.scalar::<u64>("SELECT COUNT(*) FROM wfail_out.t") < 500
    );
    let _ = std::fs::remove_file(&dead);
}

/// A plugin that traps in the middle of the change stream: the pipeline
/// stops, naming the plugin; the target keeps the last committed
/// transaction and its checkpoint, and none of the failed one.
#[test]
fn a_trap_during_changes_leaves_the_last_consistent_state() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE wtrap; CREATE TABLE wtrap.t (id INT PRIMARY KEY, email VARCHAR(100));
         INSERT INTO wtrap.t SELECT seq, CONCAT('u', seq) FROM wtrap.seq_1_to_100;",
    );
    let path = cdc_transform_yaml(
        "wtrap",
        src,
        dst,
        "wtrap",
        "  - plugin: tests/plugins/picky\n    config: { trap_on: boom }\n",
    );
    let mut p = Background::start(&path, &[]);
    type Row = (i32, String);
    wait_same_rows::<Row>(
        src,
        "SELECT id, email FROM wtrap.t ORDER BY id",
        dst,
        "SELECT id, email FROM wtrap.t ORDER BY id",
        &mut p,
    );
    src.exec("INSERT INTO wtrap.t VALUES (101, 'fine')");
    wait_same_rows::<Row>(
        src,
        "SELECT id, email FROM wtrap.t ORDER BY id",
        dst,
        "SELECT id, email FROM wtrap.t ORDER BY id",
        &mut p,
    );
    src.exec("BEGIN; INSERT INTO wtrap.t SELECT 1000 + seq, 'ok' FROM wtrap.seq_1_to_500; INSERT INTO wtrap.t VALUES (2000, 'boom'); COMMIT;");
    wait_until(Duration::from_secs(60), "the pipeline stops", || p.exited());
    let out = p.output();
    assert!(
        out.contains("plugin `picky`")
            && out.contains("panicked")
            && out.contains("refusing boom")
            && out.contains("wtrap.t"),
        "{out}"
    );
    assert_eq!(
        dst.scalar::<u64>("SELECT COUNT(*) FROM wtrap.t WHERE id >= 1000"),
        0,
        "nothing of the failed transaction"
    );
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM wtrap.t"), 101);
    // The checkpoint is before the failed transaction: once the plugin is
    // fixed, the run resumes and the transaction arrives whole.
    let fixed = cdc_transform_yaml(
        "wtrap",
        src,
        dst,
        "wtrap",
        "  - plugin: tests/plugins/picky\n    config: { trap_on: never }\n",
    );
    let mut p = Background::start(&fixed, &[]);
    wait_same_rows::<Row>(
        src,
        "SELECT id, email FROM wtrap.t ORDER BY id",
        dst,
        "SELECT id, email FROM wtrap.t ORDER BY id",
        &mut p,
    );
    p.terminate(Duration::from_secs(10));
}

/// `sluice plugin test` prints the plugin's schema answer and one line per
/// sample event; a bad sample names the event and column.
#[test]
fn plugin_test_runs_sample_events() {
    let run = sluice(
        &[
            "plugin",
            "test",
            "plugins/mask",
            "--events",
            "plugins/mask/sample.yaml",
        ],
        &[],
    );
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(
        lines[0].contains("\"schema\"") && lines[0].contains("id int key"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("a***@example.com") && lines[1].contains("************1111"),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].contains("\"keep\"") && lines[3].contains("\"op\":\"delete\""),
        "{}",
        lines[3]
    );
    let bad = std::env::temp_dir().join(format!("sluice-bad-sample-{}.yaml", std::process::id()));
    std::fs::write(&bad, "table: { database: d, name: t, columns: [ { name: id, type: int } ] }\nevents:\n  - { op: insert, after: { id: x } }\n").unwrap();
    sluice(
        &[
            "plugin",
            "test",
            "plugins/noop",
            "--events",
            bad.to_str().unwrap(),
        ],
        &[],
    )
    .assert_fails_with(&["event #1 column `id`", "`x` is not an integer"]);
    let _ = std::fs::remove_file(&bad);
}

/// A masked table whose change-stream schema is rebuilt from the binlog's
/// metadata (ENUM, DATETIME(3), a unique key): the mask still applies to
/// its changes (regression: the rebuilt schema was taken for a renamed table).
#[test]
fn mask_applies_to_changes_of_a_table_the_binlog_describes_anew() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE wmaskcdc;
         CREATE TABLE wmaskcdc.customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
           email VARCHAR(190) NOT NULL, phone VARCHAR(32) NULL,
           tier ENUM('basic','silver','gold') NOT NULL DEFAULT 'basic', created_at DATETIME(3) NOT NULL,
           UNIQUE KEY uq_email (email)) CHARACTER SET utf8mb4;
         INSERT INTO wmaskcdc.customers (email, phone, created_at)
           SELECT CONCAT('u', seq, '@example.com'), CONCAT('+1-555-', LPAD(seq, 4, '0')), NOW(3) FROM wmaskcdc.seq_1_to_50;",
    );
    let yaml = transform_yaml(
        "wmaskcdc",
        src,
        dst,
        "wmaskcdc",
        "  - plugin: mask\n    config:\n      salt: pepper\n      columns: { email: hash, phone: phone }\n",
    )
    .replace("mode: snapshot", "mode: snapshot+cdc");
    let path = write_pipeline("wmaskcdc", &yaml);
    let mut p = Background::start(&path, &[]);
    p.wait_for(
        Duration::from_secs(60),
        "the snapshot arrives",
        || match dst.try_query::<u64>("SELECT COUNT(*) FROM wmaskcdc_out.customers") {
            Some(v) if v == [50] => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    src.exec(
        "UPDATE wmaskcdc.customers SET phone = '+1-555-9999', tier = 'gold' WHERE id = 7;
         INSERT INTO wmaskcdc.customers (id, email, phone, created_at) VALUES (51, 'late@example.com', '+1-555-1234', NOW(3));",
    );
    p.wait_for(Duration::from_secs(60), "the masked changes arrive", || {
        let rows: Vec<(u32, String, String)> = dst.query(
            "SELECT id, phone, tier FROM wmaskcdc_out.customers WHERE id IN (7, 51) ORDER BY id",
        );
        let want = vec![
            (7, "+*-***-9999".to_string(), "gold".to_string()),
            (51, "+*-***-1234".to_string(), "basic".to_string()),
        ];
        if rows == want {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    p.assert_running();
    p.terminate(Duration::from_secs(30));
}
