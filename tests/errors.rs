//! Every failure a user can meet before data moves: each names what failed
//! and where, says what to do, and leaves the target untouched.

mod support;

use support::*;

fn validate(name: &str, yaml: &str, env: &[(&str, &str)]) -> Run {
    let path = write_pipeline(name, yaml);
    sluice(&["validate", path.to_str().unwrap()], env)
}

const GOOD: &str = "name: demo
source:
  mysql:
    url: mysql://root@127.0.0.1:1
    include: [\"shop.*\"]
sinks:
  - mysql:
      url: mysql://root@127.0.0.1:2
";

#[test]
fn validate_accepts_a_good_file_without_connecting() {
    let run = validate("good", GOOD, &[]);
    run.assert_ok();
    assert!(
        run.stdout.contains("ok (pipeline `demo`, 1 sink(s)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_bad_metrics_address_is_located() {
    let run = validate(
        "metrics",
        &format!("{GOOD}metrics:\n  listen: localhost-9464\n"),
        &[],
    );
    assert_eq!(run.status.code(), Some(2));
    run.assert_fails_with(&["metrics.yaml:10:", "is not an address", "127.0.0.1:9464"]);
}

#[test]
fn runtime_threads_are_checked() {
    let run = validate("threads", &format!("{GOOD}settings:\n  threads: 2\n"), &[]);
    run.assert_ok();
    let run = validate(
        "no-threads",
        &format!("{GOOD}settings:\n  threads: 0\n"),
        &[],
    );
    assert_eq!(run.status.code(), Some(2));
    run.assert_fails_with(&["`settings.threads` must be at least 1", "hint:"]);
}

#[test]
fn malformed_yaml_names_line_and_column() {
    let run = validate(
        "malformed",
        "name: demo\nsource: {mysql: {url: x}\nsinks: []\n",
        &[],
    );
    assert_eq!(run.status.code(), Some(2));
    run.assert_fails_with(&["malformed.yaml:", "invalid YAML", "hint:"]);
    let loc = run.stderr.split("malformed.yaml:").nth(1).unwrap_or("");
    assert!(
        loc.starts_with(|c: char| c.is_ascii_digit()),
        "no line number: {}",
        run.stderr
    );
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let run = validate("typo", &GOOD.replace("    include:", "    inclde:"), &[]);
    assert_eq!(run.status.code(), Some(2));
    run.assert_fails_with(&[
        "typo.yaml:5:5",
        "unknown key `inclde`",
        "did you mean `include`",
    ]);
}

#[test]
fn wrong_type_and_missing_key() {
    let run = validate(
        "wrongtype",
        &format!("{GOOD}settings:\n  batch_size: many\n"),
        &[],
    );
    run.assert_fails_with(&["wrongtype.yaml:10:", "wrong type"]);
    let run = validate(
        "nosinks",
        "name: x\nsource:\n  mysql:\n    url: mysql://h\n",
        &[],
    );
    run.assert_fails_with(&["missing required key `sinks`"]);
}

#[test]
fn missing_variable_is_named_with_its_position() {
    let yaml = GOOD.replace(
        "mysql://root@127.0.0.1:1",
        "mysql://root:${SLUICE_TEST_UNSET_PW}@127.0.0.1:1",
    );
    let run = validate("novar", &yaml, &[]);
    assert_eq!(run.status.code(), Some(2));
    run.assert_fails_with(&[
        "novar.yaml:4:23",
        "environment variable `SLUICE_TEST_UNSET_PW` is not set",
        "export SLUICE_TEST_UNSET_PW=",
    ]);
    // Set, it validates; and a default is used when unset.
    validate("var", &yaml, &[("SLUICE_TEST_UNSET_PW", "x")]).assert_ok();
    validate("vardefault", &yaml.replace("PW}", "PW:-dflt}"), &[]).assert_ok();
}

#[test]
fn unreachable_host() {
    let (_, dst) = pair();
    let yaml = migrate_yaml(
        "unreachable",
        "mysql://root:hunter2@127.0.0.1:1",
        &dst.url(),
        &["x.*"],
        "",
    );
    let run = run_pipeline("unreachable", &yaml, &[]);
    assert_eq!(run.status.code(), Some(1));
    run.assert_fails_with(&[
        "cannot connect to the source at mysql://root:***@127.0.0.1:1",
        "is the server running and listening at 127.0.0.1:1",
    ]);
    assert!(
        !run.stderr.contains("hunter2"),
        "password leaked:\n{}",
        run.stderr
    );
}

#[test]
fn wrong_password_is_reported_masked() {
    let (src, dst) = pair();
    src.exec("CREATE USER IF NOT EXISTS 'pwuser'@'127.0.0.1' IDENTIFIED BY 'right-pass'");
    let yaml = migrate_yaml(
        "badpw",
        &src.url_for("pwuser", "wrong-pass"),
        &dst.url(),
        &["x.*"],
        "",
    );
    let run = run_pipeline("badpw", &yaml, &[]);
    run.assert_fails_with(&[
        "cannot connect to the source",
        "access denied",
        "pwuser:***@",
        "check the user and password",
    ]);
    assert!(
        !run.stderr.contains("wrong-pass"),
        "password leaked:\n{}",
        run.stderr
    );
}

fn seed_errs(src: &MariaDb, db: &str) {
    src.exec(&format!(
        "CREATE DATABASE IF NOT EXISTS {db};
         CREATE TABLE IF NOT EXISTS {db}.t1 (id INT PRIMARY KEY);
         CREATE TABLE IF NOT EXISTS {db}.t2 (id INT PRIMARY KEY);
         INSERT IGNORE INTO {db}.t1 VALUES (1), (2);
         INSERT IGNORE INTO {db}.t2 VALUES (1);"
    ));
}

#[test]
fn source_without_reload_fails_before_writing() {
    let (src, dst) = pair();
    seed_errs(src, "e_reload");
    src.exec(
        "CREATE USER IF NOT EXISTS 'noreload'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT ON e_reload.* TO 'noreload'@'127.0.0.1'",
    );
    let yaml = migrate_yaml(
        "noreload",
        &src.url_for("noreload", "pw"),
        &dst.url(),
        &["e_reload.*"],
        "",
    );
    let run = run_pipeline("noreload", &yaml, &[]);
    run.assert_fails_with(&[
        "lacks the RELOAD privilege",
        "GRANT RELOAD ON *.*",
        "snapshot.lock: none",
    ]);
    assert!(
        !dst.database_exists("e_reload"),
        "nothing may be written on a precondition failure"
    );

    // The documented alternative works without RELOAD.
    let yaml = yaml.replace(
        "    include:",
        "    snapshot:\n      lock: none\n      parallelism: 1\n    include:",
    );
    run_pipeline("noreload-nolock", &yaml, &[]).assert_ok();
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM e_reload.t1"), 2);
}

#[test]
fn source_without_select_fails_before_writing() {
    let (src, dst) = pair();
    seed_errs(src, "e_select");
    src.exec(
        "CREATE USER IF NOT EXISTS 'noselect'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT RELOAD ON *.* TO 'noselect'@'127.0.0.1'",
    );
    let yaml = migrate_yaml(
        "noselect",
        &src.url_for("noselect", "pw"),
        &dst.url(),
        &["e_select.*"],
        "",
    );
    let run = run_pipeline("noselect", &yaml, &[]);
    run.assert_fails_with(&[
        "e_select.*",
        "match no table visible to the source user",
        "grant the user SELECT",
    ]);
    assert!(!dst.database_exists("e_select"));
}

#[test]
fn target_without_privileges_fails_before_writing() {
    let (src, dst) = pair();
    seed_errs(src, "e_target");
    dst.exec(
        "CREATE USER IF NOT EXISTS 'readonly'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT ON *.* TO 'readonly'@'127.0.0.1'",
    );
    let yaml = migrate_yaml(
        "targetpriv",
        &src.url(),
        &dst.url_for("readonly", "pw"),
        &["e_target.*"],
        "",
    );
    let run = run_pipeline("targetpriv", &yaml, &[]);
    run.assert_fails_with(&[
        "sink `mysql` at mysql://readonly:***@",
        "lacks INSERT on e_target.t1, CREATE on e_target.t1",
        "nothing was written",
    ]);
    assert!(!dst.database_exists("e_target"));
}

#[test]
fn existing_target_table_under_fail_writes_nothing() {
    let (src, dst) = pair();
    seed_errs(src, "e_exists");
    dst.exec(
        "CREATE DATABASE e_exists; CREATE TABLE e_exists.t2 (id INT PRIMARY KEY);
         INSERT INTO e_exists.t2 VALUES (7), (8), (9);",
    );
    let yaml = migrate_yaml("exists", &src.url(), &dst.url(), &["e_exists.*"], "");
    let run = run_pipeline("exists", &yaml, &[]);
    run.assert_fails_with(&[
        "1 target table(s) already exist: e_exists.t2",
        "existing_tables: truncate",
    ]);
    assert!(
        !dst.table_exists("e_exists", "t1"),
        "t1 must not be created"
    );
    assert_eq!(dst.scalar::<u64>("SELECT COUNT(*) FROM e_exists.t2"), 3);
}

#[test]
fn a_missing_plugin_is_named_before_anything_is_written() {
    let (src, dst) = pair();
    seed_errs(src, "e_transform");
    let yaml = migrate_yaml("transform", &src.url(), &dst.url(), &["e_transform.*"], "")
        + "transforms:\n  - plugin: no-such-plugin\n";
    let run = run_pipeline("transform", &yaml, &[]);
    run.assert_fails_with(&[
        "plugin `no-such-plugin` not found",
        "plugins/no-such-plugin",
    ]);
    assert!(!dst.database_exists("e_transform"));
}

#[test]
fn passwords_never_reach_the_output() {
    let (src, dst) = pair();
    seed_errs(src, "e_secret");
    src.exec(
        "CREATE USER IF NOT EXISTS 'secretive'@'127.0.0.1' IDENTIFIED BY 'Sup3r-S3cret';
         GRANT SELECT, RELOAD, REPLICATION CLIENT ON *.* TO 'secretive'@'127.0.0.1'",
    );
    let yaml = migrate_yaml(
        "secret",
        "mysql://secretive:${SRC_PW}@127.0.0.1:PORT",
        &dst.url(),
        &["e_secret.*"],
        "",
    )
    .replace("PORT", &src.port.to_string());
    let run = run_pipeline(
        "secret",
        &yaml,
        &[("SRC_PW", "Sup3r-S3cret"), ("RUST_LOG", "debug")],
    );
    run.assert_ok();
    assert!(!run.stderr.contains("Sup3r-S3cret") && !run.stdout.contains("Sup3r-S3cret"));
}
