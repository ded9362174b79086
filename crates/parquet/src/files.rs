//! Change batches to Parquet bytes: the row image plus the change columns
//! `_op`, `_commit_ts`, `_position` and `_txn`, with types readers
//! understand (docs/pipeline-yaml.md, "Parquet sink").

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStore;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::io::AsyncWriteExt;

use sluice_core::event::{ChangeBatch, Op, Position};
use sluice_core::{Error, Result};

/// The column names sluice adds to every row.
pub const OP: &str = "_op";
pub const COMMIT_TS: &str = "_commit_ts";
pub const POSITION: &str = "_position";
pub const TXN: &str = "_txn";

/// Field metadata key of the source's column type, e.g. `set('x','y')`.
pub const ARCHIVE_TYPE_KEY: &str = "mysql.type";

/// Prefix of the optional before-image columns (`before_images: true`).
pub const BEFORE: &str = "_before_";

/// The file schema for a table's row image: TIME (an Arrow duration, which
/// Parquet lacks) becomes int64 microseconds; JSON columns carry the
/// Parquet JSON logical type; with `before` every column also gets a
/// `_before_` twin holding the old value of updated rows; the change
/// columns follow.
pub fn file_schema(image: &SchemaRef, before: bool) -> SchemaRef {
    let field = |f: &Field, name: String, nullable: bool| -> Field {
        let native = f.metadata().get(sluice_core::types::NATIVE_TYPE_KEY);
        let json = native.is_some_and(|t| t.eq_ignore_ascii_case("json"));
        // Readers of the archive find the source's column type under
        // `mysql.type` (docs/pipeline-yaml.md, "Parquet archive").
        let metadata = native
            .map(|t| HashMap::from([(ARCHIVE_TYPE_KEY.to_string(), t.clone())]))
            .unwrap_or_default();
        let out = match f.data_type() {
            DataType::Duration(_) => Field::new(name, DataType::Int64, nullable),
            t => Field::new(name, t.clone(), nullable),
        }
        .with_metadata(metadata);
        if json {
            out.with_extension_type(arrow_schema::extension::Json::default())
        } else {
            out
        }
    };
    let mut fields: Vec<Field> = image
        .fields()
        .iter()
        .map(|f| field(f, f.name().clone(), f.is_nullable()))
        .collect();
    if before {
        fields.extend(
            image
                .fields()
                .iter()
                .map(|f| field(f, format!("{BEFORE}{}", f.name()), true)),
        );
    }
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
/// the old key, so a reader replaying changes by key drops it. With
/// `before`, updates also carry their old values in the `_before_` columns.
/// Change columns follow; `txn` is the transaction's commit: its position
/// (`_txn`) and time (`_commit_ts`, the same for every row of the
/// transaction); None for snapshot rows.
pub fn rows(
    batch: &ChangeBatch,
    txn: Option<(&Position, i64)>,
    before: bool,
) -> Result<RecordBatch> {
    let schema = file_schema(&batch.table.arrow, before);
    // (image, row) picks: image 0 is the after image, 1 the before image,
    // 2 a single NULL.
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(batch.len());
    let mut before_picks: Vec<(usize, usize)> = Vec::new();
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
    const NULL: (usize, usize) = (2, 0);
    for (row, e) in batch.events.iter().enumerate() {
        match e.op {
            Op::Delete => {
                picks.push((1, row));
                before_picks.push(NULL);
                ops.push("delete");
            }
            Op::Update if !batch.table.key.is_empty() && key_changed(row) => {
                picks.push((1, row));
                before_picks.push(NULL);
                ops.push("delete");
                events.push(e);
                picks.push((0, row));
                before_picks.push((1, row));
                ops.push("update");
            }
            Op::Update => {
                picks.push((0, row));
                before_picks.push((1, row));
                ops.push("update");
            }
            op => {
                picks.push((0, row));
                before_picks.push(NULL);
                ops.push(op_name(op));
            }
        }
        events.push(e);
    }
    let images: Vec<Option<&RecordBatch>> = vec![batch.after.as_ref(), batch.before.as_ref()];
    let width = batch.table.arrow.fields().len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let passes: &[&[(usize, usize)]] = if before {
        &[&picks, &before_picks]
    } else {
        &[&picks]
    };
    for picks in passes {
        for c in 0..width {
            let data_type = batch.table.arrow.field(c).data_type();
            let mut sources: Vec<ArrayRef> = images
                .iter()
                .map(|i| match i {
                    Some(b) => b.column(c).clone(),
                    None => arrow_array::new_null_array(data_type, 0),
                })
                .collect();
            sources.push(arrow_array::new_null_array(data_type, 1));
            let refs: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
            let col = arrow_select::interleave::interleave(&refs, picks)
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
    }
    columns.push(Arc::new(StringArray::from_iter_values(ops.iter().copied())));
    let commit_ts = txn.map(|(_, ts)| ts).filter(|ts| *ts != 0);
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(
            events
                .iter()
                .map(|e| commit_ts.filter(|_| e.op != Op::Read))
                .collect::<Vec<_>>(),
        )
        .with_timezone("UTC"),
    ));
    columns.push(Arc::new(StringArray::from_iter_values(
        events
            .iter()
            .map(|e| super::layout::position_key(&e.position)),
    )));
    let txn = txn.map(|(p, _)| super::layout::position_key(p));
    columns.push(Arc::new(StringArray::from(vec![txn; picks.len()])));
    RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::Internal(format!("building Parquet rows: {e}")))
}

