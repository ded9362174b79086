//! The checkpoint beside the data file: how many of its bytes are
//! committed, and the source position they reach. Written to a temporary
//! file that is synced and renamed over the old one, so a crash leaves the
//! old checkpoint or the new one, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use sluice_core::event::Position;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A snapshot is being written: a restart starts it over.
    Snapshot,
    /// Changes are appended after the snapshot (or from the start position).
    Changes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub phase: Phase,
    pub position: Position,
    /// Bytes of the data file that are committed.
    pub bytes: u64,
}

impl Checkpoint {
    /// `PATH.checkpoint` for the data file `PATH`.
    pub fn path_for(data: &Path) -> PathBuf {
        let mut name = data.as_os_str().to_owned();
        name.push(".checkpoint");
        PathBuf::from(name)
    }

    pub fn read(path: &Path) -> std::io::Result<Option<Checkpoint>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the checkpoint is not sluice's ({what}); remove it and the data file to start over"),
            )
        };
        let v: Value = serde_json::from_str(&text).map_err(|_| bad("not JSON"))?;
        let phase = match v["phase"].as_str() {
            Some("snapshot") => Phase::Snapshot,
            Some("changes") => Phase::Changes,
            _ => return Err(bad("no phase")),
        };
        Ok(Some(Checkpoint {
            phase,
            position: Position {
                file: v["file"].as_str().unwrap_or_default().into(),
                offset: v["offset"].as_u64().unwrap_or(0),
                gtid: v["gtid"].as_str().map(Into::into),
            },
            bytes: v["bytes"].as_u64().ok_or_else(|| bad("no byte count"))?,
        }))
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let v = json!({
            "phase": match self.phase { Phase::Snapshot => "snapshot", Phase::Changes => "changes" },
            "file": self.position.file,
            "offset": self.position.offset,
            "gtid": self.position.gtid,
            "bytes": self.bytes,
        });
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(v.to_string().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_a_checkpoint() {
        let dir = std::env::temp_dir().join(format!("sluice-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.checkpoint");
        assert_eq!(Checkpoint::read(&path).unwrap(), None);
        let c = Checkpoint {
            phase: Phase::Changes,
            position: Position {
                file: "bin.000002".into(),
                offset: 1234,
                gtid: Some("0-1-7".into()),
            },
            bytes: 99,
        };
        c.write(&path).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap(), Some(c));
        std::fs::write(&path, "{}").unwrap();
        assert!(Checkpoint::read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
