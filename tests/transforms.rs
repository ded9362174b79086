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

/// `sluice plugin new` makes a project that passes its own test, builds,
/// and works in a pipeline with its config.
#[test]
fn a_new_plugin_builds_and_transforms() {
    let dir = std::env::temp_dir().join(format!("sluice-newplugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = dir.join("upper");
    let _ = std::fs::remove_dir_all(&plugin);
    sluice(&["plugin", "new", plugin.to_str().unwrap()], &[]).assert_ok();
    let test =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["test", "--quiet"])
            .current_dir(&plugin)
            .output()
            .expect("cargo test");
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let built = sluice(&["plugin", "build", plugin.to_str().unwrap()], &[]);
    built.assert_ok();
    assert!(
        built.stdout.trim().ends_with("upper.wasm"),
        "{}",
        built.stdout
    );

    let (src, dst) = pair();
    seed(src, "wupper");
    let yaml = transform_yaml(
        "wupper",
        src,
        dst,
        "wupper",
        &format!(
            "  - plugin: {}\n    config: {{ column: email }}\n",
            built.stdout.trim()
        ),
    );
    run_pipeline("wupper", &yaml, &[]).assert_ok();
    let expected: Vec<(i32, String)> =
        src.query("SELECT id, UPPER(email) FROM wupper.t ORDER BY id");
    let got: Vec<(i32, String)> = dst.query("SELECT id, email FROM wupper_out.t ORDER BY id");
    assert_eq!(expected, got);
    // A config the plugin rejects stops the pipeline before anything is written.
    let bad = transform_yaml(
        "wupper2",
        src,
        dst,
        "wupper",
        &format!("  - plugin: {}\n", built.stdout.trim()),
    )
    .replace("wupper_out", "wupper_bad");
    run_pipeline("wupper2", &bad, &[])
        .assert_fails_with(&["rejected its config", "config needs `column: NAME`"]);
    assert!(!dst.database_exists("wupper_bad"));
}

/// `mask` gives what the same rules give in SQL, computed independently.
#[test]
fn mask_matches_the_same_rules_in_sql() {
    let (src, dst) = pair();
    src.exec(
        "CREATE DATABASE wmask;
         CREATE TABLE wmask.people (id INT PRIMARY KEY, email VARCHAR(100), phone VARCHAR(20), name VARCHAR(64),
           card CHAR(16), note TEXT, birth DATE, kept INT);
         INSERT INTO wmask.people SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT('+1-555-', LPAD(seq, 4, '0')),
           CONCAT('Name ', seq), LPAD(seq, 16, '4'), IF(seq % 3 = 0, NULL, 'private'), '1990-01-01' + INTERVAL seq DAY, seq
           FROM wmask.seq_1_to_300;",
    );
    let transforms = "  - plugin: mask\n    config:\n      salt: \"${MASK_SALT}\"\n      columns:\n        email: email\n        phone: phone\n        name: hash\n        card: { keep_last: 4 }\n        note: redact\n        birth: \"null\"\n";
    let yaml = transform_yaml("wmask", src, dst, "wmask", transforms);
    run_pipeline("wmask", &yaml, &[("MASK_SALT", "pepper")]).assert_ok();
    type Row = (
        i32,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        i32,
    );
    let expected: Vec<Row> = src.query(
        "SELECT id, CONCAT(LEFT(email, 1), '***@', SUBSTRING_INDEX(email, '@', -1)),
                CONCAT('+*-***-', RIGHT(phone, 4)), SHA2(CONCAT('pepper', name), 256),
                CONCAT(REPEAT('*', 12), RIGHT(card, 4)), IF(note IS NULL, NULL, '***'), NULL, kept
         FROM wmask.people ORDER BY id",
    );
    let got: Vec<Row> = dst.query(
        "SELECT id, email, phone, name, card, note, CAST(birth AS CHAR), kept FROM wmask_out.people ORDER BY id",
    );
    assert_eq!(expected.len(), 300);
    assert_eq!(expected, got);
}
