//! The PostgreSQL sink (crates/postgres) against a private PostgreSQL
//! server: every type-matrix value read back with `psql` and compared
//! with the same value read on MariaDB, snapshot then changes (key
//! changes, a large transaction), exactly once across SIGKILLs under a
//! seeded random workload, and the errors a user can meet.

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use support::postgres::{Postgres, PG_PASSWORD};
use support::*;

/// A column compared: its name, its MariaDB text and its PostgreSQL text.
type Col = (&'static str, String, String);
/// A table compared: MariaDB name, PostgreSQL name, key, columns.
type Compared<'a> = (&'a str, &'a str, &'a str, &'a [Col]);

/// SIGTERM: sluice must exit cleanly (its log on failure). Sent once it
/// follows the binlog: its signal handler is in place by then.
fn stop(p: Background) {
    let log = p.log.clone();
    wait_until(Duration::from_secs(60), "sluice follows the binlog", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("following the binlog"))
    });
    let status = p.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "sluice exited with {status} on SIGTERM; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn source() -> &'static MariaDb {
    static SRC: OnceLock<MariaDb> = OnceLock::new();
    SRC.get_or_init(|| MariaDb::start("pg-source"))
}

fn pipeline(name: &str, db: &str, src: &MariaDb, sink: &str) -> std::path::PathBuf {
    write_pipeline(
        name,
        &format!(
            "name: {name}\nsource:\n  mysql:\n    url: {}\n    include: [\"{db}.*\"]\nsinks:\n  - postgres:\n{sink}",
            src.url()
        ),
    )
}

