//! The Parquet archive sink: a snapshot, then every change, as Parquet files
//! in object storage, committed exactly once.
//!
//! - this file: configuration and the [`Sink`] implementation;
//! - [`layout`]: object paths, named by source positions;
//! - [`files`]: change batches to Parquet (row image plus `_op`,
//!   `_commit_ts`, `_position`, `_txn`);
//! - [`commit`]: the commit log (the checkpoint) and per-table manifests.
//!
//! Changes are buffered per table and written at a source commit once a
//! table has `max_file_rows` rows, or every table at least every
//! `max_file_age_ms`: only whole source transactions go into files, then the
//! commit log records the files and the position in one atomic write.

pub mod commit;
pub mod files;
pub mod layout;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use async_trait::async_trait;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::sync::mpsc;

use crate::config::located;
use crate::error::ConfigError;
use crate::event::{ChangeBatch, Op, Position, TableId, TableSchema};
use crate::progress::Progress;
use crate::stage::{Commit, Message, Plan, Sink, SinkState};
use crate::{Error, Result};
use commit::{CommitLog, Committer, FileEntry};

/// `sinks: - parquet: {...}` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// Where the archive goes: `file:///path` (a local folder).
    pub url: Spanned<String>,
    /// A file is closed at a commit once it holds this many rows.
    #[serde(default = "default_file_rows")]
    pub max_file_rows: usize,
    /// Changes are written at least this often, so quiet tables still land.
    #[serde(default = "default_file_age_ms")]
    pub max_file_age_ms: u64,
    /// Rows per Parquet row group.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
}

fn default_name() -> String {
    "parquet".into()
}
fn default_file_rows() -> usize {
    1_000_000
}
fn default_file_age_ms() -> u64 {
    60_000
}
fn default_row_group_rows() -> usize {
    128 * 1024
}

/// Where a `url:` points.
fn open_store(url: &str) -> std::result::Result<(Arc<dyn ObjectStore>, String), String> {
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(format!(
                "`{url}`: write a local folder as an absolute path, file:///path/to/archive"
            ));
        }
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create the archive folder {path}: {e}"))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(path)
            .map_err(|e| format!("cannot use the archive folder {path}: {e}"))?;
        return Ok((Arc::new(store), String::new()));
    }
    Err(format!(
        "`{url}`: this version writes archives to local folders only (file:///path)"
    ))
}

impl ParquetSinkConfig {
    pub(crate) fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
        let hint = Some(format!("see docs/pipeline-yaml.md, sink `{}`", self.name));
        if !self.url.value.starts_with("file:///") {
            return Err(located(
                file,
                &self.url,
                format!(
                    "`{}`: this version writes archives to local folders only (file:///path)",
                    self.url.value
                ),
                hint,
            ));
        }
        if self.max_file_rows == 0 || self.row_group_rows == 0 || self.max_file_age_ms == 0 {
            return Err(located(
                file,
                &self.url,
                "`max_file_rows`, `row_group_rows` and `max_file_age_ms` must be at least 1".into(),
                hint,
            ));
        }
        Ok(())
    }
}

pub struct ParquetSink {
    name: String,
    url: String,
    committer: Committer,
    max_file_rows: usize,
    max_file_age: Duration,
    row_group_rows: usize,
}

impl ParquetSink {
    pub fn new(config: ParquetSinkConfig, pipeline: &str) -> Result<Self> {
        let url = config.url.value.clone();
        let (store, prefix) = open_store(&url).map_err(|m| {
            Error::precondition(
                format!("sink `{}`: {m}", config.name),
                "point `url:` at a writable folder, e.g. file:///var/lib/sluice/archive",
            )
        })?;
        Ok(ParquetSink {
            committer: Committer {
                store,
                log_path: Path::from(layout::commit_log(&prefix, pipeline, &config.name)),
                prefix,
                url: url.clone(),
            },
            name: config.name,
            url,
            max_file_rows: config.max_file_rows,
            max_file_age: Duration::from_millis(config.max_file_age_ms),
            row_group_rows: config.row_group_rows,
        })
    }
}

/// Column names and types of a file schema, for schema versions.
fn columns(schema: &arrow_schema::Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect()
}

/// A table's rows waiting for a file.
#[derive(Default)]
struct Pending {
    table: Option<Arc<TableSchema>>,
    batches: Vec<RecordBatch>,
    rows: usize,
    first: Option<(Arc<Position>, i64)>,
    last: Option<Arc<Position>>,
}

/// One run's state.
struct Run<'a> {
    sink: &'a ParquetSink,
    log: CommitLog,
    progress: Arc<Progress>,
    index: usize,
    /// Snapshot parts written but not committed yet.
    snapshot_files: Vec<FileEntry>,
    snapshot_parts: BTreeMap<TableId, (Pending, u32)>,
    /// Changes of committed source transactions, per table.
    committed: BTreeMap<TableId, Pending>,
    /// Changes of the open source transaction.
    open: Vec<ChangeBatch>,
    last_commit: Option<Arc<Commit>>,
    last_write: Instant,
    /// Changes up to here are already in committed files (another sink of
    /// the pipeline may make the source resume from an older position).
    committed_until: Option<Position>,
}

