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
    // Under it, the stream's sequence: the checkpoint covers the stream's
    // last message (the run stopped cleanly).
    let detail = status
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("stream SLUICE_NK:"))
        .unwrap_or_else(|| panic!("no stream line:\n{}", status.stdout));
    let last = messages.len();
    assert!(
        detail.contains(&format!("covers message {last};"))
            && detail.contains(&format!("messages 1 to {last} ")),
        "seed 0x{seed:x}: {detail}"
    );
    // `sluice verify` replays the stream like an archive and finds it
    // equal to the source (a message it did not write is found: below).
    let (run, found) = verify(&path, &["--recheck-timeout-s", "1"]);
    assert!(
        run.ok() && found.is_empty(),
        "seed 0x{seed:x}: {found:?}\n{}{}",
        run.stdout,
        run.stderr
    );
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
    // A message sluice did not write (a row changed in the stream only)
    // is found by its key.
    let (&planted, _) = want.iter().next().expect("a row on the source");
    nats.publish(
        "SLUICE_NK",
        "sluice.nk.t",
        "planted-1",
        &serde_json::json!({"op": "u", "before": {"id": planted, "v": "x", "n": 0},
                            "after": {"id": planted, "v": "planted", "n": 0}}),
    );
    let (run, found) = verify(&path, &["--recheck-timeout-s", "1"]);
    assert_found(
        &run,
        &found,
        &[("different", "nk.t", &format!("id={planted}"))],
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
    // `check` warns of what can go wrong later: a LONGTEXT column can hold
    // more than a message, and a server whose sync_interval is not
    // `always` (read from its monitoring endpoint) or cannot be read.
    let path = pipeline(
        "nats-bad",
        "nb",
        &src,
        &format!(
            "      url: {}\n      stream: SLUICE_NB\n      monitor_url: {}\n",
            nats.url(),
            nats.monitor_url()
        ),
    );
    let run = sluice(&["check", path.to_str().expect("a path")], &[]);
    run.assert_ok();
    let warns: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("WARN"))
        .collect();
    assert!(
        warns.iter().any(|l| l
            .contains("rows of nb.t can be larger than the server's max_payload of 1.0 MiB")
            && l.contains("`v` longtext")),
        "{}",
        run.stdout
    );
    assert!(
        warns
            .iter()
            .any(|l| l.contains("every 120 s (sync_interval)")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("sync_interval: always"),
        "no fix: {}",
        run.stdout
    );
    let unknown = pipeline(
        "nats-bad-unknown",
        "nb",
        &src,
        &format!("      url: {}\n      stream: SLUICE_NB\n", nats.url()),
    );
    let run = sluice(&["check", unknown.to_str().expect("a path")], &[]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("cannot tell whether the server writes messages to disk")
            && run.stdout.contains("monitor_url"),
        "{}",
        run.stdout
    );
    // A row over max_payload (1 MB): named, with what to do.
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

/// More messages than the client keeps acknowledgements pending for (5,000
/// by default) in one snapshot and in one transaction: every one arrives
/// once. With the client's default the publisher waited for good.
#[test]
fn a_transaction_larger_than_the_clients_ack_window_is_published_whole() {
    let src = MariaDb::start("nats-large");
    let nats = NatsServer::start("large");
    src.exec(
        "DROP DATABASE IF EXISTS nl; CREATE DATABASE nl; \
         CREATE TABLE nl.t (id INT PRIMARY KEY, v VARCHAR(20), n INT) ENGINE=InnoDB; \
         INSERT INTO nl.t SELECT seq, 'snapshot', seq FROM nl.seq_1_to_7000",
    );
    let port = free_tcp_port();
    let path = pipeline(
        "nats-large",
        "nl",
        &src,
        &format!(
            "      url: {}\n      stream: SLUICE_NL\n      transactions: true\nmetrics:\n  listen: 127.0.0.1:{port}\n",
            nats.url()
        ),
    );
    let mut p = Background::start(&path, &[]);
    p.wait_for(
        Duration::from_secs(120),
        "the snapshot is in the stream",
        || match nats.count("SLUICE_NL") {
            7000 => Ok(()),
            n => Err(format!("{n} of 7000 messages")),
        },
    );
    // One transaction of 12,000 rows, then a small one after it.
    src.exec("INSERT INTO nl.t SELECT seq + 100000, 'bulk', seq FROM nl.seq_1_to_12000");
    src.exec("UPDATE nl.t SET n = -1 WHERE id = 1");
    // The rows, each transaction's BEGIN and END.
    let want = 7000 + 12_000 + 1 + 4;
    p.wait_for(
        Duration::from_secs(120),
        "the transactions are in the stream",
        || match nats.count("SLUICE_NL") {
            n if n == want => Ok(()),
            n => Err(format!("{n} of {want} messages")),
        },
    );
    // /metrics counts the sink's rows and changes, and its lag.
    let sink = "pipeline=\"nats-large\",sink=\"nats\"";
    p.wait_for(
        Duration::from_secs(30),
        "the changes show in /metrics",
        || {
            let m = scrape(port)?;
            match (
                sample(
                    &m,
                    "sluice_rows_written_total",
                    &format!("{sink},table=\"nl.t\""),
                ),
                sample(&m, "sluice_changes_applied_total", sink),
                sample(&m, "sluice_lag_seconds", sink),
                sample(&m, "sluice_checkpoint_age_seconds", sink),
            ) {
                (Some(w), Some(c), Some(_), Some(_)) if w >= 7000.0 && c >= 12_001.0 => Ok(()),
                other => Err(format!("{other:?}\n{m}")),
            }
        },
    );
    p.terminate(Duration::from_secs(20));
    let records = nats.records("SLUICE_NL");
    let created: BTreeSet<i64> = records
        .iter()
        .filter(|r| r["value"]["op"] == "c")
        .filter_map(|r| r["value"]["after"]["id"].as_i64())
        .collect();
    assert_eq!(
        created,
        (100_001..=112_000).collect(),
        "every row of the large transaction once"
    );
    let end = records
        .iter()
        .find(|r| r["value"]["status"] == "END")
        .expect("the large transaction's END");
    assert_eq!(end["value"]["event_count"], 12_000, "{end}");
    assert_eq!(
        records.last().map(|r| r["value"]["status"].clone()),
        Some("END".into())
    );
}

/// How a column's value is compared: as text, or as the number it parses to
/// (both sides print floats shortest, but not alike).
#[derive(Clone, Copy, PartialEq)]
enum Cmp {
    Text,
    F32,
    F64,
}

/// Each type-matrix column with the SQL that computes, on MariaDB itself,
/// the value Debezium's MySQL connector documents for it (its default
/// modes, DECIMAL as `decimal.handling.mode=string`), printed as text:
/// independent of the sink's encoder. NULL stands for JSON null.
fn debezium_columns() -> Vec<(&'static str, String, Cmp)> {
    let mut out = Vec::new();
    let text = |c: &'static str| (c, format!("CAST({c} AS CHAR)"), Cmp::Text);
    // Integers and YEAR as numbers; DECIMAL as its text.
    for c in [
        "id", "ti", "tiu", "si", "siu", "mi", "miu", "i", "iu", "bi", "biu", "d65", "d10", "d38",
        "d5", "d40",
    ] {
        out.push(text(c));
    }
    out.push(("y", "CAST(y + 0 AS CHAR)".into(), Cmp::Text));
    // FLOAT as the float32 it is, DOUBLE as a double.
    out.push(("f", "CAST(CAST(f AS DOUBLE) AS CHAR)".into(), Cmp::F32));
    out.push(("dbl", "CAST(dbl AS CHAR)".into(), Cmp::F64));
    // BIT(1) a boolean; BIT(n) bytes, least significant first, in base64.
    out.push((
        "b1",
        "IF(b1 IS NULL, NULL, IF(b1 = 1, 'true', 'false'))".into(),
        Cmp::Text,
    ));
    for c in ["b8", "b13", "b64"] {
        out.push((
            c,
            format!("TO_BASE64(REVERSE(CAST({c} AS BINARY)))"),
            Cmp::Text,
        ));
    }
    // DATE: days since the epoch; DATETIME(0..3) milliseconds, (4..6)
    // microseconds; zero and partial-zero dates null.
    let zero = |c: &str, e: String| format!("IF(MONTH({c}) = 0 OR DAY({c}) = 0, NULL, {e})");
    out.push((
        "dt",
        zero("dt", "DATEDIFF(dt, '1970-01-01')".into()),
        Cmp::Text,
    ));
    for c in ["dtm0", "dtm3"] {
        out.push((
            c,
            zero(
                c,
                format!("TIMESTAMPDIFF(MICROSECOND, '1970-01-01', {c}) DIV 1000"),
            ),
            Cmp::Text,
        ));
    }
    out.push((
        "dtm6",
        zero(
            "dtm6",
            "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', dtm6)".into(),
        ),
        Cmp::Text,
    ));
    // TIMESTAMP: ISO-8601 in UTC (the test's session is in UTC) with the
    // column's fraction digits; the zero timestamp null.
    out.push((
        "ts0",
        "IF(UNIX_TIMESTAMP(ts0) = 0, NULL, DATE_FORMAT(ts0, '%Y-%m-%dT%H:%i:%sZ'))".into(),
        Cmp::Text,
    ));
    out.push((
        "ts6",
        "IF(UNIX_TIMESTAMP(ts6) = 0, NULL, DATE_FORMAT(ts6, '%Y-%m-%dT%H:%i:%s.%fZ'))".into(),
        Cmp::Text,
    ));
    // TIME: microseconds, signed.
    for c in ["tm0", "tm3", "tm6"] {
        out.push((
            c,
            format!("CAST(TIME_TO_SEC({c}) * 1000000 AS SIGNED)"),
            Cmp::Text,
        ));
    }
    // Text of every character set as UTF-8; ENUM, SET, JSON, UUID, INET6 as text.
    for c in ["c", "vc", "tx", "lt", "l1", "l1t", "e", "s", "j", "u", "ip"] {
        out.push(text(c));
    }
    // Bytes in base64.
    for c in ["bin", "vb", "bl", "lbl"] {
        out.push((
            c,
            format!("REPLACE(TO_BASE64({c}), CHAR(10), '')"),
            Cmp::Text,
        ));
    }
    // GEOMETRY: Debezium's {wkb, srid} struct, printed `wkb|srid` here.
    for c in ["g", "pt"] {
        out.push((
            c,
            format!(
                "CONCAT(REPLACE(TO_BASE64(ST_AsBinary({c})), CHAR(10), ''), '|', ST_SRID({c}))"
            ),
            Cmp::Text,
        ));
    }
    out
}

/// A message's value of one column as the text `debezium_columns` prints.
fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => Some(format!(
            "{}|{}",
            o.get("wkb").and_then(|w| w.as_str()).unwrap_or("<no wkb>"),
            o.get("srid").map(|s| s.to_string()).unwrap_or_default()
        )),
        other => Some(other.to_string()),
    }
}

