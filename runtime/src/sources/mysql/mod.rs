//! The MySQL/MariaDB source.
//!
//! - this file: its configuration and the [`Source`] implementation;
//! - [`snapshot`]: the consistent, parallel, chunked table read.

pub mod snapshot;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::located;
use crate::error::ConfigError;
use crate::event::{KeyKind, TableSchema};
use crate::mysql::catalog::{self, TableFilter};
use crate::mysql::connect::Endpoint;
use crate::mysql::privileges::Grants;
use crate::stage::{Emitter, Source};
use crate::{Error, Result};

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
}

/// What the source reads.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMode {
    /// Every selected table, once, at one consistent point.
    #[default]
    Snapshot,
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

impl MysqlSourceConfig {
    pub(crate) fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
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
    endpoint: Endpoint,
    filter: TableFilter,
    batch_size: usize,
    parallelism: usize,
    tables: Vec<Arc<TableSchema>>,
}

impl MysqlSource {
    pub fn new(
        config: MysqlSourceConfig,
        batch_size: usize,
        default_parallelism: usize,
    ) -> Result<Self> {
        let endpoint = Endpoint::new("source", &config.url.value).map_err(Error::Data)?;
        let filter = TableFilter::new(&config.include, &config.exclude).map_err(Error::Data)?;
        let parallelism = config.snapshot.parallelism.unwrap_or(default_parallelism);
        Ok(MysqlSource {
            config,
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

    async fn run(self: Box<Self>, out: Emitter) -> Result<()> {
        let reader = snapshot::SnapshotReader {
            endpoint: self.endpoint.clone(),
            tables: self.tables.clone(),
            batch_size: self.batch_size,
            parallelism: self.parallelism,
            chunk_rows: self.config.snapshot.chunk_rows,
            lock: self.config.snapshot.lock,
        };
        reader.run(out).await
    }
}
