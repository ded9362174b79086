//! `sluice verify`: every planted difference is found, with its kind and
//! key; `--repair` leaves none; pipelines with transforms are verified
//! through the same plugins; a pipeline following changes is verified while
//! it runs.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn finds_every_planted_difference_and_repairs_them() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE vplant;
         CREATE TABLE vplant.items (id INT PRIMARY KEY, name VARCHAR(40), note TEXT NULL,
           amount DECIMAL(30,10), data BLOB, seen DATETIME(6));
         INSERT INTO vplant.items SELECT seq, CONCAT('item ', seq), IF(seq % 5 = 0, NULL, 'note'),
           seq / 7, UNHEX(SHA1(seq)), '2024-01-01' + INTERVAL seq MINUTE FROM vplant.seq_1_to_3000;
         CREATE TABLE vplant.pairs (a INT NOT NULL, b VARCHAR(10) NOT NULL, v DOUBLE, PRIMARY KEY (a, b));
         INSERT INTO vplant.pairs SELECT seq % 13, CONCAT('k', seq), seq * 0.25 FROM vplant.seq_1_to_2000;
         CREATE TABLE vplant.loose (a INT, b VARCHAR(10));
         INSERT INTO vplant.loose SELECT seq % 4, 'dup' FROM vplant.seq_1_to_400;",
    );
    let yaml = migrate_yaml("vplant", &src.url(), &dst.url(), &["vplant.*"], "");
    run_pipeline("vplant", &yaml, &[]).assert_ok();
    let path = write_pipeline("vplant", &yaml);

    // Small ranges, so the table is split and differences land in several.
    let (run, found) = verify(&path, &["--chunk-rows", "250"]);
    run.assert_ok();
    assert!(
        found.is_empty(),
        "an exact copy has no difference: {found:?}"
    );
    let (compared, total) = ranges(&run.stdout, "vplant.items");
    assert!(
        compared == total && total > 5 && run.stdout.contains("3000 rows"),
        "{}",
        run.stdout
    );

    dst.exec(
        "DELETE FROM vplant.items WHERE id = 17;
         INSERT INTO vplant.items VALUES (5000, 'stray', NULL, 1, NULL, NULL);
         UPDATE vplant.items SET name = 'item 1234!' WHERE id = 1234;
         UPDATE vplant.items SET note = NULL WHERE id = 2001;
         UPDATE vplant.items SET amount = amount + 0.0000000001 WHERE id = 2500;
         UPDATE vplant.items SET data = CONCAT(LEFT(data, 10), CHAR(ASCII(SUBSTRING(data, 11, 1)) ^ 1), SUBSTRING(data, 12)) WHERE id = 2999;
         UPDATE vplant.items SET seen = seen + INTERVAL 1 MICROSECOND WHERE id = 1;
         UPDATE vplant.items SET name = IF(id = 40, 'item 41', 'item 40') WHERE id IN (40, 41);
         UPDATE vplant.pairs SET v = v + 1 WHERE a = 3 AND b = 'k3';
         DELETE FROM vplant.pairs WHERE a = 1 AND b = 'k1990';
         DELETE FROM vplant.loose WHERE a = 2 LIMIT 1;
         INSERT INTO vplant.loose VALUES (7, 'new');",
    );
    // Both server checksums see every planted difference.
    let (run, md5) = verify(&path, &["--chunk-rows", "250", "--checksum", "md5"]);
    assert_eq!(run.status.code(), Some(3), "{}{}", run.stdout, run.stderr);
    let (run, found) = verify(&path, &["--chunk-rows", "250"]);
    assert_eq!(found, md5, "crc32 and md5 find the same rows");
    assert_found(
        &run,
        &found,
        &[
            ("missing", "vplant.items", "id=17"),
            ("extra", "vplant.items", "id=5000"),
            ("different", "vplant.items", "id=1234"),
            ("different", "vplant.items", "id=2001"),
            ("different", "vplant.items", "id=2500"),
            ("different", "vplant.items", "id=2999"),
            ("different", "vplant.items", "id=1"),
            ("different", "vplant.items", "id=40"),
            ("different", "vplant.items", "id=41"),
            ("different", "vplant.pairs", "a=3,b='k3'"),
            ("missing", "vplant.pairs", "a=1,b='k1990'"),
            ("missing", "vplant.loose", "a=2,b='dup'"),
            ("extra", "vplant.loose", "a=7,b='new'"),
        ],
    );
    assert!(
        run.stdout
            .contains("amount: source 357.1428571420, target 357.1428571421"),
        "the changed column and both values are shown:\n{}",
        run.stdout
    );

    let (run, _) = verify(&path, &["--chunk-rows", "250", "--repair"]);
    run.assert_ok();
    assert!(run.stdout.contains("13 repaired"), "{}", run.stdout);
    let (run, found) = verify(&path, &[]);
    run.assert_ok();
    assert!(found.is_empty(), "after --repair: {found:?}");
    assert_same_table(src, "vplant.items", dst, "vplant.items", "id");
    assert_same_table(src, "vplant.pairs", dst, "vplant.pairs", "a, b");
    assert_same_table(src, "vplant.loose", dst, "vplant.loose", "a, b");

    // Sampling compares a share of the ranges, and says how many.
    let (run, _) = verify(&path, &["--chunk-rows", "100", "--sample", "50%"]);
    run.assert_ok();
    let (compared, total) = ranges(&run.stdout, "vplant.items");
    assert!(compared < total && total > 20, "{}", run.stdout);
}

