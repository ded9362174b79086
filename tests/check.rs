//! `sluice check`: one test per precondition that can fail, each against a
//! server set up to fail it, each printing what failed and the fix; and
//! `sluice run` refusing to start on the same failures, writing nothing.

mod support;

use std::sync::OnceLock;

use support::*;

/// Runs `sluice check` on a pipeline text.
fn check(name: &str, yaml: &str) -> Run {
    let path = write_pipeline(name, yaml);
    sluice(&["check", path.to_str().expect("utf-8 path")], &[])
}

/// Asserts the check failed and its output has a `FAIL` line for `what`
/// and every needle (the detail and the fix).
fn assert_fails(run: &Run, what: &str, needles: &[&str]) {
    assert_eq!(
        run.status.code(),
        Some(1),
        "a failed check exits 1:\n{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains(what)),
        "no FAIL line for {what}:\n{}",
        run.stdout
    );
    for n in needles {
        assert!(
            run.stdout.contains(n),
            "output lacks {n:?}:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("NOT READY"), "{}", run.stdout);
}

fn cdc_yaml(name: &str, src: &str, dst: &str, db: &str) -> String {
    migrate_yaml(name, src, dst, &[&format!("{db}.*")], "")
        .replace("mode: snapshot", "mode: snapshot+cdc")
}

/// A source with statement-based logging, minimal row images and metadata,
/// and binlogs kept 10 minutes.
fn misconfigured() -> &'static MariaDb {
    static DB: OnceLock<MariaDb> = OnceLock::new();
    DB.get_or_init(|| {
        let db = MariaDb::start_with(
            "misconfigured",
            &[
                "--binlog-format=STATEMENT",
                "--binlog-row-image=MINIMAL",
                "--binlog-row-metadata=MINIMAL",
                "--binlog-expire-logs-seconds=600",
            ],
        );
        db.exec(
            "CREATE DATABASE c_bad;
             CREATE TABLE c_bad.t (id INT PRIMARY KEY, v INT);
             CREATE TABLE c_bad.nokey (a INT, b INT);
             INSERT INTO c_bad.t VALUES (1, 1);",
        );
        db
    })
}

#[test]
fn a_ready_pipeline_passes_every_check() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE c_ok; CREATE TABLE c_ok.t (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO c_ok.t VALUES (1, 'a');",
    );
    let yaml = cdc_yaml("c_ok", &src.url(), &dst.url(), "c_ok");
    let run = check("c_ok", &yaml);
    run.assert_ok();
    for line in [
        "pass   source connection",
        "pass   source privileges",
        "pass   source log_bin",
        "pass   source binlog_format",
        "pass   source binlog_row_image",
        "pass   source binlog_row_metadata",
        "pass   source binlog retention",
        "pass   source server_id",
        "pass   table keys",
        "pass   sink `mysql`",
    ] {
        assert!(run.stdout.contains(line), "lacks {line:?}:\n{}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("ready: 10 passed, 0 warning(s), 0 failure(s)"),
        "{}",
        run.stdout
    );
    assert!(!dst.database_exists("c_ok"), "check writes nothing");
}

#[test]
fn statement_logging_and_minimal_images_fail_with_the_fix() {
    let (_, dst) = pair();
    let bad = misconfigured();
    let yaml = cdc_yaml("c_bad", &bad.url(), &dst.url(), "c_bad");
    let run = check("c_bad", &yaml);
    assert_fails(
        &run,
        "source binlog_format",
        &[
            "binlog_format=STATEMENT",
            "SET GLOBAL binlog_format = 'ROW'",
        ],
    );
    assert_fails(
        &run,
        "source binlog_row_image",
        &[
            "binlog_row_image=MINIMAL",
            "SET GLOBAL binlog_row_image = 'FULL'",
        ],
    );
    for (what, fix) in [
        (
            "source binlog_row_metadata",
            "SET GLOBAL binlog_row_metadata = 'FULL'",
        ),
        (
            "source binlog retention",
            "SET GLOBAL binlog_expire_logs_seconds = 86400",
        ),
        ("table keys", "c_bad.nokey"),
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("WARN") && l.contains(what)),
            "no WARN line for {what}:\n{}",
            run.stdout
        );
        assert!(run.stdout.contains(fix), "lacks {fix:?}:\n{}", run.stdout);
    }
    assert!(
        run.stdout.contains("binlogs are kept 10 min"),
        "{}",
        run.stdout
    );

    // `sluice run` makes the same check first and writes nothing.
    run_pipeline("c_bad", &yaml, &[]).assert_fails_with(&[
        "binlog_format=STATEMENT",
        "SET GLOBAL binlog_format = 'ROW'",
    ]);
    assert!(!dst.database_exists("c_bad"), "nothing may be written");

    // A copy that does not follow changes does not need row logging.
    let snapshot = yaml.replace("mode: snapshot+cdc", "mode: snapshot");
    let run = check("c_bad_snapshot", &snapshot);
    run.assert_ok();
    assert!(!run.stdout.contains("binlog_format"), "{}", run.stdout);
}

