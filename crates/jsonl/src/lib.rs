//! The JSON Lines sink: every snapshot row and every change as one line of
//! a local file, for debugging a pipeline and feeding tools that read
//! lines. It is also the smallest complete sink: settings, a check, a
//! snapshot load and a change writer, exactly once; the core's driver does
//! the rest.
//!
//! Exactly once: lines are appended, and a checkpoint file beside the data
//! (`PATH.checkpoint`) records how many bytes of it are committed and the
//! source position they reach, replaced atomically after the data is
//! synced. A restart cuts the file back to the committed length, so lines
//! of a transaction that did not commit disappear, and the source resumes
//! after the checkpoint's position.
//!
//! - this file: settings and the sink;
//! - [`line`]: a row change as a JSON object;
//! - [`checkpoint`]: the checkpoint file.

pub mod checkpoint;
pub mod line;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_saphyr::Spanned;

use checkpoint::{Checkpoint, Phase};
use sluice_core::config::located;
use sluice_core::connectors::{Build, SinkSpec};
use sluice_core::error::ConfigError;
use sluice_core::event::{ChangeBatch, Position, TableSchema};
use sluice_core::progress::Reporter;
use sluice_core::stage::{
    ChangeWriter, Commit, DdlChange, Plan, Sink, SinkContext, SinkState, SnapshotLoad,
};
use sluice_core::view::View;
use sluice_core::{Error, Result};

/// `sinks: - jsonl: {...}` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// The file the lines go to; its checkpoint is `PATH.checkpoint`.
    pub path: Spanned<String>,
}

fn default_name() -> String {
    "jsonl".into()
}

impl SinkSpec for JsonlSinkConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
        if self.path.value.trim().is_empty() {
            return Err(located(
                file,
                &self.path,
                format!("sink `{}`: `path` is empty", self.name),
                Some("give the file the lines go to, e.g. `path: ./changes.jsonl`".into()),
            ));
        }
        Ok(())
    }

    fn build(&self, _ctx: &Build<'_>) -> Result<Arc<dyn Sink>> {
        let path = PathBuf::from(&self.path.value);
        Ok(Arc::new(JsonlSink {
            name: self.name.clone(),
            checkpoint: Checkpoint::path_for(&path),
            path,
        }))
    }
}

pub struct JsonlSink {
    name: String,
    path: PathBuf,
    checkpoint: PathBuf,
}

/// Changes are synced and checkpointed at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

impl JsonlSink {
    fn fail(&self, what: &str, e: std::io::Error) -> Error {
        Error::Data(format!(
            "sink `{}`: {what} {}: {e}\n  hint: check that the folder exists and sluice may write there",
            self.name,
            self.path.display()
        ))
    }

    fn read_checkpoint(&self) -> Result<Option<Checkpoint>> {
        Checkpoint::read(&self.checkpoint).map_err(|e| self.fail("reading the checkpoint of", e))
    }

    fn write_checkpoint(&self, c: &Checkpoint) -> Result<()> {
        c.write(&self.checkpoint)
            .map_err(|e| self.fail("writing the checkpoint of", e))
    }

    /// The data file cut back to what the checkpoint says is committed.
    fn open(&self) -> Result<Out> {
        let committed = self.read_checkpoint()?.map_or(0, |c| c.bytes);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| self.fail("opening", e))?;
        file.set_len(committed)
            .and_then(|()| file.seek(SeekFrom::Start(committed)).map(|_| ()))
            .map_err(|e| self.fail("cutting back", e))?;
        Ok(Out {
            file,
            bytes: committed,
        })
    }
}

/// The data file, positioned at its end.
struct Out {
    file: File,
    bytes: u64,
}

impl Out {
    fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
        self.file.write_all(lines)?;
        self.bytes += lines.len() as u64;
        Ok(())
    }
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn state(&self) -> Result<SinkState> {
        Ok(match self.read_checkpoint()? {
            None => SinkState::Fresh,
            Some(c) if c.phase == Phase::Snapshot => SinkState::SnapshotInterrupted,
            Some(c) => SinkState::At(c.position),
        })
    }

    async fn check(
        &self,
        _tables: &[Arc<TableSchema>],
        _plan: &Plan,
        state: &SinkState,
    ) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(Error::precondition(
                format!(
                    "sink `{}`: the folder of {} does not exist",
                    self.name,
                    self.path.display()
                ),
                "create it, or point `path:` at a file in an existing folder",
            ));
        }
        let has_data = std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0);
        if *state == SinkState::Fresh && has_data {
            return Err(Error::precondition(
                format!(
                    "sink `{}`: {} holds lines but no checkpoint ({})",
                    self.name,
                    self.path.display(),
                    self.checkpoint.display()
                ),
                "remove the file, or point `path:` at a new one; nothing was written",
            ));
        }
        Ok(())
    }

    async fn prepare(
        &self,
        _tables: &[Arc<TableSchema>],
        plan: &Plan,
        _state: &SinkState,
    ) -> Result<()> {
        let checkpoint = match plan {
            // A new snapshot replaces everything.
            Plan::Snapshot { .. } => Checkpoint {
                phase: Phase::Snapshot,
                position: Position::default(),
                bytes: 0,
            },
            Plan::Cdc { from, fresh: true } => Checkpoint {
                phase: Phase::Changes,
                position: from.clone(),
                bytes: 0,
            },
            Plan::Cdc { fresh: false, .. } => return Ok(()),
        };
        self.write_checkpoint(&checkpoint)?;
        self.open().map(|_| ())
    }

    async fn load(self: Arc<Self>, _ctx: SinkContext) -> Result<Box<dyn SnapshotLoad>> {
        let out = self.open()?;
        Ok(Box::new(Load {
            sink: self,
            out: Mutex::new(out),
        }))
    }

    async fn apply(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn ChangeWriter>> {
        let out = self.open()?;
        Ok(Box::new(Changes {
            sink: self,
            out,
            open: Vec::new(),
            pending: None,
            reporter: ctx.reporter,
        }))
    }

    fn view(&self) -> View {
        View::Unreadable("a JSON Lines file is read with tools of its own".into())
    }
}

