//! The Parquet archive sink: a snapshot, then every change, as Parquet files
//! in object storage, committed exactly once.
//!
//! - this file: configuration and the [`Sink`] implementation;
//! - [`layout`]: object paths, named by source positions;
//! - [`files`]: change batches to Parquet (row image plus `_op`,
//!   `_commit_ts`, `_position`, `_txn`);
//! - [`commit`]: the commit log (the checkpoint) and per-table manifests;
//! - [`read`]: committed files read back, for `sluice verify`.
//!
//! Changes are buffered per table and written at a source commit once a
//! table has `max_file_rows` rows, or every table at least every
//! `max_file_age_ms`: only whole source transactions go into files, then the
//! commit log records the files and the position in one atomic write.

pub mod commit;
pub mod files;
pub mod layout;
pub mod read;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Deserialize;
use serde_saphyr::Spanned;

use commit::{CommitLog, Committer, FileEntry};
use files::OpenFile;
use sluice_core::config::located;
use sluice_core::connectors::{Build, SinkSpec};
use sluice_core::error::ConfigError;
use sluice_core::event::{ChangeBatch, Position, TableId, TableSchema};
use sluice_core::progress::Reporter;
use sluice_core::stage::{
    ChangeWriter, Commit, DdlChange, Plan, Sink, SinkContext, SinkState, SnapshotLoad,
};
use sluice_core::view::View;
use sluice_core::{Error, Result};
use store::{Secret, StoreSettings};

/// `sinks: - parquet: {...}` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// Where the archive goes: `file:///folder`, `s3://bucket/prefix`,
    /// `gs://bucket/prefix` or `az://container/prefix`.
    pub url: Spanned<String>,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// S3 credentials; when absent, the environment's (`AWS_*`).
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// Further `object_store` settings for the scheme.
    #[serde(default)]
    pub options: BTreeMap<String, Secret>,
    /// How long a failing request is retried (with backoff) before the
    /// sink stops.
    #[serde(default = "default_retry_timeout_s")]
    pub retry_timeout_s: u64,
    /// A file is closed at a commit once it holds this many rows...
    #[serde(default = "default_file_rows")]
    pub max_file_rows: usize,
    /// ...or this many (compressed) bytes. Change files are held in memory
    /// until they close, so this also bounds memory per table.
    #[serde(default = "default_file_bytes")]
    pub max_file_bytes: usize,
    /// Changes are written at least this often, so quiet tables still land.
    #[serde(default = "default_file_age_ms")]
    pub max_file_age_ms: u64,
    /// Rows per Parquet row group.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// Updates also carry the old values, in `_before_<column>` columns.
    #[serde(default)]
    pub before_images: bool,
    /// File names under each table's folder.
    #[serde(default)]
    pub layout: LayoutConfig,
}

/// `layout:` templates (see [`layout::Layout`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutConfig {
    #[serde(default = "default_snapshot_layout")]
    pub snapshot: String,
    #[serde(default = "default_changes_layout")]
    pub changes: String,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        LayoutConfig {
            snapshot: default_snapshot_layout(),
            changes: default_changes_layout(),
        }
    }
}

fn default_snapshot_layout() -> String {
    layout::DEFAULT_SNAPSHOT.into()
}
fn default_changes_layout() -> String {
    layout::DEFAULT_CHANGES.into()
}

fn default_name() -> String {
    "parquet".into()
}
fn default_retry_timeout_s() -> u64 {
    120
}
fn default_file_rows() -> usize {
    1_000_000
}
fn default_file_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_file_age_ms() -> u64 {
    60_000
}
fn default_row_group_rows() -> usize {
    128 * 1024
}

impl ParquetSinkConfig {
    fn store(&self) -> StoreSettings {
        StoreSettings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            options: self.options.clone(),
            retry_timeout_s: self.retry_timeout_s,
        }
    }
}