/// Uploads go in parts of this size (multipart above it).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// A Parquet file being written. Encoded bytes are either streamed to
/// their object as they come (when the name is known up front: snapshot
/// parts) or held, compressed, until [`OpenFile::finish`] names the file
/// (change files are named by their last position). Either way the object
/// appears only when complete: a single put, or a multipart upload's
/// completion (write-then-rename on a local folder).
pub struct OpenFile {
    writer: ArrowWriter<Vec<u8>>,
    upload: Option<(BufWriter, Path)>,
    pub rows: u64,
}

impl OpenFile {
    /// Starts a file; with `stream_to`, its bytes go there while it grows.
    pub fn new(
        schema: &SchemaRef,
        row_group_rows: usize,
        stream_to: Option<(Arc<dyn ObjectStore>, Path)>,
    ) -> Result<OpenFile> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(row_group_rows.max(1)))
            .build();
        let writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(encode_error)?;
        Ok(OpenFile {
            writer,
            upload: stream_to.map(|(store, path)| {
                (
                    BufWriter::with_capacity(store, path.clone(), PART_BYTES),
                    path,
                )
            }),
            rows: 0,
        })
    }

    /// The file's size so far (encoded bytes plus the open row group's
    /// estimate).
    pub fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        // Encoding and compressing is the archive's CPU work: off the async
        // worker, whose other tasks (reading, the other sinks) go on meanwhile.
        tokio::task::block_in_place(|| self.writer.write(batch)).map_err(encode_error)?;
        self.rows += batch.num_rows() as u64;
        if let Some((up, path)) = &mut self.upload {
            let done = std::mem::take(self.writer.inner_mut());
            if !done.is_empty() {
                up.put(done.into())
                    .await
                    .map_err(|e| store_error(path, e))?;
            }
        }
        Ok(())
    }

    /// Completes the file at its streaming name, or at `path`. Returns the
    /// file's size in bytes.
    pub async fn finish(mut self, store: &Arc<dyn ObjectStore>, path: &Path) -> Result<u64> {
        tokio::task::block_in_place(|| self.writer.finish()).map_err(encode_error)?;
        let size = self.writer.bytes_written() as u64;
        let rest = std::mem::take(self.writer.inner_mut());
        let (mut up, path) = self.upload.take().unwrap_or_else(|| {
            (
                BufWriter::with_capacity(store.clone(), path.clone(), PART_BYTES),
                path.clone(),
            )
        });
        if let Err(e) = up.put(rest.into()).await {
            let _ = up.abort().await;
            return Err(store_error(&path, e));
        }
        // A failed completion leaves at most an unfinished multipart upload,
        // which is invisible (and which bucket lifecycle rules expire).
        up.shutdown().await.map_err(|e| store_error(&path, e))?;
        Ok(size)
    }

    /// Drops the file, cleaning up a started multipart upload.
    pub async fn abort(mut self) {
        if let Some((up, _)) = &mut self.upload {
            let _ = up.abort().await;
        }
    }
}

fn encode_error(e: parquet::errors::ParquetError) -> Error {
    Error::Internal(format!("writing Parquet: {e}"))
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Data(format!("uploading {path}: {e}"))
}
