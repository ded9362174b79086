//! Every MySQL/MariaDB column type, with edge values, survives a migration
//! bit for bit: same rows, same CHECKSUM TABLE, same SHOW CREATE TABLE.

mod support;

use support::*;

#[test]
fn type_matrix_migrates_bit_exactly() {
    let (src, dst) = pair();
    src.exec(&type_matrix_sql("typ"));
    assert_eq!(dst.scalar::<u64>("SELECT @@local_infile"), 1);
    // Both load methods: LOAD DATA (the default) into typ.*, INSERT into typ_insert.*.
    for (db, method) in [("typ", "auto"), ("typ_insert", "insert")] {
        // Small batches so the matrix also crosses batch edges.
        let yaml = migrate_yaml(
            db,
            &src.url(),
            &dst.url(),
            &["typ.*"],
            &format!("      load_method: {method}\n      rename:\n        \"typ.*\": \"{db}.*\"\n"),
        ) + "settings:\n  batch_size: 700\n";
        run_pipeline(db, &yaml, &[]).assert_ok();

        for table in ["matrix", "latin", "binkey"] {
            let (s, d) = (format!("typ.{table}"), format!("{db}.{table}"));
            assert_eq!(src.show_create(&s), dst.show_create(&d), "schema of {d}");
        }
        assert_eq!(
            dst.scalar::<u64>(&format!("SELECT COUNT(*) FROM {db}.matrix")),
            3004
        );
        assert_same_table(src, "typ.matrix", dst, &format!("{db}.matrix"), "id");
        assert_same_table(src, "typ.latin", dst, &format!("{db}.latin"), "id");
        assert_same_table(src, "typ.binkey", dst, &format!("{db}.binkey"), "k");

        // Spot checks on values that are easy to get subtly wrong.
        let hex: Vec<(String, String, String, String)> = dst.query(&format!(
            "SELECT HEX(f), HEX(bin), CAST(dt AS CHAR), CAST(tm0 AS CHAR) FROM {db}.matrix WHERE id = 2"
        ));
        assert_eq!(hex[0].1, "0000000000000000");
        assert_eq!(hex[0].2, "0000-00-00");
        assert_eq!(hex[0].3, "-838:59:59");
        let biu: Vec<(String,)> = dst.query(&format!(
            "SELECT CAST(biu AS CHAR) FROM {db}.matrix WHERE id = 1"
        ));
        assert_eq!(biu[0].0, "18446744073709551615");
        let raw_latin: Vec<(String,)> =
            dst.query(&format!("SELECT HEX(name) FROM {db}.latin WHERE id = 2"));
        assert_eq!(raw_latin[0].0, "7261772080818D8F909D");
    }
}
