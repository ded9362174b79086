//! A replica equals its source whatever the schema: keys equal under their
//! collation, secondary unique keys, tables without a key, foreign key
//! actions, values a plugin returns, every binlog value, every schema
//! change of a corpus. Each test is an example of a class of bug that
//! `tests/differential.rs` hunts for with generated schemas and workloads.

mod support;

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use support::*;

/// A snapshot+cdc pipeline of `db.*` into `dst`, with extra sink lines and
/// extra top-level lines (transforms, metrics).
fn follow_yaml(
    name: &str,
    src: &MariaDb,
    dst: &MariaDb,
    db: &str,
    sink_extra: &str,
    top_extra: &str,
) -> std::path::PathBuf {
    write_pipeline(
        name,
        &format!(
            "name: {name}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"{db}.*\"]\n    cdc:\n      heartbeat_ms: 200\n{top_extra}sinks:\n  - mysql:\n      url: {}\n{sink_extra}",
            src.url(),
            dst.url()
        ),
    )
}

/// Waits while `p` runs until every `(source table, target table, order)`
/// has the same CHECKSUM TABLE, then compares them value by value.
fn wait_same(p: &mut Background, src: &MariaDb, dst: &MariaDb, tables: &[(&str, &str, &str)]) {
    p.wait_for(
        Duration::from_secs(120),
        "the replica equals the source",
        || {
            for (s, d, _) in tables {
                let (sc, dc) = (
                    src.checksum(s),
                    dst.try_query::<(String, Option<u64>)>(&format!("CHECKSUM TABLE {d}")),
                );
                let dc = dc.and_then(|r| r.into_iter().next()).and_then(|r| r.1);
                if sc != dc {
                    let count = |db: &MariaDb, t: &str| {
                        db.try_query::<(u64,)>(&format!("SELECT COUNT(*) FROM {t}"))
                            .and_then(|r| r.first().map(|x| x.0))
                    };
                    return Err(format!(
                        "{s}: {:?} rows, {d}: {:?} rows",
                        count(src, s),
                        count(dst, d)
                    ));
                }
            }
            Ok(())
        },
    );
    for (s, d, order) in tables {
        assert_same_table(src, s, dst, d, order);
    }
}

/// Rows whose keys differ from others' only in case, trailing spaces or
/// accents, re-keyed in one statement: the delete of `'k1'` and the write
/// of `'K1'` touch one row, so they must not be reordered.
#[test]
fn keys_equal_under_their_collation_keep_every_row() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE coll;
         CREATE TABLE coll.ci (name VARCHAR(20) NOT NULL PRIMARY KEY, v INT NOT NULL) COLLATE utf8mb4_general_ci;
         CREATE TABLE coll.pad (name VARCHAR(20) NOT NULL PRIMARY KEY, v INT NOT NULL) COLLATE utf8mb4_bin;
         CREATE TABLE coll.ai (name VARCHAR(20) NOT NULL PRIMARY KEY, v INT NOT NULL) COLLATE utf8mb4_unicode_ci;
         CREATE TABLE coll.mixed (g INT NOT NULL, name VARCHAR(20) NOT NULL, v INT NOT NULL, PRIMARY KEY (g, name)) COLLATE latin1_swedish_ci;
         INSERT INTO coll.ci SELECT CONCAT('k', seq), seq FROM coll.seq_1_to_300;
         INSERT INTO coll.pad SELECT CONCAT('p', seq), seq FROM coll.seq_1_to_300;
         INSERT INTO coll.ai SELECT CONCAT('e', seq), seq FROM coll.seq_1_to_300;
         INSERT INTO coll.mixed SELECT seq % 7, CONCAT('m', seq), seq FROM coll.seq_1_to_300;",
    );
    let path = follow_yaml(
        "coll",
        src,
        dst,
        "coll",
        "      apply:\n        parallelism: 4\n",
        "",
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "coll");
    src.exec(
        "UPDATE coll.ci SET name = UPPER(name);
         UPDATE coll.pad SET name = CONCAT(name, ' ');
         UPDATE coll.ai SET name = REPLACE(name, 'e', 'é');
         UPDATE coll.mixed SET name = UPPER(name);
         UPDATE coll.ci SET name = LOWER(name) WHERE v % 3 = 0;
         UPDATE coll.pad SET name = TRIM(TRAILING ' ' FROM name) WHERE v % 2 = 0;
         UPDATE coll.mixed SET name = LOWER(name) WHERE v % 2 = 0;",
    );
    wait_same(
        &mut p,
        src,
        dst,
        &[
            ("coll.ci", "coll.ci", "v"),
            ("coll.pad", "coll.pad", "v"),
            ("coll.ai", "coll.ai", "v"),
            ("coll.mixed", "coll.mixed", "v"),
        ],
    );
    assert_eq!(
        dst.scalar::<u64>("SELECT COUNT(*) FROM coll.ci WHERE BINARY name LIKE 'K%'"),
        200
    );
}