impl Run<'_> {
    async fn put_file(
        &self,
        path: &str,
        table: &TableSchema,
        batches: &[RecordBatch],
    ) -> Result<()> {
        let schema = files::file_schema(&table.arrow);
        let rows = self.sink.row_group_rows;
        let bytes = tokio::task::block_in_place(|| files::encode(&schema, batches, rows))?;
        self.sink.committer.put(&Path::from(path), bytes).await
    }

    async fn snapshot_rows(&mut self, batch: ChangeBatch) -> Result<()> {
        let id = batch.table.id.clone();
        let rows = files::rows(&batch, None)?;
        let n = rows.num_rows();
        let entry = self.snapshot_parts.entry(id.clone()).or_default();
        entry.0.table = Some(batch.table.clone());
        entry
            .0
            .first
            .get_or_insert((batch.events[0].position.clone(), 0));
        entry.0.batches.push(rows);
        entry.0.rows += n;
        self.progress.add(self.index, &id, n as u64);
        if entry.0.rows >= self.sink.max_file_rows {
            self.write_snapshot_part(&id).await?;
        }
        Ok(())
    }

    async fn write_snapshot_part(&mut self, id: &TableId) -> Result<()> {
        let Some((pending, part)) = self.snapshot_parts.get_mut(id) else {
            return Ok(());
        };
        let (Some(table), Some((pos, _))) = (pending.table.clone(), pending.first.clone()) else {
            return Ok(());
        };
        if pending.rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut pending.batches);
        let rows = std::mem::take(&mut pending.rows) as u64;
        *part += 1;
        let part = *part;
        let snapshot = layout::position_key(&pos);
        let path = layout::snapshot_part(&self.sink.committer.prefix, id, &snapshot, part);
        self.put_file(&path, &table, &batches).await?;
        let version = self
            .log
            .schema_version(id, columns(&files::file_schema(&table.arrow)));
        self.snapshot_files.push(FileEntry {
            database: id.database.clone(),
            table: id.name.clone(),
            path,
            kind: "snapshot".into(),
            rows,
            first_position: snapshot.clone(),
            last_position: snapshot,
            schema_version: version,
        });
        Ok(())
    }

    async fn snapshot_done(&mut self, position: &Position) -> Result<()> {
        let ids: Vec<TableId> = self.snapshot_parts.keys().cloned().collect();
        for id in ids {
            self.write_snapshot_part(&id).await?;
        }
        self.log.files.append(&mut self.snapshot_files);
        self.log.phase = "cdc".into();
        self.log.position = Some(position.into());
        self.sink.committer.write(&self.log).await?;
        self.last_write = Instant::now();
        Ok(())
    }

    fn commit(&mut self, c: Arc<Commit>) -> Result<()> {
        if let Some(done) = &self.committed_until {
            if c.position.binlog_cmp(done) != std::cmp::Ordering::Greater {
                self.open.clear();
                return Ok(());
            }
            self.committed_until = None;
        }
        for batch in std::mem::take(&mut self.open) {
            let rows = files::rows(&batch, Some(&c.position))?;
            let p = self.committed.entry(batch.table.id.clone()).or_default();
            if p.table
                .as_ref()
                .is_some_and(|t| !Arc::ptr_eq(t, &batch.table))
                && p.table
                    .as_ref()
                    .is_some_and(|t| t.arrow != batch.table.arrow)
            {
                return Err(Error::Internal(format!(
                    "{} changed its columns without a schema change message",
                    batch.table.id
                )));
            }
            p.table = Some(batch.table.clone());
            p.first
                .get_or_insert((batch.events[0].position.clone(), c.commit_ts_us));
            p.last = Some(Arc::new(c.position.clone()));
            p.rows += rows.num_rows();
            p.batches.push(rows);
        }
        self.last_commit = Some(c);
        Ok(())
    }

    fn due(&self) -> bool {
        self.committed
            .values()
            .any(|p| p.rows >= self.sink.max_file_rows)
            || (self.last_write.elapsed() >= self.sink.max_file_age
                && self.committed.values().any(|p| p.rows > 0))
    }

    /// Writes every table's committed changes, then commits them.
    async fn flush(&mut self) -> Result<()> {
        let Some(c) = self.last_commit.clone() else {
            return Ok(());
        };
        let mut changes = 0u64;
        for (id, p) in std::mem::take(&mut self.committed) {
            let (Some(table), Some((first, first_us)), Some(last)) = (p.table, p.first, p.last)
            else {
                continue;
            };
            let path =
                layout::change_file(&self.sink.committer.prefix, &id, first_us, &first, &last);
            self.put_file(&path, &table, &p.batches).await?;
            let version = self
                .log
                .schema_version(&id, columns(&files::file_schema(&table.arrow)));
            changes += p.rows as u64;
            self.log.files.push(FileEntry {
                database: id.database.clone(),
                table: id.name.clone(),
                path,
                kind: "changes".into(),
                rows: p.rows as u64,
                first_position: layout::position_key(&first),
                last_position: layout::position_key(&last),
                schema_version: version,
            });
        }
        self.log.phase = "cdc".into();
        self.log.position = Some((&c.position).into());
        self.sink.committer.write(&self.log).await?;
        self.progress.applied(self.index, c.commit_ts_us, changes);
        self.last_write = Instant::now();
        Ok(())
    }
}

