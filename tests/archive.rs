//! The Parquet archive sink end to end: snapshot and changes into Parquet
//! files on a local folder, read back by an independent reader (pyarrow),
//! through a crash.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

/// The table's state rebuilt from the archive by pyarrow, as TSV.
fn archive_state(root: &Path, db: &str, table: &str) -> String {
    archive_columns(root, db, table, &[])
}

/// Like [`archive_state`], printing only `columns`.
fn archive_columns(root: &Path, db: &str, table: &str, columns: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg(support::root().join("tests/support/parquet_state.py"))
        .args([root.to_str().unwrap(), db, table, "id"])
        .args(columns)
        .output()
        .expect("running python3 (pyarrow)");
    assert!(
        out.status.success(),
        "parquet_state.py failed (is pyarrow installed? `pip install pyarrow`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.starts_with("error:"), "{text}");
    text
}

/// The same rows from the source, in the reader's text form.
fn source_state(src: &MariaDb, db: &str, table: &str) -> String {
    let rows: Vec<(String, Option<String>, Option<String>, Option<String>, Option<String>)> = src.query(&format!(
        "SELECT CAST(id AS CHAR), name, CAST(amount AS CHAR), DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f'), note FROM {db}.{table} ORDER BY id"
    ));
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "\\N".into());
    rows.iter()
        .map(|(id, a, b, c, d)| {
            format!("{id}\t{}\t{}\t{}\t{}\n", cell(a), cell(b), cell(c), cell(d))
        })
        .collect()
}

fn archive_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-archive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn archive_yaml(name: &str, src: &MariaDb, db: &str, dir: &Path) -> PathBuf {
    write_pipeline(
        name,
        &format!(
            "name: {name}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"{db}.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - parquet:\n      url: file://{}\n      max_file_rows: 700\n      max_file_age_ms: 300\nsettings:\n  batch_size: 250\n",
            src.url(),
            dir.display()
        ),
    )
}

fn seed(src: &MariaDb, db: &str) {
    src.exec(&format!(
        "CREATE DATABASE {db};
         CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(12,2), ts DATETIME(6), note TEXT);
         INSERT INTO {db}.t SELECT seq, CONCAT('n', seq), seq * 1.25, '2024-01-01' + INTERVAL seq SECOND + INTERVAL seq MICROSECOND,
           IF(seq % 5 = 0, NULL, 'x') FROM {db}.seq_1_to_2000;"
    ));
}

fn changes(src: &MariaDb, db: &str, round: u32) {
    src.exec(&format!(
        "UPDATE {db}.t SET amount = amount + {round}, note = NULL WHERE id % 7 = {r7};
         DELETE FROM {db}.t WHERE id % 11 = {r11};
         INSERT INTO {db}.t SELECT 10000 * {round} + seq, 'new', seq, NOW(6), 'y' FROM {db}.seq_1_to_300;
         BEGIN; UPDATE {db}.t SET id = id + 100000 WHERE id = {k}; UPDATE {db}.t SET name = 'moved' WHERE id = {k} + 100000; COMMIT;",
        r7 = round % 7,
        r11 = round % 11,
        k = 100 + round
    ));
}

fn wait_archive_equal(src: &MariaDb, db: &str, dir: &Path, p: &mut Background) {
    let mut last = String::new();
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(
            Duration::from_secs(120),
            "the archive equals the source",
            || {
                p.assert_running();
                last = archive_state(dir, db, "t");
                last == source_state(src, db, "t")
            },
        )
    }));
    if ok.is_err() {
        let expected = source_state(src, db, "t");
        panic!(
            "archive differs: {} rows vs {} in the source; first difference {:?}\n{}",
            last.lines().count(),
            expected.lines().count(),
            last.lines().zip(expected.lines()).find(|(a, b)| a != b),
            p.output()
        );
    }
}