/// Found by the differential test: deleting rows of a composite key with
/// latin1 text, several in one statement (`(k, n) IN ((...), (...))`), where
/// MariaDB compares utf8mb4 literals wrongly unless they are converted.
#[test]
fn composite_keys_with_text_of_another_charset_are_deleted() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE ckey;
         CREATE TABLE ckey.t (k VARCHAR(10) CHARACTER SET latin1 NOT NULL, n INT NOT NULL, v INT, PRIMARY KEY (k, n));
         INSERT INTO ckey.t SELECT CONCAT(IF(seq % 2, 'ké', 'ka'), seq), seq, seq FROM ckey.seq_1_to_200;",
    );
    let path = follow_yaml("ckey", src, dst, "ckey", "", "");
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "ckey");
    src.exec(
        "DELETE FROM ckey.t WHERE n % 3 = 0;
         UPDATE ckey.t SET k = CONCAT(k, 'x') WHERE n % 5 = 0;",
    );
    wait_same(&mut p, src, dst, &[("ckey.t", "ckey.t", "n")]);
}

/// One apply connection lags (a reader holds a lock on the target) while
/// others go on: a row's late write must not collide with another row on a
/// unique key and delete it (REPLACE removes every row it collides with).
#[test]
fn a_lagging_partition_cannot_break_a_unique_key() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE uq;
         CREATE TABLE uq.u (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL, UNIQUE KEY by_name (name));
         INSERT INTO uq.u SELECT seq, CONCAT('a', seq) FROM uq.seq_1_to_10;
         INSERT INTO uq.u SELECT 1000 + seq, CONCAT('b', seq) FROM uq.seq_1_to_10;",
    );
    let port = free_tcp_port();
    let path = follow_yaml(
        "uq",
        src,
        dst,
        "uq",
        "      apply:\n        parallelism: 8\n",
        &format!("metrics:\n  listen: 127.0.0.1:{port}\n"),
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "uq");
    let read = |port: u16| {
        scrape(port)
            .ok()
            .and_then(|t| {
                sample(
                    &t,
                    "sluice_rows_read_total",
                    "pipeline=\"uq\",table=\"uq.u\"",
                )
            })
            .unwrap_or(0.0) as u64
    };
    let lock_waits = || {
        dst.scalar::<u64>(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
        )
    };
    // Rounds, each with a new row: under any fixed partitioning some round
    // puts the two rows in different connections.
    for k in 1..=6u64 {
        let id = 100 + k;
        let mut reader = dst.conn();
        reader.query_drop("BEGIN").unwrap();
        // Locks the gap the new row goes into.
        let _: Vec<(i64, String)> = reader
            .query(format!(
                "SELECT id, name FROM uq.u WHERE id = {id} FOR UPDATE"
            ))
            .unwrap();
        src.exec(&format!("INSERT INTO uq.u VALUES ({id}, 'x{k}')"));
        p.wait_for(
            Duration::from_secs(30),
            "the insert waits for the lock",
            || {
                (lock_waits() > 0)
                    .then_some(())
                    .ok_or("no lock wait yet".into())
            },
        );
        src.exec(&format!(
            "UPDATE uq.u SET name = 'y{k}' WHERE id = {id};
             UPDATE uq.u SET name = 'x{k}' WHERE id = {k}"
        ));
        let want = 20 + 3 * k;
        p.wait_for(
            Duration::from_secs(30),
            "sluice read the round's changes",
            || {
                let n = read(port);
                (n >= want)
                    .then_some(())
                    .ok_or(format!("{n} of {want} rows read"))
            },
        );
        // A connection that is not held up applies its change within
        // milliseconds; give it the chance to before the lock goes.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline
            && dst.scalar::<String>(&format!("SELECT name FROM uq.u WHERE id = {k}"))
                != format!("x{k}")
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        reader.query_drop("ROLLBACK").unwrap();
        p.wait_for(Duration::from_secs(30), "the round is applied", || {
            let got: Vec<(i64, String)> = dst.query(&format!(
                "SELECT id, name FROM uq.u WHERE id IN ({k}, {id}) ORDER BY id"
            ));
            let want = vec![(k as i64, format!("x{k}")), (id as i64, format!("y{k}"))];
            (got == want).then_some(()).ok_or(format!("{got:?}"))
        });
    }
    wait_same(&mut p, src, dst, &[("uq.u", "uq.u", "id")]);
}

