//! The MySQL/MariaDB source.
//!
//! - this file: its configuration and the [`Source`] implementation;
//! - [`snapshot`]: the consistent, parallel, chunked table read;
//! - [`cdc`]: following the binlog (see also `crate::binlog`).

pub mod cdc;
pub mod precheck;
pub mod snapshot;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::catalog;
use crate::config::located;
use crate::connect::Endpoint;
use crate::error::ConfigError;
use crate::event::Position;
use crate::event::{KeyKind, TableSchema};
use crate::filter::TableFilter;
use crate::privileges::Grants;
use crate::stage::{Emitter, OnUnsupportedDdl, Plan, Source, SourceMode as StageMode, Stop};
use crate::throttle::Throttle;
use crate::{Error, Result};
use sluice_core::connectors::{Build, SourceSpec};

/// `source: mysql: {...}` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSourceConfig {
    /// `mysql://USER:PASSWORD@HOST:PORT`; keep the password in `${VAR}`.
    pub url: Spanned<String>,
    #[serde(default)]
    pub mode: SourceMode,
    /// `db.table` patterns (`*`, `?` wildcards); empty selects every non-system table.
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub snapshot: SnapshotConfig,
    #[serde(default)]
    pub cdc: CdcConfig,
    /// At most this many rows per second are read (snapshot and changes
    /// together), to protect a production server.
    #[serde(default)]
    pub max_rows_per_second: Option<u64>,
    /// At most this many bytes per second (rows' in-memory size).
    #[serde(default)]
    pub max_bytes_per_second: Option<u64>,
}

/// What the source reads.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMode {
    /// Every selected table, once, at one consistent point; then stop.
    Snapshot,
    /// Changes only, from `cdc.start` (or the sinks' checkpoints).
    Cdc,
    /// A snapshot, then changes from exactly the snapshot's position.
    #[default]
    #[serde(rename = "snapshot+cdc")]
    SnapshotCdc,
}

/// `source.mysql.cdc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdcConfig {
    /// The replica id sluice registers with; must differ from every server's
    /// and replica's id. Default: derived from the pipeline name.
    pub server_id: Option<u32>,
    /// Where `mode: cdc` starts when no sink has a checkpoint.
    pub start: CdcStart,
    /// How often an idle source sends a heartbeat (lag stays honest).
    pub heartbeat_ms: u64,
    /// A schema change sluice cannot apply (CREATE TRIGGER, VIEW... on a selected table).
    pub on_unsupported_ddl: OnUnsupportedDdl,
    /// Reconnection attempts in a row without progress before the pipeline
    /// stops (backoff from 250 ms doubling up to 30 s: 12 is about three minutes).
    pub reconnect_attempts: u32,
}