#[test]
fn binary_logging_off_fails_with_the_fix() {
    let (_, dst) = pair();
    let nolog = MariaDb::start_with("nolog", &["--skip-log-bin"]);
    nolog.exec("CREATE DATABASE c_nolog; CREATE TABLE c_nolog.t (id INT PRIMARY KEY);");
    let yaml = cdc_yaml("c_nolog", &nolog.url(), &dst.url(), "c_nolog");
    assert_fails(
        &check("c_nolog", &yaml),
        "source log_bin",
        &["binary logging is off", "start the source with log_bin=ON"],
    );
    run_pipeline("c_nolog", &yaml, &[]).assert_fails_with(&["binary logging is off"]);
    assert!(!dst.database_exists("c_nolog"));
}

#[test]
fn the_sources_own_server_id_fails() {
    let (src, dst) = pair();
    src.exec("CREATE DATABASE c_sid; CREATE TABLE c_sid.t (id INT PRIMARY KEY);");
    let own: u32 = src.scalar("SELECT @@server_id");
    let yaml = cdc_yaml("c_sid", &src.url(), &dst.url(), "c_sid").replace(
        "    include:",
        &format!("    cdc:\n      server_id: {own}\n    include:"),
    );
    assert_fails(
        &check("c_sid", &yaml),
        "source server_id",
        &[
            &format!("server id {own} is the source's own"),
            "source.mysql.cdc.server_id",
        ],
    );
}

#[test]
fn missing_replication_privileges_fail() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE c_repl; CREATE TABLE c_repl.t (id INT PRIMARY KEY);
         CREATE USER IF NOT EXISTS 'norepl'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT ON c_repl.* TO 'norepl'@'127.0.0.1';
         GRANT RELOAD ON *.* TO 'norepl'@'127.0.0.1';",
    );
    let yaml = cdc_yaml("c_repl", &src.url_for("norepl", "pw"), &dst.url(), "c_repl");
    assert_fails(
        &check("c_repl", &yaml),
        "source privileges",
        &[
            "REPLICATION SLAVE",
            "REPLICATION CLIENT or BINLOG MONITOR",
            "GRANT SELECT, RELOAD, REPLICATION SLAVE",
        ],
    );
    run_pipeline("c_repl", &yaml, &[]).assert_fails_with(&["REPLICATION SLAVE"]);
    assert!(!dst.database_exists("c_repl"));
}

#[test]
fn unreachable_source_and_wrong_password_fail() {
    let (src, dst) = pair();
    let yaml = cdc_yaml("c_unreach", "mysql://root@127.0.0.1:1", &dst.url(), "x");
    assert_fails(
        &check("c_unreach", &yaml),
        "source",
        &["127.0.0.1:1", "is the server running"],
    );
    let yaml = cdc_yaml("c_pw", &src.url_for("root", "secret-pw"), &dst.url(), "x");
    let run = check("c_pw", &yaml);
    assert_fails(
        &run,
        "source",
        &["access denied", "check the user and password"],
    );
    assert!(
        !run.stdout.contains("secret-pw"),
        "the password is masked:\n{}",
        run.stdout
    );
}

