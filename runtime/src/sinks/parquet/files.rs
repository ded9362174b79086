//! Change batches to Parquet bytes: the row image plus the change columns
//! `_op`, `_commit_ts`, `_position` and `_txn`, with types readers
//! understand (docs/pipeline-yaml.md, "Parquet sink").

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::event::{ChangeBatch, Op, Position};
use crate::{Error, Result};

/// The column names sluice adds to every row.
pub const OP: &str = "_op";
pub const COMMIT_TS: &str = "_commit_ts";
pub const POSITION: &str = "_position";
pub const TXN: &str = "_txn";

/// The file schema for a table's row image: TIME (an Arrow duration, which
/// Parquet lacks) becomes int64 microseconds; the change columns follow.
pub fn file_schema(image: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = image
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Duration(_) => Field::new(f.name(), DataType::Int64, f.is_nullable())
                .with_metadata(f.metadata().clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    fields.push(Field::new(OP, DataType::Utf8, false));
    fields.push(Field::new(
        COMMIT_TS,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    ));
    fields.push(Field::new(POSITION, DataType::Utf8, false));
    fields.push(Field::new(TXN, DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Insert => "insert",
        Op::Update => "update",
        Op::Delete => "delete",
        Op::Read => "read",
    }
}

/// A batch as rows of a file: the after image, or the before image for
/// deletes; an update that changes the row's key also gives a delete of
/// the old key, so a reader replaying changes by key drops it. Change
/// columns follow; `txn` is the position of the transaction's commit (None
/// for snapshot rows).
pub fn rows(batch: &ChangeBatch, txn: Option<&Position>) -> Result<RecordBatch> {
    let schema = file_schema(&batch.table.arrow);
    // (image, row) picks: image 0 is the after image, 1 the before image.
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(batch.len());
    let mut ops: Vec<&'static str> = Vec::with_capacity(batch.len());
    let mut events = Vec::with_capacity(batch.len());
    let key_changed = |row: usize| -> bool {
        let (Some(a), Some(b)) = (&batch.after, &batch.before) else {
            return false;
        };
        batch.table.key.iter().any(|&k| {
            let (x, y) = (a.column(k).slice(row, 1), b.column(k).slice(row, 1));
            x.as_ref() != y.as_ref()
        })
    };
    for (row, e) in batch.events.iter().enumerate() {
        match e.op {
            Op::Delete => {
                picks.push((1, row));
                ops.push("delete");
            }
            Op::Update if !batch.table.key.is_empty() && key_changed(row) => {
                picks.push((1, row));
                ops.push("delete");
                events.push(e);
                picks.push((0, row));
                ops.push("update");
            }
            op => {
                picks.push((0, row));
                ops.push(op_name(op));
            }
        }
        events.push(e);
    }
    let images: Vec<Option<&RecordBatch>> = vec![batch.after.as_ref(), batch.before.as_ref()];
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for c in 0..batch.table.arrow.fields().len() {
        let sources: Vec<ArrayRef> = images
            .iter()
            .map(|i| match i {
                Some(b) => b.column(c).clone(),
                None => arrow_array::new_null_array(batch.table.arrow.field(c).data_type(), 0),
            })
            .collect();
        let refs: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
        let col = arrow_select::interleave::interleave(&refs, &picks)
            .map_err(|e| Error::Internal(format!("choosing row images: {e}")))?;
        columns.push(match col.data_type() {
            // Parquet has no duration: TIME goes as int64 microseconds.
            DataType::Duration(_) => col
                .as_any()
                .downcast_ref::<arrow_array::DurationMicrosecondArray>()
                .map(|d| Arc::new(Int64Array::from(d.iter().collect::<Vec<_>>())) as ArrayRef)
                .unwrap_or(col),
            _ => col,
        });
    }
    columns.push(Arc::new(StringArray::from_iter_values(ops.iter().copied())));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(
            events
                .iter()
                .map(|e| (e.op != Op::Read && e.commit_ts_us != 0).then_some(e.commit_ts_us))
                .collect::<Vec<_>>(),
        )
        .with_timezone("UTC"),
    ));
    columns.push(Arc::new(StringArray::from_iter_values(
        events
            .iter()
            .map(|e| super::layout::position_key(&e.position)),
    )));
    let txn = txn.map(super::layout::position_key);
    columns.push(Arc::new(StringArray::from(vec![txn; picks.len()])));
    RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::Internal(format!("building Parquet rows: {e}")))
}

/// Encodes batches (all of one schema) as one Parquet file.
pub fn encode(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    row_group_rows: usize,
) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build();
    let mut out = Vec::new();
    let fail = |e: parquet::errors::ParquetError| Error::Internal(format!("writing Parquet: {e}"));
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), Some(props)).map_err(fail)?;
    for b in batches {
        w.write(b).map_err(fail)?;
    }
    w.close().map_err(fail)?;
    Ok(out)
}