/// Columns compared as their text on both servers (CAST on MariaDB,
/// `::text` on PostgreSQL).
fn texts(cols: &[&'static str]) -> Vec<Col> {
    cols.iter()
        .map(|c| (*c, format!("CAST({c} AS CHAR)"), format!("{c}::text")))
        .collect()
}

/// Each column as comparable text on both servers: the MariaDB expression
/// and the PostgreSQL one. Zero dates are NULL on PostgreSQL
/// (`zero_dates: null`).
fn matrix_columns() -> Vec<Col> {
    let mut out: Vec<Col> = Vec::new();
    let same = |c: &'static str| (c, format!("CAST({c} AS CHAR)"), format!("{c}::text"));
    for c in [
        "id", "ti", "tiu", "si", "siu", "mi", "miu", "i", "iu", "bi", "biu", "d65", "d10", "d38",
        "d5", "d40", "dbl", "u",
    ] {
        out.push(same(c));
    }
    // FLOAT as the double it widens to, printed shortest on both sides.
    out.push((
        "f",
        "CAST(CAST(f AS DOUBLE) AS CHAR)".into(),
        "f::float8::text".into(),
    ));
    for (c, n) in [("b1", 1), ("b8", 8), ("b13", 13), ("b64", 64)] {
        out.push((c, format!("LPAD(BIN({c}), {n}, '0')"), format!("{c}::text")));
    }
    let zero = |c: &str, e: String| format!("IF(MONTH({c}) = 0 OR DAY({c}) = 0, NULL, {e})");
    out.push((
        "dt",
        zero("dt", "CAST(dt AS CHAR)".into()),
        "dt::text".into(),
    ));
    out.push((
        "dtm0",
        zero("dtm0", "CAST(dtm0 AS CHAR)".into()),
        "dtm0::text".into(),
    ));
    out.push((
        "dtm3",
        zero("dtm3", "CAST(dtm3 AS CHAR)".into()),
        "to_char(dtm3, 'YYYY-MM-DD HH24:MI:SS.MS')".into(),
    ));
    out.push((
        "dtm6",
        zero("dtm6", "CAST(dtm6 AS CHAR)".into()),
        "to_char(dtm6, 'YYYY-MM-DD HH24:MI:SS.US')".into(),
    ));
    for (c, f) in [
        ("ts0", "%Y-%m-%d %H:%i:%s"),
        ("ts6", "%Y-%m-%d %H:%i:%s.%f"),
    ] {
        let pg = if c == "ts0" {
            "YYYY-MM-DD HH24:MI:SS"
        } else {
            "YYYY-MM-DD HH24:MI:SS.US"
        };
        out.push((
            c,
            zero(
                c,
                format!("DATE_FORMAT(CONVERT_TZ({c}, @@session.time_zone, '+00:00'), '{f}')"),
            ),
            format!("to_char({c} AT TIME ZONE 'UTC', '{pg}')"),
        ));
    }
    for c in ["tm0", "tm3", "tm6"] {
        out.push((
            c,
            format!("CAST(TIME_TO_SEC({c}) * 1000000 AS SIGNED)"),
            format!("(extract(epoch FROM {c}) * 1000000)::bigint::text"),
        ));
    }
    out.push(("y", "CAST(y + 0 AS CHAR)".into(), "y::text".into()));
    for c in ["c", "vc", "tx", "lt", "l1", "l1t", "e", "s", "j"] {
        out.push((
            c,
            format!("LOWER(HEX(CONVERT({c} USING utf8mb4)))"),
            format!("encode(convert_to({c}::text, 'UTF8'), 'hex')"),
        ));
    }
    for c in ["bin", "vb", "bl", "lbl", "g", "pt"] {
        out.push((c, format!("LOWER(HEX({c}))"), format!("encode({c}, 'hex')")));
    }
    out.push(("ip", "CAST(ip AS CHAR)".into(), "host(ip)".into()));
    out
}

/// Float text the same on both sides (`1e+20` on PostgreSQL is `1e20`).
fn norm(v: &str) -> String {
    v.replace("e+", "e")
}

/// Compares every row of a table, value by value: `None` when equal.
fn difference(
    src: &MariaDb,
    pg: &Postgres,
    src_table: &str,
    pg_table: &str,
    key: &str,
    cols: &[Col],
) -> Option<String> {
    let my_sql = format!(
        "SELECT {} FROM {src_table} ORDER BY {key}",
        cols.iter()
            .map(|(_, m, _)| format!("IFNULL({m}, '<NULL>')"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mine: Vec<Vec<String>> = src
        .rows(&my_sql)
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| match v {
                    mysql::Value::Bytes(b) => norm(&String::from_utf8_lossy(&b)),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect();
    let pg_sql = format!(
        "SELECT {} FROM {pg_table} ORDER BY {}",
        cols.iter()
            .map(|(_, _, p)| format!("coalesce({p}, '<NULL>')"))
            .collect::<Vec<_>>()
            .join(", "),
        key.split(',')
            .map(|k| format!("\"{}\"", k.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let theirs: Vec<Vec<String>> = match pg.rows(&pg_sql) {
        Ok(rows) => rows
            .into_iter()
            .map(|r| r.iter().map(|v| norm(v)).collect())
            .collect(),
        Err(e) => return Some(format!("{pg_table} on PostgreSQL: {e}")),
    };
    if mine.len() != theirs.len() {
        return Some(format!(
            "{src_table}: {} rows on MariaDB, {} on PostgreSQL",
            mine.len(),
            theirs.len()
        ));
    }
    for (a, b) in mine.iter().zip(&theirs) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if x != y {
                let cut = |s: &str| s.chars().take(120).collect::<String>();
                return Some(format!(
                    "{src_table} row {} column {}: MariaDB {:?}, PostgreSQL {:?}",
                    a[0],
                    cols[i].0,
                    cut(x),
                    cut(y)
                ));
            }
        }
    }
    None
}

fn wait_equal(p: &mut Background, src: &MariaDb, pg: &Postgres, tables: &[Compared<'_>]) {
    p.wait_for(
        Duration::from_secs(120),
        "PostgreSQL equals the source",
        || {
            for (s, t, key, cols) in tables {
                if let Some(d) = difference(src, pg, s, t, key, cols) {
                    return Err(d);
                }
            }
            Ok(())
        },
    );
}

#[test]
fn every_type_matrix_value_arrives_exactly_through_snapshot_and_changes() {
    let src = source();
    let pg = Postgres::start("matrix");
    src.exec(&format!(
        "DROP DATABASE IF EXISTS pgm; {}",
        type_matrix_sql("pgm")
    ));
    // PostgreSQL text cannot hold U+0000 (tested below as an error).
    src.exec("UPDATE pgm.matrix SET vc = REPLACE(vc, CHAR(0), '0')");
    let path = pipeline(
        "pg-matrix",
        "pgm",
        src,
        &format!("      url: {}\n      zero_dates: null\n", pg.url()),
    );
    let mut p = Background::start(&path, &[]);
    let cols = matrix_columns();
    let two: Vec<Col> = vec![
        ("id", "CAST(id AS CHAR)".into(), "id::text".into()),
        (
            "name",
            "LOWER(HEX(CONVERT(name USING utf8mb4)))".into(),
            "encode(convert_to(name, 'UTF8'), 'hex')".into(),
        ),
        (
            "note",
            "LOWER(HEX(CONVERT(note USING utf8mb4)))".into(),
            "encode(convert_to(note, 'UTF8'), 'hex')".into(),
        ),
    ];
    let bin: Vec<Col> = vec![
        ("k", "LOWER(HEX(k))".into(), "encode(k, 'hex')".into()),
        ("v", "LOWER(HEX(v))".into(), "encode(v, 'hex')".into()),
    ];
    let tables: Vec<Compared<'_>> = vec![
        ("pgm.matrix", "pgm.matrix", "id", &cols),
        ("pgm.latin", "pgm.latin", "id", &two),
        ("pgm.binkey", "pgm.binkey", "k", &bin),
    ];
    wait_equal(&mut p, src, &pg, &tables);
    // The keys came after the load; a MySQL BIGINT UNSIGNED max survived.
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'pgm.matrix'::regclass AND contype = 'p'").trim(),
        "1"
    );
    assert_eq!(
        pg.psql("SELECT biu FROM pgm.matrix WHERE id = 1").trim(),
        "18446744073709551615"
    );
    // Changes: every type through the binlog, a key change, deletes, a
    // transaction of 3000 rows, and a key of bytes with 0x00.
    src.exec(
        "INSERT INTO pgm.matrix SELECT id + 10000, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d65, d10, d38, d5, d40, \
         f, dbl, b1, b8, b13, b64, dt, dtm0, dtm3, dtm6, ts0, ts6, tm0, tm3, tm6, y, c, vc, tx, lt, l1, l1t, \
         bin, vb, bl, lbl, e, s, j, g, pt, u, ip FROM pgm.matrix WHERE id <= 4",
    );
    src.exec("UPDATE pgm.matrix SET id = 20003, vc = 'moved' WHERE id = 3");
    src.exec("DELETE FROM pgm.matrix WHERE id IN (101, 102)");
    src.exec("UPDATE pgm.matrix SET y = 1999, dbl = dbl * 3 WHERE id BETWEEN 103 AND 3100");
    src.exec("UPDATE pgm.binkey SET k = X'0001' WHERE k = X'00'");
    src.exec("UPDATE pgm.latin SET name = 'Ørjan' WHERE id = 1");
    wait_equal(&mut p, src, &pg, &tables);
    stop(p);
    // `sluice status` reads the checkpoint on PostgreSQL.
    let status = sluice(&["status", path.to_str().expect("a path")], &[]);
    status.assert_ok();
    let row = status
        .stdout
        .lines()
        .find(|l| l.starts_with("postgres"))
        .unwrap_or_else(|| panic!("no row for the sink:\n{}", status.stdout));
    assert!(row.contains(" cdc ") && row.contains("binlog."), "{row}");
    assert!(row.trim_end().ends_with(" s"), "no checkpoint age: {row}");
    // `sluice verify` reads every value back and finds the copy exact
    // (zero dates compared as the NULLs `zero_dates: null` stores)...
    let run = assert_verified(&path, "the type matrix");
    assert!(run.stdout.contains("equal"), "{}", run.stdout);
    // ...and every difference planted on PostgreSQL, by kind and key: a
    // float one ulp off, a byte of a blob, a missing and an extra row.
    pg.psql(
        "UPDATE pgm.matrix SET dbl = dbl * (1 + 2.2e-16) WHERE id = 203; \
         UPDATE pgm.matrix SET bl = '\\x00'::bytea || coalesce(bl, '') WHERE id = 205; \
         DELETE FROM pgm.matrix WHERE id = 206; \
         CREATE TEMP TABLE x AS SELECT * FROM pgm.matrix WHERE id = 208; \
         UPDATE x SET id = 99999; INSERT INTO pgm.matrix SELECT * FROM x",
    );
    let (run, found) = verify(&path, &["--recheck-timeout-s", "1"]);
    assert_found(
        &run,
        &found,
        &[
            ("different", "pgm.matrix", "id=203"),
            ("different", "pgm.matrix", "id=205"),
            ("missing", "pgm.matrix", "id=206"),
            ("extra", "pgm.matrix", "id=99999"),
        ],
    );
    // --repair rewrites the four rows from the source's, every type
    // through the change statements' encoding...
    let run = assert_verified_with(&path, &["--repair", "--recheck-timeout-s", "1"], "--repair");
    assert!(run.stdout.contains("4 repaired"), "{}", run.stdout);
    // ...which SQL on both servers confirms, independently of verify.
    for (s, t, key, cols) in &tables {
        let d = difference(src, &pg, s, t, key, cols);
        assert!(d.is_none(), "after --repair: {d:?}");
    }
}

/// A seeded random workload over a keyed table (with a unique secondary
/// key and a `_ci` column) and a keyless one, sluice SIGKILLed five times:
/// PostgreSQL ends equal to the source, and every row the workload
/// inserted appears once.
#[test]
fn random_changes_survive_kills_exactly_once() {
    let src = source();
    let pg = Postgres::start("kills");
    let seed = seed();
    let mut rng = Rng::new(seed);
    src.exec(
        "DROP DATABASE IF EXISTS pgk; CREATE DATABASE pgk; \
         CREATE TABLE pgk.t (id INT PRIMARY KEY, u INT NULL UNIQUE, \
           name VARCHAR(30) COLLATE utf8mb4_general_ci NOT NULL, amount DECIMAL(12,3), at DATETIME(6)) ENGINE=InnoDB; \
         CREATE TABLE pgk.log (n INT, note VARCHAR(20)) ENGINE=InnoDB; \
         CREATE TABLE pgk.p (id INT NOT NULL, k VARCHAR(8) COLLATE utf8mb4_general_ci NOT NULL, \
           v INT, PRIMARY KEY (id, k)) ENGINE=InnoDB; \
         INSERT INTO pgk.p SELECT seq, CONCAT('k', seq % 7), seq FROM pgk.seq_0_to_199",
    );
    for i in 0..300 {
        src.exec(&format!(
            "INSERT INTO pgk.t VALUES ({i}, {}, 'Row {i}', {}.125, '2024-01-01 00:00:00.{:06}')",
            i * 2,
            i * 3,
            i
        ));
    }
    // How changes are applied, chosen by the seed and changed between
    // kills: the lanes of a crashed run keep their number until they agree.
    let apply = |rng: &mut Rng| match rng.below(3) {
        0 => "transactional".to_string(),
        n => format!("eventual, parallelism: {}", 2 * n),
    };
    let write = |mode: &str| {
        pipeline(
            "pg-kills",
            "pgk",
            src,
            &format!(
                "      url: {}\n      history: true\n      apply: {{consistency: {mode}}}\n",
                pg.url()
            ),
        )
    };
    let mut mode = apply(&mut rng);
    let path = write(&mode);
    let cols_t: Vec<Col> = vec![
        ("id", "CAST(id AS CHAR)".into(), "id::text".into()),
        ("u", "CAST(u AS CHAR)".into(), "u::text".into()),
        ("name", "name".into(), "name".into()),
        (
            "amount",
            "CAST(amount AS CHAR)".into(),
            "amount::text".into(),
        ),
        (
            "at",
            "CAST(at AS CHAR)".into(),
            "to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')".into(),
        ),
    ];
    let cols_log: Vec<Col> = vec![
        ("n", "CAST(n AS CHAR)".into(), "n::text".into()),
        ("note", "note".into(), "note".into()),
    ];
    let cols_p: Vec<Col> = vec![
        ("id", "CAST(id AS CHAR)".into(), "id::text".into()),
        ("k", "k".into(), "k".into()),
        ("v", "CAST(v AS CHAR)".into(), "v::text".into()),
    ];
    let tables: Vec<Compared<'_>> = vec![
        ("pgk.t", "pgk.t", "id", &cols_t),
        ("pgk.log", "pgk.log", "n, note", &cols_log),
        ("pgk.p", "pgk.p", "id, k", &cols_p),
    ];
    let mut p = Background::start(&path, &[]);
    let mut next = 10_000;
    let mut next_p = 50_000;
    for round in 0..5 {
        let statements = 20 + rng.below(40);
        for _ in 0..statements {
            let id = rng.below(400);
            let sql = match rng.below(12) {
                // pgk.p has its primary key only: its rows spread over
                // the lanes, and a key change may move one to another.
                8 => {
                    next_p += 1;
                    format!("INSERT INTO pgk.p VALUES ({next_p}, 'n{}', 0)", rng.below(3))
                }
                9 => format!(
                    "UPDATE IGNORE pgk.p SET id = id + 100000 WHERE id = {id}; \
                     UPDATE pgk.p SET k = UPPER(k), v = v + 1 WHERE id = {}",
                    rng.below(400)
                ),
                10 => format!(
                    "START TRANSACTION; UPDATE pgk.p SET v = v + 1 WHERE id % 5 = {}; \
                     DELETE FROM pgk.p WHERE id = {id}; COMMIT",
                    rng.below(5)
                ),
                11 => format!(
                    "DELETE FROM pgk.p WHERE id = {id}; INSERT INTO pgk.p VALUES ({id}, 'back', {})",
                    rng.below(100)
                ),
                0 | 1 => {
                    next += 1;
                    format!(
                        "INSERT INTO pgk.t VALUES ({next}, NULL, 'new {next}', {}.5, NOW(6))",
                        rng.below(1000)
                    )
                }
                // Moves a unique value from one row to another, in order.
                2 => format!(
                    "UPDATE pgk.t SET u = NULL WHERE u = {v}; UPDATE pgk.t SET u = {v} WHERE id = {id}",
                    v = rng.below(800)
                ),
                3 => format!("UPDATE pgk.t SET id = id + 100000 WHERE id = {id}"),
                4 => format!("DELETE FROM pgk.t WHERE id = {id}"),
                // Case-only changes of a _ci column are real changes.
                5 => format!("UPDATE pgk.t SET name = UPPER(name) WHERE id % 17 = {}", rng.below(17)),
                6 => format!(
                    "INSERT INTO pgk.log VALUES ({}, 'dup'), ({}, 'dup')",
                    rng.below(5),
                    rng.below(5)
                ),
                _ => format!(
                    "START TRANSACTION; DELETE FROM pgk.log WHERE n = {} LIMIT 1; \
                     UPDATE pgk.t SET amount = amount + 1 WHERE id < {}; COMMIT",
                    rng.below(5),
                    rng.below(300)
                ),
            };
            src.exec(&sql);
        }
        // Killed at a random point of applying them.
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        p.kill();
        if rng.chance(40) {
            mode = apply(&mut rng);
            write(&mode);
        }
        p = Background::start(&path, &[]);
        if round == 2 {
            wait_equal(&mut p, src, &pg, &tables);
        }
    }
    // A change for the last run to apply (a run that applies nothing
    // leaves the lanes where the last kill left them).
    src.exec("UPDATE pgk.p SET v = v + 1 WHERE id % 3 = 0");
    wait_equal(&mut p, src, &pg, &tables);
    stop(p);
    // A clean stop leaves every lane at one position (a new lane count
    // takes over at the next start).
    assert_eq!(
        pg.psql("SELECT count(DISTINCT (binlog_file, binlog_offset)) FROM sluice.checkpoints WHERE pipeline = 'pg-kills'")
            .trim(),
        "1",
        "seed 0x{seed:x} (apply: {mode}): {}",
        pg.psql("SELECT part, phase, binlog_file, binlog_offset FROM sluice.checkpoints")
    );
    // The change tables, replayed in their order, give the tables again:
    // every change is there once (a key change as a delete and an insert).
    let row = "coalesce(u::text, '-'), name, amount::text, to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')";
    let current: BTreeMap<String, Vec<String>> = pg
        .rows(&format!("SELECT id::text, {row} FROM pgk.t"))
        .expect("pgk.t")
        .into_iter()
        .map(|r| (r[0].clone(), r))
        .collect();
    let mut replayed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let history = pg
        .rows(&format!(
            "SELECT _sluice_op, id::text, {row} FROM pgk.t__history ORDER BY _sluice_seq"
        ))
        .expect("pgk.t__history");
    for h in &history {
        match h[0].as_str() {
            "r" | "c" | "u" => {
                replayed.insert(h[1].clone(), h[1..].to_vec());
            }
            "d" => {
                replayed.remove(&h[1]);
            }
            op => panic!("op {op:?} in the change table"),
        }
    }
    assert_eq!(
        replayed, current,
        "seed 0x{seed:x}: pgk.t__history replayed"
    );
    // Each row the workload inserted appears once: as a snapshot row if
    // the snapshot saw it, else as its insert; no row is read twice.
    let mut first: BTreeMap<i64, usize> = BTreeMap::new();
    let mut reads: BTreeMap<i64, usize> = BTreeMap::new();
    for h in history.iter().filter(|h| h[0] == "r" || h[0] == "c") {
        if let Ok(id) = h[1].parse::<i64>() {
            *first.entry(id).or_default() += 1;
            if h[0] == "r" {
                *reads.entry(id).or_default() += 1;
            }
        }
    }
    for id in 10_001..=next {
        assert_eq!(first.get(&id), Some(&1), "seed 0x{seed:x}: row {id}");
    }
    assert!(
        reads.values().all(|n| *n == 1),
        "seed 0x{seed:x}: a snapshot row twice"
    );
    // The keyless table: its change table replayed as a multiset.
    let mut log: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for h in pg
        .rows("SELECT _sluice_op, n::text, note FROM pgk.log__history ORDER BY _sluice_seq")
        .expect("pgk.log__history")
    {
        *log.entry(h[1..].to_vec()).or_default() += if h[0] == "d" { -1 } else { 1 };
    }
    log.retain(|_, n| *n != 0);
    let mut want: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for r in pg
        .rows("SELECT n::text, note FROM pgk.log")
        .expect("pgk.log")
    {
        *want.entry(r).or_default() += 1;
    }
    assert_eq!(log, want, "seed 0x{seed:x}: pgk.log__history replayed");
    // pgk.p's rows were applied over several lanes: each row's changes
    // are still in order in its change table.
    let mut replayed: BTreeMap<(String, String), String> = BTreeMap::new();
    for h in pg
        .rows("SELECT _sluice_op, id::text, k, v::text FROM pgk.p__history ORDER BY _sluice_seq")
        .expect("pgk.p__history")
    {
        let key = (h[1].clone(), h[2].clone());
        if h[0] == "d" {
            replayed.remove(&key);
        } else {
            replayed.insert(key, h[3].clone());
        }
    }
    let current: BTreeMap<(String, String), String> = pg
        .rows("SELECT id::text, k, v::text FROM pgk.p")
        .expect("pgk.p")
        .into_iter()
        .map(|r| ((r[0].clone(), r[1].clone()), r[2].clone()))
        .collect();
    assert_eq!(
        replayed, current,
        "seed 0x{seed:x} (apply: {mode}): pgk.p__history replayed"
    );
    // `sluice verify` agrees (the keyless table compared as a multiset).
    assert_verified(&path, &format!("seed 0x{seed:x}"));
    // Differences planted on PostgreSQL, then `--repair`: two rows that
    // swapped their unique values (rewriting one at a time would collide),
    // a row gone, a keyless row doubled and one removed.
    pg.psql(
        "DO $$ DECLARE a int; b int; ua int; ub int; BEGIN \
           SELECT id, u INTO a, ua FROM pgk.t WHERE u IS NOT NULL ORDER BY id LIMIT 1; \
           SELECT id, u INTO b, ub FROM pgk.t WHERE u IS NOT NULL ORDER BY id OFFSET 1 LIMIT 1; \
           UPDATE pgk.t SET u = NULL WHERE id = a; UPDATE pgk.t SET u = ua WHERE id = b; \
           UPDATE pgk.t SET u = ub WHERE id = a; END $$; \
         DELETE FROM pgk.t WHERE id = (SELECT max(id) FROM pgk.t); \
         INSERT INTO pgk.log SELECT * FROM pgk.log LIMIT 1; \
         DELETE FROM pgk.p WHERE ctid = (SELECT min(ctid) FROM pgk.p)",
    );
    // (The pipeline is stopped: nothing is on its way to recheck for.)
    let (run, found) = verify(&path, &["--recheck-timeout-s", "1"]);
    let swapped = found
        .iter()
        .filter(|(kind, table, _)| kind == "different" && table == "pgk.t")
        .count();
    assert!(
        run.status.code() == Some(3) && swapped == 2 && found.len() >= 4,
        "seed 0x{seed:x}: the planted differences: {found:?}\n{}",
        run.stdout
    );
    let run = assert_verified_with(
        &path,
        &["--repair", "--recheck-timeout-s", "1"],
        &format!("seed 0x{seed:x}: --repair"),
    );
    assert!(run.stdout.contains("repaired"), "{}", run.stdout);
    for (s, t, key, cols) in &tables {
        let d = difference(src, &pg, s, t, key, cols);
        assert!(d.is_none(), "seed 0x{seed:x}: after --repair: {d:?}");
    }
}

#[test]
fn values_postgresql_cannot_hold_stop_the_run_naming_row_and_column() {
    let src = source();
    let pg = Postgres::start("bad");
    src.exec(
        "DROP DATABASE IF EXISTS pgbad; CREATE DATABASE pgbad; \
         CREATE TABLE pgbad.nul (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO pgbad.nul VALUES (1, 'fine'), (7, CONCAT('a', CHAR(0), 'b')); \
         CREATE TABLE pgbad.zd (id INT PRIMARY KEY, d DATE); \
         SET SESSION sql_mode = ''; INSERT INTO pgbad.zd VALUES (3, '0000-00-00')",
    );
    let only = |t: &str| {
        write_pipeline(
            &format!("pg-bad-{t}"),
            &format!(
                "name: pg-bad-{t}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"pgbad.{t}\"]\nsinks:\n  - postgres:\n      url: {}\n",
                src.url(),
                pg.url()
            ),
        )
    };
    let run = |path: std::path::PathBuf| {
        sluice(
            &["run", "--progress", "off", path.to_str().expect("a path")],
            &[],
        )
    };
    run(only("nul")).assert_fails_with(&["pgbad.nul", "column `v`", "id = 7", "U+0000"]);
    run(only("zd")).assert_fails_with(&["pgbad.zd", "column `d`", "id = 3", "zero_dates: null"]);
}

#[test]
fn connection_problems_name_the_server_with_the_password_masked() {
    let src = source();
    let pg = Postgres::start("auth");
    src.exec(
        "DROP DATABASE IF EXISTS pgauth; CREATE DATABASE pgauth; CREATE TABLE pgauth.t (id INT PRIMARY KEY)",
    );
    let yaml = |url: &str| {
        format!(
            "name: pg-auth\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"pgauth.*\"]\nsinks:\n  - postgres:\n      url: {url}\n",
            src.url()
        )
    };
    let wrong = pg.url_for("postgres", "not-the-password");
    let r = run_pipeline("pg-wrong-pw", &yaml(&wrong), &[]);
    r.assert_fails_with(&["password authentication failed", "postgres:***@", "hint:"]);
    assert!(!r.stderr.contains("not-the-password"), "{}", r.stderr);
    let nobody = format!("postgres://postgres:x@127.0.0.1:{}/sluice", free_tcp_port());
    run_pipeline("pg-down", &yaml(&nobody), &[]).assert_fails_with(&[
        "cannot connect",
        "hint:",
        "listens",
    ]);
    // A user without CREATE on the database is told what to grant.
    pg.psql(&format!(
        "CREATE USER weak PASSWORD '{PG_PASSWORD}'; REVOKE CREATE ON DATABASE sluice FROM PUBLIC"
    ));
    run_pipeline("pg-weak", &yaml(&pg.url_for("weak", PG_PASSWORD)), &[]).assert_fails_with(&[
        "user weak may not create tables",
        "GRANT CREATE ON DATABASE",
    ]);
    // A table in the way stops the run before anything is written.
    pg.psql("CREATE SCHEMA pgauth; CREATE TABLE pgauth.t (id int)");
    run_pipeline("pg-exists", &yaml(&pg.url()), &[]).assert_fails_with(&[
        "exist already",
        "\"pgauth\".\"t\"",
        "existing_tables",
    ]);
}

/// MySQL does not log the rows its foreign key actions change, so the
/// target must act the same: the keys, indexes and foreign keys are
/// created after the load, and a parent's delete and key change arrive as
/// the cascades they were on the source.
#[test]
fn foreign_key_actions_happen_on_postgresql_as_on_the_source() {
    let src = source();
    let pg = Postgres::start("fk");
    src.exec(
        "DROP DATABASE IF EXISTS pgfk; CREATE DATABASE pgfk; \
         CREATE TABLE pgfk.parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB; \
         CREATE TABLE pgfk.child (id INT PRIMARY KEY, p INT, q INT, note VARCHAR(200), \
           KEY by_note (note(10), p), \
           CONSTRAINT fk_p FOREIGN KEY (p) REFERENCES pgfk.parent (id) ON DELETE CASCADE ON UPDATE CASCADE, \
           CONSTRAINT fk_q FOREIGN KEY (q) REFERENCES pgfk.parent (id) ON DELETE SET NULL ON UPDATE SET NULL) ENGINE=InnoDB",
    );
    for i in 1..=20 {
        src.exec(&format!("INSERT INTO pgfk.parent VALUES ({i}, 'p{i}')"));
    }
    for i in 1..=100 {
        src.exec(&format!(
            "INSERT INTO pgfk.child VALUES ({i}, {}, {}, 'note {i}')",
            i % 20 + 1,
            (i * 7) % 20 + 1
        ));
    }
    let path = pipeline("pg-fk", "pgfk", src, &format!("      url: {}\n", pg.url()));
    let mut p = Background::start(&path, &[]);
    let cols: Vec<Col> = texts(&["id", "p", "q", "note"]);
    let tables: Vec<Compared<'_>> = vec![("pgfk.child", "pgfk.child", "id", &cols)];
    wait_equal(&mut p, src, &pg, &tables);
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'pgfk.child'::regclass AND contype = 'f'").trim(),
        "2"
    );
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'pgfk' AND tablename = 'child'"
        )
        .trim(),
        "4",
        "the primary key, by_note, and the indexes MariaDB made for the foreign keys"
    );
    // Cascades the binlog does not carry.
    src.exec("DELETE FROM pgfk.parent WHERE id IN (3, 4)");
    src.exec("UPDATE pgfk.parent SET id = 1000 WHERE id = 5");
    src.exec("INSERT INTO pgfk.child VALUES (500, 1000, 1000, 'after')");
    wait_equal(&mut p, src, &pg, &tables);
    // With foreign_key_checks = 0 MySQL neither cascades nor checks: the
    // children of the deleted parent stay, and one points nowhere. A
    // checked change in the next transaction still cascades.
    let orphans: u64 = src.scalar("SELECT COUNT(*) FROM pgfk.child WHERE p = 9");
    assert!(orphans > 0);
    src.exec(
        "SET SESSION foreign_key_checks = 0; DELETE FROM pgfk.parent WHERE id = 9; \
         INSERT INTO pgfk.child VALUES (501, 777, NULL, 'no parent'); SET SESSION foreign_key_checks = 1",
    );
    src.exec("DELETE FROM pgfk.parent WHERE id = 10");
    wait_equal(&mut p, src, &pg, &tables);
    assert_eq!(
        pg.psql("SELECT count(*) FROM pgfk.child WHERE p = 9")
            .trim(),
        orphans.to_string()
    );
    // Foreign keys dropped and added mid-stream: the parent's next deletes
    // act as the new definition says, with no change of the child between.
    src.exec("ALTER TABLE pgfk.child DROP FOREIGN KEY fk_q");
    src.exec("DELETE FROM pgfk.parent WHERE id = 11");
    wait_equal(&mut p, src, &pg, &tables);
    src.exec("UPDATE pgfk.child SET q = NULL WHERE q NOT IN (SELECT id FROM pgfk.parent)");
    src.exec(
        "ALTER TABLE pgfk.child ADD CONSTRAINT fk_q2 FOREIGN KEY (q) REFERENCES pgfk.parent (id) ON DELETE CASCADE",
    );
    src.exec("DELETE FROM pgfk.parent WHERE id = 12");
    wait_equal(&mut p, src, &pg, &tables);
    assert_eq!(
        pg.psql("SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'pgfk.child'::regclass AND contype = 'f'").trim(),
        "fk_p,fk_q2"
    );
    // A unique key added mid-stream is on PostgreSQL before the next row
    // (which a swap of two values through it needs in order), and dropped
    // with the statement that drops it.
    // The columns of pgfk.parent's unique keys on PostgreSQL, once they
    // are `want`.
    let uniques = |p: &mut Background, want: &str| {
        p.wait_for(Duration::from_secs(60), "the unique keys on PostgreSQL", || {
            let have = pg.psql(
                "SELECT coalesce(string_agg(a.attname, ',' ORDER BY a.attname), '-') FROM pg_constraint c \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) \
                 WHERE c.conrelid = 'pgfk.parent'::regclass AND c.contype = 'u'",
            );
            if have.trim() == want { Ok(()) } else { Err(have) }
        })
    };
    src.exec("ALTER TABLE pgfk.parent ADD UNIQUE KEY uq_name (name)");
    uniques(&mut p, "name");
    src.exec(
        "START TRANSACTION; UPDATE pgfk.parent SET name = 'tmp' WHERE id = 1; \
         UPDATE pgfk.parent SET name = 'p1' WHERE id = 2; UPDATE pgfk.parent SET name = 'p2' WHERE id = 1; COMMIT",
    );
    let parent: Vec<Col> = texts(&["id", "name"]);
    let both: Vec<Compared<'_>> = vec![
        ("pgfk.child", "pgfk.child", "id", &cols),
        ("pgfk.parent", "pgfk.parent", "id", &parent),
    ];
    wait_equal(&mut p, src, &pg, &both);
    src.exec("ALTER TABLE pgfk.parent DROP INDEX uq_name");
    uniques(&mut p, "-");
    src.exec("INSERT INTO pgfk.parent VALUES (2000, 'p1')");
    wait_equal(&mut p, src, &pg, &both);
    stop(p);
}

