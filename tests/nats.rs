//! The NATS JetStream sink (crates/nats) against a private `nats-server
//! -js`: snapshot and changes as Debezium-format messages, read back with
//! nats-py (independent of the sink's client) and replayed into the table
//! they describe, exactly once across SIGKILLs under a seeded random
//! workload; and the errors a user can meet.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::nats::{NatsServer, NATS_PASSWORD};
use support::*;

fn pipeline(name: &str, db: &str, src: &MariaDb, sink: &str) -> std::path::PathBuf {
    write_pipeline(
        name,
        &format!(
            "name: {name}\nsource:\n  mysql:\n    url: {}\n    include: [\"{db}.*\"]\nsinks:\n  - nats:\n{sink}",
            src.url()
        ),
    )
}

/// The table the stream's messages of `subject` describe, replayed in
/// order: `r`/`c`/`u` set the row of the `after` image's key, `d` removes
/// the `before` image's.
fn replay(
    messages: &[(String, String, serde_json::Value)],
    subject: &str,
) -> BTreeMap<i64, (String, i64)> {
    let mut rows = BTreeMap::new();
    for (_, s, v) in messages.iter().filter(|(_, s, _)| s == subject) {
        let _ = s;
        let row = |img: &serde_json::Value| {
            (
                img["id"].as_i64().expect("id"),
                (
                    img["v"].as_str().unwrap_or("<NULL>").to_string(),
                    img["n"].as_i64().unwrap_or(i64::MIN),
                ),
            )
        };
        match v["op"].as_str() {
            Some("r" | "c" | "u") => {
                let (k, r) = row(&v["after"]);
                rows.insert(k, r);
            }
            Some("d") => {
                rows.remove(&row(&v["before"]).0);
            }
            other => panic!("op {other:?}"),
        }
    }
    rows
}

fn source_rows(src: &MariaDb) -> BTreeMap<i64, (String, i64)> {
    let rows: Vec<(i64, Option<String>, Option<i64>)> =
        src.query("SELECT id, v, n FROM nk.t ORDER BY id");
    rows.into_iter()
        .map(|(id, v, n)| {
            (
                id,
                (v.unwrap_or_else(|| "<NULL>".into()), n.unwrap_or(i64::MIN)),
            )
        })
        .collect()
}

