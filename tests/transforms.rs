//! WebAssembly transforms end to end: plugins built from source, a pipeline
//! through them, and hostile plugins that must fail cleanly.

mod support;

use support::*;

fn transform_yaml(name: &str, src: &MariaDb, dst: &MariaDb, db: &str, transforms: &str) -> String {
    format!(
        "name: {name}\nsource:\n  mysql:\n    url: {}\n    mode: snapshot\n    include: [\"{db}.*\"]\ntransforms:\n{transforms}sinks:\n  - mysql:\n      url: {}\n      rename:\n        \"{db}.*\": \"{db}_out.*\"\n",
        src.url(),
        dst.url()
    )
}

fn seed(src: &MariaDb, db: &str) {
    src.exec(&format!(
        "CREATE DATABASE {db};
         CREATE TABLE {db}.t (id INT PRIMARY KEY, email VARCHAR(100), n DECIMAL(10,2), d DATETIME(6), b BLOB);
         INSERT INTO {db}.t SELECT seq, CONCAT('user', seq, '@example.com'), seq / 4, '2024-01-01' + INTERVAL seq SECOND, X'00FF' FROM {db}.seq_1_to_500;"
    ));
}

#[test]
fn noop_plugin_passes_everything_through_exactly() {
    let (src, dst) = pair();
    seed(src, "wnoop");
    let yaml = transform_yaml("wnoop", src, dst, "wnoop", "  - plugin: plugins/noop\n");
    run_pipeline("wnoop", &yaml, &[]).assert_ok();
    assert_same_table(src, "wnoop.t", dst, "wnoop_out.t", "id");
}

fn hostile(name: &str, plugin: &str, extra: &str) -> Run {
    let (src, dst) = pair();
    let db = format!("h_{name}");
    seed(src, &db);
    let yaml = transform_yaml(
        &db,
        src,
        dst,
        &db,
        &format!("  - plugin: tests/plugins/{plugin}\n{extra}"),
    );
    let run = run_pipeline(&db, &yaml, &[]);
    assert!(
        !dst.table_exists(&format!("{db}_out"), "t")
            || dst.scalar::<u64>(&format!("SELECT COUNT(*) FROM {db}_out.t")) < 500
    );
    run
}

#[test]
fn a_trapping_plugin_names_itself_the_table_and_the_position() {
    hostile("trap", "trap", "").assert_fails_with(&[
        "plugin `trap`",
        "trapped",
        "table h_trap.t at",
    ]);
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    hostile("spin", "spin", "    deadline_ms: 300\n")
        .assert_fails_with(&["plugin `spin`", "exceeded its deadline"]);
}

#[test]
fn an_allocation_bomb_hits_the_memory_limit() {
    hostile("hog", "hog", "    memory_mb: 16\n").assert_fails_with(&["plugin `hog`"]);
}

#[test]
fn a_plugin_cannot_open_files() {
    hostile("files", "files", "").assert_fails_with(&["plugin `files`", "cannot open /etc/passwd"]);
}

#[test]
fn a_plugin_built_for_another_contract_is_refused() {
    let (src, dst) = pair();
    seed(src, "h_v2");
    let yaml = transform_yaml("h_v2", src, dst, "h_v2", "  - plugin: tests/plugins/v2\n");
    let run = run_pipeline("h_v2", &yaml, &[]);
    run.assert_fails_with(&["built for contract v2", "this sluice speaks v1"]);
    assert!(!dst.database_exists("h_v2_out"), "nothing may be written");
}
