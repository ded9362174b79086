//! Table shapes and sizes a migration must handle, DDL fidelity (indexes,
//! foreign keys, triggers), renames, and the existing-table policies.

mod support;

use support::*;

#[test]
fn keys_shapes_and_sizes() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE shapes;
         CREATE TABLE shapes.composite (a INT NOT NULL, b VARCHAR(20) NOT NULL, v DOUBLE, PRIMARY KEY (a, b));
         INSERT INTO shapes.composite SELECT seq % 97, CONCAT('k', seq), seq * 1.5 FROM shapes.seq_1_to_20000;
         CREATE TABLE shapes.strkey (code VARCHAR(12) NOT NULL PRIMARY KEY, n INT);
         INSERT INTO shapes.strkey SELECT CONCAT('c', seq), seq FROM shapes.seq_1_to_5000;
         CREATE TABLE shapes.unique_only (u BIGINT UNSIGNED NOT NULL, note VARCHAR(30), UNIQUE KEY uq (u));
         INSERT INTO shapes.unique_only SELECT 18446744073709551615 - seq, 'x' FROM shapes.seq_1_to_20000;
         CREATE TABLE shapes.nokey (a INT, b TEXT);
         INSERT INTO shapes.nokey SELECT seq % 3, 'dup' FROM shapes.seq_1_to_3000;
         CREATE TABLE shapes.empty (id INT PRIMARY KEY, x INT);
         CREATE TABLE shapes.negkeys (id BIGINT NOT NULL PRIMARY KEY, x INT);
         INSERT INTO shapes.negkeys SELECT CAST(seq AS SIGNED) * 1000003 - 9223372036854775807, seq FROM shapes.seq_1_to_9000;
         ANALYZE TABLE shapes.composite, shapes.unique_only, shapes.negkeys;",
    );
    // Small chunks force the key-range splitting on every splittable table.
    let yaml = migrate_yaml("shapes", &src.url(), &dst.url(), &["shapes.*"], "").replace(
        "    include:",
        "    snapshot:\n      chunk_rows: 1000\n      parallelism: 3\n    include:",
    ) + "settings:\n  batch_size: 512\n";
    let run = run_pipeline("shapes", &yaml, &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains("no primary or non-null unique key"),
        "warning for nokey:\n{}",
        run.stderr
    );

    for (t, order) in [
        ("shapes.composite", "a, b"),
        ("shapes.strkey", "code"),
        ("shapes.unique_only", "u"),
        ("shapes.nokey", "a, b"),
        ("shapes.empty", "id"),
        ("shapes.negkeys", "id"),
    ] {
        assert_eq!(src.show_create(t), dst.show_create(t), "schema of {t}");
        assert_same_table(src, t, dst, t, order);
    }
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM shapes.nokey"), 3000);
}

#[test]
fn million_rows_and_fifty_tables() {
    let (src, dst) = pair();
    let mut sql = String::from(
        "CREATE DATABASE big;
         CREATE TABLE big.sbtest (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0,
           c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k));
         INSERT INTO big.sbtest (k, c, pad) SELECT seq % 50000, MD5(seq), SHA1(seq) FROM big.seq_1_to_1000000;
         ANALYZE TABLE big.sbtest;
         CREATE DATABASE many;\n",
    );
    for i in 0..50 {
        sql.push_str(&format!(
            "CREATE TABLE many.t{i:02} (id INT PRIMARY KEY, v VARCHAR(20));\n\
             INSERT INTO many.t{i:02} SELECT seq, CONCAT('row', seq) FROM many.seq_1_to_{};\n",
            i + 1
        ));
    }
    src.exec(&sql);
    let yaml = migrate_yaml("big", &src.url(), &dst.url(), &["big.*", "many.*"], "");
    let run = run_pipeline("big", &yaml, &[]);
    run.assert_ok();
    assert!(
        run.stdout.contains("copied 1001275 rows in 51 tables"),
        "{}",
        run.stdout
    );
    assert_eq!(
        dst.scalar::<u64>("SELECT COUNT(*) FROM big.sbtest"),
        1_000_000
    );
    assert_eq!(src.checksum("big.sbtest"), dst.checksum("big.sbtest"));
    assert_eq!(src.show_create("big.sbtest"), dst.show_create("big.sbtest"));
    let next_id = "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA='big' AND TABLE_NAME='sbtest'";
    assert_eq!(
        src.scalar::<u64>(next_id),
        dst.scalar::<u64>(next_id),
        "auto-increment counter carried over"
    );
    for i in 0..50 {
        let t = format!("many.t{i:02}");
        assert_same_table(src, &t, dst, &t, "id");
    }
}