/// A table without a key, in a case-insensitive PAD SPACE collation:
/// deleting `'A'` must not delete `'a'`, deleting `'x '` must not delete
/// `'x'`, in both apply modes.
#[test]
fn rows_of_tables_without_a_key_are_matched_byte_for_byte() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE nokey;
         CREATE TABLE nokey.n (name VARCHAR(10) COLLATE utf8mb4_general_ci, tag CHAR(3) CHARACTER SET latin1 COLLATE latin1_general_ci);
         INSERT INTO nokey.n VALUES ('a', 'x'), ('A', 'x'), ('x', 'y'), ('x ', 'y'), ('é', 'z'), ('e', 'z'), ('a', 'X');",
    );
    let path = write_pipeline(
        "nokey",
        &format!(
            "name: nokey\nsource:\n  mysql:\n    url: {}\n    include: [\"nokey.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      name: eventual\n      url: {}\n      rename:\n        \"nokey.*\": \"nokey_e.*\"\n  - mysql:\n      name: transactional\n      url: {}\n      rename:\n        \"nokey.*\": \"nokey_t.*\"\n      apply:\n        consistency: transactional\n",
            src.url(),
            dst.url(),
            dst.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "nokey");
    src.exec(
        "DELETE FROM nokey.n WHERE BINARY name = 'A';
         DELETE FROM nokey.n WHERE BINARY name = 'x ';
         UPDATE nokey.n SET name = 'b' WHERE BINARY name = 'é';
         UPDATE nokey.n SET tag = 'w' WHERE BINARY tag = 'X';",
    );
    let hex = "SELECT HEX(name), HEX(tag) FROM {} ORDER BY HEX(name), HEX(tag)";
    let want: Vec<(String, String)> = src.query(&hex.replace("{}", "nokey.n"));
    assert_eq!(want.len(), 5);
    for db in ["nokey_e", "nokey_t"] {
        p.wait_for(
            Duration::from_secs(60),
            "the rows match byte for byte",
            || {
                let got: Vec<(String, String)> = dst.query(&hex.replace("{}", &format!("{db}.n")));
                (got == want)
                    .then_some(())
                    .ok_or(format!("{db}: {got:?} vs {want:?}"))
            },
        );
    }
}

