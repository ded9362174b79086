//! The Parquet archive sink end to end: snapshot and changes into Parquet
//! files on a local folder, read back by an independent reader (pyarrow),
//! through a crash.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::*;

/// Where a test's archive lives: a local folder or a bucket prefix on the
/// test S3 server.
struct Archive {
    /// `file://` folder path, or `s3://bucket/prefix`.
    root: String,
    /// The folder holding the objects (for S3: inside the server's root).
    dir: PathBuf,
    s3: Option<&'static S3Server>,
}

impl Archive {
    fn local(name: &str) -> Archive {
        let dir =
            std::env::temp_dir().join(format!("sluice-archive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Archive {
            root: dir.display().to_string(),
            dir,
            s3: None,
        }
    }

    fn s3(name: &str) -> Archive {
        let server = S3Server::shared();
        let bucket = server.bucket(&format!("arch-{name}"));
        Archive {
            root: format!("s3://{bucket}/lake"),
            dir: server.root.join(&bucket).join("lake"),
            s3: Some(server),
        }
    }

    /// The `url:` and connection lines of a sink (indented for `sinks:`).
    fn sink(&self) -> String {
        match self.s3 {
            None => format!("      url: file://{}\n", self.root),
            Some(server) => format!("      url: {}\n{}", self.root, server.sink_yaml(6)),
        }
    }

    fn reader(&self, db: &str, table: &str, columns: &[&str], no_stray: bool) -> String {
        self.read_keyed(db, table, "id", columns, no_stray)
    }

    /// The archive's table by pyarrow, with `key` (`-`: no key).
    fn read_keyed(
        &self,
        db: &str,
        table: &str,
        key: &str,
        columns: &[&str],
        no_stray: bool,
    ) -> String {
        self.try_read_keyed(db, table, key, columns, no_stray)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Archive::read_keyed`], the reader's failure as an error.
    fn try_read_keyed(
        &self,
        db: &str,
        table: &str,
        key: &str,
        columns: &[&str],
        no_stray: bool,
    ) -> Result<String, String> {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(support::root().join("tests/support/parquet_state.py"))
            .args([self.root.as_str(), db, table, key])
            .args(columns);
        if let Some(server) = self.s3 {
            cmd.envs(server.reader_env());
        }
        if no_stray {
            cmd.env("CHECK_NO_STRAY", "1");
        }
        let out = cmd.output().expect("running python3 (pyarrow)");
        if !out.status.success() {
            return Err(format!(
                "parquet_state.py failed (is pyarrow installed? `pip install pyarrow`):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.starts_with("error:") {
            return Err(text);
        }
        Ok(text)
    }

    /// The table's state rebuilt from the archive by pyarrow, as TSV.
    fn state(&self, db: &str, table: &str) -> String {
        self.reader(db, table, &[], false)
    }

    /// Like [`Archive::state`], printing only `columns`.
    fn columns(&self, db: &str, table: &str, columns: &[&str]) -> String {
        self.reader(db, table, columns, false)
    }

    /// Fails unless every data file in the table's folder is committed.
    fn assert_no_stray_files(&self, db: &str, table: &str) {
        self.reader(db, table, &[], true);
    }

    /// tests/support/archive_matrix.py: the table rebuilt from the archive
    /// against the source, value by value (`ok N rows` or `error: ...`).
    fn compare_values(&self, src: &MariaDb, db: &str, table: &str, key: &str) -> String {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(support::root().join("tests/support/archive_matrix.py"))
            .args([self.root.as_str(), db, table, key, &src.port.to_string()]);
        if let Some(server) = self.s3 {
            cmd.envs(server.reader_env());
        }
        let out = cmd.output().expect("running python3 (pyarrow)");
        assert!(
            out.status.success(),
            "archive_matrix.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn manifest(&self, db: &str, table: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join(db).join(table).join("_manifest.json"))
            .expect("reading the manifest");
        serde_json::from_str(&text).expect("manifest JSON")
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

fn archive_yaml(name: &str, src: &MariaDb, db: &str, archive: &Archive) -> PathBuf {
    write_pipeline(
        name,
        &format!(
            "name: {name}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"{db}.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - parquet:\n{}      max_file_rows: 700\n      max_file_age_ms: 300\nsettings:\n  batch_size: 250\n",
            src.url(),
            archive.sink()
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

fn wait_archive_equal(src: &MariaDb, db: &str, archive: &Archive, p: &mut Background) {
    p.wait_for(
        Duration::from_secs(120),
        "the archive equals the source",
        || {
            // Read while sluice writes: pyarrow reads an object in ranges,
            // and a manifest replaced between two of them reads as
            // neither (not JSON). That is "not yet"; the checks after
            // sluice stops read strictly.
            let got = archive.try_read_keyed(db, "t", "id", &[], false)?;
            let expected = source_state(src, db, "t");
            if got == expected {
                return Ok(());
            }
            Err(format!(
                "archive differs: {} rows vs {} in the source; first difference {:?}",
                got.lines().count(),
                expected.lines().count(),
                got.lines().zip(expected.lines()).find(|(a, b)| a != b),
            ))
        },
    );
}

fn wait_replica_equal(src: &MariaDb, dst: &MariaDb, table: (&str, &str), p: &mut Background) {
    p.wait_for(
        Duration::from_secs(120),
        "the replica equals the source",
        || match checksums_equal(src, dst, &[table]) {
            true => Ok(()),
            false => Err(format!("the checksum of {} differs", table.1)),
        },
    );
}

/// Snapshot and live changes on the S3 server, and on a local folder with
/// before images.
#[test]
fn snapshot_and_changes_rebuild_the_source_from_parquet() {
    let (src, _) = pair();
    seed(src, "arch");
    let archive = Archive::s3("live");
    let path = archive_yaml("arch", src, "arch", &archive);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arch", &archive, &mut p);
    for round in 1..=3 {
        changes(src, "arch", round);
    }
    wait_archive_equal(src, "arch", &archive, &mut p);
    let status = p.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
    archive.assert_no_stray_files("arch", "t");
    // Several files: snapshot parts and change files, all listed.
    let manifest = archive.manifest("arch", "t").to_string();
    assert!(
        manifest.contains("\"kind\":\"snapshot\"") && manifest.contains("\"kind\":\"changes\""),
        "{manifest}"
    );
    assert!(manifest.matches("\"path\"").count() >= 4, "{manifest}");
    archive.remove();
}

/// Every column type survives the archive: the type-matrix tables, after
/// the snapshot and after changes, equal the source value by value (zero
/// dates, unsigned maxima, DECIMAL(65,30), TIME ranges, JSON, geometry,
/// binary keys), read back by pyarrow from the S3 server.
#[test]
fn every_column_type_round_trips_through_the_archive() {
    let (src, _) = pair();
    src.exec(&type_matrix_sql("armx"));
    let archive = Archive::s3("types");
    let path = archive_yaml("armx", src, "armx", &archive);
    let mut p = Background::start(&path, &[]);
    let tables = [
        ("matrix", "id", 3004),
        ("latin", "id", 2),
        ("binkey", "k", 3),
    ];
    let all_equal = |p: &mut Background, extra: usize| {
        p.wait_for(
            Duration::from_secs(120),
            "the archive equals the source",
            || {
                for (t, key, rows) in tables {
                    let got = archive.compare_values(src, "armx", t, key);
                    let rows = if t == "matrix" { rows + extra } else { rows };
                    if got != format!("ok {rows} rows") {
                        return Err(format!("armx.{t}: {got}"));
                    }
                }
                Ok(())
            },
        );
    };
    all_equal(&mut p, 0);
    src.exec(
        "CREATE DATABASE armx_scratch;
         CREATE TABLE armx_scratch.copy AS SELECT * FROM armx.matrix WHERE id <= 4;
         UPDATE armx_scratch.copy SET id = id + 100000;
         INSERT INTO armx.matrix SELECT * FROM armx_scratch.copy;
         UPDATE armx.matrix SET ti = -1, d65 = -d65, vc = 'changed ✓', bl = X'00', dt = '2000-01-01', j = '{\"u\": 1}', g = NULL WHERE id = 2;
         UPDATE armx.matrix SET id = 5 WHERE id = 4;
         DELETE FROM armx.matrix WHERE id = 3;
         UPDATE armx.binkey SET v = X'FFFF' WHERE k = X'00';",
    );
    all_equal(&mut p, 3);
    p.terminate(Duration::from_secs(10));
    // JSON columns carry Parquet's JSON logical type.
    let json = std::process::Command::new("python3")
        .args(["-c", "import sys, pyarrow.parquet as pq; s = pq.ParquetFile(sys.argv[1]).schema; print([str(s.column(i).logical_type) for i in range(len(s)) if s.column(i).name == sys.argv[2]])"])
        .arg(archive.dir.join(
            archive.manifest("armx", "matrix")["files"][0]["path"]
                .as_str()
                .expect("path"),
        ))
        .arg("j")
        .output()
        .expect("python3");
    assert!(
        String::from_utf8_lossy(&json.stdout).contains("JSON"),
        "{}{}",
        String::from_utf8_lossy(&json.stdout),
        String::from_utf8_lossy(&json.stderr)
    );
    archive.remove();
}

/// A file larger than one upload part goes up as a multipart upload and
/// reads back whole.
#[test]
fn large_files_upload_in_parts() {
    let (src, _) = pair();
    src.exec(
        "CREATE DATABASE arbig; CREATE TABLE arbig.t (id INT PRIMARY KEY, b VARBINARY(255));
         INSERT INTO arbig.t SELECT seq, RANDOM_BYTES(200) FROM arbig.seq_1_to_60000;",
    );
    let archive = Archive::s3("big");
    let yaml = format!(
        "name: arbig\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"arbig.*\"]\nsinks:\n  - parquet:\n{}",
        src.url(),
        archive.sink()
    );
    run_pipeline("arbig", &yaml, &[]).assert_ok();
    let manifest = archive.manifest("arbig", "t");
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{manifest}");
    let path = archive.dir.join(files[0]["path"].as_str().expect("path"));
    let size = std::fs::metadata(&path).expect("the part").len();
    assert!(
        size > 8 << 20,
        "{size} bytes: not above one 8 MiB upload part"
    );
    let rows: Vec<(String, String)> =
        src.query("SELECT CAST(id AS CHAR), LOWER(HEX(b)) FROM arbig.t ORDER BY id");
    let expected: String = rows.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    assert!(
        archive.state("arbig", "t") == expected,
        "the archive differs"
    );
    archive.remove();
}

/// Updates carry their old values in `_before_` columns when asked.
#[test]
fn before_images_hold_the_old_values_of_updates() {
    let (src, _) = pair();
    seed(src, "arbef");
    let archive = Archive::local("before");
    let yaml = std::fs::read_to_string(archive_yaml("arbef", src, "arbef", &archive))
        .expect("pipeline")
        .replace(
            "      max_file_rows: 700\n",
            "      max_file_rows: 700\n      before_images: true\n",
        );
    let path = write_pipeline("arbef", &yaml);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arbef", &archive, &mut p);
    src.exec("UPDATE arbef.t SET name = 'renamed' WHERE id = 5");
    p.wait_for(Duration::from_secs(60), "the update is archived", || {
        let got = archive.columns("arbef", "t", &["id", "name", "_before_name", "_op"]);
        match got.contains("5\trenamed\tn5\tupdate\n") {
            true => Ok(()),
            false => Err(format!("row 5 is {:?}", got.lines().nth(4))),
        }
    });
    // Snapshot rows have no before image.
    assert!(archive
        .columns("arbef", "t", &["id", "_before_name"])
        .contains("6\t\\N\n"));
    p.terminate(Duration::from_secs(10));
    archive.remove();
}

/// SIGKILL five times while changes are being uploaded to S3: the archive
/// still equals the source, no change appears twice, no file is missing,
/// and no uncommitted or partial file is left in the table's folder.
#[test]
fn sigkill_while_archiving_leaves_no_duplicates_or_gaps() {
    let (src, _) = pair();
    seed(src, "archk");
    let archive = Archive::s3("kill");
    let path = archive_yaml("archk", src, "archk", &archive);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "archk", &archive, &mut p);
    for round in 1..=5 {
        changes(src, "archk", round);
        p.kill();
        p = Background::start(&path, &[]);
    }
    wait_archive_equal(src, "archk", &archive, &mut p);
    p.terminate(Duration::from_secs(10));
    archive.assert_no_stray_files("archk", "t");
    archive.remove();
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

/// A missing bucket, wrong credentials, an unknown setting and an
/// unreachable endpoint each stop the pipeline before any data moves, with
/// what to fix; the secret is never printed.
#[test]
fn bad_object_storage_settings_fail_before_any_data_moves() {
    let (src, _) = pair();
    src.exec("CREATE DATABASE ars3bad; CREATE TABLE ars3bad.t (id INT PRIMARY KEY); INSERT INTO ars3bad.t VALUES (1)");
    let server = S3Server::shared();
    server.bucket("arch-bad");
    let yaml = |url: &str, settings: &str| {
        format!(
            "name: ars3bad\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"ars3bad.*\"]\nsinks:\n  - parquet:\n      url: {url}\n{settings}",
            src.url()
        )
    };
    let good = server.sink_yaml(6);
    run_pipeline("s3-nobucket", &yaml("s3://no-such-bucket/x", &good), &[])
        .assert_fails_with(&["no-such-bucket", "does not exist"]);
    let wrong_secret = good.replace(S3_SECRET, "not-the-secret-42");
    let run = run_pipeline("s3-secret", &yaml("s3://arch-bad/x", &wrong_secret), &[]);
    run.assert_fails_with(&["arch-bad", "credentials"]);
    assert!(!run.stderr.contains("not-the-secret-42"), "{}", run.stderr);
    let wrong_key = good.replace(S3_KEY, "nosuchkey");
    run_pipeline("s3-key", &yaml("s3://arch-bad/x", &wrong_key), &[])
        .assert_fails_with(&["credentials"]);
    let unknown = format!("{good}      options: {{ no_such_option: \"1\" }}\n");
    run_pipeline("s3-opt", &yaml("s3://arch-bad/x", &unknown), &[])
        .assert_fails_with(&["no_such_option", "line"]);
    let layout =
        format!("{good}      layout: {{ changes: \"c/{{first}}_{{last}}_{{minute}}.parquet\" }}\n");
    run_pipeline("s3-layout", &yaml("s3://arch-bad/x", &layout), &[])
        .assert_fails_with(&["{minute}", "line"]);
    let down =
        good.replace(&server.endpoint(), "http://127.0.0.1:9") + "      retry_timeout_s: 2\n";
    run_pipeline("s3-down", &yaml("s3://arch-bad/x", &down), &[])
        .assert_fails_with(&["127.0.0.1:9", "unreachable"]);
    // Nothing was written: the bucket holds no data files.
    let written: Vec<_> = std::fs::read_dir(server.root.join("arch-bad"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        written.iter().all(|p| !p.ends_with("ars3bad")),
        "{written:?}"
    );
}

/// One capture, two sinks: a MySQL replica and a Parquet archive, each with
/// its own checkpoint, both equal to the source after changes and a crash.
#[test]
fn one_capture_feeds_a_replica_and_an_archive() {
    let (src, dst) = pair();
    seed(src, "arfan");
    let archive = Archive::local("fan");
    let path = write_pipeline(
        "arfan",
        &format!(
            "name: arfan\nsource:\n  mysql:\n    url: {}\n    mode: snapshot+cdc\n    include: [\"arfan.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - mysql:\n      url: {}\n      rename: {{ \"arfan.*\": \"arfan_replica.*\" }}\n  - parquet:\n{}      max_file_age_ms: 300\n",
            src.url(),
            dst.url(),
            archive.sink()
        ),
    );
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arfan", &archive, &mut p);
    changes(src, "arfan", 1);
    // A crash while the replica may still be loading its snapshot.
    p.kill();
    let mut p = Background::start(&path, &[]);
    changes(src, "arfan", 2);
    wait_archive_equal(src, "arfan", &archive, &mut p);
    wait_replica_equal(src, dst, ("arfan.t", "arfan_replica.t"), &mut p);
    p.terminate(Duration::from_secs(10));
    assert_same_table(src, "arfan.t", dst, "arfan_replica.t", "id");

    // The replica as if it had stopped during its snapshot while the archive
    // finished: at the next start both take a new snapshot, and rows deleted
    // meanwhile (never captured) do not linger in the archive.
    // `sluice status` reads both checkpoints; a change made while stopped
    // puts both behind the source.
    let status = sluice(&["status", path.to_str().expect("utf-8 path")], &[]);
    status.assert_ok();
    for sink in ["mysql", "parquet"] {
        let row = status
            .stdout
            .lines()
            .find(|l| l.starts_with(sink))
            .unwrap_or_else(|| panic!("no row for {sink}:\n{}", status.stdout));
        assert!(row.contains(" cdc ") && row.contains("binlog."), "{row}");
        assert!(row.trim_end().ends_with(" s"), "no checkpoint age: {row}");
    }
    src.exec("INSERT INTO arfan.t (id, name) VALUES (88888, 'while stopped')");
    let status = sluice(&["status", path.to_str().expect("utf-8 path")], &[]);
    let behind = status
        .stdout
        .lines()
        .filter(|l| l.contains(" bytes") || l.contains("binlog file(s)"))
        .count();
    assert_eq!(behind, 2, "both sinks are behind:\n{}", status.stdout);

    let first = snapshot_keys(&archive, "arfan", "t");
    dst.exec("UPDATE sluice.checkpoints SET phase = 'snapshot' WHERE pipeline = 'arfan'");
    let status = sluice(&["status", path.to_str().expect("utf-8 path")], &[]);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("mysql") && l.contains("snapshot")),
        "{}",
        status.stdout
    );
    src.exec("DELETE FROM arfan.t WHERE id % 13 = 0; INSERT INTO arfan.t (id, name) VALUES (77777, 'while stopped')");
    let mut p = Background::start(&path, &[]);
    changes(src, "arfan", 3);
    wait_archive_equal(src, "arfan", &archive, &mut p);
    wait_replica_equal(src, dst, ("arfan.t", "arfan_replica.t"), &mut p);
    p.terminate(Duration::from_secs(10));
    let second = snapshot_keys(&archive, "arfan", "t");
    assert!(
        first.len() == 1 && second.len() == 1 && first != second,
        "the archive should hold only the new snapshot: {first:?} then {second:?}"
    );
    archive.remove();
}

/// The snapshots the archive's committed files come from.
fn snapshot_keys(archive: &Archive, db: &str, table: &str) -> Vec<String> {
    let manifest = archive.manifest(db, table);
    let mut keys: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["kind"] == "snapshot")
        .filter_map(|f| f["first_position"].as_str().map(String::from))
        .collect();
    keys.dedup();
    keys
}

/// A column added mid-stream: files before it keep the old schema, files
/// after it have the new one, the manifest records both versions, and every
/// file stays readable.
#[test]
fn a_schema_change_starts_a_new_schema_version() {
    let (src, _) = pair();
    seed(src, "arddl");
    let archive = Archive::local("ddl");
    let path = archive_yaml("arddl", src, "arddl", &archive);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arddl", &archive, &mut p);
    changes(src, "arddl", 1);
    src.exec("ALTER TABLE arddl.t ADD COLUMN extra INT DEFAULT 7");
    src.exec("INSERT INTO arddl.t (id, name, extra) VALUES (99001, 'after', 8); UPDATE arddl.t SET name = 'upd' WHERE id = 2");
    let cols = ["id", "name", "extra"];
    p.wait_for(
        Duration::from_secs(120),
        "the archive has the rows after the schema change",
        || {
            let got = archive.columns("arddl", "t", &cols);
            match got.contains("99001\tafter\t8\n") && got.contains("2\tupd\t7\n") {
                true => Ok(()),
                false => Err(format!(
                    "rows 2 and 99001 not there yet ({} rows)",
                    got.lines().count()
                )),
            }
        },
    );
    // The columns every version has equal the source.
    let base = archive.columns("arddl", "t", &["id", "name"]);
    let expected: Vec<(String, String)> =
        src.query("SELECT CAST(id AS CHAR), name FROM arddl.t ORDER BY id");
    let expected: String = expected
        .iter()
        .map(|(a, b)| format!("{a}\t{b}\n"))
        .collect();
    assert_eq!(base, expected);
    p.terminate(Duration::from_secs(10));
    let manifest = archive.manifest("arddl", "t");
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
    archive.remove();
}

/// Every row of a transaction carries the transaction's commit time, even
/// when its statements ran seconds apart.
#[test]
fn every_row_of_a_transaction_has_its_commit_time() {
    let (src, _) = pair();
    seed(src, "arts");
    let archive = Archive::local("commit-ts");
    let path = archive_yaml("arts", src, "arts", &archive);
    let mut p = Background::start(&path, &[]);
    wait_archive_equal(src, "arts", &archive, &mut p);
    // Statements seconds apart in one transaction (the gap is the test's
    // subject, not a wait for anything).
    src.exec(
        "BEGIN;
         INSERT INTO arts.t VALUES (70001, 'first', 1, NOW(6), NULL);
         DO SLEEP(2.2);
         INSERT INTO arts.t VALUES (70002, 'second', 1, NOW(6), NULL);
         UPDATE arts.t SET name = 'third' WHERE id = 1;
         COMMIT;",
    );
    let committed: String = src.scalar(
        "SELECT DATE_FORMAT(MAX(ts), '%Y-%m-%d %H:%i:%s') FROM arts.t WHERE id IN (70001, 70002)",
    );
    let rows = |archive: &Archive| -> Vec<String> {
        archive
            .columns("arts", "t", &["id", "_commit_ts"])
            .lines()
            .filter(|l| {
                l.starts_with("70001\t") || l.starts_with("70002\t") || l.starts_with("1\t")
            })
            .map(str::to_string)
            .collect()
    };
    p.wait_for(
        Duration::from_secs(60),
        "the transaction is archived",
        || {
            let got = rows(&archive);
            (got.len() == 3 && !got[0].ends_with("\\N"))
                .then_some(())
                .ok_or(format!("{got:?}"))
        },
    );
    let got = rows(&archive);
    let times: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        times.len(),
        1,
        "one commit time for the whole transaction: {got:?}"
    );
    let t = times.into_iter().next().unwrap_or_default();
    assert!(
        t[..19] >= committed[..19],
        "the commit time {t} is not before the last statement ({committed})"
    );
    p.terminate(Duration::from_secs(10));
    archive.remove();
}

/// A table without a key: an archive with before images replays its
/// updates and verifies equal; one without them says it cannot verify the
/// table (instead of reporting rows that are not there).
#[test]
fn a_table_without_a_key_is_verified_through_before_images() {
    let (src, _) = pair();
    src.exec(
        "CREATE DATABASE arkey;
         CREATE TABLE arkey.n (a INT, b VARCHAR(10) COLLATE utf8mb4_general_ci);
         INSERT INTO arkey.n SELECT seq % 5, IF(seq % 2 = 0, 'x', 'X') FROM arkey.seq_1_to_50;",
    );
    let (plain, full) = (
        Archive::local("keyless-plain"),
        Archive::local("keyless-full"),
    );
    let path = write_pipeline(
        "arkey",
        &format!(
            "name: arkey\nsource:\n  mysql:\n    url: {}\n    include: [\"arkey.*\"]\n    cdc:\n      heartbeat_ms: 200\nsinks:\n  - parquet:\n      name: plain\n{}      max_file_age_ms: 300\n  - parquet:\n      name: full\n{}      max_file_age_ms: 300\n      before_images: true\n",
            src.url(),
            plain.sink(),
            full.sink()
        ),
    );
    let check = sluice(&["check", path.to_str().unwrap()], &[]);
    assert!(
        check.stdout.contains("arkey.n has no key") && check.stdout.contains("before_images: true"),
        "{}",
        check.stdout
    );
    let mut p = Background::start(&path, &[]);
    p.wait_for(Duration::from_secs(60), "the snapshot is archived", || {
        (full
            .read_keyed("arkey", "n", "-", &["a", "b"], false)
            .lines()
            .count()
            == 50)
            .then_some(())
            .ok_or("not yet".into())
    });
    src.exec(
        "UPDATE arkey.n SET a = a + 10 WHERE BINARY b = 'X' AND a = 1;
         UPDATE arkey.n SET b = 'y' WHERE a = 2 LIMIT 3;
         DELETE FROM arkey.n WHERE a = 3 LIMIT 2;",
    );
    p.wait_for(Duration::from_secs(60), "the changes are archived", || {
        let seen = full.read_keyed("arkey", "n", "-", &["a", "b"], false);
        (seen.lines().filter(|l| l.starts_with("11\t")).count() == 5)
            .then_some(())
            .ok_or(seen)
    });
    p.terminate(Duration::from_secs(10));
    let run = sluice(&["verify", path.to_str().unwrap()], &[]);
    assert!(run.ok(), "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let after = |sink: &str| -> String {
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("sink `{sink}`")))
            .unwrap_or(0);
        lines.get(at + 1).copied().unwrap_or("").to_string()
    };
    assert!(
        after("plain").contains("skipped") && after("plain").contains("before_images: true"),
        "{}",
        run.stdout
    );
    assert!(
        after("full").contains("50 rows") || after("full").contains("48 rows"),
        "{}",
        run.stdout
    );
    assert!(after("full").contains("equal"), "{}", run.stdout);
    plain.remove();
    full.remove();
}