impl Default for CdcConfig {
    fn default() -> Self {
        CdcConfig {
            server_id: None,
            start: CdcStart::Now,
            heartbeat_ms: 1000,
            on_unsupported_ddl: OnUnsupportedDdl::Fail,
            reconnect_attempts: 12,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CdcStart {
    /// The source's current binlog position.
    Now,
    /// `{position: {file: binlog.000042, offset: 4}}`
    Position { file: String, offset: u64 },
    /// `{gtid: "0-1-100"}` (MariaDB GTID position).
    Gtid(String),
}

/// `source.mysql.snapshot`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// Target rows per chunk when splitting a table by its key.
    pub chunk_rows: u64,
    /// Connections reading at once; defaults to `settings.parallelism`.
    pub parallelism: Option<usize>,
    /// How the readers agree on one consistent point.
    pub lock: SnapshotLock,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            chunk_rows: 100_000,
            parallelism: None,
            lock: SnapshotLock::FlushTables,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotLock {
    /// `FLUSH TABLES WITH READ LOCK` while the readers open their
    /// transactions and the binlog position is read (milliseconds); needs RELOAD.
    FlushTables,
    /// No lock: each reader has its own point in time. Only consistent with
    /// `parallelism: 1` or a source nobody writes to.
    None,
}

impl SourceSpec for MysqlSourceConfig {
    fn build(&self, ctx: &Build<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(MysqlSource::new(
            self.clone(),
            ctx.pipeline,
            ctx.settings.batch_size,
            ctx.settings.parallelism,
        )?))
    }

    fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
        Endpoint::new("source", &self.url.value).map_err(|m| {
            located(
                file,
                &self.url,
                m,
                Some("see docs/pipeline-yaml.md, `source.mysql.url`".into()),
            )
        })?;
        TableFilter::new(&self.include, &self.exclude).map_err(|m| {
            located(
                file,
                &self.url,
                format!("source.mysql include/exclude: {m}"),
                None,
            )
        })?;
        if self.max_rows_per_second == Some(0) || self.max_bytes_per_second == Some(0) {
            return Err(located(
                file,
                &self.url,
                "source.mysql: `max_rows_per_second` and `max_bytes_per_second` must be at least 1 (leave them out for no limit)".into(),
                None,
            ));
        }
        if self.snapshot.chunk_rows == 0 || self.snapshot.parallelism == Some(0) {
            return Err(located(
                file,
                &self.url,
                "source.mysql.snapshot: `chunk_rows` and `parallelism` must be at least 1".into(),
                None,
            ));
        }
        Ok(())
    }
}

/// Reads a MySQL or MariaDB server.
pub struct MysqlSource {
    config: MysqlSourceConfig,
    server_id: u32,
    endpoint: Endpoint,
    filter: TableFilter,
    batch_size: usize,
    parallelism: usize,
    /// `settings.parallelism`, for `sluice verify`.
    default_parallelism: usize,
    tables: Vec<Arc<TableSchema>>,
}

impl MysqlSource {
    pub fn new(
        config: MysqlSourceConfig,
        pipeline: &str,
        batch_size: usize,
        default_parallelism: usize,
    ) -> Result<Self> {
        let endpoint = Endpoint::new("source", &config.url.value).map_err(Error::Data)?;
        let filter = TableFilter::new(&config.include, &config.exclude)
            .map_err(Error::Data)?
            .excluding(catalog::SYSTEM_SCHEMAS);
        let parallelism = config.snapshot.parallelism.unwrap_or(default_parallelism);
        // A stable id per pipeline, away from the small ids servers usually have.
        let server_id = config.cdc.server_id.unwrap_or_else(|| {
            let h = pipeline.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            0x5000_0000 | (h as u32 & 0x0fff_ffff)
        });
        Ok(MysqlSource {
            default_parallelism,
            config,
            server_id,
            endpoint,
            filter,
            batch_size,
            parallelism,
            tables: Vec::new(),
        })
    }
}

#[async_trait]
impl Source for MysqlSource {
    fn on_unsupported_ddl(&self) -> OnUnsupportedDdl {
        self.config.cdc.on_unsupported_ddl
    }

    fn system_schemas(&self) -> &'static [&'static str] {
        catalog::SYSTEM_SCHEMAS
    }

    fn verifier(&self) -> Option<Box<dyn sluice_core::verify::Verifier>> {
        Some(Box::new(crate::verify::MysqlVerifier {
            source_ep: self.endpoint.clone(),
            parallelism: self.default_parallelism,
        }))
    }

    async fn discover(&mut self) -> Result<Vec<Arc<TableSchema>>> {
        let mut conn = self.endpoint.connect(&[]).await?;
        if self.config.snapshot.lock == SnapshotLock::FlushTables {
            let grants = Grants::load(&self.endpoint, &mut conn).await?;
            if !grants.has("RELOAD", None, None) {
                return Err(Error::precondition(
                    format!(
                        "the source user at {} lacks the RELOAD privilege, needed for the snapshot lock (FLUSH TABLES WITH READ LOCK)",
                        self.endpoint.masked()
                    ),
                    "GRANT RELOAD ON *.* TO the source user, or set `source.mysql.snapshot.lock: none` with `parallelism: 1`",
                ));
            }
        }
        let all = catalog::list_tables(&self.endpoint, &mut conn).await?;
        let ids: Vec<_> = all.iter().map(|(id, _)| id.clone()).collect();
        let unmatched = self.filter.unmatched_includes(&ids);
        if !unmatched.is_empty() {
            return Err(Error::precondition(
                format!(
                    "source include pattern(s) {} match no table visible to the source user at {}",
                    unmatched.join(", "),
                    self.endpoint.masked()
                ),
                "check the names, or grant the user SELECT on those tables (tables without privileges are invisible)",
            ));
        }
        let mut tables = Vec::new();
        for (id, rows) in all.into_iter().filter(|(id, _)| self.filter.matches(id)) {
            let schema = catalog::load_schema(&self.endpoint, &mut conn, &id, rows).await?;
            if schema.key_kind == KeyKind::None {
                tracing::warn!(table = %id, "table has no primary or non-null unique key: it is read in one stream and cannot be split");
            }
            tables.push(Arc::new(schema));
        }
        let edges = catalog::foreign_key_edges(&self.endpoint, &mut conn).await?;
        catalog::mark_foreign_keys(&mut tables, &edges);
        let _ = conn.disconnect().await;
        if tables.is_empty() {
            return Err(Error::precondition(
                format!("no table to copy at {}", self.endpoint.masked()),
                "set `source.mysql.include` to the tables to move, e.g. [\"shop.*\"]",
            ));
        }
        self.tables = tables.clone();
        Ok(tables)
    }

