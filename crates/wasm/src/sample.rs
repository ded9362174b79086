//! `sluice plugin test`: runs a plugin over sample events from a YAML or
//! JSON file and prints what it made of them, for plugin authors.
//!
//! ```yaml
//! config: { columns: { email: email } }     # the transform's config:
//! table:
//!   database: shop
//!   name: customers
//!   columns:
//!     - { name: id, type: int, key: true }
//!     - { name: email, type: varchar(100) }
//! events:
//!   - { op: insert, after: { id: 1, email: ana@example.com } }
//!   - { op: delete, before: { id: 2, email: bo@example.com } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;

use super::dead_letter::json_value;
use super::events;
use super::wasm::{self, types};
use crate::temporal;
use crate::{Error, Result};
use sluice_core::types::LogicalType;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleFile {
    #[serde(default)]
    config: Option<Json>,
    table: SampleTable,
    events: Vec<SampleEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleTable {
    database: String,
    name: String,
    columns: Vec<SampleColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleColumn {
    name: String,
    #[serde(rename = "type")]
    mysql_type: String,
    #[serde(default)]
    key: bool,
    #[serde(default = "yes")]
    nullable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleEvent {
    op: String,
    #[serde(default)]
    before: Option<BTreeMap<String, Json>>,
    #[serde(default)]
    after: Option<BTreeMap<String, Json>>,
}

/// Loads the plugin, asks its `schema`, runs `process` over the events, and
/// returns a report (JSON lines) to print.
pub fn run(plugin: &str, file: &Path, config: Option<&str>) -> Result<String> {
    let bad = |m: String| {
        Error::precondition(
            format!("{}: {m}", file.display()),
            "see `sluice plugin test --help` for the file's format",
        )
    };
    let text = std::fs::read_to_string(file).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let sample: SampleFile = serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let config = match config {
        Some(c) => c.to_string(),
        None => sample
            .config
            .as_ref()
            .map_or_else(|| "{}".into(), |c| c.to_string()),
    };
    let types: Vec<LogicalType> = sample
        .table
        .columns
        .iter()
        .map(|c| {
            LogicalType::parse(&c.mysql_type).ok_or_else(|| {
                bad(format!(
                    "column `{}`: unknown type `{}`",
                    c.name, c.mysql_type
                ))
            })
        })
        .collect::<Result<_>>()?;
    let table = types::Table {
        database: sample.table.database.clone(),
        name: sample.table.name.clone(),
        columns: sample
            .table
            .columns
            .iter()
            .map(|c| types::Column {
                name: c.name.clone(),
                mysql_type: c.mysql_type.clone(),
                key: c.key,
                nullable: c.nullable,
            })
            .collect(),
    };
    let image =
        |row: &Option<BTreeMap<String, Json>>, i: usize| -> Result<Option<Vec<types::Value>>> {
            let Some(row) = row else { return Ok(None) };
            if let Some(k) = row
                .keys()
                .find(|k| table.columns.iter().all(|c| &c.name != *k))
            {
                return Err(bad(format!(
                    "event #{}: no column `{k}` in the table",
                    i + 1
                )));
            }
            table
                .columns
                .iter()
                .zip(&types)
                .map(|(c, ty)| {
                    value(row.get(&c.name).unwrap_or(&Json::Null), *ty)
                        .map_err(|m| bad(format!("event #{} column `{}`: {m}", i + 1, c.name)))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        };
    let events = sample
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let op = match e.op.as_str() {
                "insert" => types::Op::Insert,
                "update" => types::Op::Update,
                "delete" => types::Op::Delete,
                "read" => types::Op::Read,
                other => {
                    return Err(bad(format!(
                        "event #{}: op `{other}`; use insert, update, delete or read",
                        i + 1
                    )))
                }
            };
            Ok(events::Event {
                op,
                table: 0,
                before: image(&e.before, i)?,
                after: image(&e.after, i)?,
                position: format!("sample:{}", i + 1),
                commit_ts_us: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let path = super::resolve_plugin(plugin)?;
    let name = Path::new(plugin)
        .file_stem()
        .map_or_else(|| plugin.to_string(), |s| s.to_string_lossy().into_owned());
    let limits = wasm::Limits {
        deadline: Duration::from_secs(5),
        memory_bytes: 64 << 20,
    };
    let mut instance = wasm::Plugin::compile(&name, &path, limits)?.instantiate(&config)?;
    let mut out = Vec::new();
    let declared = instance
        .schema(&table)
        .map_err(|m| Error::Data(format!("plugin `{name}` schema: {m}")))?;
    let show_table = |t: &types::Table| {
        serde_json::json!({
            "database": t.database,
            "name": t.name,
            "columns": t.columns.iter().map(|c| format!("{} {}{}", c.name, c.mysql_type, if c.key { " key" } else { "" })).collect::<Vec<_>>(),
        })
    };
    out.push(
        serde_json::json!({ "schema": declared.iter().map(show_table).collect::<Vec<_>>() })
            .to_string(),
    );
    let batch = events::Batch {
        tables: vec![table.clone()],
        events,
    };
    let output = instance
        .process_owned(&batch)
        .map_err(|m| Error::Data(format!("plugin `{name}` {m}")))?;
    let all: Vec<&types::Table> = std::iter::once(&table).chain(&output.new_tables).collect();
    let show_event = |e: &events::Event| {
        let t = all.get(e.table as usize).copied().unwrap_or(&table);
        let img = |vs: &Option<Vec<types::Value>>| match vs {
            None => Json::Null,
            Some(vs) => Json::Object(
                t.columns
                    .iter()
                    .zip(vs)
                    .map(|(c, v)| (c.name.clone(), json_value(v)))
                    .collect(),
            ),
        };
        serde_json::json!({
            "op": super::schema::op_name(e.op),
            "table": format!("{}.{}", t.database, t.name),
            "before": img(&e.before),
            "after": img(&e.after),
        })
    };
    for (i, (outcome, input)) in output.outcomes.iter().zip(&batch.events).enumerate() {
        let line = match outcome {
            events::Outcome::Keep => {
                serde_json::json!({ "event": i + 1, "keep": show_event(input) })
            }
            events::Outcome::Drop => serde_json::json!({ "event": i + 1, "drop": true }),
            events::Outcome::Replace(e) => {
                serde_json::json!({ "event": i + 1, "replace": show_event(e) })
            }
            events::Outcome::FanOut(es) => {
                serde_json::json!({ "event": i + 1, "fan_out": es.iter().map(show_event).collect::<Vec<_>>() })
            }
            events::Outcome::Error(m) => serde_json::json!({ "event": i + 1, "error": m }),
        };
        out.push(line.to_string());
    }
    Ok(out.join("\n"))
}

/// A sample value for a column of type `ty`.
fn value(v: &Json, ty: LogicalType) -> std::result::Result<types::Value, String> {
    use types::Value as V;
    let text = || match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(match (v, ty) {
        (Json::Null, _) => V::Null,
        (
            _,
            LogicalType::Int {
                unsigned: false, ..
            }
            | LogicalType::Year,
        ) => V::Int(
            text()
                .parse()
                .map_err(|_| format!("`{}` is not an integer", text()))?,
        ),
        (_, LogicalType::Int { unsigned: true, .. } | LogicalType::Bit { .. }) => V::Uint(
            text()
                .parse()
                .map_err(|_| format!("`{}` is not an unsigned integer", text()))?,
        ),
        (_, LogicalType::Float) => V::Float32(
            text()
                .parse()
                .map_err(|_| format!("`{}` is not a number", text()))?,
        ),
        (_, LogicalType::Double) => V::Float64(
            text()
                .parse()
                .map_err(|_| format!("`{}` is not a number", text()))?,
        ),
        (_, LogicalType::Decimal { .. }) => V::Decimal(text()),
        (_, LogicalType::Bytes | LogicalType::Geometry) => V::Bytes(text().into_bytes()),
        (_, LogicalType::Date) => {
            let p = parse_datetime(&text())?;
            V::Date(temporal::date_to_days(p.year, p.month, p.day))
        }
        (_, LogicalType::DateTime { .. } | LogicalType::Timestamp { .. }) => {
            V::Timestamp(temporal::datetime_to_us(parse_datetime(&text())?))
        }
        (_, LogicalType::Time { .. }) => V::Time(parse_time(&text())?),
        // Text, ENUM, SET, JSON, UUID, INET.
        (_, _) => V::Text(text()),
    })
}

fn parse_datetime(s: &str) -> std::result::Result<temporal::DateTimeParts, String> {
    let err = || format!("`{s}` is not a date (YYYY-MM-DD[ hh:mm:ss[.ffffff]])");
    let (date, time) = s
        .trim()
        .split_once([' ', 'T'])
        .unwrap_or((s.trim(), "00:00:00"));
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(err());
    }
    let us = parse_time(time).map_err(|_| err())?;
    let secs = us / 1_000_000;
    Ok(temporal::DateTimeParts {
        year: d[0].parse().map_err(|_| err())?,
        month: d[1].parse().map_err(|_| err())?,
        day: d[2].parse().map_err(|_| err())?,
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        micro: (us % 1_000_000) as u32,
    })
}

fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let err = || format!("`{s}` is not a time ([-]hh:mm:ss[.ffffff])");
    let (neg, s2) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (hms, frac) = s2.split_once('.').unwrap_or((s2, ""));
    let p: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| err()))
        .collect::<std::result::Result<_, _>>()?;
    if p.len() != 3 {
        return Err(err());
    }
    let micro: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}")[..6].parse().map_err(|_| err())?
    };
    let v = ((p[0] * 60 + p[1]) * 60 + p[2]) * 1_000_000 + micro;
    Ok(if neg { -v } else { v })
}
