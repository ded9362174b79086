//! Reading an archive back for `sluice verify`: a table's committed files,
//! in commit order, in the table's current shape. Only files the commit
//! log lists count, as for any reader.

use arrow_array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use async_trait::async_trait;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::commit::Committer;
use super::files::{BEFORE, OP};
use sluice_core::event::{Op, TableId, TableSchema};
use sluice_core::view::{ChangeLog, LoggedBatch};
use sluice_core::{Error, Result};

/// An archive, as `sluice verify` reads it.
pub struct Archive(pub Committer);

#[async_trait]
impl ChangeLog for Archive {
    async fn read(&self, table: &TableSchema) -> Result<Vec<LoggedBatch>> {
        let mut out = Vec::new();
        for batch in committed_batches(&self.0, &table.id).await? {
            let ops = batch
                .column_by_name(OP)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| {
                    Error::Data(format!("archive file of {} has no `{OP}` column", table.id))
                })?;
            let ops = (0..ops.len())
                .map(|r| match ops.value(r) {
                    "insert" => Ok(Op::Insert),
                    "update" => Ok(Op::Update),
                    "delete" => Ok(Op::Delete),
                    "read" => Ok(Op::Read),
                    other => Err(Error::Data(format!(
                        "archive file of {} has the unknown `{OP}` value `{other}`",
                        table.id
                    ))),
                })
                .collect::<Result<Vec<_>>>()?;
            let missing = (0..table.columns.len())
                .filter(|&i| batch.column_by_name(&table.columns[i].name).is_none())
                .collect();
            let has_before = table.columns.iter().all(|c| {
                batch
                    .column_by_name(&format!("{BEFORE}{}", c.name))
                    .is_some()
            });
            out.push(LoggedBatch {
                ops,
                image: image(table, &batch, "")?,
                missing,
                before: if has_before {
                    Some(image(table, &batch, BEFORE)?)
                } else {
                    None
                },
            });
        }
        Ok(out)
    }
}

/// Every row of `table`'s committed files: snapshot parts, then change
/// files, each in the order it was written.
async fn committed_batches(c: &Committer, table: &TableId) -> Result<Vec<RecordBatch>> {
    let Some(log) = c.read().await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in log
        .files
        .iter()
        .filter(|f| f.database == table.database && f.table == table.name)
    {
        let path = c.object(&f.path);
        let bytes = c
            .store
            .get(&path)
            .await
            .map_err(|e| c.fail(&format!("reading {path}"), e))?
            .bytes()
            .await
            .map_err(|e| c.fail(&format!("reading {path}"), e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| c.fail(&format!("decoding {path}"), e))?;
        for batch in reader {
            out.push(batch.map_err(|e| c.fail(&format!("decoding {path}"), e))?);
        }
    }
    Ok(out)
}

/// The row image columns of a file batch in `table`'s current shape (the
/// after image, or with `prefix` the before image): by name, NULL for
/// columns older files lack, TIME back from the file's microsecond integers.
fn image(table: &TableSchema, batch: &RecordBatch, prefix: &str) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for field in table.arrow.fields() {
        let want = field.data_type();
        let col = match batch.column_by_name(&format!("{prefix}{}", field.name())) {
            None => new_null_array(want, n),
            Some(c) if c.data_type() == want => c.clone(),
            Some(c) if matches!(want, DataType::Duration(TimeUnit::Microsecond)) && c.data_type() == &DataType::Int64 => {
                let data = c
                    .to_data()
                    .into_builder()
                    .data_type(want.clone())
                    .build()
                    .map_err(|e| Error::Internal(format!("TIME column `{}`: {e}", field.name())))?;
                arrow_array::make_array(data)
            }
            Some(c) => {
                return Err(Error::Data(format!(
                    "archive column `{}` of {} holds {:?} where the table now has {:?}; files written before a type change cannot be compared",
                    field.name(),
                    table.id,
                    c.data_type(),
                    want
                )))
            }
        };
        columns.push(col);
    }
    // Nullable throughout: rows older than an added NOT NULL column have none.
    let schema = sluice_core::types::all_nullable(&table.arrow);
    RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::Internal(format!("{}: archive rows: {e}", table.id)))
}