/// `sluice verify` finds every sink of `path` equal; its run (`context`
/// names the seed and what led here on failure).
fn assert_verified(path: &std::path::Path, context: &str) -> Run {
    assert_verified_with(path, &[], context)
}

/// As [`assert_verified`], with more arguments for `sluice verify`.
fn assert_verified_with(path: &std::path::Path, args: &[&str], context: &str) -> Run {
    let (run, found) = verify(path, args);
    assert!(
        run.ok() && found.is_empty(),
        "{context}: {found:?}\n{}{}",
        run.stdout,
        run.stderr
    );
    run
}

/// Until the PostgreSQL sink has loaded its snapshot and follows changes.
fn wait_snapshot_loaded(p: &mut Background, pg: &Postgres) {
    p.wait_for(
        Duration::from_secs(60),
        "the snapshot is loaded",
        || match pg.rows("SELECT phase FROM sluice.checkpoints") {
            Ok(r) if r.iter().any(|r| r[0] == "cdc") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

/// Every table of `db` on both servers, column by column and row by row,
/// as text read by each server's own SQL (sorted rows, so keyless tables
/// compare as multisets): `None` when equal.
fn database_difference(src: &MariaDb, pg: &Postgres, db: &str) -> Option<String> {
    let tables: Vec<String> = src.query(&format!(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}' ORDER BY 1"
    ));
    let pg_tables: Vec<String> = match pg.rows(&format!(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{db}' \
         AND table_name NOT LIKE '%\\_\\_history' ORDER BY 1"
    )) {
        Ok(r) => r.into_iter().map(|mut r| r.remove(0)).collect(),
        Err(e) => return Some(e),
    };
    let mut want = tables.clone();
    want.sort();
    if want != pg_tables {
        return Some(format!(
            "tables: MariaDB {want:?}, PostgreSQL {pg_tables:?}"
        ));
    }
    for t in &tables {
        let mut cols: Vec<String> = src.query(&format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = '{db}' AND table_name = '{t}'"
        ));
        cols.sort();
        let mut pg_cols: Vec<String> = match pg.rows(&format!(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = '{db}' AND table_name = '{t}'"
        )) {
            Ok(r) => r.into_iter().map(|mut r| r.remove(0)).collect(),
            Err(e) => return Some(e),
        };
        pg_cols.sort();
        if cols != pg_cols {
            return Some(format!(
                "{t} columns: MariaDB {cols:?}, PostgreSQL {pg_cols:?}"
            ));
        }
        let my_sql = format!(
            "SELECT {} FROM `{db}`.`{t}`",
            cols.iter()
                .map(|c| format!("IFNULL(CAST(`{c}` AS CHAR), '<NULL>')"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut mine: Vec<Vec<String>> = src
            .rows(&my_sql)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => format!("{other:?}"),
                    })
                    .collect()
            })
            .collect();
        let pg_sql = format!(
            "SELECT {} FROM \"{db}\".\"{t}\"",
            cols.iter()
                .map(|c| format!("coalesce(\"{c}\"::text, '<NULL>')"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut theirs = match pg.rows(&pg_sql) {
            Ok(r) => r,
            Err(e) => return Some(format!("{t} on PostgreSQL: {e}")),
        };
        mine.sort();
        theirs.sort();
        if mine.len() != theirs.len() {
            return Some(format!(
                "{t}: {} rows on MariaDB, {} on PostgreSQL",
                mine.len(),
                theirs.len()
            ));
        }
        if let Some((a, b)) = mine.iter().zip(&theirs).find(|(a, b)| a != b) {
            return Some(format!(
                "{t} ({}): MariaDB {a:?}, PostgreSQL {b:?}",
                cols.join(", ")
            ));
        }
    }
    None
}

/// A column type of the DDL workload, with values both servers print alike.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    Big,
    Text(u32),
    Dec,
    Date,
    Stamp,
    Choice,
}

impl Kind {
    fn sql(self) -> String {
        match self {
            Kind::Int => "INT".into(),
            Kind::Big => "BIGINT".into(),
            Kind::Text(n) => format!("VARCHAR({n})"),
            Kind::Dec => "DECIMAL(9,2)".into(),
            Kind::Date => "DATE".into(),
            Kind::Stamp => "DATETIME".into(),
            Kind::Choice => "ENUM('red','green','blue')".into(),
        }
    }

    fn value(self, rng: &mut Rng) -> String {
        match self {
            Kind::Int => format!("{}", rng.below(2000) as i64 - 1000),
            Kind::Big => format!("{}", rng.next() as i64 / 3),
            Kind::Text(n) => {
                let len = rng.below(n.min(8) as u64 + 1) as usize;
                let s: String = (0..len)
                    .map(|_| *rng.pick(&['a', 'B', 'é', ' ', '\'', '中']))
                    .collect();
                format!("'{}'", s.replace('\'', "''"))
            }
            Kind::Dec => format!("{}.{:02}", rng.below(10000) as i64 - 5000, rng.below(100)),
            Kind::Date => format!(
                "'20{:02}-{:02}-{:02}'",
                rng.below(40),
                1 + rng.below(12),
                1 + rng.below(28)
            ),
            Kind::Stamp => format!(
                "'20{:02}-{:02}-{:02} {:02}:{:02}:{:02}'",
                rng.below(40),
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                rng.below(60)
            ),
            Kind::Choice => format!("'{}'", rng.pick(&["red", "green", "blue"])),
        }
    }

    /// A wider type whose values are the same (what `MODIFY` widens to).
    fn wider(self) -> Option<Kind> {
        match self {
            Kind::Int => Some(Kind::Big),
            Kind::Text(n) => Some(Kind::Text(n + 10)),
            _ => None,
        }
    }
}

/// A table of the DDL workload as the test knows it: its name, whether
/// it has a primary key, and its columns (name, type, NOT NULL).
struct Model {
    name: String,
    keyed: bool,
    columns: Vec<(String, Kind, bool)>,
    next_id: u64,
}

impl Model {
    /// A new table `t{n}`, and the statement that creates it.
    fn create(n: usize, rng: &mut Rng) -> (Model, String) {
        let keyed = !rng.chance(20);
        let m = Model {
            name: format!("t{n}"),
            keyed,
            columns: vec![
                ("v".into(), Kind::Text(20), false),
                ("n".into(), Kind::Int, false),
            ],
            next_id: 0,
        };
        let sql = format!(
            "CREATE TABLE pgd.`{}` ({}v VARCHAR(20), n INT) ENGINE=InnoDB",
            m.name,
            if keyed { "id BIGINT PRIMARY KEY, " } else { "" }
        );
        (m, sql)
    }

    fn insert(&mut self, rng: &mut Rng) -> String {
        self.next_id += 1;
        let mut names = Vec::new();
        let mut values = Vec::new();
        if self.keyed {
            names.push("id".to_string());
            values.push(self.next_id.to_string());
        }
        for (c, k, not_null) in &self.columns {
            names.push(format!("`{c}`"));
            values.push(if !not_null && rng.chance(15) {
                "NULL".into()
            } else {
                k.value(rng)
            });
        }
        format!(
            "INSERT INTO pgd.`{}` ({}) VALUES ({})",
            self.name,
            names.join(", "),
            values.join(", ")
        )
    }
}

/// Schema changes mid-stream, generated from a seed: columns added (with
/// and without defaults, NULL and NOT NULL), dropped, renamed and widened;
/// tables created, renamed (two swapped in one statement), truncated and
/// dropped; indexes added and dropped, between random row changes, with
/// sluice SIGKILLed between rounds. PostgreSQL ends equal to the source,
/// column by column, read by each server's own SQL.
#[test]
fn generated_schema_changes_mid_stream_are_translated_exactly() {
    let src = source();
    let pg = Postgres::start("ddl");
    let seed = seed();
    let mut rng = Rng::new(seed);
    src.exec("DROP DATABASE IF EXISTS pgd; CREATE DATABASE pgd CHARACTER SET utf8mb4");
    let mut tables: Vec<Model> = Vec::new();
    let mut made = 0;
    for _ in 0..3 {
        made += 1;
        let (m, sql) = Model::create(made, &mut rng);
        src.exec(&sql);
        tables.push(m);
    }
    for t in tables.iter_mut() {
        for _ in 0..20 {
            let sql = t.insert(&mut rng);
            src.exec(&sql);
        }
    }
    let path = pipeline(
        "pg-ddl",
        "pgd",
        src,
        &format!("      url: {}\n      history: true\n", pg.url()),
    );
    let mut p = Background::start(&path, &[]);
    // Kills start once the snapshot is in: an interrupted snapshot is
    // loaded again, which is another test's subject.
    wait_snapshot_loaded(&mut p, &pg);
    let kinds = [
        Kind::Int,
        Kind::Big,
        Kind::Text(12),
        Kind::Dec,
        Kind::Date,
        Kind::Stamp,
        Kind::Choice,
    ];
    let mut columns_made = 0;
    let mut log: Vec<String> = Vec::new();
    for round in 0..8 {
        for _ in 0..30 {
            let i = rng.below(tables.len() as u64) as usize;
            let sql = match rng.below(15) {
                0..=3 => tables[i].insert(&mut rng),
                4 => {
                    let t = &tables[i];
                    let (c, k, _) = rng.pick(&t.columns).clone();
                    let v = k.value(&mut rng);
                    format!("UPDATE pgd.`{}` SET `{c}` = {v} LIMIT 3", t.name)
                }
                5 => format!("DELETE FROM pgd.`{}` LIMIT 2", tables[i].name),
                6 => {
                    columns_made += 1;
                    let c = format!("c{columns_made}");
                    let k = *rng.pick(&kinds);
                    let not_null = rng.chance(40);
                    // Dates NOT NULL need a default: the implicit one is a
                    // zero date, which PostgreSQL cannot hold.
                    let dated = matches!(k, Kind::Date | Kind::Stamp);
                    let default = if rng.chance(50) || (not_null && dated) {
                        format!(" DEFAULT {}", k.value(&mut rng))
                    } else {
                        String::new()
                    };
                    let t = &mut tables[i];
                    t.columns.push((c.clone(), k, not_null));
                    format!(
                        "ALTER TABLE pgd.`{}` ADD COLUMN `{c}` {}{}{default}",
                        t.name,
                        k.sql(),
                        if not_null { " NOT NULL" } else { "" }
                    )
                }
                7 if tables[i].columns.len() > 1 => {
                    let t = &mut tables[i];
                    let at = rng.below(t.columns.len() as u64) as usize;
                    let (c, _, _) = t.columns.remove(at);
                    format!("ALTER TABLE pgd.`{}` DROP COLUMN `{c}`", t.name)
                }
                8 => {
                    columns_made += 1;
                    let t = &mut tables[i];
                    let at = rng.below(t.columns.len() as u64) as usize;
                    let to = format!("r{columns_made}");
                    let from = std::mem::replace(&mut t.columns[at].0, to.clone());
                    match t.columns[at].1.wider() {
                        // CHANGE redefines the column: NULL allowed again.
                        Some(w) if rng.chance(50) => {
                            t.columns[at].1 = w;
                            t.columns[at].2 = false;
                            format!(
                                "ALTER TABLE pgd.`{}` CHANGE `{from}` `{to}` {}",
                                t.name,
                                w.sql()
                            )
                        }
                        _ => format!(
                            "ALTER TABLE pgd.`{}` RENAME COLUMN `{from}` TO `{to}`",
                            t.name
                        ),
                    }
                }
                9 => {
                    let t = &mut tables[i];
                    let at = rng.below(t.columns.len() as u64) as usize;
                    match t.columns[at].1.wider() {
                        Some(w) => {
                            t.columns[at].1 = w;
                            t.columns[at].2 = false;
                            format!(
                                "ALTER TABLE pgd.`{}` MODIFY `{}` {}",
                                t.name,
                                t.columns[at].0,
                                w.sql()
                            )
                        }
                        None => format!(
                            "ALTER TABLE pgd.`{}` ADD INDEX (`{}`)",
                            t.name, t.columns[at].0
                        ),
                    }
                }
                10 if tables.len() >= 2 => {
                    // Two tables swap names in one statement.
                    let j = (i + 1) % tables.len();
                    let (a, b) = (tables[i].name.clone(), tables[j].name.clone());
                    tables[i].name = b.clone();
                    tables[j].name = a.clone();
                    format!(
                        "RENAME TABLE pgd.`{a}` TO pgd.swap, pgd.`{b}` TO pgd.`{a}`, pgd.swap TO pgd.`{b}`"
                    )
                }
                11 => {
                    made += 1;
                    let to = format!("m{made}");
                    let from = std::mem::replace(&mut tables[i].name, to.clone());
                    format!("RENAME TABLE pgd.`{from}` TO pgd.`{to}`")
                }
                12 => format!("TRUNCATE TABLE pgd.`{}`", tables[i].name),
                13 if tables.len() > 2 => {
                    let t = tables.remove(i);
                    format!("DROP TABLE pgd.`{}`", t.name)
                }
                _ if tables.len() < 6 => {
                    made += 1;
                    let (m, sql) = Model::create(made, &mut rng);
                    tables.push(m);
                    sql
                }
                _ => tables[i].insert(&mut rng),
            };
            src.exec(&sql);
            log.push(sql);
        }
        // Rows for each table under its new definition.
        for t in tables.iter_mut() {
            for _ in 0..3 {
                let sql = t.insert(&mut rng);
                src.exec(&sql);
            }
        }
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            p.kill();
            p = Background::start(&path, &[]);
        }
    }
    // A table created last, and left empty, is on PostgreSQL too.
    made += 1;
    let (_, sql) = Model::create(made, &mut rng);
    src.exec(&sql);
    log.push(sql);
    let log_text = log.join(";\n");
    p.wait_for(
        Duration::from_secs(120),
        "PostgreSQL equals the source after the schema changes",
        || {
            database_difference(src, &pg, "pgd")
                .map(|d| format!("seed 0x{seed:x}: {d}\nstatements:\n{log_text}"))
                .map_or(Ok(()), Err)
        },
    );
    stop(p);
    // `sluice verify` reads the changed tables as they now are, and agrees.
    assert_verified(&path, &format!("seed 0x{seed:x}\nstatements:\n{log_text}"));
}

/// One capture feeding three sinks: a MariaDB replica, PostgreSQL and a
/// Parquet archive on a real S3-protocol server, under a seeded random
/// workload (a unique secondary key moving between rows, key changes, a
/// keyless table with duplicates) and two SIGKILLs. Each copy is compared
/// with the source by a reader of its own (CHECKSUM TABLE, SQL on
/// PostgreSQL, pyarrow), then `sluice verify` finds all three equal.
#[test]
fn one_capture_feeds_a_replica_postgresql_and_an_archive_exactly() {
    let src = source();
    let pg = Postgres::start("fanout");
    let replica = MariaDb::start("pg-fanout-replica");
    let s3 = S3Server::shared();
    let bucket = s3.bucket("fanout");
    let seed = seed();
    let mut rng = Rng::new(seed);
    src.exec(
        "DROP DATABASE IF EXISTS pgf; CREATE DATABASE pgf; \
         CREATE TABLE pgf.t (id INT PRIMARY KEY, u INT NULL UNIQUE, name VARCHAR(20) NOT NULL, \
           amount DECIMAL(10,2)) ENGINE=InnoDB; \
         CREATE TABLE pgf.k (n INT, note VARCHAR(10)) ENGINE=InnoDB",
    );
    for i in 0..200 {
        src.exec(&format!(
            "INSERT INTO pgf.t VALUES ({i}, {}, 'r{i}', {i}.25)",
            i * 2
        ));
    }
    let yaml = format!(
        "name: pg-fanout\nsource:\n  mysql:\n    url: {}\n    include: [\"pgf.*\"]\n    cdc:\n      heartbeat_ms: 200\n\
         sinks:\n  - mysql:\n      name: replica\n      url: {}\n  - postgres:\n      name: warehouse\n      url: {}\n\
         \x20 - parquet:\n      name: archive\n      url: s3://{bucket}/lake\n{}      max_file_rows: 300\n      max_file_age_ms: 300\n      before_images: true\n",
        src.url(),
        replica.url(),
        pg.url(),
        s3.sink_yaml(6)
    );
    let path = write_pipeline("pg-fanout", &yaml);
    let mut p = Background::start(&path, &[]);
    let mut next = 1000;
    for round in 0..3 {
        for _ in 0..40 {
            let id = rng.below(260);
            let sql = match rng.below(6) {
                0 => {
                    next += 1;
                    format!("INSERT INTO pgf.t VALUES ({next}, NULL, 'n{next}', {}.5)", rng.below(99))
                }
                1 => format!(
                    "UPDATE pgf.t SET u = NULL WHERE u = {v}; UPDATE pgf.t SET u = {v} WHERE id = {id}",
                    v = rng.below(500)
                ),
                2 => format!("UPDATE pgf.t SET id = id + 5000 WHERE id = {id}"),
                3 => format!("DELETE FROM pgf.t WHERE id = {id}"),
                4 => format!(
                    "INSERT INTO pgf.k VALUES ({0}, 'dup'), ({0}, 'dup')",
                    rng.below(4)
                ),
                _ => format!(
                    "START TRANSACTION; DELETE FROM pgf.k WHERE n = {} LIMIT 1; \
                     UPDATE pgf.t SET amount = amount + 1 WHERE id < {}; COMMIT",
                    rng.below(4),
                    rng.below(200)
                ),
            };
            src.exec(&sql);
        }
        if round < 2 {
            std::thread::sleep(Duration::from_millis(rng.below(400)));
            p.kill();
            p = Background::start(&path, &[]);
        }
    }
    let cols_t: Vec<Col> = texts(&["id", "u", "name", "amount"]);
    let cols_k: Vec<Col> = texts(&["n", "note"]);
    let tables: Vec<Compared<'_>> = vec![
        ("pgf.t", "pgf.t", "id", &cols_t),
        ("pgf.k", "pgf.k", "n, note", &cols_k),
    ];
    wait_equal(&mut p, src, &pg, &tables);
    p.wait_for(
        Duration::from_secs(60),
        "the replica equals the source",
        || {
            checksums_equal(src, &replica, &[("pgf.t", "pgf.t"), ("pgf.k", "pgf.k")])
                .then_some(())
                .ok_or_else(|| "CHECKSUM TABLE differs".to_string())
        },
    );
    // The archive, rebuilt by pyarrow, against the source's rows.
    let text = |sql: &str| -> String {
        src.rows(sql)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        mysql::Value::NULL => "\\N".to_string(),
                        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .map(|l| l + "\n")
            .collect()
    };
    let archived = |table: &str, key: &str, columns: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new("python3")
            .arg(root().join("tests/support/parquet_state.py"))
            .args([&format!("s3://{bucket}/lake"), "pgf", table, key])
            .args(columns)
            .envs(s3.reader_env())
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || text.starts_with("error:") {
            return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(text)
    };
    p.wait_for(
        Duration::from_secs(60),
        "the archive equals the source",
        || {
            let want = text(
            "SELECT CAST(id AS CHAR), CAST(u AS CHAR), name, CAST(amount AS CHAR) FROM pgf.t ORDER BY id",
        );
            let got = archived("t", "id", &["id", "u", "name", "amount"])?;
            if got != want {
                return Err(format!("pgf.t archived:\n{got}\nsource:\n{want}"));
            }
            let mut want: Vec<String> = text("SELECT CAST(n AS CHAR), note FROM pgf.k")
                .lines()
                .map(String::from)
                .collect();
            let mut got: Vec<String> = archived("k", "-", &["n", "note"])?
                .lines()
                .map(String::from)
                .collect();
            want.sort();
            got.sort();
            (got == want)
                .then_some(())
                .ok_or_else(|| format!("pgf.k archived {got:?}, source {want:?}"))
        },
    );
    stop(p);
    let run = assert_verified(&path, &format!("seed 0x{seed:x}"));
    for sink in ["replica", "warehouse", "archive"] {
        assert!(
            run.stdout.contains(&format!("sink `{sink}`")),
            "{}",
            run.stdout
        );
    }
}