/// Foreign keys with CASCADE and SET NULL: the binlog holds only the
/// parent's change; the replica must make the same cascade, in both
/// apply modes, and accept what a source session wrote with foreign key
/// checks off.
#[test]
fn foreign_key_actions_happen_on_the_replica() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE fk;
         CREATE TABLE fk.p (id INT PRIMARY KEY, name VARCHAR(10));
         CREATE TABLE fk.c (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES fk.p (id) ON DELETE CASCADE ON UPDATE CASCADE);
         CREATE TABLE fk.n (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES fk.p (id) ON DELETE SET NULL ON UPDATE SET NULL);
         CREATE TABLE fk.g (id INT PRIMARY KEY, cid INT, FOREIGN KEY (cid) REFERENCES fk.c (id) ON DELETE CASCADE);
         CREATE TABLE fk.free (id INT PRIMARY KEY, v INT);
         INSERT INTO fk.p SELECT seq, CONCAT('p', seq) FROM fk.seq_1_to_60;
         INSERT INTO fk.c SELECT seq, seq % 60 + 1 FROM fk.seq_1_to_300;
         INSERT INTO fk.n SELECT seq, seq % 60 + 1 FROM fk.seq_1_to_120;
         INSERT INTO fk.g SELECT seq, seq % 300 + 1 FROM fk.seq_1_to_600;
         INSERT INTO fk.free SELECT seq, seq FROM fk.seq_1_to_100;",
    );
    let path = write_pipeline(
        "fk",
        &format!(
            "name: fk\nsource:\n  mysql:\n    url: {}\n    include: [\"fk.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      name: eventual\n      url: {}\n      rename:\n        \"fk.*\": \"fk_e.*\"\n      apply:\n        parallelism: 4\n  - mysql:\n      name: transactional\n      url: {}\n      rename:\n        \"fk.*\": \"fk_t.*\"\n      apply:\n        consistency: transactional\n",
            src.url(),
            dst.url(),
            dst.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "fk");
    src.exec(
        "DELETE FROM fk.p WHERE id <= 10;
         UPDATE fk.p SET id = id + 1000 WHERE id BETWEEN 11 AND 20;
         BEGIN; INSERT INTO fk.p VALUES (500, 'new'); INSERT INTO fk.c VALUES (5000, 500); INSERT INTO fk.g VALUES (9000, 5000); COMMIT;
         DELETE FROM fk.c WHERE id % 7 = 0;
         UPDATE fk.free SET v = v + 1;
         BEGIN; DELETE FROM fk.g WHERE cid = 5000; DELETE FROM fk.c WHERE id = 5000; DELETE FROM fk.p WHERE id = 500; COMMIT;
         SET SESSION foreign_key_checks = 0;
         INSERT INTO fk.c VALUES (7777, 424242);
         SET SESSION foreign_key_checks = 1;
         DELETE FROM fk.p WHERE id = 30;",
    );
    for db in ["fk_e", "fk_t"] {
        let t = |n: &str| (format!("fk.{n}"), format!("{db}.{n}"));
        let tables: Vec<(String, String)> =
            ["p", "c", "n", "g", "free"].iter().map(|n| t(n)).collect();
        let list: Vec<(&str, &str, &str)> = tables
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str(), "id"))
            .collect();
        wait_same(&mut p, src, dst, &list);
    }
    assert_eq!(
        dst.scalar::<u64>("SELECT COUNT(*) FROM fk_e.c WHERE pid <= 10"),
        0,
        "cascaded deletes"
    );
    assert_eq!(
        dst.scalar::<u64>("SELECT COUNT(*) FROM fk_t.n WHERE pid IS NULL"),
        src.scalar::<u64>("SELECT COUNT(*) FROM fk.n WHERE pid IS NULL")
    );
}

