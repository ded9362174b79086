//! Every MySQL/MariaDB column type, with edge values, survives a migration
//! bit for bit: same rows, same CHECKSUM TABLE, same SHOW CREATE TABLE.

mod support;

use support::*;

const MATRIX: &str = r#"
CREATE DATABASE typ CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE typ.matrix (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d10 DECIMAL(10,2), d38 DECIMAL(38,0), d5 DECIMAL(5,5), d40 DECIMAL(40,10),
  f FLOAT, dbl DOUBLE,
  b1 BIT(1), b8 BIT(8), b13 BIT(13), b64 BIT(64),
  dt DATE, dtm0 DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  tm0 TIME, tm3 TIME(3), tm6 TIME(6), y YEAR,
  c CHAR(10), vc VARCHAR(100), tx TEXT, lt LONGTEXT,
  l1 VARCHAR(50) CHARACTER SET latin1, l1t TEXT CHARACTER SET latin1 COLLATE latin1_bin,
  bin BINARY(8), vb VARBINARY(50), bl BLOB, lbl LONGBLOB,
  e ENUM('a','b','c d'), s SET('x','y','z'),
  j JSON, g GEOMETRY, pt POINT, u UUID, ip INET6
) ENGINE=InnoDB;
INSERT INTO typ.matrix VALUES (
  1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
  9223372036854775807, 18446744073709551615,
  99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99,
  99999999999999999999999999999999999999, 0.99999, 999999999999999999999999999999.9999999999,
  3.4028234663852886e38, 1.7976931348623157e308,
  b'1', b'11111111', b'1111111111111', b'1111111111111111111111111111111111111111111111111111111111111111',
  '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999',
  '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999',
  '838:59:59', '838:59:59.000', '838:59:59.000000', 2155,
  'abc', 'héllo wörld 日本語 🎉', REPEAT('ünïcödé 🐬 ', 1000), REPEAT('long text ', 20000),
  'café Ææ ßÿ €', 'latin1 ÿ bin',
  X'0001020300FF0000', X'00', X'00FF00', REPEAT(X'00FF10', 70000),
  'c d', 'x,z', '{"a": [1, 2.5, "x"], "b": null, "c": "\\u00e9"}',
  ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))'), POINT(1.5, -2.25),
  'cafebabe-0000-4000-8000-0123456789ab', '2001:db8::ff00:42:8329'
), (
  2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
  -9223372036854775808, 0,
  -99999999999999999999999999999999999.999999999999999999999999999999, -99999999.99,
  -99999999999999999999999999999999999999, -0.00001, -0.0000000001,
  1.401298464324817e-45, 2.2250738585072014e-308,
  b'0', b'0', b'0', b'0',
  '0000-00-00', '0000-00-00 00:00:00', '2024-00-00 00:00:00.000', '1000-01-01 00:00:00.000001',
  '0000-00-00 00:00:00', '1970-01-01 00:00:01.000000',
  '-838:59:59', '-00:00:00.001', '-00:00:00.000001', 0,
  '', 'quote '' backslash \\ nul \0 nl \n cr \r ctrlz \Z tab \t', '', '',
  '', '',
  X'0000000000000000', X'', X'', X'',
  'a', '', '[]', POINT(0, 0), POINT(-180, 90),
  '00000000-0000-0000-0000-000000000000', '::'
), (
  3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
), (
  4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
  0.000000000000000000000000000001, 0.01, 1, 0.00001, 12345678901234567890.0123456789,
  0.1, 0.1, b'1', b'10100101', b'1000000000001', b'1000000000000000000000000000000000000000000000000000000000000001',
  '2024-02-29', '1970-01-01 00:00:00', '1969-12-31 23:59:59.999', '2000-02-29 12:34:56.789012',
  '1970-01-01 00:00:01', '2024-06-30 12:00:00.500000',
  '00:00:00', '12:34:56.789', '-12:34:56.789012', 1901,
  'x', 'x', 'x', 'x', 'x', 'x',
  X'FF', X'FFFF', X'FF', X'FF',
  'b', 'x,y,z', '{"n": 1e300, "deep": {"a": [true, false, null]}}',
  ST_GeomFromText('LINESTRING(0 0,1 1,2 2)'), POINT(123.456789, -0.000001),
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '::ffff:192.0.2.1'
);
INSERT INTO typ.matrix (id, f, dbl, dtm6, dt, tm6, y)
  SELECT seq + 100, seq / 7, seq / 3, '2020-01-01' + INTERVAL seq SECOND + INTERVAL seq MICROSECOND,
         '2020-01-01' + INTERVAL seq DAY, SEC_TO_TIME(seq * 37) , 1901 + seq % 255
  FROM typ.seq_1_to_3000;
CREATE TABLE typ.latin (id INT PRIMARY KEY, name VARCHAR(30), note TEXT)
  ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;
INSERT INTO typ.latin VALUES (1, 'Åsa Öberg', 'ÿ€ŠšŽžŒœŸ'), (2, CONCAT('raw ', X'80818D8F909D'), X'FFFEFD');
CREATE TABLE typ.binkey (k VARBINARY(16) NOT NULL PRIMARY KEY, v BLOB) ENGINE=InnoDB;
INSERT INTO typ.binkey VALUES (X'00', X'00'), (X'0000', NULL), (X'FF00', X'');
"#;

#[test]
fn type_matrix_migrates_bit_exactly() {
    let (src, dst) = pair();
    src.exec(MATRIX);
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