/// Each row of `table`'s expected values by id, in `columns`' order.
fn expected_rows(
    src: &MariaDb,
    table: &str,
    key: &str,
    columns: &[(&'static str, String, Cmp)],
) -> BTreeMap<String, Vec<Option<String>>> {
    let exprs: Vec<&str> = columns.iter().map(|(_, e, _)| e.as_str()).collect();
    let rows: Vec<mysql::Row> = src.query(&format!(
        "SELECT CAST({key} AS CHAR), {} FROM {table}",
        exprs.join(", ")
    ));
    rows.into_iter()
        .map(|r| {
            let vals: Vec<Option<String>> = (0..=columns.len())
                .map(|i| r.get::<Option<String>, usize>(i).flatten())
                .collect();
            (vals[0].clone().unwrap_or_default(), vals[1..].to_vec())
        })
        .collect()
}

/// Compares one image with the expected values of its row; each
/// difference as `table id column: got … want …`.
fn image_differences(
    what: &str,
    image: &serde_json::Value,
    want: &[Option<String>],
    columns: &[(&'static str, String, Cmp)],
    out: &mut Vec<String>,
) {
    for ((name, _, cmp), want) in columns.iter().zip(want) {
        let got = json_text(&image[*name]);
        let same = match (cmp, &got, want) {
            (Cmp::F32, Some(g), Some(w)) => {
                g.parse::<f64>().map(|x| x as f32).ok() == w.parse::<f64>().map(|x| x as f32).ok()
            }
            (Cmp::F64, Some(g), Some(w)) => {
                g.parse::<f64>().map(f64::to_bits).ok() == w.parse::<f64>().map(f64::to_bits).ok()
            }
            _ => got == *want,
        };
        if !same {
            let short = |s: &Option<String>| {
                s.as_deref()
                    .map(|s| s.chars().take(80).collect::<String>())
                    .unwrap_or_else(|| "null".into())
            };
            out.push(format!(
                "{what} `{name}`: got {} want {}",
                short(&got),
                short(want)
            ));
        }
    }
}

#[test]
fn every_type_matrix_value_is_encoded_as_debezium_documents() {
    let src = MariaDb::start("nats-golden");
    let nats = NatsServer::start("golden");
    src.exec(&format!(
        "DROP DATABASE IF EXISTS ng; {}",
        type_matrix_sql("ng")
    ));
    let path = pipeline(
        "nats-golden",
        "ng",
        &src,
        &format!("      url: {}\n      stream: SLUICE_NG\n", nats.url()),
    );
    let columns = debezium_columns();
    let two = vec![
        ("name", "CAST(name AS CHAR)".to_string(), Cmp::Text),
        ("note", "CAST(note AS CHAR)".to_string(), Cmp::Text),
    ];
    let bin = vec![(
        "v",
        "REPLACE(TO_BASE64(v), CHAR(10), '')".to_string(),
        Cmp::Text,
    )];
    let mut p = Background::start(&path, &[]);
    // Changes through the binlog: copies of the edge rows (every type
    // decoded from row events), a delete of one (its before image), and
    // a key of bytes with 0x00 changed.
    p.wait_for(
        Duration::from_secs(120),
        "the snapshot is in the stream",
        || {
            let n = nats.records("SLUICE_NG").len();
            if n >= 3004 + 2 + 3 {
                Ok(())
            } else {
                Err(format!("{n} messages"))
            }
        },
    );
    src.exec(
        "INSERT INTO ng.matrix SELECT id + 10000, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d65, d10, d38, d5, d40, \
         f, dbl, b1, b8, b13, b64, dt, dtm0, dtm3, dtm6, ts0, ts6, tm0, tm3, tm6, y, c, vc, tx, lt, l1, l1t, \
         bin, vb, bl, lbl, e, s, j, g, pt, u, ip FROM ng.matrix WHERE id <= 4",
    );
    let matrix = expected_rows(&src, "ng.matrix", "id", &columns);
    let latin = expected_rows(&src, "ng.latin", "id", &two);
    let binkey = expected_rows(
        &src,
        "ng.binkey",
        "REPLACE(TO_BASE64(k), CHAR(10), '')",
        &bin,
    );
    src.exec("DELETE FROM ng.matrix WHERE id = 10002");
    src.exec("UPDATE ng.binkey SET k = X'0001' WHERE k = X'00'");
    let mut records = Vec::new();
    p.wait_for(
        Duration::from_secs(120),
        "the changes are in the stream",
        || {
            records = nats.records("SLUICE_NG");
            let deleted = records
                .iter()
                .any(|r| r["value"]["op"] == "d" && r["value"]["before"]["id"] == 10002);
            let binkey = records
                .iter()
                .filter(|r| r["subject"] == "sluice.ng.binkey")
                .count();
            if deleted && binkey >= 5 {
                Ok(())
            } else {
                Err(format!("{} messages", records.len()))
            }
        },
    );
    p.terminate(Duration::from_secs(20));

    let mut differences = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        let v = &r["value"];
        let op = v["op"].as_str().unwrap_or("?");
        let table = v["source"]["table"].as_str().unwrap_or("?");
        let subject = r["subject"].as_str().unwrap_or("?");
        assert_eq!(subject, format!("sluice.ng.{table}"), "{r}");
        assert_eq!(v["source"]["db"], "ng", "{r}");
        assert_eq!(v["source"]["connector"], "mysql", "{r}");
        assert_eq!(
            v["source"]["snapshot"],
            if op == "r" { "true" } else { "false" },
            "{r}"
        );
        assert!(
            v["ts_ms"].as_i64().is_some_and(|t| t > 1_600_000_000_000),
            "{r}"
        );
        if op != "r" {
            assert!(
                v["source"]["file"]
                    .as_str()
                    .is_some_and(|f| f.contains("bin")),
                "{r}"
            );
            assert!(v["transaction"]["id"].is_string(), "{r}");
        }
        let (cols, rows, key_col) = match table {
            "matrix" => (&columns, &matrix, "id"),
            "latin" => (&two, &latin, "id"),
            "binkey" => (&bin, &binkey, "k"),
            other => panic!("a message of table {other}: {r}"),
        };
        // The image a change carries, and its row's key; an insert and a
        // snapshot read carry `after`, a delete `before`.
        let image = match op {
            "r" | "c" => &v["after"],
            "d" => &v["before"],
            "u" => &v["after"],
            other => panic!("op {other}: {r}"),
        };
        assert!(
            if op == "d" {
                v["after"].is_null()
            } else {
                v["after"].is_object()
            },
            "{r}"
        );
        let key = json_text(&image[key_col]).unwrap_or_default();
        // The message key names the row: its primary key, as JSON.
        let header: serde_json::Value =
            serde_json::from_str(r["key"].as_str().unwrap_or("null")).expect("a JSON key");
        assert_eq!(header[key_col], image[key_col], "the key header of {r}");
        if table == "binkey" && key == "AAE=" {
            // The changed key: X'0001' is not in the expected rows, taken before.
            continue;
        }
        let Some(want) = rows.get(&key) else {
            panic!("{table} row {key} is not on the source: {r}");
        };
        *seen.entry(table).or_default() += 1;
        image_differences(
            &format!("{table} {key} ({op})"),
            image,
            want,
            cols,
            &mut differences,
        );
    }
    assert!(
        differences.is_empty(),
        "{} values differ from Debezium's encoding:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // Every row was checked: 3004 read and 4 copies created, 1 deleted; the
    // latin rows; the key change as a delete and an insert of the old key's
    // row (checked) and the new one.
    assert_eq!(seen.get("matrix"), Some(&(3004 + 4 + 1)), "{seen:?}");
    // `sluice verify` decodes every value back from Debezium's encoding and
    // replays the stream: equal to the source (zero dates compared as the
    // nulls Debezium writes).
    let (run, found) = verify(&path, &["--recheck-timeout-s", "1"]);
    assert!(
        run.ok() && found.is_empty() && run.stdout.contains("equal"),
        "{found:?}\n{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(seen.get("latin"), Some(&2), "{seen:?}");
    assert!(seen.get("binkey").is_some_and(|&n| n >= 4), "{seen:?}");
}