/// `(compared, total)` from a table's `N/M ranges` in verify's output.
fn ranges(stdout: &str, table: &str) -> (u32, u32) {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(table))
        .unwrap_or_else(|| panic!("no line for {table}:\n{stdout}"));
    let counts = line
        .split(" ranges")
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|c| c.split_once('/'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    counts.unwrap_or_else(|| panic!("no ranges in {line:?}"))
}

/// A masked and filtered copy is verified by passing the source's rows
/// through the same plugins: it is equal as it stands, and a row the filter
/// drops, a mask undone, or a row lost are each found.
#[test]
fn verifies_through_mask_and_filter() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE vmask;
         CREATE TABLE vmask.customers (id INT PRIMARY KEY, email VARCHAR(100), status VARCHAR(10), total INT);
         INSERT INTO vmask.customers SELECT seq, CONCAT('user', seq, '@example.com'),
           ELT(1 + seq % 3, 'active', 'vip', 'closed'), seq % 50 FROM vmask.seq_1_to_1200;
         CREATE TABLE vmask.plain (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO vmask.plain SELECT seq, 'v' FROM vmask.seq_1_to_300;",
    );
    let yaml = format!(
        "name: vmask\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"vmask.*\"]\n\
         transforms:\n  - plugin: mask\n    tables: [vmask.customers]\n    config:\n      columns: {{ email: email }}\n\
         \x20 - plugin: filter\n    tables: [vmask.customers]\n    config:\n      where: \"status IN ('active', 'vip')\"\n\
         sinks:\n  - mysql:\n      url: {}\n      rename:\n        \"vmask.*\": \"vmask_out.*\"\n",
        src.url(),
        dst.url()
    );
    run_pipeline("vmask", &yaml, &[]).assert_ok();
    let path = write_pipeline("vmask", &yaml);
    let kept: u64 = dst.scalar("SELECT COUNT(*) FROM vmask_out.customers");
    assert_eq!(kept, 800, "the filter kept two statuses of three");

    let (run, found) = verify(&path, &["--chunk-rows", "200"]);
    run.assert_ok();
    assert!(found.is_empty(), "{found:?}");
    assert!(
        run.stdout.contains("vmask.customers") && run.stdout.contains("800 rows"),
        "the filtered rows are compared:\n{}",
        run.stdout
    );

    dst.exec(
        "UPDATE vmask_out.customers SET email = 'user4@example.com' WHERE id = 4;
         DELETE FROM vmask_out.customers WHERE id = 7;
         INSERT INTO vmask_out.customers VALUES (5, 'x', 'closed', 1);
         UPDATE vmask_out.plain SET v = 'w' WHERE id = 300;",
    );
    let (run, found) = verify(&path, &["--chunk-rows", "200"]);
    assert_found(
        &run,
        &found,
        &[
            ("different", "vmask.customers", "id=4"),
            ("missing", "vmask.customers", "id=7"),
            ("extra", "vmask.customers", "id=5"),
            ("different", "vmask.plain", "id=300"),
        ],
    );

    let (run, _) = verify(&path, &["--repair"]);
    run.assert_ok();
    let (run, found) = verify(&path, &[]);
    run.assert_ok();
    assert!(found.is_empty(), "after --repair: {found:?}");
    let email: String = dst.scalar("SELECT email FROM vmask_out.customers WHERE id = 4");
    assert_ne!(
        email, "user4@example.com",
        "the repair wrote the masked value"
    );
}