/// Snapshot rows appended in the order they come.
struct Load {
    sink: Arc<JsonlSink>,
    out: Mutex<Out>,
}

#[async_trait]
impl SnapshotLoad for Load {
    async fn write(&self, batch: ChangeBatch) -> Result<()> {
        let Some(first) = batch.events.first() else {
            return Ok(());
        };
        let mut lines = Vec::new();
        line::write_lines(&batch, &first.position, first.commit_ts_us, &mut lines);
        let mut out = self
            .out
            .lock()
            .map_err(|_| Error::Internal("jsonl sink: file lock poisoned".into()))?;
        out.append(&lines)
            .map_err(|e| self.sink.fail("writing to", e))
    }

    async fn finish(self: Box<Self>, position: &Position) -> Result<()> {
        let out = self
            .out
            .into_inner()
            .map_err(|_| Error::Internal("jsonl sink: file lock poisoned".into()))?;
        tokio::task::block_in_place(|| out.file.sync_data())
            .map_err(|e| self.sink.fail("syncing", e))?;
        self.sink.write_checkpoint(&Checkpoint {
            phase: Phase::Changes,
            position: position.clone(),
            bytes: out.bytes,
        })
    }
}

/// Changes: a transaction's lines are written at its commit, synced and
/// checkpointed every [`FLUSH_EVERY`] and whenever the source is idle.
struct Changes {
    sink: Arc<JsonlSink>,
    out: Out,
    /// The open source transaction's changes.
    open: Vec<ChangeBatch>,
    /// The last commit written but not yet synced, and its row count.
    pending: Option<(Arc<Commit>, u64)>,
    reporter: Reporter,
}

impl Changes {
    /// Syncs what is written and moves the checkpoint to it.
    fn sync(&mut self) -> Result<()> {
        let Some((c, rows)) = self.pending.take() else {
            return Ok(());
        };
        tokio::task::block_in_place(|| self.out.file.sync_data())
            .map_err(|e| self.sink.fail("syncing", e))?;
        self.sink.write_checkpoint(&Checkpoint {
            phase: Phase::Changes,
            position: c.position.clone(),
            bytes: self.out.bytes,
        })?;
        self.reporter.applied(c.commit_ts_us, rows);
        Ok(())
    }
}

#[async_trait]
impl ChangeWriter for Changes {
    async fn write(&mut self, batch: ChangeBatch) -> Result<()> {
        self.open.push(batch);
        Ok(())
    }

    async fn commit(&mut self, c: Arc<Commit>) -> Result<()> {
        let mut lines = Vec::new();
        let mut rows = 0u64;
        for b in std::mem::take(&mut self.open) {
            line::write_lines(&b, &c.position, c.commit_ts_us, &mut lines);
            rows += b.len() as u64;
            self.reporter.changed(&b.table.id, b.len() as u64);
        }
        self.out
            .append(&lines)
            .map_err(|e| self.sink.fail("writing to", e))?;
        let before = self.pending.take().map_or(0, |(_, n)| n);
        self.pending = Some((c, before + rows));
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        self.open.clear();
        Ok(())
    }

    async fn schema_change(&mut self, d: Arc<DdlChange>) -> Result<()> {
        let mut lines = Vec::new();
        line::write_schema_change(&d.sql, &d.position, d.commit_ts_us, &mut lines);
        self.out
            .append(&lines)
            .map_err(|e| self.sink.fail("writing to", e))?;
        let rows = self.pending.take().map_or(0, |(_, n)| n);
        self.pending = Some((
            Arc::new(Commit {
                position: d.position.clone(),
                commit_ts_us: d.commit_ts_us,
            }),
            rows,
        ));
        self.sync()
    }

    async fn heartbeat(&mut self) -> Result<bool> {
        self.sync()?;
        Ok(self.open.is_empty())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(FLUSH_EVERY)
    }

    async fn tick(&mut self) -> Result<()> {
        self.sync()
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        self.sync()
    }
}