#[async_trait]
impl Sink for ParquetSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn state(&self) -> Result<SinkState> {
        Ok(match self.committer.read().await? {
            None => SinkState::Fresh,
            Some(log) => match (log.phase.as_str(), &log.position) {
                ("cdc", Some(p)) => SinkState::At(p.into()),
                ("snapshot", _) => SinkState::SnapshotInterrupted,
                _ => SinkState::Fresh,
            },
        })
    }

    async fn check(
        &self,
        _tables: &[Arc<TableSchema>],
        _plan: &Plan,
        _state: &SinkState,
    ) -> Result<()> {
        // Prove the store takes writes before any data moves.
        let probe = Path::from(format!(
            "{}_sluice/.probe-{}",
            if self.committer.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", self.committer.prefix)
            },
            std::process::id()
        ));
        let fail = |e: object_store::Error| {
            Error::precondition(
                format!("sink `{}`: cannot write to {}: {e}", self.name, self.url),
                "make the folder writable for the user running sluice, or point `url:` elsewhere",
            )
        };
        self.committer
            .store
            .put(&probe, PutPayload::from_static(b"probe"))
            .await
            .map_err(fail)?;
        self.committer.store.delete(&probe).await.map_err(fail)?;
        Ok(())
    }

    async fn prepare(
        &self,
        _tables: &[Arc<TableSchema>],
        plan: &Plan,
        _state: &SinkState,
    ) -> Result<()> {
        let mut log = self.committer.read().await?.unwrap_or_default();
        match plan {
            Plan::Snapshot { .. } => {
                // A new snapshot replaces what an earlier one committed.
                log.files.retain(|f| f.kind != "snapshot");
                log.phase = "snapshot".into();
                self.committer.write(&log).await
            }
            Plan::Cdc { from, fresh: true } => {
                log.phase = "cdc".into();
                log.position = Some(from.into());
                self.committer.write(&log).await
            }
            // Repair manifests a crash may have left behind the log.
            Plan::Cdc { .. } => self.committer.write_manifests(&log).await,
        }
    }

    async fn run(
        self: Arc<Self>,
        mut input: mpsc::Receiver<Message>,
        _tables: Vec<Arc<TableSchema>>,
        plan: Plan,
        progress: Arc<Progress>,
        index: usize,
    ) -> Result<()> {
        let log = self.committer.read().await?.unwrap_or_default();
        let committed_until = match &plan {
            Plan::Cdc { fresh: false, .. } => log.position.as_ref().map(Position::from),
            _ => None,
        };
        let mut run = Run {
            sink: &self,
            log,
            progress,
            index,
            snapshot_files: Vec::new(),
            snapshot_parts: BTreeMap::new(),
            committed: BTreeMap::new(),
            open: Vec::new(),
            last_commit: None,
            last_write: Instant::now(),
            committed_until,
        };
        let mut snapshot_finished = !matches!(plan, Plan::Snapshot { .. });
        let mut tick = tokio::time::interval(self.max_file_age.min(Duration::from_secs(1)));
        loop {
            let msg = tokio::select! {
                m = input.recv() => m,
                _ = tick.tick() => {
                    if run.due() {
                        run.flush().await?;
                    }
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            match msg {
                Message::Batch(b) if b.is_empty() => {}
                Message::Batch(b) if b.events[0].op == Op::Read => run.snapshot_rows(b).await?,
                Message::Batch(b) => {
                    run.progress.set_caught_up(index, false);
                    run.open.push(b);
                }
                Message::SnapshotDone(p) => {
                    run.snapshot_done(&p).await?;
                    snapshot_finished = true;
                }
                Message::Commit(c) => {
                    run.commit(c)?;
                    if run.due() {
                        run.flush().await?;
                    }
                }
                Message::Rollback => run.open.clear(),
                Message::Ddl(d)
                    if run.committed_until.as_ref().is_some_and(|done| {
                        d.position.binlog_cmp(done) != std::cmp::Ordering::Greater
                    }) => {}
                Message::Ddl(d) => {
                    // Files before a schema change keep the old schema.
                    run.flush().await?;
                    run.log.position = Some((&d.position).into());
                    self.committer.write(&run.log).await?;
                    run.progress.applied(index, d.commit_ts_us, 0);
                }
                Message::Heartbeat => {
                    if run.due() {
                        run.flush().await?;
                    }
                    if run.committed.is_empty() && run.open.is_empty() {
                        run.progress.set_caught_up(index, true);
                    }
                }
            }
        }
        // Stopping: write what whole transactions completed.
        run.flush().await?;
        if !snapshot_finished {
            tracing::warn!(sink = %self.name, "stopped before the snapshot finished; the next run starts it over");
        }
        Ok(())
    }
}
