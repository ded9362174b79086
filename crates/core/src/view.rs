//! What `sluice verify` reads of a sink: each sink says how its copy can be
//! read back, so the verifier needs none of its internals.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, RecordBatch};
use async_trait::async_trait;

use crate::event::{Op, TableId, TableSchema};
use crate::Result;

/// How a sink's copy is read back.
pub enum View {
    /// A database of the source's family: compared with the source by
    /// checksums on both servers, and repairable.
    Database(DatabaseView),
    /// An append-only log of every change (an archive): replayed into the
    /// tables it describes. A database of another family is read back this
    /// way too, each table's current rows as one snapshot.
    ChangeLog(Arc<dyn ChangeLog>),
    /// The sink cannot be read back, and why.
    Unreadable(String),
}

/// A database sink's target.
#[derive(Clone)]
pub struct DatabaseView {
    /// With its password: the verifier connects with it (and masks it).
    pub url: String,
    /// The statements the sink's writer connections start with (repairs
    /// write the way the sink does).
    pub session: Vec<String>,
    /// Where a source table lands on the target.
    pub target: Arc<dyn Fn(&TableId) -> TableId + Send + Sync>,
}

/// An archive's committed changes, read back.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// Every committed row of `table` (the snapshot, then each change), in
    /// the order they were written.
    async fn read(&self, table: &TableSchema) -> Result<Vec<LoggedBatch>>;

    /// Source rows of `table` (after the transforms) as this sink stores
    /// them, when a setting stores some values another way (PostgreSQL's
    /// `zero_dates: null`): what it reads back is compared with these.
    fn as_stored(&self, _table: &TableSchema, batch: RecordBatch) -> Result<RecordBatch> {
        Ok(batch)
    }

    /// Whether [`repair`](Self::repair) can rewrite this copy (a database
    /// can; an append-only archive cannot).
    fn repairable(&self) -> bool {
        false
    }

    /// `sluice verify --repair`: writes `upserts` (source rows after the
    /// transforms, over any row with their key; added, for a table without
    /// a key) and removes one stored row per row of `deletes` (rows as
    /// [`read`](Self::read) returned them), in one transaction. Returns the
    /// rows written and removed.
    async fn repair(
        &self,
        table: &TableSchema,
        _upserts: &[RecordBatch],
        _deletes: &[RecordBatch],
    ) -> Result<usize> {
        Err(crate::Error::Internal(format!(
            "{}: this sink's copy cannot be repaired",
            table.id
        )))
    }
}

/// Rows of one committed file, in `table`'s current shape.
pub struct LoggedBatch {
    /// Each row's operation.
    pub ops: Vec<Op>,
    /// The row as the change left it (for a delete, the row deleted), every
    /// column nullable.
    pub image: RecordBatch,
    /// Columns the file lacks (added to the table after it was written):
    /// the server filled them in without a change in the log.
    pub missing: Vec<usize>,
    /// The old rows of updates, when the archive keeps them.
    pub before: Option<RecordBatch>,
}

/// `batch` with its zero and partial-zero dates (DATE, DATETIME, TIMESTAMP)
/// as NULL, every column nullable: how a copy that cannot hold them stores
/// them (PostgreSQL's `zero_dates: null`, Debezium's encoding).
pub fn zero_dates_as_null(batch: RecordBatch) -> Result<RecordBatch> {
    use crate::temporal::{DAY0, DAY0_US};
    let schema = crate::types::all_nullable(&batch.schema());
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|a| -> ArrayRef {
            if let Some(d) = a.as_primitive_opt::<Date32Type>() {
                Arc::new(d.unary_opt::<_, Date32Type>(|v| (v >= DAY0).then_some(v)))
            } else if let Some(t) = a.as_primitive_opt::<TimestampMicrosecondType>() {
                Arc::new(
                    t.unary_opt::<_, TimestampMicrosecondType>(|v| (v >= DAY0_US).then_some(v))
                        .with_timezone_opt(t.timezone()),
                )
            } else {
                a.clone()
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns)
        .map_err(|e| crate::Error::Internal(format!("zero dates as NULL: {e}")))
}