#[test]
fn snapshot_and_changes_rebuild_the_source_from_parquet() {
    let (src, _) = pair();
    seed(src, "arch");
    let dir = archive_dir("live");
    let path = archive_yaml("arch", src, "arch", &dir);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arch", &dir, &mut p);
    for round in 1..=3 {
        changes(src, "arch", round);
    }
    wait_archive_equal(src, "arch", &dir, &mut p);
    let status = p.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
    // Several files: snapshot parts and change files, all listed.
    let manifest = std::fs::read_to_string(dir.join("arch/t/_manifest.json")).expect("manifest");
    assert!(
        manifest.contains("\"kind\": \"snapshot\"") && manifest.contains("\"kind\": \"changes\""),
        "{manifest}"
    );
    assert!(manifest.matches("\"path\"").count() >= 4, "{manifest}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_while_archiving_leaves_no_duplicates_or_gaps() {
    let (src, _) = pair();
    seed(src, "archk");
    let dir = archive_dir("kill");
    let path = archive_yaml("archk", src, "archk", &dir);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "archk", &dir, &mut p);
    for round in 1..=4 {
        changes(src, "archk", round);
        p.kill();
        p = Background::start(&path, &[]);
    }
    wait_archive_equal(src, "archk", &dir, &mut p);
    p.terminate(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unusable_archive_folder_fails_before_any_data_moves() {
    let (src, _) = pair();
    let yaml = "name: bad\nsource:\n  mysql:\n    url: URL\n    mode: snapshot\n    include: [\"nothing.*\"]\nsinks:\n  - parquet:\n      url: file:///proc/sluice-archive\n"
        .replace("URL", &src.url());
    run_pipeline("archive-bad", &yaml, &[])
        .assert_fails_with(&["/proc/sluice-archive", "writable folder"]);
    let relative = yaml.replace("file:///proc/sluice-archive", "file://relative/dir");
    run_pipeline("archive-rel", &relative, &[]).assert_fails_with(&["file:///path"]);
}

/// One capture, two sinks: a MySQL replica and a Parquet archive, each with
/// its own checkpoint, both equal to the source after changes.
#[test]
fn one_capture_feeds_a_replica_and_an_archive() {
    let (src, dst) = pair();
    seed(src, "arfan");
    let dir = archive_dir("fan");
    let path = write_pipeline(
        "arfan",
        &format!(
            "name: arfan\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"arfan.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      url: {}\n      rename: {{ \"arfan.*\": \"arfan_replica.*\" }}\n  - parquet:\n      url: file://{}\n      max_file_age_ms: 300\n",
            src.url(),
            dst.url(),
            dir.display()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arfan", &dir, &mut p);
    changes(src, "arfan", 1);
    changes(src, "arfan", 2);
    wait_archive_equal(src, "arfan", &dir, &mut p);
    let replica = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(
            Duration::from_secs(120),
            "the replica equals the source",
            || {
                p.assert_running();
                checksums_equal(src, dst, &[("arfan.t", "arfan_replica.t")])
            },
        )
    }));
    assert!(
        replica.is_ok(),
        "the replica did not catch up:\n{}",
        p.output()
    );
    p.terminate(Duration::from_secs(10));
    assert_same_table(src, "arfan.t", dst, "arfan_replica.t", "id");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A column added mid-stream: files before it keep the old schema, files
/// after it have the new one, the manifest records both versions, and every
/// file stays readable.
#[test]
fn a_schema_change_starts_a_new_schema_version() {
    let (src, _) = pair();
    seed(src, "arddl");
    let dir = archive_dir("ddl");
    let path = archive_yaml("arddl", src, "arddl", &dir);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arddl", &dir, &mut p);
    changes(src, "arddl", 1);
    src.exec("ALTER TABLE arddl.t ADD COLUMN extra INT DEFAULT 7");
    src.exec("INSERT INTO arddl.t (id, name, extra) VALUES (99001, 'after', 8); UPDATE arddl.t SET name = 'upd' WHERE id = 2");
    let cols = ["id", "name", "extra"];
    wait_until(
        Duration::from_secs(120),
        "the archive has the rows after the schema change",
        || {
            p.assert_running();
            let got = archive_columns(&dir, "arddl", "t", &cols);
            got.contains("99001\tafter\t8\n") && got.contains("2\tupd\t7\n")
        },
    );
    // The columns every version has equal the source.
    let base = archive_columns(&dir, "arddl", "t", &["id", "name"]);
    let expected: Vec<(String, String)> =
        src.query("SELECT CAST(id AS CHAR), name FROM arddl.t ORDER BY id");
    let expected: String = expected
        .iter()
        .map(|(a, b)| format!("{a}\t{b}\n"))
        .collect();
    assert_eq!(base, expected);
    p.terminate(Duration::from_secs(10));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("arddl/t/_manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let schemas = manifest["schemas"].as_array().expect("schemas");
    assert_eq!(schemas.len(), 2, "{manifest}");
    assert!(schemas[1].to_string().contains("extra") && !schemas[0].to_string().contains("extra"));
    let versions: Vec<u64> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["schema_version"].as_u64())
        .collect();
    assert!(
        versions.contains(&1) && versions.contains(&2),
        "{versions:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