#[test]
fn changes_reach_the_stream_exactly_once_across_kills() {
    let src = MariaDb::start("nats-source");
    let nats = NatsServer::start("kills");
    let seed = seed();
    let mut rng = Rng::new(seed);
    src.exec(
        "DROP DATABASE IF EXISTS nk; CREATE DATABASE nk; \
         CREATE TABLE nk.t (id INT PRIMARY KEY, v VARCHAR(20) COLLATE utf8mb4_general_ci, n INT) ENGINE=InnoDB; \
         INSERT INTO nk.t SELECT seq, CONCAT('row ', seq), seq FROM nk.seq_1_to_200",
    );
    let path = pipeline(
        "nats-kills",
        "nk",
        &src,
        &format!(
            "      url: {}\n      stream: SLUICE_NK\n      transactions: true\n",
            nats.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    let mut next = 10_000;
    for _ in 0..5 {
        for _ in 0..(20 + rng.below(40)) {
            let id = 1 + rng.below(300);
            let sql = match rng.below(6) {
                0 | 1 => {
                    next += 1;
                    format!("INSERT INTO nk.t VALUES ({next}, 'new', {})", rng.below(100))
                }
                2 => format!("UPDATE IGNORE nk.t SET id = id + 100000 WHERE id = {id}"),
                3 => format!("DELETE FROM nk.t WHERE id = {id}"),
                4 => format!("UPDATE nk.t SET v = UPPER(v), n = n + 1 WHERE id % 7 = {}", rng.below(7)),
                _ => format!(
                    "START TRANSACTION; UPDATE nk.t SET n = n * 2 WHERE id < {}; DELETE FROM nk.t WHERE id = {id}; COMMIT",
                    rng.below(200)
                ),
            };
            src.exec(&sql);
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        p.kill();
        p = Background::start(&path, &[]);
    }
    // A transaction that changes no row of nk.t is still a transaction.
    src.exec("UPDATE nk.t SET n = n WHERE id = -1");
    let want = source_rows(&src);
    let mut messages = Vec::new();
    p.wait_for(
        Duration::from_secs(120),
        "the stream replays to the source's table",
        || {
            messages = nats.messages("SLUICE_NK");
            let got = replay(&messages, "sluice.nk.t");
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "seed 0x{seed:x}: {} rows replayed, {} on the source",
                    got.len(),
                    want.len()
                ))
            }
        },
    );
    p.terminate(Duration::from_secs(20));
    // `sluice status` reads the checkpoint from the key-value bucket.
    let status = sluice(&["status", path.to_str().expect("a path")], &[]);
    status.assert_ok();
    let row = status
        .stdout
        .lines()
        .find(|l| l.starts_with("nats"))
        .unwrap_or_else(|| panic!("no row for the sink:\n{}", status.stdout));
    assert!(row.contains(" cdc ") && row.contains("binlog."), "{row}");
    assert!(row.trim_end().ends_with(" s"), "no checkpoint age: {row}");
    // Each transaction once between its BEGIN and its END, which counts
    // its changes; nothing else in between.
    let mut open: Option<(String, u64)> = None;
    let mut ends = BTreeSet::new();
    for (_, subject, v) in &messages {
        if subject == "sluice._transaction" {
            let id = v["id"].as_str().unwrap_or_default().to_string();
            match (v["status"].as_str(), open.take()) {
                (Some("BEGIN"), None) => open = Some((id, 0)),
                (Some("END"), Some((begun, n))) => {
                    assert_eq!(begun, id, "seed 0x{seed:x}");
                    assert_eq!(v["event_count"].as_u64(), Some(n), "seed 0x{seed:x}: {v}");
                    assert!(ends.insert(id), "seed 0x{seed:x}: a transaction twice");
                }
                other => panic!("seed 0x{seed:x}: {other:?} at {v}"),
            }
        } else if let Some((id, n)) = open.as_mut() {
            let s = &v["source"];
            assert_eq!(v["transaction"]["id"].as_str(), Some(id.as_str()), "{v}");
            let _ = s;
            *n += 1;
        } else {
            assert_eq!(
                v["op"], "r",
                "seed 0x{seed:x}: a change outside a transaction: {v}"
            );
        }
    }
    assert!(
        open.is_none() && ends.len() > 5,
        "seed 0x{seed:x}: {} transactions",
        ends.len()
    );
    let messages: Vec<_> = messages
        .into_iter()
        .filter(|(_, s, _)| s != "sluice._transaction")
        .collect();
    // Every message once: no id twice, no change (position, row) twice,
    // and each row the workload inserted is created once.
    let ids: BTreeSet<&String> = messages.iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids.len(), messages.len(), "seed 0x{seed:x}: an id twice");
    let mut changes = BTreeSet::new();
    let mut created: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, _, v) in &messages {
        let s = &v["source"];
        if v["op"] != "r" {
            assert!(
                changes.insert((s["file"].to_string(), s["pos"].as_u64(), s["row"].as_u64())),
                "seed 0x{seed:x}: a change twice: {v}"
            );
        }
        if v["op"] == "c" || v["op"] == "r" {
            *created
                .entry(v["after"]["id"].as_i64().unwrap_or(0))
                .or_default() += 1;
        }
    }
    for id in 10_001..=next {
        assert_eq!(
            created.get(&id).copied().unwrap_or(0),
            1,
            "seed 0x{seed:x}: row {id}"
        );
    }
    // The Python consumer example rebuilds the table from the stream.
    let db = nats.dir.join("rebuilt.db");
    let out = support::nats::python(
        "examples/nats_consumer.py",
        &[
            &nats.url(),
            "SLUICE_NK",
            "sluice.nk.t",
            "id",
            db.to_str().expect("a path"),
        ],
    );
    let rebuilt: BTreeMap<i64, (String, i64)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON row");
            (
                v["id"].as_i64().expect("id"),
                (
                    v["v"].as_str().unwrap_or("<NULL>").to_string(),
                    v["n"].as_i64().unwrap_or(i64::MIN),
                ),
            )
        })
        .collect();
    assert_eq!(
        rebuilt, want,
        "seed 0x{seed:x}: the Python consumer's table"
    );
    // `sluice tail` prints the same messages of the table, in order.
    let tail = sluice(
        &[
            "tail",
            &nats.url(),
            "--stream",
            "SLUICE_NK",
            "--subject",
            "sluice.nk.t",
            "--until-idle",
        ],
        &[],
    );
    tail.assert_ok();
    let tailed: Vec<String> = tail
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    let on_t: Vec<String> = messages
        .iter()
        .filter(|(_, s, _)| s == "sluice.nk.t")
        .map(|(id, _, _)| id.clone())
        .collect();
    assert_eq!(tailed, on_t, "sluice tail");
    // Debezium's envelope.
    let (_, _, first) = &messages[0];
    assert_eq!(first["op"], "r");
    assert_eq!(first["source"]["connector"], "mysql");
    assert_eq!(first["source"]["db"], "nk");
    assert_eq!(first["source"]["table"], "t");
    assert!(
        first["before"].is_null() && first["after"]["id"].is_i64(),
        "{first}"
    );
    let update = messages
        .iter()
        .find(|(_, _, v)| v["op"] == "u")
        .map(|(_, _, v)| v)
        .expect("an update");
    assert!(update["before"]["id"] == update["after"]["id"], "{update}");
    assert!(
        update["source"]["file"]
            .as_str()
            .is_some_and(|f| f.contains("bin")),
        "{update}"
    );
    assert!(
        update["ts_ms"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{update}"
    );
}