/// While the pipeline follows changes, rows changed since the sink last
/// applied are compared again after it caught up, not reported.
#[test]
fn verifies_while_changes_flow() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE vlive;
         CREATE TABLE vlive.t (id INT PRIMARY KEY, n INT);
         INSERT INTO vlive.t SELECT seq, 0 FROM vlive.seq_1_to_2000;",
    );
    let yaml = migrate_yaml("vlive", &src.url(), &dst.url(), &["vlive.*"], "")
        .replace("mode: snapshot", "mode: snapshot+cdc");
    let path = write_pipeline("vlive", &yaml);
    let mut bg = Background::start(&path, &[]);
    bg.wait_for(
        Duration::from_secs(120),
        "the snapshot to arrive",
        || match dst.try_query::<u64>("SELECT COUNT(*) FROM vlive.t") {
            Some(v) if v == [2000] => Ok(()),
            other => Err(format!("target rows: {other:?}")),
        },
    );
    // A burst of changes just before verify runs: the sink may still be
    // applying them when the ranges are first compared; differences are
    // compared again once it has caught up, so none is reported.
    {
        use mysql::prelude::Queryable;
        let mut conn = src.conn();
        for i in 0..200 {
            conn.query_drop(format!(
                "UPDATE vlive.t SET n = n + 1 WHERE id % 10 = {}",
                i % 10
            ))
            .expect("update");
        }
    }
    let (run, found) = verify(&path, &["--chunk-rows", "200"]);
    bg.assert_running();
    assert!(found.is_empty(), "{found:?}\n{}{}", run.stdout, run.stderr);
    run.assert_ok();
    // A real difference still is one.
    dst.exec("UPDATE vlive.t SET n = -1 WHERE id = 1999");
    let (run, found) = verify(&path, &["--chunk-rows", "200", "--recheck-timeout-s", "20"]);
    assert_eq!(run.status.code(), Some(3), "{}{}", run.stdout, run.stderr);
    assert_eq!(
        found,
        [triple("different", "vlive.t", "id=1999")]
            .into_iter()
            .collect(),
        "{}",
        run.stdout
    );
    bg.terminate(Duration::from_secs(30));
}