#[test]
fn indexes_foreign_keys_triggers_and_renames() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE shop CHARACTER SET latin1;
         CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100) NOT NULL,
           name VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, UNIQUE KEY email (email),
           FULLTEXT KEY ft_name (name)) ENGINE=InnoDB COMMENT='people';
         CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL,
           total DECIMAL(12,2) NOT NULL, created DATETIME(3) NOT NULL, status ENUM('new','paid') DEFAULT 'new',
           KEY by_customer_created (customer_id, created DESC),
           CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE);
         CREATE TABLE shop.audit (id INT PRIMARY KEY AUTO_INCREMENT, msg VARCHAR(100));
         CREATE TABLE shop.notes (id INT PRIMARY KEY, body TEXT);
         INSERT INTO shop.notes VALUES (1, 'renamed on its own');
         CREATE TRIGGER shop.orders_ai AFTER INSERT ON shop.orders FOR EACH ROW INSERT INTO audit (msg) VALUES (CONCAT('order ', NEW.id));
         INSERT INTO shop.customers (email, name) SELECT CONCAT('u', seq, '@example.com'), CONCAT('Name ', seq) FROM shop.seq_1_to_500;
         INSERT INTO shop.orders (customer_id, total, created) SELECT 1 + seq % 500, seq * 3.25, '2024-01-01' + INTERVAL seq MINUTE FROM shop.seq_1_to_2000;",
    );
    assert_eq!(src.scalar::<u64>("SELECT COUNT(*) FROM shop.audit"), 2000);
    let yaml = migrate_yaml(
        "renames",
        &src.url(),
        &dst.url(),
        &["shop.*"],
        "      rename:\n        \"shop.*\": \"shop_copy.*\"\n        \"shop.notes\": \"archive.notes_v2\"\n",
    );
    run_pipeline("renames", &yaml, &[]).assert_ok();

    assert_eq!(
        src.show_create("shop.customers"),
        dst.show_create("shop_copy.customers")
    );
    assert_eq!(
        src.show_create("shop.orders"),
        dst.show_create("shop_copy.orders")
    );
    assert_eq!(
        src.show_create("shop.notes")
            .replace("`notes`", "`notes_v2`"),
        dst.show_create("archive.notes_v2")
    );
    assert_same_table(src, "shop.notes", dst, "archive.notes_v2", "id");
    assert!(!dst.table_exists("shop_copy", "notes"));
    let db_charset: Vec<(String,)> =
        dst.query("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop_copy'");
    assert_eq!(db_charset[0].0, "latin1");
    assert_same_table(src, "shop.orders", dst, "shop_copy.orders", "id");
    assert_same_table(src, "shop.customers", dst, "shop_copy.customers", "id");
    // The trigger did not fire during the load (the audit rows came from the source)...
    assert_same_table(src, "shop.audit", dst, "shop_copy.audit", "id");
    // ...and exists afterwards, pointing at the renamed table.
    let trig: Vec<(String, String)> = dst.query(
        "SELECT EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop_copy'",
    );
    assert_eq!(trig.len(), 1);
    assert_eq!(trig[0].0, "orders");
    let trigger_def = "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, DEFINER, SQL_MODE, ACTION_ORDER FROM information_schema.TRIGGERS";
    type Trig = (String, String, String, String, String, String, u64);
    let a: Vec<Trig> = src.query(&format!("{trigger_def} WHERE TRIGGER_SCHEMA = 'shop'"));
    let b: Vec<Trig> = dst.query(&format!("{trigger_def} WHERE TRIGGER_SCHEMA = 'shop_copy'"));
    assert_eq!(a, b, "trigger definitions");
    dst.exec("INSERT INTO shop_copy.orders (customer_id, total, created) VALUES (1, 1, NOW())");
    assert_eq!(
        dst.scalar::<u64>("SELECT COUNT(*) FROM shop_copy.audit"),
        2001,
        "the trigger fires on the target"
    );
}

#[test]
fn existing_table_policies() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE pol;
         CREATE TABLE pol.t (id INT PRIMARY KEY, v INT);
         INSERT INTO pol.t SELECT seq, seq FROM pol.seq_1_to_100;",
    );
    dst.exec(
        "CREATE DATABASE pol_trunc; CREATE TABLE pol_trunc.t (id INT PRIMARY KEY, v INT);
         INSERT INTO pol_trunc.t VALUES (1000, 1);
         CREATE DATABASE pol_append; CREATE TABLE pol_append.t (id INT PRIMARY KEY, v INT);
         INSERT INTO pol_append.t VALUES (1000, 1);",
    );
    for (policy, db, expect) in [
        ("truncate", "pol_trunc", 100u64),
        ("append", "pol_append", 101),
    ] {
        let yaml = migrate_yaml(
            policy,
            &src.url(),
            &dst.url(),
            &["pol.*"],
            &format!(
                "      existing_tables: {policy}\n      rename:\n        \"pol.*\": \"{db}.*\"\n"
            ),
        );
        run_pipeline(policy, &yaml, &[]).assert_ok();
        assert_eq!(
            dst.scalar::<u64>(&format!("SELECT COUNT(*) FROM {db}.t")),
            expect,
            "{policy}"
        );
    }
}

/// `max_rows_per_second: 1000` holds the copy to 1,000 rows/s (within 10%)
/// over about 11 s, and the copy is complete.
#[test]
fn a_row_rate_limit_is_held() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE throttled;
         CREATE TABLE throttled.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO throttled.t SELECT seq, CONCAT('v', seq) FROM throttled.seq_1_to_11000;",
    );
    let yaml = migrate_yaml("throttled", &src.url(), &dst.url(), &["throttled.*"], "").replace(
        "    include:",
        "    max_rows_per_second: 1000\n    snapshot:\n      chunk_rows: 2000\n    include:",
    ) + "settings:\n  batch_size: 100\n";
    let started = std::time::Instant::now();
    let run = run_pipeline("throttled", &yaml, &[]);
    let wall = started.elapsed().as_secs_f64();
    run.assert_ok();
    // sluice's own elapsed time ("... in 1 tables in 11.02 s") starts
    // after the process did; the wall time bounds it from above.
    let secs: f64 = run
        .stdout
        .split(" tables in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no elapsed time in {}", run.stdout));
    let (fastest, slowest) = (11_000.0 / secs, 11_000.0 / wall);
    assert!(
        fastest <= 1100.0 && slowest >= 900.0,
        "11000 rows in {secs:.2} s (wall {wall:.2} s): {fastest:.0} rows/s, outside 1000 ± 10%"
    );
    assert_same_table(src, "throttled.t", dst, "throttled.t", "id");
}