/// A plugin's values are checked before any sink sees the transaction: a
/// NaN in the 1,999th row of a 2,000-row transaction stops the pipeline
/// naming the plugin, the table, the column and the position, with none
/// of the transaction applied; an emoji for a latin1 column is refused
/// instead of being stored as `?`.
#[test]
fn plugin_values_are_checked_before_any_sink() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE pv;
         CREATE TABLE pv.t (id INT PRIMARY KEY, d DOUBLE, name VARCHAR(20) CHARACTER SET latin1);
         INSERT INTO pv.t VALUES (-1, 0.5, 'before');",
    );
    let transforms = "transforms:\n  - plugin: tests/plugins/setter\n    config: { column: d, float: \"NaN\", only_id: 1999 }\n";
    let path = follow_yaml(
        "pv",
        src,
        dst,
        "pv",
        "      apply:\n        parallelism: 4\n",
        transforms,
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "pv");
    src.exec("INSERT INTO pv.t SELECT seq, seq / 2, 'n' FROM pv.seq_1_to_2000");
    wait_until(Duration::from_secs(60), "the pipeline stops", || p.exited());
    let log = p.output();
    for needle in ["plugin `setter`", "pv.t", "column `d`", "NaN", "binlog."] {
        assert!(log.contains(needle), "{needle:?} missing from:\n{log}");
    }
    assert_eq!(
        dst.scalar::<u64>("SELECT COUNT(*) FROM pv.t WHERE id > 0"),
        0,
        "nothing of the failing transaction"
    );

    // A snapshot through a plugin that writes what latin1 cannot hold.
    src.exec("CREATE DATABASE pv2; CREATE TABLE pv2.t LIKE pv.t; INSERT INTO pv2.t SELECT * FROM pv.t WHERE id < 10");
    let yaml = migrate_yaml("pv2", &src.url(), &dst.url(), &["pv2.*"], "")
        + "transforms:\n  - plugin: tests/plugins/setter\n    config: { column: name, text: \"🎉 party\" }\n";
    run_pipeline("pv2", &yaml, &[]).assert_fails_with(&[
        "plugin `setter`",
        "column `name`",
        "latin1",
        "🎉",
    ]);
    assert!(
        !dst.table_exists("pv2", "t")
            || dst.scalar::<u64>("SELECT COUNT(*) FROM pv2.t WHERE name LIKE '%?%'") == 0,
        "no `?` stored"
    );
}

/// A value of a temporal column of precision `fsp`: edges (zero, the
/// extremes, the smallest and largest fraction) and random ones, with both
/// signs for TIME.
fn temporal_value(rng: &mut Rng, kind: &str, fsp: u32) -> String {
    let unit = 10u64.pow(6 - fsp);
    let frac = match rng.below(4) {
        0 => 0,
        1 => unit,
        2 => 1_000_000 - unit,
        _ => rng.below(1_000_000) / unit * unit,
    };
    let frac_text = if fsp == 0 {
        String::new()
    } else {
        format!(".{:0width$}", frac / unit, width = fsp as usize)
    };
    match kind {
        "time" => {
            let sign = if rng.below(2) == 0 { "-" } else { "" };
            let (h, m, s) = match rng.below(5) {
                0 => (0, 0, 0),
                1 => (838, 59, 58),
                _ => (rng.below(839), rng.below(60), rng.below(60)),
            };
            format!("'{sign}{h}:{m:02}:{s:02}{frac_text}'")
        }
        "datetime" => {
            let (y, mo, d) = match rng.below(5) {
                0 => (1000, 1, 1),
                1 => (9999, 12, 31),
                _ => (1000 + rng.below(9000), 1 + rng.below(12), 1 + rng.below(28)),
            };
            format!(
                "'{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}{frac_text}'",
                rng.below(24),
                rng.below(60),
                rng.below(60)
            )
        }
        _ => {
            // TIMESTAMP: 1970-01-01 00:00:01 .. 2038-01-19 03:14:07 UTC.
            let secs = match rng.below(5) {
                0 => 1,
                1 => 2_147_483_646,
                _ => 1 + rng.below(2_147_483_646),
            };
            format!("FROM_UNIXTIME({secs}{frac_text})")
        }
    }
}