    fn mode(&self) -> StageMode {
        match self.config.mode {
            SourceMode::Snapshot => StageMode::Snapshot,
            SourceMode::Cdc => StageMode::Cdc,
            SourceMode::SnapshotCdc => StageMode::SnapshotThenCdc,
        }
    }

    async fn cdc_start(&mut self) -> Result<Position> {
        let mut conn = self.endpoint.connect(&[]).await?;
        let pos = match &self.config.cdc.start {
            CdcStart::Now => snapshot::binlog_position(&self.endpoint, &mut conn).await?,
            CdcStart::Position { file, offset } => Position {
                file: file.as_str().into(),
                offset: *offset,
                gtid: None,
            },
            CdcStart::Gtid(g) => Position {
                file: "".into(),
                offset: 0,
                gtid: Some(g.as_str().into()),
            },
        };
        let _ = conn.disconnect().await;
        if pos.file.is_empty() && pos.gtid.is_none() {
            return Err(Error::precondition(
                format!(
                    "the source at {} has no binary log to follow",
                    self.endpoint.masked()
                ),
                "start the source with log_bin=ON, binlog_format=ROW, binlog_row_image=FULL",
            ));
        }
        Ok(pos)
    }

    async fn current_position(&mut self) -> Result<Position> {
        let mut conn = self.endpoint.connect(&[]).await?;
        let pos = snapshot::binlog_position(&self.endpoint, &mut conn).await;
        let _ = conn.disconnect().await;
        pos
    }

    async fn precheck(
        &mut self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
    ) -> Result<Vec<crate::precheck::Finding>> {
        let mut conn = self.endpoint.connect(&[]).await?;
        let needs = precheck::Needs {
            tables,
            follows: plan.follows_changes(),
            snapshot: matches!(plan, Plan::Snapshot { .. }),
            lock: self.config.snapshot.lock,
            server_id: self.server_id,
        };
        let found = precheck::findings(&self.endpoint, &mut conn, &needs).await;
        let _ = conn.disconnect().await;
        found
    }

    async fn run(self: Box<Self>, out: Emitter, plan: Plan, stop: Stop) -> Result<()> {
        let throttle = Throttle::new(
            self.config.max_rows_per_second,
            self.config.max_bytes_per_second,
        );
        let from = match plan {
            Plan::Snapshot { then_cdc } => {
                let reader = snapshot::SnapshotReader {
                    endpoint: self.endpoint.clone(),
                    tables: self.tables.clone(),
                    batch_size: self.batch_size,
                    parallelism: self.parallelism,
                    chunk_rows: self.config.snapshot.chunk_rows,
                    lock: self.config.snapshot.lock,
                    throttle: throttle.clone(),
                };
                let Some(position) = reader.run(out.clone(), stop.clone()).await? else {
                    return Ok(()); // stopped
                };
                if !then_cdc {
                    return Ok(());
                }
                position
            }
            Plan::Cdc { from, .. } => from,
        };
        let follower = cdc::CdcReader::new(
            self.endpoint.clone(),
            self.server_id,
            self.filter.clone(),
            self.tables.clone(),
            self.batch_size,
            &self.config.cdc,
            throttle,
        );
        follower.run(from, out, stop).await
    }
}
