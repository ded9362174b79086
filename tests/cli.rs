//! The command line: help text, log formats, and the recorded snapshot position.

mod support;

use support::*;

/// The tests below write to the shared source; the position test needs it quiet.
static SOURCE_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn help_has_examples_for_each_command() {
    for cmd in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["validate", "--help"],
        vec!["plugin", "test", "--help"],
    ] {
        let run = sluice(&cmd, &[]);
        run.assert_ok();
        assert!(run.stdout.contains("Examples:"), "{cmd:?}:\n{}", run.stdout);
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let _quiet = SOURCE_WRITES.lock();
    let (src, dst) = pair();
    src.exec("CREATE DATABASE cli_json; CREATE TABLE cli_json.t (id INT PRIMARY KEY); INSERT INTO cli_json.t VALUES (1)");
    let yaml = migrate_yaml("json", &src.url(), &dst.url(), &["cli_json.*"], "");
    let path = write_pipeline("json", &yaml);
    let run = sluice(
        &[
            "run",
            "--log-format",
            "json",
            "--progress",
            "log",
            path.to_str().unwrap(),
        ],
        &[],
    );
    run.assert_ok();
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l.starts_with('{') && l.ends_with('}') && l.contains("\"level\""),
            "not JSON: {l}"
        );
    }
    assert!(
        run.stderr.contains("\"message\":\"copy finished\""),
        "{}",
        run.stderr
    );
}

/// The position printed is the source's binlog position at the snapshot,
/// with and without the lock (MariaDB's binlog_snapshot_file/position).
#[test]
fn snapshot_position_matches_the_source_binlog() {
    let _quiet = SOURCE_WRITES.lock();
    let (src, dst) = pair();
    src.exec("CREATE DATABASE cli_pos; CREATE TABLE cli_pos.t (id INT PRIMARY KEY); INSERT INTO cli_pos.t VALUES (1), (2)");
    for (db, extra) in [
        ("cli_pos_lock", ""),
        ("cli_pos_nolock", "      lock: none\n      parallelism: 1\n"),
    ] {
        let status: Vec<(String, u64, String, String)> = src.query("SHOW MASTER STATUS");
        let gtid: String = src.scalar("SELECT @@gtid_binlog_pos");
        let yaml = migrate_yaml(
            db,
            &src.url(),
            &dst.url(),
            &["cli_pos.*"],
            &format!("      rename:\n        \"cli_pos.*\": \"{db}.*\"\n"),
        )
        .replace(
            "    include:",
            &format!("    snapshot:\n{extra}      chunk_rows: 1000\n    include:"),
        );
        let run = run_pipeline(db, &yaml, &[]);
        run.assert_ok();
        let expected = format!(
            "snapshot position: {}:{} gtid {gtid}",
            status[0].0, status[0].1
        );
        assert!(
            run.stdout.contains(&expected),
            "expected {expected:?} in:\n{}",
            run.stdout
        );
    }
}
