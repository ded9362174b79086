//! A Parquet archive's table as it stands: its committed files replayed in
//! order (snapshot rows, then inserts, updates and deletes by key), in the
//! form [`super::rows`] compares.

use std::sync::Arc;

use arrow_array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema, TimeUnit};

use super::rows::{self, Row, Rows};
use crate::event::TableSchema;
use crate::sinks::parquet::files::OP;
use crate::{Error, Result};

/// Replays `batches` (files of `table`, oldest first) into the table's rows.
pub fn replay(table: &TableSchema, batches: &[RecordBatch]) -> Result<Rows> {
    let mut state = Rows::new();
    for batch in batches {
        let ops = batch
            .column_by_name(OP)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| {
                Error::Data(format!("archive file of {} has no `{OP}` column", table.id))
            })?
            .clone();
        let image = image(table, batch)?;
        for (r, (key, values)) in rows::literals(table, &image)?.into_iter().enumerate() {
            if ops.value(r) == "delete" {
                let gone = match state.get_mut(&key) {
                    Some(row) if row.count > 1 => {
                        row.count -= 1;
                        false
                    }
                    Some(_) => true,
                    None => false,
                };
                if gone {
                    state.remove(&key);
                }
            } else if table.key.is_empty() {
                state
                    .entry(key)
                    .and_modify(|row| row.count += 1)
                    .or_insert(Row { values, count: 1 });
            } else {
                state.insert(key, Row { values, count: 1 });
            }
        }
    }
    Ok(state)
}

/// The row image columns of a file batch in `table`'s current shape: by
/// name, NULL for columns older files lack, TIME back from the file's
/// microsecond integers.
fn image(table: &TableSchema, batch: &RecordBatch) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for field in table.arrow.fields() {
        let want = field.data_type();
        let col = match batch.column_by_name(field.name()) {
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
    let schema = Schema::new(
        table
            .arrow
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns)
        .map_err(|e| Error::Internal(format!("{}: archive rows: {e}", table.id)))
}
