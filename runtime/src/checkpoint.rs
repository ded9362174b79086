//! The local checkpoint store, for sinks that cannot keep their checkpoint
//! next to their data (an object store, for example). The MySQL sink keeps
//! its own in the target's `sluice.checkpoints` table instead.
//!
//! One JSON file per pipeline and sink under `settings.checkpoint.dir`:
//! `DIR/PIPELINE/SINK.json`. Writes go to a temporary file that is synced
//! and renamed over the old one, so a crash leaves either the old or the new
//! checkpoint, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::event::Position;
use crate::stage::SinkState;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalStore { dir: dir.into() }
    }

    fn path(&self, pipeline: &str, sink: &str) -> PathBuf {
        let safe = |s: &str| s.replace(['/', '\\', '\0'], "_");
        self.dir
            .join(safe(pipeline))
            .join(format!("{}.json", safe(sink)))
    }

    /// What the sink recorded; `Fresh` when there is no file.
    pub fn load(&self, pipeline: &str, sink: &str) -> Result<SinkState> {
        let path = self.path(pipeline, sink);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SinkState::Fresh),
            Err(e) => return Err(io_error(&path, "reading", e)),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Error::Data(format!(
                "checkpoint {} is not valid JSON ({e}); delete it to start the sink over",
                path.display()
            ))
        })?;
        match v["phase"].as_str() {
            Some("snapshot") => Ok(SinkState::SnapshotInterrupted),
            Some("cdc") => Ok(SinkState::At(Position {
                file: v["binlog_file"].as_str().unwrap_or_default().to_string(),
                offset: v["binlog_offset"].as_u64().unwrap_or(0),
                gtid: v["gtid"].as_str().map(str::to_string),
            })),
            _ => Err(Error::Data(format!(
                "checkpoint {} has no known phase; delete it to start the sink over",
                path.display()
            ))),
        }
    }

    /// Records `phase` ("snapshot" or "cdc") at `position`, atomically.
    pub fn save(&self, pipeline: &str, sink: &str, phase: &str, position: &Position) -> Result<()> {
        let path = self.path(pipeline, sink);
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating", e))?;
        let body = json!({
            "phase": phase,
            "binlog_file": position.file,
            "binlog_offset": position.offset,
            "gtid": position.gtid,
        });
        let tmp = path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp).map_err(|e| io_error(&tmp, "creating", e))?;
        f.write_all(body.to_string().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| io_error(&tmp, "writing", e))?;
        fs::rename(&tmp, &path).map_err(|e| io_error(&path, "replacing", e))?;
        // The rename itself must survive a crash.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Data(format!(
        "{what} the checkpoint file {}: {e} (check settings.checkpoint.dir and its permissions)",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = std::env::temp_dir().join(format!("sluice-ckpt-{}", std::process::id()));
        let store = LocalStore::new(&dir);
        assert_eq!(store.load("p", "s").unwrap(), SinkState::Fresh);
        store
            .save("p", "s", "snapshot", &Position::default())
            .unwrap();
        assert_eq!(
            store.load("p", "s").unwrap(),
            SinkState::SnapshotInterrupted
        );
        let pos = Position {
            file: "binlog.000007".into(),
            offset: 1234,
            gtid: Some("0-1-9".into()),
        };
        store.save("p", "s", "cdc", &pos).unwrap();
        assert_eq!(store.load("p", "s").unwrap(), SinkState::At(pos));
        assert!(!dir.join("p").join("s.json.tmp").exists());
        fs::write(dir.join("p").join("s.json"), "{").unwrap();
        assert!(store
            .load("p", "s")
            .unwrap_err()
            .to_string()
            .contains("delete it"));
        let _ = fs::remove_dir_all(&dir);
    }
}
