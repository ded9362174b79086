//! `on_error: dead-letter`: the events a plugin failed, appended to a JSON
//! Lines file so the pipeline goes on and someone can look at them later.
//!
//! A line is written and flushed to disk before the batch it came from
//! reaches any sink, so a failed event is never lost; after a crash the
//! events since the last checkpoint are replayed and may be written again
//! (each line carries its source position to tell repeats apart).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value as Json};

use super::events;
use super::wasm::types::Value;
use crate::event::TableSchema;
use crate::temporal;
use crate::{Error, Result};

/// A dead-letter file, shared by every instance of one transform.
pub struct DeadLetter {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl DeadLetter {
    /// Opens (creating if needed) the file for appending.
    pub fn open(path: &Path) -> Result<Arc<DeadLetter>> {
        let fail = |e: std::io::Error| {
            Error::precondition(
                format!(
                    "the dead-letter file {} cannot be opened: {e}",
                    path.display()
                ),
                "point `dead_letter:` at a writable file",
            )
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        Ok(Arc::new(DeadLetter {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        }))
    }

    /// Appends lines and waits until they are on disk.
    pub fn write(&self, lines: &[String]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut text = lines.join("\n");
        text.push('\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::Internal("dead-letter file lock poisoned".into()))?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| {
                Error::Data(format!(
                    "writing the dead-letter file {}: {e}; the failed events were not recorded, so the pipeline stops",
                    self.path.display()
                ))
            })
    }
}

/// One failed event as a JSON line: where it came from, the error, and its
/// row images by column name.
pub fn record(plugin: &str, table: &TableSchema, event: &events::Event, error: &str) -> String {
    let image = |values: &Option<Vec<Value>>| -> Json {
        match values {
            None => Json::Null,
            Some(vs) => Json::Object(
                table
                    .columns
                    .iter()
                    .zip(vs)
                    .map(|(c, v)| (c.name.clone(), json_value(v)))
                    .collect::<Map<_, _>>(),
            ),
        }
    };
    json!({
        "plugin": plugin,
        "database": table.id.database,
        "table": table.id.name,
        "op": super::schema::op_name(event.op),
        "position": event.position,
        "commit_ts_us": event.commit_ts_us,
        "error": error,
        "before": image(&event.before),
        "after": image(&event.after),
    })
    .to_string()
}

/// A value as JSON: numbers as numbers, DECIMAL as its exact text, dates
/// and times as MySQL writes them, bytes as `{"hex": "..."}`.
pub fn json_value(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => json!(i),
        Value::Uint(u) => json!(u),
        Value::Float32(f) => json!(f),
        Value::Float64(f) => json!(f),
        Value::Decimal(s) | Value::Text(s) => json!(s),
        Value::Bytes(b) => {
            json!({ "hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
        Value::Date(d) => {
            let (y, m, day) = temporal::days_to_date(*d);
            json!(format!("{y:04}-{m:02}-{day:02}"))
        }
        Value::Timestamp(us) => {
            let mut s = String::new();
            temporal::write_datetime(&mut s, temporal::us_to_datetime(*us));
            json!(s)
        }
        Value::Time(us) => {
            let mut s = String::new();
            temporal::write_time(&mut s, *us);
            json!(s)
        }
    }
}