/// Every temporal type at every fractional precision, both signs and the
/// edges, plus the other types' edges, arrive through the binlog exactly
/// as the snapshot reads them: the same rows inserted before the pipeline
/// starts (snapshot) and after (binlog) must be equal on the target value
/// by value; updates and whole-row deletes of a table without a key prove
/// the before images too.
#[test]
fn binlog_values_equal_snapshot_values() {
    let (src, dst) = pair();
    let seed = std::env::var("SLUICE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7157_e5ee_d000_0001u64);
    let mut rng = Rng::new(seed);
    let mut cols = vec!["id INT NOT NULL".to_string()];
    let mut kinds = Vec::new();
    for fsp in 0..=6u32 {
        for kind in ["time", "datetime", "timestamp"] {
            let null = if kind == "timestamp" { " NULL" } else { "" };
            cols.push(format!("{kind}{fsp} {kind}({fsp}){null}"));
            kinds.push((kind, fsp));
        }
    }
    let others = [
        ("ti TINYINT", &["-128", "127", "0"][..]),
        ("tiu TINYINT UNSIGNED", &["255", "0"]),
        ("mi MEDIUMINT", &["-8388608", "8388607", "-1"]),
        ("miu MEDIUMINT UNSIGNED", &["16777215", "0"]),
        (
            "bi BIGINT",
            &["-9223372036854775808", "9223372036854775807"],
        ),
        ("biu BIGINT UNSIGNED", &["18446744073709551615", "0"]),
        (
            "d65 DECIMAL(65,30)",
            &[
                "-99999999999999999999999999999999999.999999999999999999999999999999",
                "0.000000000000000000000000000001",
            ],
        ),
        ("d5 DECIMAL(5,5)", &["-0.99999", "0.00001"]),
        ("f FLOAT", &["-3.4028234e38", "1.401298e-45", "0.1"]),
        (
            "dbl DOUBLE",
            &["-1.7976931348623157e308", "4.9e-324", "0.30000000000000004"],
        ),
        ("b1 BIT(1)", &["b'1'", "b'0'"]),
        (
            "b64 BIT(64)",
            &[
                "b'1111111111111111111111111111111111111111111111111111111111111111'",
                "0",
            ],
        ),
        ("y YEAR", &["1901", "2155", "0"]),
        (
            "dt DATE",
            &[
                "'1000-01-01'",
                "'9999-12-31'",
                "'0000-00-00'",
                "'2024-02-00'",
            ],
        ),
        ("c CHAR(5)", &["'a'", "''", "'ab  '"]),
        (
            "vl VARCHAR(20) CHARACTER SET latin1",
            &["'café €'", "'x '", "X'FFFE41'", "X'80818D8F909D'"],
        ),
        ("vb VARBINARY(8)", &["X'00'", "X'FF00'", "''"]),
        ("bn BINARY(4)", &["X'01'", "X'00000000'"]),
        ("e ENUM('a','b c')", &["'a'", "'b c'"]),
        ("s SET('x','y','z')", &["''", "'x,z'"]),
        ("j JSON", &["'{\"a\": [1, 2.5e300]}'", "'[]'"]),
        (
            "u UUID",
            &[
                "'00000000-0000-0000-0000-000000000000'",
                "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
            ],
        ),
    ];
    for (def, _) in &others {
        cols.push(def.to_string());
    }
    let table = |name: &str, key: bool| {
        format!(
            "CREATE TABLE binv.{name} ({}{}) ENGINE=InnoDB",
            cols.join(", "),
            if key { ", PRIMARY KEY (id)" } else { "" }
        )
    };
    src.exec(&format!(
        "CREATE DATABASE binv; {}; {}",
        table("k", true),
        table("n", false)
    ));
    const ROWS: u64 = 300;
    let rows: Vec<String> = (1..=ROWS)
        .map(|i| {
            let mut v = vec![i.to_string()];
            for (kind, fsp) in &kinds {
                v.push(if rng.below(20) == 0 {
                    "NULL".into()
                } else {
                    temporal_value(&mut rng, kind, *fsp)
                });
            }
            for (_, values) in &others {
                v.push(values[rng.below(values.len() as u64) as usize].to_string());
            }
            v.join(", ")
        })
        .collect();
    let insert = |offset: u64| -> String {
        let values: Vec<String> = rows
            .iter()
            .map(|r| {
                let (id, rest) = r.split_once(", ").unwrap();
                format!("({}, {rest})", id.parse::<u64>().unwrap() + offset)
            })
            .collect();
        format!(
            "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; INSERT INTO binv.k VALUES {v}; INSERT INTO binv.n VALUES {v}",
            v = values.join(", ")
        )
    };
    // Snapshot copies at ids 1..=ROWS.
    let mut c = src.conn();
    for stmt in insert(0).split("; ") {
        c.query_drop(stmt)
            .unwrap_or_else(|e| panic!("seed {seed:#x}: {e}\n{stmt}"));
    }
    let path = follow_yaml("binv", src, dst, "binv", "", "");
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "binv");
    // Binlog copies at ids 100001.., then updates and deletes by whole row.
    for stmt in insert(100_000).split("; ") {
        c.query_drop(stmt)
            .unwrap_or_else(|e| panic!("seed {seed:#x}: {e}\n{stmt}"));
    }
    c.query_drop("UPDATE binv.k SET ti = 1 - ti WHERE id > 100000 AND ti IS NOT NULL")
        .unwrap();
    c.query_drop("UPDATE binv.n SET id = id + 500000 WHERE id > 100000 AND id % 2 = 0")
        .unwrap();
    c.query_drop("DELETE FROM binv.n WHERE id > 100000 AND id % 3 = 0")
        .unwrap();
    wait_same(
        &mut p,
        src,
        dst,
        &[("binv.k", "binv.k", "id"), ("binv.n", "binv.n", "id")],
    );
    // The binlog copy of each row equals its snapshot copy, value by value
    // (both as the target stores them).
    let names: Vec<String> = cols
        .iter()
        .skip(1)
        .map(|c| c.split(' ').next().unwrap().to_string())
        .filter(|n| n != "ti")
        .collect();
    let list = names.join(", ");
    let snap = dst.rows(&format!(
        "SELECT {list} FROM binv.k WHERE id <= {ROWS} ORDER BY id"
    ));
    let cdc = dst.rows(&format!(
        "SELECT {list} FROM binv.k WHERE id > 100000 ORDER BY id"
    ));
    assert_eq!(snap.len(), cdc.len());
    for (i, (a, b)) in snap.iter().zip(&cdc).enumerate() {
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(
                x,
                y,
                "seed {seed:#x}: row {} column {}: snapshot {x:?}, binlog {y:?}",
                i + 1,
                names[j]
            );
        }
    }
}