impl SinkSpec for ParquetSinkConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, ctx: &Build<'_>) -> Result<Arc<dyn Sink>> {
        Ok(Arc::new(ParquetSink::new(self.clone(), ctx.pipeline)?))
    }

    fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
        let hint = Some(format!("see docs/pipeline-yaml.md, sink `{}`", self.name));
        let at_url = |m: String| {
            located(
                file,
                &self.url,
                format!("sink `{}`: {m}", self.name),
                hint.clone(),
            )
        };
        let loc =
            store::parse(&self.url.value).map_err(|m| located(file, &self.url, m, hint.clone()))?;
        self.store().check(loc.scheme).map_err(at_url)?;
        layout::Layout::new(&self.layout.snapshot, &self.layout.changes).map_err(at_url)?;
        if self.max_file_rows == 0
            || self.row_group_rows == 0
            || self.max_file_age_ms == 0
            || self.max_file_bytes == 0
        {
            return Err(located(
                file,
                &self.url,
                "`max_file_rows`, `max_file_bytes`, `row_group_rows` and `max_file_age_ms` must be at least 1".into(),
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
    max_file_bytes: usize,
    max_file_age: Duration,
    row_group_rows: usize,
    before_images: bool,
    layout: layout::Layout,
}

impl ParquetSink {
    pub fn new(config: ParquetSinkConfig, pipeline: &str) -> Result<Self> {
        let url = config.url.value.clone();
        let (store, prefix) = store::open(&url, &config.store()).map_err(|m| {
            Error::precondition(
                format!("sink `{}`: {m}", config.name),
                "point `url:` at a writable folder (file:///var/lib/sluice/archive) or bucket (s3://bucket/prefix)",
            )
        })?;
        let file_layout = layout::Layout::new(&config.layout.snapshot, &config.layout.changes)
            .map_err(|m| {
                Error::precondition(
                    format!("sink `{}`: {m}", config.name),
                    "see docs/pipeline-yaml.md, `layout`",
                )
            })?;
        Ok(ParquetSink {
            layout: file_layout,
            committer: Committer {
                store,
                log_path: Path::from(layout::commit_log(&prefix, pipeline, &config.name)),
                prefix,
                url: url.clone(),
            },
            name: config.name,
            url,
            max_file_rows: config.max_file_rows,
            max_file_bytes: config.max_file_bytes,
            max_file_age: Duration::from_millis(config.max_file_age_ms),
            row_group_rows: config.row_group_rows,
            before_images: config.before_images,
        })
    }

    fn full(&self, f: &OpenFile) -> bool {
        f.rows as usize >= self.max_file_rows || f.size() >= self.max_file_bytes
    }

    /// Deletes data files of `tables` the commit log does not list: files a
    /// crashed run wrote but never committed, and parts of a snapshot that
    /// was started over, so that readers who glob the folders instead of
    /// reading the manifest see no duplicates.
    async fn remove_uncommitted(&self, tables: &[Arc<TableSchema>], log: &CommitLog) -> Result<()> {
        let listed: BTreeSet<Path> = log
            .files
            .iter()
            .map(|f| self.committer.object(&f.path))
            .collect();
        for t in tables {
            let dir = Path::from(layout::table_dir(&self.committer.prefix, &t.id));
            let objects: Vec<_> = self
                .committer
                .store
                .list(Some(&dir))
                .try_collect()
                .await
                .map_err(|e| self.committer.fail(&format!("listing {dir}"), e))?;
            if let Ok(store::Location {
                scheme: store::Scheme::File,
                bucket,
                ..
            }) = store::parse(&self.url)
            {
                remove_staged(&std::path::Path::new(&bucket).join(dir.as_ref()));
            }
            for o in objects {
                let p = o.location.as_ref();
                if p.ends_with(".parquet") && !listed.contains(&o.location) {
                    tracing::info!(sink = %self.name, file = %p, "removing a file no commit lists");
                    self.committer
                        .store
                        .delete(&o.location)
                        .await
                        .map_err(|e| self.committer.fail(&format!("removing {p}"), e))?;
                }
            }
        }
        Ok(())
    }
}

/// Whether a `CREATE TABLE` text has a foreign key that changes this
/// table's rows by itself (CASCADE, SET NULL, SET DEFAULT).
fn foreign_key_actions(create: &str) -> bool {
    let upper = create.to_ascii_uppercase();
    ["ON DELETE", "ON UPDATE"].iter().any(|on| {
        upper.match_indices(on).any(|(at, _)| {
            let rest = upper[at + on.len()..].trim_start();
            rest.starts_with("CASCADE")
                || rest.starts_with("SET NULL")
                || rest.starts_with("SET DEFAULT")
        })
    })
}

/// Deletes the staging files (`name.parquet#N`) an interrupted upload to a
/// local folder leaves; object stores keep unfinished uploads invisible.
fn remove_staged(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_staged(&path);
        } else if e.file_name().to_string_lossy().contains(".parquet#") {
            let _ = std::fs::remove_file(&path);
        }
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

/// A table's snapshot: its current part, open while it grows.
struct SnapshotTable {
    table: Arc<TableSchema>,
    key: String,
    part: u32,
    file: Option<(OpenFile, String)>,
}

/// A table's committed changes waiting for their file to close.
struct Pending {
    table: Arc<TableSchema>,
    file: OpenFile,
    first: (Arc<Position>, i64),
    last: Arc<Position>,
}

/// A snapshot being written: each table's open part, and the parts
/// written but not committed yet.
struct Load {
    sink: Arc<ParquetSink>,
    state: tokio::sync::Mutex<Snapshot>,
}

struct Snapshot {
    log: CommitLog,
    tables: BTreeMap<TableId, SnapshotTable>,
    files: Vec<FileEntry>,
}

impl ParquetSink {
    fn schema(&self, table: &TableSchema) -> arrow_schema::SchemaRef {
        files::file_schema(&table.arrow, self.before_images)
    }
}

impl Snapshot {
    async fn close_part(&mut self, sink: &ParquetSink, id: &TableId) -> Result<()> {
        let Some(t) = self.tables.get_mut(id) else {
            return Ok(());
        };
        let Some((file, path)) = t.file.take() else {
            return Ok(());
        };
        let table = t.table.clone();
        let key = t.key.clone();
        let rows = file.rows;
        file.finish(&sink.committer.store, &sink.committer.object(&path))
            .await
            .map_err(|e| sink.committer.fail("writing a snapshot part", e))?;
        let version = self.log.schema_version(id, columns(&sink.schema(&table)));
        self.files.push(FileEntry {
            database: id.database.clone(),
            table: id.name.clone(),
            path,
            kind: "snapshot".into(),
            rows,
            first_position: key.clone(),
            last_position: key,
            schema_version: version,
        });
        Ok(())
    }
}

#[async_trait]
impl SnapshotLoad for Load {
    async fn write(&self, batch: ChangeBatch) -> Result<()> {
        let sink = &self.sink;
        let mut state = self.state.lock().await;
        let id = batch.table.id.clone();
        let rows = files::rows(&batch, None, sink.before_images)?;
        let schema = sink.schema(&batch.table);
        let t = state
            .tables
            .entry(id.clone())
            .or_insert_with(|| SnapshotTable {
                table: batch.table.clone(),
                key: layout::position_key(&batch.events[0].position),
                part: 0,
                file: None,
            });
        if t.file.is_none() {
            t.part += 1;
            let path = sink.layout.snapshot_part(&id, &t.key, t.part);
            let file = OpenFile::new(
                &schema,
                sink.row_group_rows,
                Some((sink.committer.store.clone(), sink.committer.object(&path))),
            )?;
            t.file = Some((file, path));
        }
        if let Some((file, _)) = &mut t.file {
            file.write(&rows).await?;
        }
        if t.file.as_ref().is_some_and(|(f, _)| sink.full(f)) {
            state.close_part(sink, &id).await?;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>, position: &Position) -> Result<()> {
        let mut state = self.state.into_inner();
        let ids: Vec<TableId> = state.tables.keys().cloned().collect();
        for id in ids {
            state.close_part(&self.sink, &id).await?;
        }
        state.log.files.append(&mut state.files);
        state.log.phase = "cdc".into();
        state.log.position = Some(position.into());
        self.sink.committer.write(&state.log).await
    }

    /// Started uploads are cleaned up.
    async fn abandon(self: Box<Self>) {
        for (_, t) in self.state.into_inner().tables {
            if let Some((f, _)) = t.file {
                f.abort().await;
            }
        }
    }
}

/// Changes written at source commits into one file per table, committed
/// when a file is due.
struct Changes {
    sink: Arc<ParquetSink>,
    reporter: Reporter,
    log: CommitLog,
    /// Changes of committed source transactions, per table.
    committed: BTreeMap<TableId, Pending>,
    /// Changes of the open source transaction.
    open: Vec<ChangeBatch>,
    last_commit: Option<Arc<Commit>>,
    last_write: Instant,
}

impl Changes {
    fn due(&self) -> bool {
        self.committed.values().any(|p| self.sink.full(&p.file))
            || (self.last_write.elapsed() >= self.sink.max_file_age && !self.committed.is_empty())
    }

    /// Closes every table's change file, then commits them.
    async fn flush(&mut self) -> Result<()> {
        let Some(c) = self.last_commit.clone() else {
            return Ok(());
        };
        let sink = &self.sink;
        let mut changes = 0u64;
        for (id, p) in std::mem::take(&mut self.committed) {
            let (first, first_us) = &p.first;
            let path = sink.layout.change_file(&id, *first_us, first, &p.last);
            let rows = p.file.rows;
            p.file
                .finish(&sink.committer.store, &sink.committer.object(&path))
                .await
                .map_err(|e| sink.committer.fail("writing a change file", e))?;
            let version = self
                .log
                .schema_version(&id, columns(&sink.schema(&p.table)));
            changes += rows;
            self.reporter.changed(&id, rows);
            self.log.files.push(FileEntry {
                database: id.database.clone(),
                table: id.name.clone(),
                path,
                kind: "changes".into(),
                rows,
                first_position: layout::position_key(first),
                last_position: layout::position_key(&p.last),
                schema_version: version,
            });
        }
        self.log.phase = "cdc".into();
        self.log.position = Some((&c.position).into());
        sink.committer.write(&self.log).await?;
        self.reporter.applied(c.commit_ts_us, changes);
        self.last_write = Instant::now();
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
        let at = Arc::new(c.position.clone());
        for batch in std::mem::take(&mut self.open) {
            let rows = files::rows(
                &batch,
                Some((&c.position, c.commit_ts_us)),
                self.sink.before_images,
            )?;
            let id = batch.table.id.clone();
            if let Some(p) = self.committed.get(&id) {
                if !Arc::ptr_eq(&p.table, &batch.table) && p.table.arrow != batch.table.arrow {
                    return Err(Error::Internal(format!(
                        "{id} changed its columns without a schema change message"
                    )));
                }
            } else {
                let file = OpenFile::new(
                    &self.sink.schema(&batch.table),
                    self.sink.row_group_rows,
                    None,
                )?;
                self.committed.insert(
                    id.clone(),
                    Pending {
                        table: batch.table.clone(),
                        file,
                        first: (batch.events[0].position.clone(), c.commit_ts_us),
                        last: at.clone(),
                    },
                );
            }
            if let Some(p) = self.committed.get_mut(&id) {
                p.file.write(&rows).await?;
                p.last = at.clone();
            }
        }
        self.last_commit = Some(c);
        if self.due() {
            self.flush().await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        self.open.clear();
        Ok(())
    }

    /// Files before a schema change keep the old schema.
    async fn schema_change(&mut self, d: Arc<DdlChange>) -> Result<()> {
        self.flush().await?;
        self.log.position = Some((&d.position).into());
        self.sink.committer.write(&self.log).await?;
        self.reporter.applied(d.commit_ts_us, 0);
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<bool> {
        if self.due() {
            self.flush().await?;
        }
        Ok(self.committed.is_empty() && self.open.is_empty())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.sink.max_file_age.min(Duration::from_secs(1)))
    }

    async fn tick(&mut self) -> Result<()> {
        if self.due() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Stopping: writes what whole transactions completed.
    async fn close(mut self: Box<Self>) -> Result<()> {
        self.flush().await
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

    async fn checkpoint_time(&self) -> Result<Option<i64>> {
        match self.committer.store.head(&self.committer.log_path).await {
            Ok(meta) => Ok(Some(meta.last_modified.timestamp_micros())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.committer.fail("reading the commit log", e)),
        }
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
                format!("sink `{}`: cannot use {}: {e}", self.name, self.url),
                store::hint(&self.url, &e),
            )
        };
        // Listing first: some S3-compatible servers create a missing bucket
        // on the first put, and the sink lists its folders at every start.
        let root =
            (!self.committer.prefix.is_empty()).then(|| Path::from(self.committer.prefix.as_str()));
        self.committer
            .store
            .list_with_delimiter(root.as_ref())
            .await
            .map_err(fail)?;
        self.committer
            .store
            .put(&probe, PutPayload::from_static(b"probe"))
            .await
            .map_err(fail)?;
        self.committer.store.delete(&probe).await.map_err(fail)?;
        Ok(())
    }

    fn warnings(&self, tables: &[Arc<TableSchema>]) -> Vec<sluice_core::precheck::Finding> {
        let check = format!("sink `{}`", self.name);
        let mut out = Vec::new();
        for t in tables {
            if t.key.is_empty() && !self.before_images {
                out.push(sluice_core::precheck::Finding::warn(
                    check.clone(),
                    format!("{} has no key: the archive records its updates without the old rows, so `sluice verify` cannot replay them", t.id),
                    "set `before_images: true` on the sink, or give the table a primary key",
                ));
            }
            if foreign_key_actions(&t.ddl.create_table) {
                out.push(sluice_core::precheck::Finding::warn(
                    check.clone(),
                    format!("{} has foreign keys with ON DELETE/ON UPDATE actions: the rows those actions change are not in the source's binlog, so not in the archive", t.id),
                    "to archive them, replicate to a MySQL sink (which applies the actions) and archive that server, or drop the actions and change the rows explicitly",
                ));
            }
        }
        out
    }

    async fn prepare(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        _state: &SinkState,
    ) -> Result<()> {
        let mut log = self.committer.read().await?.unwrap_or_default();
        match plan {
            Plan::Snapshot { .. } => {
                // A new snapshot replaces everything committed before: changes
                // between the old commit point and the new snapshot were never
                // captured, so older change files would rebuild a wrong state.
                log.files.clear();
                log.phase = "snapshot".into();
                self.committer.write(&log).await?;
                let ids: Vec<TableId> = tables.iter().map(|t| t.id.clone()).collect();
                self.committer.write_manifests(&log, &ids).await?;
            }
            Plan::Cdc { from, fresh: true } => {
                log.phase = "cdc".into();
                log.position = Some(from.into());
                self.committer.write(&log).await?;
            }
            // Repair manifests a crash may have left behind the log.
            Plan::Cdc { .. } => self.committer.write_manifests(&log, &[]).await?,
        }
        self.remove_uncommitted(tables, &log).await
    }

    async fn load(self: Arc<Self>, _ctx: SinkContext) -> Result<Box<dyn SnapshotLoad>> {
        let log = self.committer.read().await?.unwrap_or_default();
        Ok(Box::new(Load {
            sink: self,
            state: tokio::sync::Mutex::new(Snapshot {
                log,
                tables: BTreeMap::new(),
                files: Vec::new(),
            }),
        }))
    }

    async fn apply(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn ChangeWriter>> {
        let log = self.committer.read().await?.unwrap_or_default();
        Ok(Box::new(Changes {
            sink: self,
            reporter: ctx.reporter,
            log,
            committed: BTreeMap::new(),
            open: Vec::new(),
            last_commit: None,
            last_write: Instant::now(),
        }))
    }

    fn view(&self) -> View {
        View::ChangeLog(Arc::new(read::Archive(self.committer.clone())))
    }
}