/// After a migration, inserts on PostgreSQL behave as on the source: an
/// AUTO_INCREMENT column is an identity whose next value is the source's
/// (past the snapshot's rows, the changes' rows, and numbers the source
/// burned), constant and current-time DEFAULTs are there, and comments too.
#[test]
fn auto_increment_defaults_and_comments_carry_over() {
    let src = source();
    let pg = Postgres::start("identity");
    src.exec(
        "DROP DATABASE IF EXISTS pga; CREATE DATABASE pga; \
         CREATE TABLE pga.t (id INT AUTO_INCREMENT PRIMARY KEY, qty INT NOT NULL DEFAULT 7, \
           label VARCHAR(10) DEFAULT 'x' COMMENT 'shown to buyers', at DATETIME DEFAULT CURRENT_TIMESTAMP) \
           AUTO_INCREMENT=1000 COMMENT='items on sale'; \
         INSERT INTO pga.t (label) VALUES ('a'), ('b'), ('c'); DELETE FROM pga.t WHERE id = 1002",
    );
    let path = pipeline(
        "pg-identity",
        "pga",
        src,
        &format!("      url: {}\n", pg.url()),
    );
    let mut p = Background::start(&path, &[]);
    let cols: Vec<Col> = texts(&["id", "qty", "label"]);
    let tables: Vec<Compared<'_>> = vec![("pga.t", "pga.t", "id", &cols)];
    wait_equal(&mut p, src, &pg, &tables);
    // Changes after the snapshot, and a number burned by a rollback.
    src.exec("INSERT INTO pga.t (label) VALUES ('d'), ('e')");
    src.exec("START TRANSACTION; INSERT INTO pga.t (label) VALUES ('gone'); ROLLBACK");
    src.exec("INSERT INTO pga.t (label) VALUES ('f')");
    wait_equal(&mut p, src, &pg, &tables);
    stop(p);
    let next: u64 = src.scalar(
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'pga' AND TABLE_NAME = 't'",
    );
    let row = pg.psql("INSERT INTO pga.t (label) VALUES ('pg') RETURNING id, qty, at IS NOT NULL");
    assert_eq!(
        row.trim(),
        format!("{next}|7|t"),
        "the next id on PostgreSQL"
    );
    assert_eq!(
        pg.psql("SELECT obj_description('pga.t'::regclass), col_description('pga.t'::regclass, 3)")
            .trim(),
        "items on sale|shown to buyers"
    );
    assert_eq!(
        pg.psql("INSERT INTO pga.t DEFAULT VALUES RETURNING id, label")
            .trim(),
        format!("{}|x", next + 1)
    );
}