#[test]
fn an_unreachable_server_is_named_with_the_password_masked() {
    let src = MariaDb::start("nats-errors");
    src.exec("DROP DATABASE IF EXISTS ne; CREATE DATABASE ne; CREATE TABLE ne.t (id INT PRIMARY KEY) ENGINE=InnoDB");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        l.local_addr().expect("its address").port()
    };
    let path = pipeline(
        "nats-down",
        "ne",
        &src,
        &format!("      url: nats://sluice:{NATS_PASSWORD}@127.0.0.1:{port}\n"),
    );
    let run = sluice(&["check", path.to_str().expect("a path")], &[]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!run.ok(), "{all}");
    assert!(all.contains(&format!("127.0.0.1:{port}")), "{all}");
    assert!(all.contains("nats-server"), "no hint: {all}");
    assert!(!all.contains(NATS_PASSWORD), "the password shows: {all}");
}

/// A wrong password, a row over the server's max_payload and a stream
/// that is full each stop the run with a message that names them (the
/// password masked); once the cause is gone, the run goes on and nothing
/// is missing.
#[test]
fn bad_input_stops_the_run_clearly_and_loses_nothing() {
    let src = MariaDb::start("nats-bad");
    let nats = NatsServer::start("bad");
    src.exec(
        "DROP DATABASE IF EXISTS nb; CREATE DATABASE nb; \
         CREATE TABLE nb.t (id INT PRIMARY KEY, v LONGTEXT, n INT) ENGINE=InnoDB; \
         INSERT INTO nb.t SELECT seq, CONCAT('row ', seq), seq FROM nb.seq_1_to_50; \
         UPDATE nb.t SET v = REPEAT('x', 1500000) WHERE id = 7",
    );
    let wrong = nats.url().replace(NATS_PASSWORD, "not-the-password");
    let path = pipeline("nats-bad", "nb", &src, &format!("      url: {wrong}\n"));
    let run = sluice(&["check", path.to_str().expect("a path")], &[]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!run.ok() && all.contains("authorization"), "{all}");
    assert!(
        !all.contains("not-the-password"),
        "the password shows: {all}"
    );
    let tail = sluice(
        &["tail", &nats.url(), "--stream", "NO_SUCH", "--until-idle"],
        &[],
    );
    let all = format!("{}{}", tail.stdout, tail.stderr);
    assert!(!tail.ok() && all.contains("no stream NO_SUCH"), "{all}");
    assert!(!all.contains(NATS_PASSWORD), "the password shows: {all}");
    // A row over max_payload (1 MB): named, with what to do.
    let path = pipeline(
        "nats-bad",
        "nb",
        &src,
        &format!("      url: {}\n      stream: SLUICE_NB\n", nats.url()),
    );
    let args = ["run", "--until-caught-up", path.to_str().expect("a path")];
    let run = sluice(&args, &[]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!run.ok(), "{all}");
    assert!(
        all.contains("max_payload") && all.contains("\"id\":7") && all.contains("sluice.nb.t"),
        "{all}"
    );
    src.exec("UPDATE nb.t SET v = 'small again' WHERE id = 7");
    sluice(&args, &[]).assert_ok();
    let rows: BTreeSet<i64> = nats
        .messages("SLUICE_NB")
        .iter()
        .filter(|(_, _, v)| v["op"] == "r")
        .filter_map(|(_, _, v)| v["after"]["id"].as_i64())
        .collect();
    assert_eq!(rows, (1..=50).collect(), "every row, after the restart");
    // A stream that refuses new messages once full.
    nats.create_full_stream("SLUICE_FULL", "full.*.*", 4000);
    let path = pipeline(
        "nats-full",
        "nb",
        &src,
        &format!(
            "      url: {}\n      stream: SLUICE_FULL\n      subject: \"full.{{database}}.{{table}}\"\n      schema_subject: \"full._schema.{{database}}\"\n",
            nats.url()
        ),
    );
    let run = sluice(
        &["run", "--until-caught-up", path.to_str().expect("a path")],
        &[],
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!run.ok(), "{all}");
    assert!(
        all.contains("SLUICE_FULL")
            && all.contains("did not take a message")
            && all.contains("max_bytes"),
        "{all}"
    );
}
