//! The JSON Lines sink, the smallest complete sink (crates/jsonl): a
//! snapshot and every change as lines, exactly once across SIGKILLs. The
//! committed lines (the checkpoint's byte count), replayed by key, equal
//! the source; every inserted id appears in exactly one insert line.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use support::*;

/// The committed lines of `path`: as many bytes as its checkpoint says.
fn committed_lines(path: &Path) -> Vec<serde_json::Value> {
    let mut checkpoint = path.as_os_str().to_owned();
    checkpoint.push(".checkpoint");
    let Ok(c) = std::fs::read_to_string(&checkpoint) else {
        return Vec::new();
    };
    let c: serde_json::Value = serde_json::from_str(&c).expect("a JSON checkpoint");
    let bytes = c["bytes"].as_u64().expect("a byte count") as usize;
    let data = std::fs::read(path).unwrap_or_default();
    assert!(
        data.len() >= bytes,
        "the file is shorter ({}) than its checkpoint says ({bytes})",
        data.len()
    );
    String::from_utf8(data[..bytes].to_vec())
        .expect("UTF-8 lines")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The table the lines describe: id → name, replayed in order.
fn replay(lines: &[serde_json::Value]) -> BTreeMap<i64, String> {
    let mut rows = BTreeMap::new();
    for l in lines {
        let id = |image: &str| l[image]["id"].as_i64();
        match l["op"].as_str() {
            Some("read" | "insert") => {
                rows.insert(
                    id("after").expect("an id"),
                    l["after"]["name"].as_str().unwrap_or("").to_string(),
                );
            }
            Some("update") => {
                rows.remove(&id("before").expect("an old id"));
                rows.insert(
                    id("after").expect("an id"),
                    l["after"]["name"].as_str().unwrap_or("").to_string(),
                );
            }
            Some("delete") => {
                rows.remove(&id("before").expect("an id"));
            }
            other => panic!("unexpected line {other:?}: {l}"),
        }
    }
    rows
}

/// Waits while `p` runs until the committed lines replay to the source.
fn wait_lines_equal(p: &mut Background, src: &MariaDb, data: &Path) {
    p.wait_for(
        Duration::from_secs(60),
        "the lines equal the source",
        || {
            let (want, got) = (source_rows(src), replay(&committed_lines(data)));
            if want == got {
                Ok(())
            } else {
                Err(format!(
                    "{} rows on the source, {} in the lines",
                    want.len(),
                    got.len()
                ))
            }
        },
    );
}

fn source_rows(src: &MariaDb) -> BTreeMap<i64, String> {
    src.query::<(i64, String)>("SELECT id, name FROM jl.t")
        .into_iter()
        .collect()
}

#[test]
fn every_change_is_one_line_across_kills() {
    let (src, _) = pair();
    src.exec(
        "DROP DATABASE IF EXISTS jl; CREATE DATABASE jl; \
         CREATE TABLE jl.t (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL)",
    );
    for i in 0..200 {
        src.exec(&format!("INSERT INTO jl.t VALUES ({i}, 'row {i}')"));
    }
    let dir = std::env::temp_dir().join(format!("sluice-jl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder for the lines");
    let data = dir.join("changes.jsonl");
    let yaml = format!(
        "name: jl\nsource:\n  mysql:\n    url: {}\n    include: [\"jl.*\"]\nsinks:\n  - jsonl:\n      path: {}\n",
        src.url(),
        data.display()
    );
    let path = write_pipeline("jsonl", &yaml);
    let mut p = Background::start(&path, &[]);
    let mut next = 1000;
    for round in 0..4 {
        wait_lines_equal(&mut p, src, &data);
        // Inserts, updates (one changing its key), deletes, and a larger transaction.
        for _ in 0..20 {
            src.exec(&format!("INSERT INTO jl.t VALUES ({next}, 'new {next}')"));
            next += 1;
        }
        src.exec(&format!(
            "UPDATE jl.t SET name = 'round {round}' WHERE id % 7 = {round}"
        ));
        src.exec(&format!(
            "UPDATE jl.t SET id = id + 100000 WHERE id = {}",
            round * 3
        ));
        src.exec(&format!("DELETE FROM jl.t WHERE id % 11 = {round}"));
        src.exec(&format!(
            "INSERT INTO jl.t SELECT id + 500000 + {round} * 100000, name FROM jl.t WHERE id < 50"
        ));
        p.kill();
        p = Background::start(&path, &[]);
    }
    wait_lines_equal(&mut p, src, &data);
    assert!(p.terminate(Duration::from_secs(10)).success());
    let lines = committed_lines(&data);
    // Exactly once: every id inserted by a single-row INSERT has one line.
    let mut inserts: BTreeMap<i64, usize> = BTreeMap::new();
    for l in &lines {
        if l["op"] == "insert" {
            *inserts
                .entry(l["after"]["id"].as_i64().expect("an id"))
                .or_default() += 1;
        }
    }
    for id in 1000..next {
        assert_eq!(inserts.get(&id), Some(&1), "insert of id {id}");
    }
    assert!(inserts.values().all(|n| *n == 1), "an insert twice");
    assert_eq!(
        lines.iter().filter(|l| l["op"] == "read").count(),
        200,
        "the snapshot's rows"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file that holds lines but has no checkpoint is refused, nothing written.
#[test]
fn a_file_without_its_checkpoint_is_refused() {
    let (src, _) = pair();
    src.exec(
        "DROP DATABASE IF EXISTS jl2; CREATE DATABASE jl2; CREATE TABLE jl2.t (id INT PRIMARY KEY)",
    );
    let dir = std::env::temp_dir().join(format!("sluice-jl2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let data = dir.join("old.jsonl");
    std::fs::write(&data, "{\"op\":\"insert\"}\n").expect("an old file");
    let yaml = format!(
        "name: jl2\nsource:\n  mysql:\n    url: {}\n    include: [\"jl2.*\"]\nsinks:\n  - jsonl:\n      path: {}\n",
        src.url(),
        data.display()
    );
    run_pipeline("jsonl-old", &yaml, &[])
        .assert_fails_with(&["holds lines but no checkpoint", "remove the file"]);
    assert_eq!(
        std::fs::read_to_string(&data).expect("the file"),
        "{\"op\":\"insert\"}\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