/// Source transactions larger than the sink holds in memory (60,000 rows
/// each, past its 50,000) are sent on a target transaction kept open until
/// their commit. A SIGKILL in the middle of one leaves nothing of it: the
/// change table, written in the same transactions, has every change
/// exactly once.
#[test]
fn large_transactions_are_applied_whole_across_a_kill() {
    let src = source();
    let pg = Postgres::start("large");
    let seed = seed();
    let mut rng = Rng::new(seed);
    src.exec(
        "DROP DATABASE IF EXISTS pgl; CREATE DATABASE pgl; \
         CREATE TABLE pgl.t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB; \
         INSERT INTO pgl.t VALUES (0, 0)",
    );
    let path = pipeline(
        "pg-large",
        "pgl",
        src,
        &format!(
            "      url: {}\n      history: true\n      apply: {{consistency: transactional}}\n",
            pg.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_snapshot_loaded(&mut p, &pg);
    src.exec("INSERT INTO pgl.t SELECT seq, seq FROM pgl.seq_1_to_60000");
    src.exec("UPDATE pgl.t SET v = v + 1");
    // Killed at a random point, likely inside one of them.
    p.wait_for(
        Duration::from_secs(60),
        "the first rows arrive",
        || match pg.rows("SELECT count(*) FROM pgl.t__history") {
            Ok(r) if r[0][0] != "1" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    std::thread::sleep(Duration::from_millis(rng.below(1500)));
    p.kill();
    let mut p = Background::start(&path, &[]);
    let cols: Vec<Col> = texts(&["id", "v"]);
    wait_equal(&mut p, src, &pg, &[("pgl.t", "pgl.t", "id", &cols)]);
    stop(p);
    assert_eq!(
        pg.psql("SELECT _sluice_op, count(*), count(DISTINCT id) FROM pgl.t__history GROUP BY 1 ORDER BY 1")
            .trim(),
        "c|60000|60000\nr|1|1\nu|60001|60001",
        "seed 0x{seed:x}: every change once"
    );
}
