//! The MySQL/MariaDB sink: creates the target's databases and tables from the
//! source's definitions, then bulk-loads rows over several connections.
//!
//! - this file: configuration and the [`Sink`] implementation;
//! - [`ddl`]: the source's DDL rewritten for target names;
//! - [`rename`]: source → target table names;
//! - [`load_data`]: batches into `LOAD DATA LOCAL INFILE` streams (the default);
//! - [`insert`]: batches into multi-row INSERT statements (when the server
//!   disables `local_infile`, or `load_method: insert`);
//! - [`apply`]: changes applied in parallel partitions, exactly once;
//! - [`checkpoint`]: the `sluice.checkpoints` table on the target.

pub mod apply;
pub mod checkpoint;
pub mod ddl;
pub mod insert;
pub mod load_data;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use async_trait::async_trait;
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::located;
pub use crate::config::{ApplyConfig, Consistency, ExistingTables};
use crate::connect::Endpoint;
use crate::error::ConfigError;
use crate::event::{quote_ident, ChangeBatch, Position, TableId, TableSchema};
use crate::privileges::Grants;
use crate::rename::Renames;
use crate::stage::{ChangeWriter, Plan, Sink, SinkContext, SinkState, SnapshotLoad};
use crate::view::{DatabaseView, View};
use crate::{Error, Result};
use apply::{Applier, ApplyCtx};
use checkpoint::Checkpoints;
use sluice_core::connectors::{Build, SinkSpec};

/// `sinks: - mysql: {...}` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSinkConfig {
    /// Names the sink in logs and (later) its checkpoint.
    #[serde(default = "default_name")]
    pub name: String,
    pub url: Spanned<String>,
    /// What to do when a target table already exists.
    #[serde(default)]
    pub existing_tables: ExistingTables,
    /// `source_db.table` → `target_db.table` rules; `db.*: other.*` renames a database.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Writer connections; defaults to `settings.parallelism`.
    pub parallelism: Option<usize>,
    /// Upper bound for one INSERT statement (also capped by the server's max_allowed_packet).
    #[serde(default = "default_statement_bytes")]
    pub max_statement_bytes: usize,
    /// Whether the loaded rows go to the target's binary log. `false` loads
    /// faster and is what myloader does by default, but replicas of the
    /// target then miss the rows; needs SUPER or BINLOG ADMIN.
    #[serde(default = "default_true")]
    pub write_binlog: bool,
    /// How rows are loaded.
    #[serde(default)]
    pub load_method: LoadMethod,
    /// Build plain secondary indexes of new tables after their data is
    /// loaded (faster); needs ALTER and INDEX, else indexes are created upfront.
    #[serde(default = "default_true")]
    pub defer_secondary_indexes: bool,
    /// How changes are applied (when the source follows changes).
    #[serde(default)]
    pub apply: ApplyConfig,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMethod {
    /// `LOAD DATA LOCAL INFILE` when the server allows it (`local_infile=ON`), else INSERT.
    #[default]
    Auto,
    /// Always `LOAD DATA LOCAL INFILE`; fails the precheck if the server refuses it.
    LoadData,
    /// Multi-row INSERT statements.
    Insert,
}

fn default_true() -> bool {
    true
}

fn default_name() -> String {
    "mysql".into()
}

fn default_statement_bytes() -> usize {
    4 << 20
}

impl SinkSpec for MysqlSinkConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, ctx: &Build<'_>) -> Result<Arc<dyn Sink>> {
        Ok(Arc::new(MysqlSink::new(
            self.clone(),
            ctx.pipeline,
            ctx.settings.parallelism,
        )?))
    }

    fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
        let hint = Some(format!("see docs/pipeline-yaml.md, sink `{}`", self.name));
        Endpoint::new(format!("sink `{}`", self.name), &self.url.value)
            .map_err(|m| located(file, &self.url, m, hint.clone()))?;
        Renames::new(&self.rename).map_err(|m| located(file, &self.url, m, hint.clone()))?;
        if self.parallelism == Some(0) || self.max_statement_bytes < 1024 {
            return Err(located(
                file,
                &self.url,
                "`parallelism` must be at least 1 and `max_statement_bytes` at least 1024".into(),
                hint,
            ));
        }
        Ok(())
    }
}

/// Session settings for writing: strict mode (a value the column cannot
/// hold is an error, never silently cut, rounded or replaced by `?`), 0
/// stays 0 in AUTO_INCREMENT columns, zero and invalid dates the source
/// holds are kept; foreign keys are not checked while tables fill in any
/// order (changes of tables a foreign key joins turn them on, as the
/// source had them).
pub(crate) const WRITER_SESSION: &[&str] = &[
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'",
    "SET SESSION foreign_key_checks = 0",
];