/// Schema changes as applications write them (tests/data/ddl-corpus.sql)
/// replay on a renamed target, rows flowing between them; a statement the
/// parser cannot tie to its tables stops the pipeline, naming it and its
/// position, or is skipped with a warning under `on_unsupported_ddl: skip`.
#[test]
fn a_corpus_of_schema_changes_replays_on_the_target() {
    let (src, dst) = pair();
    src.exec("CREATE DATABASE ddl; CREATE TABLE ddl.t0 (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO ddl.t0 VALUES (1, 'a')");
    let path = follow_yaml(
        "ddlc",
        src,
        dst,
        "ddl",
        "      rename:\n        \"ddl.*\": \"ddl_copy.*\"\n",
        "",
    );
    let mut p = Background::start(&path, &[]);
    wait_following(dst, "ddlc");
    let corpus = std::fs::read_to_string(root().join("tests/data/ddl-corpus.sql")).unwrap();
    let mut c = src.conn();
    c.query_drop("USE ddl").unwrap();
    let mut sql = String::new();
    let mut n = 0;
    for line in corpus.lines() {
        if line.starts_with("--") || (sql.is_empty() && line.trim().is_empty()) {
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
        if !line.trim_end().ends_with(';') {
            continue;
        }
        let stmt = sql.trim().trim_end_matches(';').to_string();
        sql.clear();
        c.query_drop(&stmt)
            .unwrap_or_else(|e| panic!("{e}\n{stmt}"));
        n += 1;
        // Rows between the statements, decoded with each new definition.
        c.query_drop(format!("INSERT INTO ddl.t0 VALUES ({}, 'r')", n + 1))
            .unwrap();
        if stmt.contains("t1") && !stmt.starts_with("DROP") {
            let _ = c.query_drop("INSERT INTO ddl.t1 () VALUES ()");
        }
    }
    for stmt in [
        "INSERT INTO ddl.p VALUES (1, 'p')",
        "INSERT INTO ddl.c (id, pid) VALUES (1, 1), (2, NULL)",
        "INSERT INTO ddl.gen (id, a) VALUES (1, 20), (2, NULL)",
        "DELETE FROM ddl.p WHERE id = 1",
    ] {
        c.query_drop(stmt).unwrap_or_else(|e| panic!("{e}\n{stmt}"));
    }
    let tables: Vec<String> = src.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ddl' ORDER BY 1",
    );
    assert!(tables.len() >= 8, "{tables:?}");
    p.wait_for(
        Duration::from_secs(120),
        "every table has its schema and rows on the target",
        || {
            for t in &tables {
                let (s, d) = (format!("ddl.`{t}`"), format!("ddl_copy.`{t}`"));
                if !dst.table_exists("ddl_copy", t) {
                    return Err(format!("{d} missing"));
                }
                if src.show_create(&s) != dst.show_create(&d) {
                    return Err(format!(
                        "{d}:\n{}\nvs\n{}",
                        src.show_create(&s),
                        dst.show_create(&d)
                    ));
                }
                if src.checksum(&s) != dst.checksum(&d) {
                    return Err(format!("{d}: rows differ"));
                }
            }
            Ok(())
        },
    );
    for gone in ["t2", "t3", "t4", "weird name", "weird2"] {
        assert!(!dst.table_exists("ddl_copy", gone), "{gone} should be gone");
    }

    // A statement the parser cannot read (ANSI_QUOTES names).
    c.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .unwrap();
    c.query_drop("CREATE TABLE \"quoted\" (a INT)").unwrap();
    wait_until(Duration::from_secs(60), "the pipeline stops", || p.exited());
    let log = p.output();
    for needle in [
        "CREATE TABLE \"quoted\"",
        "does not understand",
        "binlog.",
        "on_unsupported_ddl: skip",
    ] {
        assert!(log.contains(needle), "{needle:?} missing from:\n{log}");
    }
    let skip = follow_yaml(
        "ddlc",
        src,
        dst,
        "ddl",
        "      rename:\n        \"ddl.*\": \"ddl_copy.*\"\n",
        "",
    );
    let yaml = std::fs::read_to_string(&skip).unwrap().replace(
        "heartbeat_ms: 200\n",
        "heartbeat_ms: 200\n      on_unsupported_ddl: skip\n",
    );
    let skip = write_pipeline("ddlc", &yaml);
    let mut p = Background::start(&skip, &[]);
    c.query_drop("SET SESSION sql_mode = ''").unwrap();
    c.query_drop("INSERT INTO ddl.t0 VALUES (9999, 'after')")
        .unwrap();
    p.wait_for(
        Duration::from_secs(60),
        "rows after the skipped statement arrive",
        || {
            (dst.scalar::<u64>("SELECT COUNT(*) FROM ddl_copy.t0 WHERE id = 9999") == 1)
                .then_some(())
                .ok_or("not yet".into())
        },
    );
    let log = p.output();
    assert!(
        log.contains("skipping") && log.contains("CREATE TABLE \"quoted\""),
        "{log}"
    );
}