/// An archive is verified by replaying its committed files: after a
/// snapshot and live changes it equals the source; then every difference
/// planted on the source (the archive cannot be edited in place) is found.
#[test]
fn verifies_a_parquet_archive() {
    let (src, _) = pair();
    src.exec(
        "CREATE DATABASE varch;
         CREATE TABLE varch.items (id INT PRIMARY KEY, name VARCHAR(40), note TEXT NULL,
           amount DECIMAL(30,10), data BLOB);
         INSERT INTO varch.items SELECT seq, CONCAT('item ', seq), IF(seq % 5 = 0, NULL, 'note'),
           seq / 7, UNHEX(SHA1(seq)) FROM varch.seq_1_to_500;
         CREATE TABLE varch.loose (a INT, b VARCHAR(10));
         INSERT INTO varch.loose SELECT seq % 4, 'dup' FROM varch.seq_1_to_40;",
    );
    let dir = std::env::temp_dir().join(format!("sluice-verify-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("archive folder");
    let yaml = format!(
        "name: varch\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"varch.*\"]\n\
         sinks:\n  - parquet:\n      name: lake\n      url: file://{}\n      max_file_age_ms: 200\n",
        src.url(),
        dir.display()
    );
    let path = write_pipeline("varch", &yaml);
    let mut bg = Background::start(&path, &[]);
    // Changes of every kind, replayed from change files.
    src.exec(
        "UPDATE varch.items SET name = 'renamed' WHERE id <= 20;
         DELETE FROM varch.items WHERE id BETWEEN 30 AND 39;
         INSERT INTO varch.items VALUES (600, 'new', NULL, 1.5, X'00');
         UPDATE varch.items SET id = 700 WHERE id = 50;
         DELETE FROM varch.loose WHERE a = 1 LIMIT 2;",
    );
    bg.wait_for(
        Duration::from_secs(120),
        "the archive equals the source",
        || {
            let (run, found) = verify(&path, &["--recheck-timeout-s", "1"]);
            if run.ok() {
                Ok(())
            } else {
                Err(format!("{found:?}\n{}{}", run.stdout, run.stderr))
            }
        },
    );
    bg.terminate(Duration::from_secs(30));
    let (run, _) = verify(&path, &["--recheck-timeout-s", "1"]);
    assert!(
        run.stdout.contains("varch.items") && run.stdout.contains("491 rows"),
        "{}",
        run.stdout
    );

    src.exec(
        "DELETE FROM varch.items WHERE id = 3;
         INSERT INTO varch.items VALUES (9000, 'late', NULL, 2, NULL);
         UPDATE varch.items SET name = 'item 100!' WHERE id = 100;
         UPDATE varch.items SET note = NULL WHERE id = 101;
         UPDATE varch.items SET amount = amount + 0.0000000001 WHERE id = 102;
         UPDATE varch.items SET data = CONCAT(LEFT(data, 5), CHAR(ASCII(SUBSTRING(data, 6, 1)) ^ 1), SUBSTRING(data, 7)) WHERE id = 103;
         INSERT INTO varch.loose VALUES (2, 'dup');",
    );
    let (run, found) = verify(&path, &["--recheck-timeout-s", "1"]);
    assert_found(
        &run,
        &found,
        &[
            ("extra", "varch.items", "id=3"),
            ("missing", "varch.items", "id=9000"),
            ("different", "varch.items", "id=100"),
            ("different", "varch.items", "id=101"),
            ("different", "varch.items", "id=102"),
            ("different", "varch.items", "id=103"),
            ("missing", "varch.loose", "a=2,b='dup'"),
        ],
    );
    // An archive is append-only: --repair says so and changes nothing.
    let (run, again) = verify(&path, &["--repair", "--recheck-timeout-s", "1"]);
    assert_eq!(again, found, "{}", run.stdout);
    assert!(
        run.stdout.contains("rewrites database targets only"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// For every column type: one bit (or the smallest step) of one value of
/// one random row changed on the target is reported, as exactly that row;
/// undone, nothing is reported. Includes a case-only change (one bit,
/// equal under the collation), a trailing space (equal under PAD SPACE),
/// a FLOAT's last bit, and a separator moved across a column boundary.
#[test]
fn a_single_changed_bit_in_any_column_is_reported() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE vbit;
         CREATE TABLE vbit.t (id INT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT,
           bi BIGINT, bu BIGINT UNSIGNED, d DECIMAL(20,6), f FLOAT, g DOUBLE, b BIT(12), dt DATE,
           dtm DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), y YEAR, c CHAR(8), v VARCHAR(30),
           l VARCHAR(30) CHARACTER SET latin1, tx TEXT, bn BINARY(6), vb VARBINARY(20), bl BLOB,
           e ENUM('a','b','c'), s SET('x','y','z'), j JSON, ci VARCHAR(10) COLLATE utf8mb4_general_ci,
           p1 VARCHAR(5), p2 VARCHAR(5), nb VARCHAR(10) COLLATE utf8mb4_nopad_bin);
         INSERT INTO vbit.t SELECT seq, CAST(seq % 100 AS SIGNED) - 50, seq * 7, CAST(seq * 1001 AS SIGNED) - 500000, seq * 100003,
           seq * 1000000007, seq * 99991, seq / 7, seq / 3, seq / 11, seq % 4096, '2020-01-01' + INTERVAL seq DAY,
           '2020-01-01' + INTERVAL seq * 997 SECOND + INTERVAL seq MICROSECOND,
           '2021-01-01' + INTERVAL seq * 13 SECOND + INTERVAL seq MICROSECOND, SEC_TO_TIME(seq * 37) + INTERVAL seq MICROSECOND,
           1901 + seq % 200, CONCAT('c', seq), CONCAT('value ', seq), CONCAT('café ', seq), REPEAT(CONCAT('t', seq), 5),
           UNHEX(LPAD(HEX(seq), 12, '0')), UNHEX(SHA1(seq)), UNHEX(SHA2(seq, 256)), 1 + seq % 2, 1 + seq % 7,
           CONCAT('{\"n\": ', seq, '}'), CONCAT('name', seq), 'p#', 'q', CONCAT('nb', seq)
         FROM vbit.seq_1_to_400;",
    );
    let yaml = migrate_yaml("vbit", &src.url(), &dst.url(), &["vbit.*"], "");
    run_pipeline("vbit", &yaml, &[]).assert_ok();
    let path = write_pipeline("vbit", &yaml);
    let (run, found) = verify(&path, &["--chunk-rows", "100"]);
    run.assert_ok();
    assert!(found.is_empty(), "{found:?}");

    // (column, how to change one bit of row `{id}` on the target)
    let exact = |id: u64, sql: &str| sql.replace("{id}", &id.to_string());
    let float_bit = |dst: &MariaDb, id: u64, col: &str, double: bool| -> String {
        let row = dst.rows(&format!("SELECT {col} FROM vbit.t WHERE id = {id}"));
        let flipped = match (&row[0][0], double) {
            (mysql::Value::Float(f), false) => {
                format!("{:e}", f32::from_bits(f.to_bits() ^ 1) as f64)
            }
            (mysql::Value::Double(f), true) => format!("{:e}", f64::from_bits(f.to_bits() ^ 1)),
            (other, _) => panic!("{col}: {other:?}"),
        };
        format!("UPDATE vbit.t SET {col} = {flipped} WHERE id = {id}")
    };
    let changes: Vec<(&str, &str)> = vec![
        ("ti", "UPDATE vbit.t SET ti = IF(ti % 2 = 0, ti + 1, ti - 1) WHERE id = {id}"),
        ("si", "UPDATE vbit.t SET si = si ^ 1 WHERE id = {id}"),
        ("mi", "UPDATE vbit.t SET mi = IF(mi % 2 = 0, mi + 1, mi - 1) WHERE id = {id}"),
        ("i", "UPDATE vbit.t SET i = i ^ 4096 WHERE id = {id}"),
        ("bi", "UPDATE vbit.t SET bi = IF(bi % 2 = 0, bi + 1, bi - 1) WHERE id = {id}"),
        ("bu", "UPDATE vbit.t SET bu = bu ^ 1 WHERE id = {id}"),
        ("d", "UPDATE vbit.t SET d = d + 0.000001 WHERE id = {id}"),
        ("f", ""),
        ("g", ""),
        ("b", "UPDATE vbit.t SET b = b ^ 1 WHERE id = {id}"),
        ("dt", "UPDATE vbit.t SET dt = dt + INTERVAL 1 DAY WHERE id = {id}"),
        ("dtm", "UPDATE vbit.t SET dtm = dtm + INTERVAL 1 MICROSECOND WHERE id = {id}"),
        ("ts", "UPDATE vbit.t SET ts = ts + INTERVAL 1 MICROSECOND WHERE id = {id}"),
        ("tm", "UPDATE vbit.t SET tm = tm + INTERVAL 1 MICROSECOND WHERE id = {id}"),
        ("y", "UPDATE vbit.t SET y = IF(y % 2 = 0, y + 1, y - 1) WHERE id = {id}"),
        ("c", "UPDATE vbit.t SET c = CONCAT(CHAR(ASCII(c) ^ 2), SUBSTRING(c, 2)) WHERE id = {id}"),
        ("v", "UPDATE vbit.t SET v = CONCAT(LEFT(v, 3), CHAR(ASCII(SUBSTRING(v, 4, 1)) ^ 1), SUBSTRING(v, 5)) WHERE id = {id}"),
        ("v", "UPDATE vbit.t SET v = CONCAT(v, ' ') WHERE id = {id}"),
        ("l", "UPDATE vbit.t SET l = CONCAT(LEFT(l, 5), CHAR(ASCII(SUBSTRING(l, 6, 1)) ^ 1), SUBSTRING(l, 7)) WHERE id = {id}"),
        ("tx", "UPDATE vbit.t SET tx = CONCAT(LEFT(tx, 7), CHAR(ASCII(SUBSTRING(tx, 8, 1)) ^ 1), SUBSTRING(tx, 9)) WHERE id = {id}"),
        ("bn", "UPDATE vbit.t SET bn = CONCAT(LEFT(bn, 5), CHAR(ASCII(SUBSTRING(bn, 6, 1)) ^ 1)) WHERE id = {id}"),
        ("vb", "UPDATE vbit.t SET vb = CONCAT(LEFT(vb, 9), CHAR(ASCII(SUBSTRING(vb, 10, 1)) ^ 128), SUBSTRING(vb, 11)) WHERE id = {id}"),
        ("bl", "UPDATE vbit.t SET bl = CONCAT(LEFT(bl, 30), CHAR(ASCII(SUBSTRING(bl, 31, 1)) ^ 1), SUBSTRING(bl, 32)) WHERE id = {id}"),
        ("e", "UPDATE vbit.t SET e = IF(e = 'a', 'b', 'a') WHERE id = {id}"),
        ("s", "UPDATE vbit.t SET s = (s + 0) ^ 1 WHERE id = {id}"),
        ("j", "UPDATE vbit.t SET j = REPLACE(j, '\"n\"', '\"o\"') WHERE id = {id}"),
        ("ci", "UPDATE vbit.t SET ci = UPPER(ci) WHERE id = {id}"),
        ("p1", "UPDATE vbit.t SET p1 = 'p', p2 = '#q' WHERE id = {id}"),
        // A table mixing collations: its text is hashed as bytes.
        ("nb", "UPDATE vbit.t SET nb = CONCAT(nb, ' ') WHERE id = {id}"),
    ];
    let seed = std::env::var("SLUICE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xb175_eed5u64);
    let mut rng = Rng::new(seed);
    for (col, change) in changes {
        let id = 1 + rng.below(400);
        let before = dst.rows(&format!("SELECT * FROM vbit.t WHERE id = {id}"));
        let sql = match col {
            "f" => float_bit(dst, id, "f", false),
            "g" => float_bit(dst, id, "g", true),
            _ => exact(id, change),
        };
        dst.exec(&sql);
        assert_ne!(
            before,
            dst.rows(&format!("SELECT * FROM vbit.t WHERE id = {id}")),
            "seed {seed:#x}: {sql}"
        );
        let (run, found) = verify(&path, &["--chunk-rows", "100"]);
        assert_found(
            &run,
            &found,
            &[("different", "vbit.t", &format!("id={id}"))],
        );
        // Put the row back from the source, and nothing differs again.
        let (run, _) = verify(&path, &["--chunk-rows", "100", "--repair"]);
        run.assert_ok();
        let (run, found) = verify(&path, &["--chunk-rows", "100"]);
        assert!(
            run.ok() && found.is_empty(),
            "seed {seed:#x}, {col}: {found:?}\n{}",
            run.stdout
        );
    }
}

/// `--repair` of a row whose key differs only in case (`'C00777'` on the
/// target, `'c00777'` on the source, one row under a `_ci` collation): the
/// row is fixed, not written and then deleted as the extra one.
#[test]
fn repairing_a_key_that_differs_only_in_case_keeps_the_row() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE vcase;
         CREATE TABLE vcase.t (code VARCHAR(10) NOT NULL PRIMARY KEY, n INT) COLLATE utf8mb4_general_ci;
         INSERT INTO vcase.t SELECT CONCAT('c', LPAD(seq, 5, '0')), seq FROM vcase.seq_1_to_1000;
         CREATE TABLE vcase.k (name VARCHAR(10) COLLATE utf8mb4_general_ci, n INT);
         INSERT INTO vcase.k VALUES ('a', 1), ('A', 1), ('x', 2);",
    );
    let yaml = migrate_yaml("vcase", &src.url(), &dst.url(), &["vcase.*"], "");
    run_pipeline("vcase", &yaml, &[]).assert_ok();
    let path = write_pipeline("vcase", &yaml);
    dst.exec(
        "UPDATE vcase.t SET code = 'C00777' WHERE code = 'c00777';
         UPDATE vcase.k SET name = 'x ' WHERE BINARY name = 'x';
         DELETE FROM vcase.k WHERE BINARY name = 'A';
         INSERT INTO vcase.k VALUES ('a', 1);",
    );
    let (run, found) = verify(&path, &[]);
    assert_eq!(run.status.code(), Some(3), "{}", run.stdout);
    assert!(
        found.contains(&triple("missing", "vcase.t", "code='c00777'")),
        "{found:?}"
    );
    let (run, _) = verify(&path, &["--repair"]);
    run.assert_ok();
    let hex: Vec<(String, i32)> =
        dst.query("SELECT HEX(code), n FROM vcase.t WHERE code = 'c00777'");
    assert_eq!(
        hex,
        vec![("633030373737".to_string(), 777)],
        "the row is there, spelled as on the source"
    );
    let rows = |db: &MariaDb| -> Vec<(String, i32)> {
        db.query("SELECT HEX(name), n FROM vcase.k ORDER BY 1, 2")
    };
    assert_eq!(
        rows(dst),
        rows(src),
        "the keyless rows are repaired byte for byte"
    );
    let (run, found) = verify(&path, &[]);
    assert!(run.ok() && found.is_empty(), "{found:?}");
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM vcase.t"), 1000);
}