const NO_BINLOG: &str = "SET SESSION sql_log_bin = 0";

pub struct MysqlSink {
    name: String,
    endpoint: Endpoint,
    existing: ExistingTables,
    renames: Renames,
    parallelism: usize,
    apply_parts: usize,
    max_statement_bytes: AtomicUsize,
    session: Vec<&'static str>,
    load_method: LoadMethod,
    /// Decided in `check`: whether writes use LOAD DATA.
    use_load_data: AtomicBool,
    /// Decided in `check`: whether secondary indexes are built after the load.
    defer_indexes: AtomicBool,
    /// Tables created without their secondary indexes, and those indexes.
    deferred: std::sync::Mutex<Vec<(TableId, Vec<String>)>>,
    checkpoints: Checkpoints,
    pool: Pool,
}

impl MysqlSink {
    pub fn new(
        config: MysqlSinkConfig,
        pipeline: &str,
        default_parallelism: usize,
    ) -> Result<Self> {
        let role = format!("sink `{}`", config.name);
        let endpoint = Endpoint::new(role, &config.url.value).map_err(Error::Data)?;
        let renames = Renames::new(&config.rename).map_err(Error::Data)?;
        let parallelism = config.parallelism.unwrap_or(default_parallelism);
        let apply_parts = match config.apply.consistency {
            Consistency::Transactional => 1,
            Consistency::Eventual => config.apply.parallelism.unwrap_or(parallelism).max(1),
        };
        let mut session = WRITER_SESSION.to_vec();
        if !config.write_binlog {
            session.push(NO_BINLOG);
        }
        let pool = endpoint.pool(&session, parallelism);
        Ok(MysqlSink {
            checkpoints: Checkpoints::new(pipeline, &config.name),
            name: config.name,
            endpoint,
            existing: config.existing_tables,
            renames,
            parallelism,
            apply_parts,
            max_statement_bytes: config.max_statement_bytes.into(),
            session,
            load_method: config.load_method,
            use_load_data: false.into(),
            defer_indexes: config.defer_secondary_indexes.into(),
            deferred: Default::default(),
            pool,
        })
    }

    /// Target tables that already exist, among those of `targets`.
    async fn existing_tables(
        &self,
        conn: &mut mysql_async::Conn,
        targets: &BTreeSet<TableId>,
    ) -> Result<BTreeSet<TableId>> {
        let rows: Vec<(String, String)> = conn
            .query("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES")
            .await
            .map_err(|e| self.endpoint.error("listing existing tables", e))?;
        Ok(rows
            .into_iter()
            .map(|(d, t)| TableId::new(d, t))
            .filter(|t| targets.contains(t))
            .collect())
    }