#[test]
fn existing_target_tables_fail_under_the_fail_policy() {
    let (src, dst) = pair();
    src.exec("CREATE DATABASE c_exist; CREATE TABLE c_exist.t (id INT PRIMARY KEY);");
    dst.exec("CREATE DATABASE c_exist; CREATE TABLE c_exist.t (id INT PRIMARY KEY);");
    let yaml = migrate_yaml("c_exist", &src.url(), &dst.url(), &["c_exist.*"], "");
    assert_fails(
        &check("c_exist", &yaml),
        "sink `mysql`",
        &["already exist: c_exist.t", "existing_tables: truncate"],
    );
    let truncate = migrate_yaml(
        "c_exist",
        &src.url(),
        &dst.url(),
        &["c_exist.*"],
        "      existing_tables: truncate\n",
    );
    check("c_exist_truncate", &truncate).assert_ok();
}

#[test]
fn a_plugin_that_rejects_its_config_fails() {
    let (src, dst) = pair();
    src.exec("CREATE DATABASE c_plugin; CREATE TABLE c_plugin.t (id INT PRIMARY KEY, email VARCHAR(50));");
    let yaml = migrate_yaml("c_plugin", &src.url(), &dst.url(), &["c_plugin.*"], "")
        + "transforms:\n  - plugin: mask\n    config:\n      columns: { email: scramble }\n";
    assert_fails(
        &check("c_plugin", &yaml),
        "plugins",
        &["unknown rule `scramble`", "fix the transform's `config:`"],
    );
}

#[test]
fn an_unwritable_archive_fails() {
    let (src, _) = pair();
    src.exec("CREATE DATABASE c_archive; CREATE TABLE c_archive.t (id INT PRIMARY KEY);");
    let yaml = format!(
        "name: c_archive\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"c_archive.*\"]\nsinks:\n  - parquet:\n      name: lake\n      url: file:///proc/sluice-archive\n",
        src.url()
    );
    assert_fails(
        &check("c_archive", &yaml),
        "sink `lake`",
        &["/proc/sluice-archive"],
    );
}

#[test]
fn missing_reload_for_the_snapshot_lock_fails() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE c_reload; CREATE TABLE c_reload.t (id INT PRIMARY KEY);
         CREATE USER IF NOT EXISTS 'c_noreload'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT ON c_reload.* TO 'c_noreload'@'127.0.0.1';",
    );
    let yaml = migrate_yaml(
        "c_reload",
        &src.url_for("c_noreload", "pw"),
        &dst.url(),
        &["c_reload.*"],
        "",
    );
    assert_fails(
        &check("c_reload", &yaml),
        "source",
        &[
            "lacks the RELOAD privilege",
            "GRANT RELOAD ON *.*",
            "snapshot.lock: none",
        ],
    );
}

#[test]
fn missing_target_privileges_fail() {
    let (src, dst) = pair();
    src.exec("CREATE DATABASE c_tpriv; CREATE TABLE c_tpriv.t (id INT PRIMARY KEY);");
    dst.exec(
        "CREATE USER IF NOT EXISTS 'c_readonly'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT ON *.* TO 'c_readonly'@'127.0.0.1';",
    );
    let yaml = cdc_yaml(
        "c_tpriv",
        &src.url(),
        &dst.url_for("c_readonly", "pw"),
        "c_tpriv",
    );
    let run = check("c_tpriv", &yaml);
    assert_fails(
        &run,
        "sink `mysql`",
        &[
            "lacks INSERT on c_tpriv.t, CREATE on c_tpriv.t",
            "on sluice.checkpoints",
            "GRANT CREATE, INSERT, UPDATE, DELETE",
        ],
    );
    assert!(
        !run.stdout.contains("pw@"),
        "the password is masked:\n{}",
        run.stdout
    );
}
