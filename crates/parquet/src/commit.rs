//! What the sink has committed: one commit log per pipeline and sink (the
//! checkpoint: the source position and every committed file), and, derived
//! from it, a `_manifest.json` per table for readers.
//!
//! A file counts only once the commit log lists it. The log is written after
//! the file, in one atomic put; the table manifests are rewritten from the
//! log after it (and again at every start), so a crash between the two is
//! repaired. Files a crashed run wrote but never committed are not listed
//! anywhere and are overwritten or ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use sluice_core::event::{Position, TableId};
use sluice_core::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CommitLog {
    /// `snapshot` while a snapshot loads (it is redone after a crash), then
    /// `cdc`.
    pub phase: String,
    /// Everything up to here is in committed files.
    pub position: Option<SavedPosition>,
    pub files: Vec<FileEntry>,
    /// Per table (`db.table`): its schema versions, oldest first.
    #[serde(default)]
    pub schemas: BTreeMap<String, Vec<Vec<String>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedPosition {
    pub file: String,
    pub offset: u64,
    pub gtid: Option<String>,
}

impl From<&Position> for SavedPosition {
    fn from(p: &Position) -> Self {
        SavedPosition {
            file: p.file.to_string(),
            offset: p.offset,
            gtid: p.gtid.as_deref().map(str::to_string),
        }
    }
}

impl From<&SavedPosition> for Position {
    fn from(p: &SavedPosition) -> Self {
        Position {
            file: p.file.as_str().into(),
            offset: p.offset,
            gtid: p.gtid.as_deref().map(Into::into),
        }
    }
}

/// One committed file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub database: String,
    pub table: String,
    pub path: String,
    /// `snapshot` or `changes`.
    pub kind: String,
    pub rows: u64,
    pub first_position: String,
    pub last_position: String,
    pub schema_version: u32,
}

/// The manifest readers use: a table's committed files and schema versions.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    table: String,
    /// Column lists (`name type`), version 1 first.
    schemas: &'a [Vec<String>],
    files: Vec<&'a FileEntry>,
}

impl CommitLog {
    /// The schema version of `columns` for `table`, adding a version when
    /// the columns changed.
    pub fn schema_version(&mut self, table: &TableId, columns: Vec<String>) -> u32 {
        let versions = self.schemas.entry(table.to_string()).or_default();
        if versions.last() != Some(&columns) {
            versions.push(columns);
        }
        versions.len() as u32
    }
}

/// Reads and writes the log and manifests in the object store.
#[derive(Clone)]
pub struct Committer {
    pub store: Arc<dyn ObjectStore>,
    pub log_path: Path,
    pub prefix: String,
    /// Where the store is, for messages.
    pub url: String,
}

impl Committer {
    /// The object of a path relative to the archive root (as the manifest
    /// and the commit log list files).
    pub fn object(&self, relative: &str) -> Path {
        Path::from(super::layout::join(&self.prefix, relative))
    }

    pub(crate) fn fail(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Data(format!("parquet sink at {}: {what}: {e}", self.url))
    }

    pub async fn read(&self) -> Result<Option<CommitLog>> {
        match self.store.get(&self.log_path).await {
            Ok(r) => {
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| self.fail("reading the commit log", e))?;
                serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    self.fail(&format!("the commit log {} is damaged", self.log_path), e)
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail("reading the commit log", e)),
        }
    }

    /// Writes the log (the commit point), then every table manifest.
    pub async fn write(&self, log: &CommitLog) -> Result<()> {
        self.put(
            &self.log_path,
            serde_json::to_vec_pretty(log).unwrap_or_default(),
        )
        .await?;
        self.write_manifests(log, &[]).await
    }

    /// Rewrites the manifest of every table with committed files, and of
    /// `also` (an empty list once a new snapshot has replaced its files).
    pub async fn write_manifests(&self, log: &CommitLog, also: &[TableId]) -> Result<()> {
        let mut by_table: BTreeMap<(String, String), Vec<&FileEntry>> = also
            .iter()
            .map(|t| ((t.database.clone(), t.name.clone()), Vec::new()))
            .collect();
        for f in &log.files {
            by_table
                .entry((f.database.clone(), f.table.clone()))
                .or_default()
                .push(f);
        }
        for ((db, t), files) in by_table {
            let id = TableId::new(db, t);
            let m = Manifest {
                table: id.to_string(),
                schemas: log
                    .schemas
                    .get(&id.to_string())
                    .map_or(&[], |v| v.as_slice()),
                files,
            };
            let path = Path::from(super::layout::manifest(&self.prefix, &id));
            self.put(&path, serde_json::to_vec_pretty(&m).unwrap_or_default())
                .await?;
        }
        Ok(())
    }

    pub async fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&format!("writing {path}"), e))
    }
}