    /// `ALTER TABLE ... ADD KEY` for the indexes held back in `prepare`,
    /// several tables at once.
    async fn build_deferred_indexes(&self) -> Result<()> {
        let work = self
            .deferred
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let count = work.len();
        let mut jobs = futures::stream::iter(work.into_iter().map(|(table, keys)| async move {
            let sql = format!(
                "ALTER TABLE {} {}",
                table.quoted(),
                keys.iter()
                    .map(|k| format!("ADD {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut conn = self
                .pool
                .get_conn()
                .await
                .map_err(|e| self.endpoint.error("opening a writer connection", e))?;
            conn.query_drop(&sql).await.map_err(|e| {
                self.endpoint
                    .error(format!("building the secondary indexes of {table}"), e)
            })
        }))
        .buffer_unordered(self.parallelism.max(1));
        while let Some(r) = jobs.next().await {
            r?;
        }
        if count > 0 {
            tracing::info!(sink = %self.name, tables = count, seconds = format!("{:.2}", started.elapsed().as_secs_f64()), "secondary indexes built");
        }
        Ok(())
    }

    async fn create_triggers(&self, tables: &[Arc<TableSchema>]) -> Result<()> {
        let mut conn = self.endpoint.connect(&self.session).await?;
        for t in tables.iter().filter(|t| !t.ddl.triggers.is_empty()) {
            let target = self.renames.target(&t.id);
            for trig in &t.ddl.triggers {
                let stmts = vec![
                    format!("USE {}", quote_ident(&target.database)),
                    format!(
                        "SET SESSION sql_mode = '{}'",
                        trig.sql_mode.replace('\'', "''")
                    ),
                    ddl::create_trigger(trig, &target),
                ];
                self.endpoint.exec_all(&mut conn, &stmts).await?;
            }
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// Writes one snapshot batch (LOAD DATA or INSERT).
    async fn write_snapshot(&self, batch: ChangeBatch) -> Result<()> {
        let target = self.renames.target(&batch.table.id);
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(|e| self.endpoint.error("opening a writer connection", e))?;
        if self.use_load_data.load(Relaxed) {
            let Some(load) = load_data::load_data(&batch, &target)? else {
                return Ok(());
            };
            let data = bytes::Bytes::from(load.data);
            conn.set_infile_handler(async move {
                Ok(futures::stream::once(async move { Ok(data) }).boxed())
            });
            return conn.query_drop(load.statement).await.map_err(|e| {
                self.endpoint
                    .error(format!("loading rows into {target}"), e)
            });
        }
        let limit = self.max_statement_bytes.load(Relaxed);
        for sql in insert::statements(&batch, &target, limit)? {
            conn.query_drop(sql).await.map_err(|e| {
                self.endpoint
                    .error(format!("writing rows into {target}"), e)
            })?;
        }
        Ok(())
    }

    async fn write_checkpoints(&self, phase: &str, position: &Position) -> Result<()> {
        let mut conn = self.endpoint.connect(&self.session).await?;
        let mut stmts: Vec<String> = checkpoint::CREATE.iter().map(|s| s.to_string()).collect();
        stmts.extend(self.checkpoints.reset(self.apply_parts, phase, position));
        self.endpoint.exec_all(&mut conn, &stmts).await?;
        let _ = conn.disconnect().await;
        Ok(())
    }
}

#[async_trait]
impl Sink for MysqlSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn state(&self) -> Result<SinkState> {
        let mut conn = self.endpoint.connect(&self.session).await?;
        let state = self.checkpoints.read(&self.endpoint, &mut conn).await;
        let _ = conn.disconnect().await;
        state
    }

    async fn checkpoint_time(&self) -> Result<Option<i64>> {
        if self.state().await? == SinkState::Fresh {
            return Ok(None);
        }
        let mut conn = self.endpoint.connect(&self.session).await?;
        let t = self
            .checkpoints
            .oldest_update(&self.endpoint, &mut conn)
            .await;
        let _ = conn.disconnect().await;
        t
    }

    async fn check(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        state: &SinkState,
    ) -> Result<()> {
        let mut conn = self.endpoint.connect(WRITER_SESSION).await?;
        if self.session.contains(&NO_BINLOG) {
            conn.query_drop(NO_BINLOG).await.map_err(|e| {
                Error::precondition(
                    format!(
                        "{} at {}: `write_binlog: false` needs the SUPER or BINLOG ADMIN privilege ({})",
                        self.endpoint.role,
                        self.endpoint.masked(),
                        self.endpoint.error("SET sql_log_bin = 0", e)
                    ),
                    "grant BINLOG ADMIN (MariaDB) or SYSTEM_VARIABLES_ADMIN (MySQL), or remove `write_binlog: false`",
                )
            })?;
        }
        let packet: Option<usize> = conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(|e| self.endpoint.error("reading max_allowed_packet", e))?;
        if let Some(p) = packet {
            // Leave room for the statement's framing.
            self.max_statement_bytes
                .fetch_min(p.saturating_sub(16 << 10).max(1024), Relaxed);
        }

        self.check_charsets(&mut conn, tables).await?;

        if self.load_method != LoadMethod::Insert {
            let local_infile: Option<bool> = conn
                .query_first("SELECT @@local_infile")
                .await
                .map_err(|e| self.endpoint.error("reading local_infile", e))?;
            let allowed = local_infile.unwrap_or(false);
            if !allowed && self.load_method == LoadMethod::LoadData {
                return Err(Error::precondition(
                    format!(
                        "{} at {}: `load_method: load-data` but the server has local_infile=OFF",
                        self.endpoint.role,
                        self.endpoint.masked()
                    ),
                    "SET GLOBAL local_infile = ON on the target, or use `load_method: auto`",
                ));
            }
            if !allowed {
                tracing::info!(sink = %self.name, "target has local_infile=OFF: loading with INSERT statements");
            }
            self.use_load_data.store(allowed, Relaxed);
        }

        let targets: BTreeSet<TableId> =
            tables.iter().map(|t| self.renames.target(&t.id)).collect();
        let existing = self.existing_tables(&mut conn, &targets).await?;
        // Tables this sink created in an interrupted snapshot, or is resuming
        // changes into, are its own.
        let ours = matches!(state, SinkState::SnapshotInterrupted | SinkState::At(_));
        let snapshot = matches!(plan, Plan::Snapshot { .. });
        if snapshot && !ours && self.existing == ExistingTables::Fail && !existing.is_empty() {
            let list: Vec<String> = existing.iter().take(10).map(|t| t.to_string()).collect();
            let more = existing.len().saturating_sub(10);
            return Err(Error::precondition(
                format!(
                    "{} at {}: {} target table(s) already exist: {}{}",
                    self.endpoint.role,
                    self.endpoint.masked(),
                    existing.len(),
                    list.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                ),
                "drop them, or set `existing_tables: truncate` (empty then load) or `existing_tables: append` on the sink",
            ));
        }

        let grants = Grants::load(&self.endpoint, &mut conn).await?;
        let mut missing = Vec::new();
        for t in tables {
            let target = self.renames.target(&t.id);
            let mut need = vec!["INSERT"];
            if !existing.contains(&target) {
                need.push("CREATE");
            } else if self.existing == ExistingTables::Truncate || ours {
                need.push("DROP");
            }
            if !t.ddl.triggers.is_empty() && !plan.follows_changes() {
                need.push("TRIGGER");
            }
            if plan.follows_changes() {
                need.extend(["UPDATE", "DELETE"]);
            }
            for p in need {
                if !grants.has(p, Some(&target.database), Some(&target.name)) {
                    missing.push(format!("{p} on {target}"));
                }
            }
        }
        if plan.follows_changes() {
            for p in ["CREATE", "INSERT", "UPDATE", "DELETE"] {
                if !grants.has(p, Some("sluice"), Some("checkpoints")) {
                    missing.push(format!("{p} on sluice.checkpoints"));
                }
            }
        }
        let _ = conn.disconnect().await;
        let can_alter = tables.iter().all(|t| {
            let target = self.renames.target(&t.id);
            grants.has("ALTER", Some(&target.database), Some(&target.name))
                && grants.has("INDEX", Some(&target.database), Some(&target.name))
        });
        self.defer_indexes.fetch_and(can_alter, Relaxed);
        if !missing.is_empty() {
            missing.dedup();
            return Err(Error::precondition(
                format!(
                    "the user of {} at {} lacks {}",
                    self.endpoint.role,
                    self.endpoint.masked(),
                    missing.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
                ),
                "grant them, e.g. `GRANT CREATE, INSERT, UPDATE, DELETE, DROP, TRIGGER ON target_db.* TO user` (and on sluice.* when following changes); nothing was written",
            ));
        }
        Ok(())
    }

    async fn prepare(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        state: &SinkState,
    ) -> Result<()> {
        let mut conn = self.endpoint.connect(&self.session).await?;
        let targets: BTreeSet<TableId> =
            tables.iter().map(|t| self.renames.target(&t.id)).collect();
        let mut existing = self.existing_tables(&mut conn, &targets).await?;
        let snapshot = matches!(plan, Plan::Snapshot { .. });
        if snapshot && matches!(state, SinkState::SnapshotInterrupted | SinkState::At(_)) {
            // Our own tables (half-loaded, or replaced by a new snapshot
            // another sink's interruption asked for): start them over.
            for t in &existing {
                tracing::info!(sink = %self.name, table = %t, "dropping a table the new snapshot replaces");
                self.endpoint
                    .exec_all(&mut conn, &[format!("DROP TABLE {}", t.quoted())])
                    .await?;
            }
            existing.clear();
        }
        if plan.follows_changes() && snapshot {
            // Mark the snapshot as in progress before any row is written.
            let mut stmts: Vec<String> = checkpoint::CREATE.iter().map(|s| s.to_string()).collect();
            stmts.extend(
                self.checkpoints
                    .reset(1, checkpoint::SNAPSHOT, &Position::default()),
            );
            self.endpoint.exec_all(&mut conn, &stmts).await?;
        }
        let mut databases_done = BTreeSet::new();
        for t in tables {
            let target = self.renames.target(&t.id);
            if databases_done.insert(target.database.clone()) {
                let sql =
                    ddl::create_database(&t.ddl.create_database, &t.id.database, &target.database);
                self.endpoint.exec_all(&mut conn, &[sql]).await?;
            }
            if existing.contains(&target) {
                if snapshot && self.existing == ExistingTables::Truncate {
                    self.endpoint
                        .exec_all(&mut conn, &[format!("TRUNCATE TABLE {}", target.quoted())])
                        .await?;
                }
                continue;
            }
            let mut create = t.ddl.create_table.clone();
            if snapshot && self.defer_indexes.load(Relaxed) {
                if let Some((base, keys)) = ddl::split_secondary_indexes(&create) {
                    create = base;
                    if let Ok(mut d) = self.deferred.lock() {
                        d.push((target.clone(), keys));
                    }
                }
            }
            let sql = ddl::create_table(&create, &t.id, &target).ok_or_else(|| {
                Error::Internal(format!("unexpected SHOW CREATE TABLE text for {}", t.id))
            })?;
            self.endpoint.exec_all(&mut conn, &[sql]).await?;
            tracing::debug!(sink = %self.name, table = %target, "created table");
        }
        let _ = conn.disconnect().await;
        if let Plan::Cdc { from, fresh: true } = plan {
            // Record where changes start, so a crash before the first commit loses nothing.
            self.write_checkpoints(checkpoint::CDC, from).await?;
        }
        Ok(())
    }

    async fn load(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn SnapshotLoad>> {
        Ok(Box::new(Load { sink: self, ctx }))
    }

    async fn apply(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn ChangeWriter>> {
        let ctx = Arc::new(ApplyCtx::new(
            self.endpoint.clone(),
            self.session.clone(),
            self.renames.clone(),
            self.checkpoints.clone(),
            ctx.reporter,
            self.max_statement_bytes.load(Relaxed),
        ));
        Ok(Box::new(Applier::start(ctx, self.apply_parts).await?))
    }

    fn system_schemas(&self) -> &'static [&'static str] {
        crate::catalog::SYSTEM_SCHEMAS
    }

    async fn release(&self) {
        self.pool.clone().disconnect().await.ok();
    }

    fn view(&self) -> View {
        let renames = self.renames.clone();
        View::Database(DatabaseView {
            url: self.endpoint.url().to_string(),
            session: self.session.iter().map(|s| s.to_string()).collect(),
            target: Arc::new(move |t| renames.target(t)),
        })
    }
}

/// A snapshot's rows loaded over `parallelism` connections.
struct Load {
    sink: Arc<MysqlSink>,
    ctx: SinkContext,
}

#[async_trait]
impl SnapshotLoad for Load {
    fn parallelism(&self) -> usize {
        self.sink.parallelism.max(1)
    }

    async fn write(&self, batch: ChangeBatch) -> Result<()> {
        self.sink.write_snapshot(batch).await
    }

    async fn finish(self: Box<Self>, position: &Position) -> Result<()> {
        let sink = &self.sink;
        sink.build_deferred_indexes().await?;
        if self.ctx.plan.follows_changes() {
            if self.ctx.tables.iter().any(|t| !t.ddl.triggers.is_empty()) {
                tracing::warn!(sink = %sink.name, "triggers are not created while changes are applied: the source's binlog already holds the rows they write; create them at cutover");
            }
            sink.write_checkpoints(checkpoint::CDC, position).await
        } else {
            sink.create_triggers(&self.ctx.tables).await
        }
    }
}

impl MysqlSink {
    /// Every character set and collation the tables' DDL names must exist
    /// on the target (MySQL 8's `utf8mb4_0900_ai_ci` does not on MariaDB).
    async fn check_charsets(&self, conn: &mut Conn, tables: &[Arc<TableSchema>]) -> Result<()> {
        let known: Vec<(String, Option<String>)> = conn
            .query("SELECT COLLATION_NAME, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
            .await
            .map_err(|e| self.endpoint.error("reading the target's collations", e))?;
        let collations: BTreeSet<&str> = known.iter().map(|(c, _)| c.as_str()).collect();
        let charsets: BTreeSet<&str> = known.iter().filter_map(|(_, s)| s.as_deref()).collect();
        let mut missing = Vec::new();
        for t in tables {
            let ddl = &t.ddl.create_table;
            for cs in ddl::names_after(ddl, &["CHARSET=", "CHARACTER SET "]) {
                if !charsets.contains(cs.as_str()) {
                    missing.push(format!("character set {cs} ({})", t.id));
                }
            }
            for co in ddl::names_after(ddl, &["COLLATE=", "COLLATE "]) {
                if !collations.contains(co.as_str()) {
                    missing.push(format!("collation {co} ({})", t.id));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        missing.dedup();
        Err(Error::precondition(
            format!(
                "{} at {} does not know {}",
                self.endpoint.role,
                self.endpoint.masked(),
                missing.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
            ),
            "use a target server version that has them, or convert the source tables (ALTER TABLE ... CONVERT TO CHARACTER SET ... COLLATE ...) before copying",
        ))
    }
}
