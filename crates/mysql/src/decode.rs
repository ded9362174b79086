//! Server row values (binary protocol) into Arrow arrays.
//!
//! The binary protocol is used for reading because it sends FLOAT and DOUBLE
//! as IEEE bits and temporal values as fields; the text protocol prints FLOAT
//! with 6 significant digits and would lose data.

use std::str::FromStr;
use std::sync::Arc;

use arrow_array::types::{Decimal128Type, Decimal256Type};
use arrow_array::{
    ArrayRef, BinaryArray, Date32Array, DurationMicrosecondArray, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, PrimitiveArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_buffer::{i256, Buffer, MutableBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use mysql_async::Value;

use crate::event::TableSchema;
use crate::temporal::{self, DateTimeParts};
use crate::types::LogicalType;
use crate::{Error, Result};

/// One column's values so far, in plain vectors that become the Arrow
/// array's buffers without a copy. Arrow's builders cost more than the row
/// for the one-row batches of the change stream (aligned, zeroed buffers,
/// built through `ArrayData`).
enum Values {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    D128(Vec<i128>, u8, u8),
    D256(Vec<i256>, u8, u8),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Date(Vec<i32>),
    /// With the time zone of a TIMESTAMP column.
    Ts(Vec<i64>, Option<Arc<str>>),
    Dur(Vec<i64>),
    /// Offsets (starting at 0) and the bytes.
    Str(Vec<i32>, Vec<u8>),
    Bin(Vec<i32>, Vec<u8>),
}

struct Col {
    values: Values,
    /// One flag per row (a value or not), kept from the first null on.
    valid: Option<Vec<bool>>,
}

/// Accumulates rows of one table into a [`RecordBatch`].
pub struct RowDecoder {
    table: Arc<TableSchema>,
    cols: Vec<Col>,
    rows: usize,
    bytes: usize,
    /// Rows to make room for after `finish`.
    capacity: usize,
    /// A batch of this decoder passed Arrow's full check: its columns'
    /// types match the schema, and a column's type never changes.
    checked: bool,
}

impl RowDecoder {
    pub fn new(table: Arc<TableSchema>) -> Self {
        Self::with_capacity(table, 1024)
    }

    /// A decoder with room for `rows` rows before it grows.
    pub fn with_capacity(table: Arc<TableSchema>, rows: usize) -> Self {
        let cols = table
            .columns
            .iter()
            .map(|c| Col {
                values: new_values(c.logical, rows),
                valid: None,
            })
            .collect();
        RowDecoder {
            table,
            cols,
            rows: 0,
            bytes: 0,
            capacity: rows,
            checked: false,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate bytes of variable-length data held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one row; `values` are in the table's column order.
    pub fn push(&mut self, values: Vec<Value>) -> Result<()> {
        if values.len() != self.cols.len() {
            return Err(Error::Internal(format!(
                "{}: row has {} values, table has {} columns",
                self.table.id,
                values.len(),
                self.cols.len()
            )));
        }
        for (i, v) in values.into_iter().enumerate() {
            let ty = self.table.columns[i].logical;
            if let Err(msg) = push_value(&mut self.cols[i], self.rows, ty, v, &mut self.bytes) {
                // The row is not taken: columns already appended to are cut back.
                for c in &mut self.cols[..=i] {
                    truncate(c, self.rows);
                }
                return Err(Error::Data(format!(
                    "{} column `{}`: {msg}",
                    self.table.id, self.table.columns[i].name
                )));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Appends one row given value by value, in the table's column order:
    /// `fill` calls the writer's `push` once per column. The binlog decodes
    /// into the columns this way, without a [`Value`] per value. A row that
    /// fails part way is not taken.
    pub fn push_with(
        &mut self,
        fill: impl FnOnce(&mut RowWriter<'_>) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let mut w = RowWriter {
            cols: &mut self.cols,
            defs: &self.table.columns,
            row: self.rows,
            next: 0,
            bytes: 0,
        };
        let filled = fill(&mut w).and_then(|()| match w.next == w.cols.len() {
            true => Ok(()),
            false => Err(format!(
                "the row has {} values, the table {} columns",
                w.next,
                w.cols.len()
            )),
        });
        let (next, bytes) = (w.next, w.bytes);
        if let Err(msg) = filled {
            for c in &mut self.cols {
                truncate(c, self.rows);
            }
            let at = self
                .table
                .columns
                .get(next)
                .map(|c| format!(" column `{}`", c.name))
                .unwrap_or_default();
            return Err(Error::Data(format!("{}{at}: {msg}", self.table.id)));
        }
        self.bytes += bytes;
        self.rows += 1;
        Ok(())
    }

    /// The table the rows are of.
    pub fn table(&self) -> &Arc<TableSchema> {
        &self.table
    }

    /// Takes the accumulated rows as a batch, keeping this decoder's
    /// buffers for the next rows: for a decoder used again and again for
    /// small batches (the change stream, where most batches hold one row).
    /// A small batch is copied into one buffer that all its columns share;
    /// allocations, not bytes, are what small batches cost.
    pub fn take_batch(&mut self) -> Result<RecordBatch> {
        if self.rows > SMALL_BATCH {
            // Moved out whole; the columns start again with room for one row.
            self.capacity = 1;
            return self.finish();
        }
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        let mut region =
            MutableBuffer::with_capacity(self.cols.iter().map(|c| c.values.bytes()).sum());
        for c in &self.cols {
            c.values.copy_into(&mut region);
        }
        let region: Buffer = region.into();
        let mut at = 0;
        self.assemble(rows, |c| {
            let array = c
                .values
                .array_in(&region, &mut at, c.valid.take().map(NullBuffer::from));
            c.values.clear();
            array
        })
    }

    /// Takes the accumulated rows as a batch and starts afresh.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        let cap = self.capacity;
        self.assemble(rows, |c| finish_col(c, cap))
    }

    /// The batch of `rows` rows whose arrays `array` builds, column by column.
    fn assemble(
        &mut self,
        rows: usize,
        mut array: impl FnMut(&mut Col) -> std::result::Result<ArrayRef, String>,
    ) -> Result<RecordBatch> {
        let id = &self.table.id;
        // A loop, not a collect into `Result`: this runs for every one-row
        // batch of the change stream.
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len());
        for (def, c) in self.table.columns.iter().zip(&mut self.cols) {
            match array(c) {
                Ok(a) => arrays.push(a),
                Err(e) => {
                    return Err(Error::Data(format!(
                        "{id} column `{}`: building a batch: {e}",
                        def.name
                    )))
                }
            }
        }
        if !self.checked {
            let batch = RecordBatch::try_new(self.table.arrow.clone(), arrays)
                .map_err(|e| Error::Internal(format!("{id}: building a batch: {e}")))?;
            self.checked = true;
            return Ok(batch);
        }
        // What Arrow's check would find besides the types (checked above,
        // and fixed for the decoder's life): the lengths, and nulls in a
        // column the schema says has none. Its full check, run for every
        // one-row batch of the change stream, cost more than the batch.
        for (a, f) in arrays.iter().zip(self.table.arrow.fields()) {
            if a.len() != rows || (!f.is_nullable() && a.null_count() > 0) {
                return Err(Error::Internal(format!(
                    "{id} column `{}`: {} values ({} null) in a batch of {rows} rows",
                    f.name(),
                    a.len(),
                    a.null_count()
                )));
            }
        }
        // SAFETY: as many columns as fields (one per column definition, and
        // the schema is built from the same definitions: the first batch's
        // `try_new` checked it), each of the type the first batch was
        // checked to have, and `rows` long (checked above).
        Ok(unsafe { RecordBatch::new_unchecked(self.table.arrow.clone(), arrays, rows) })
    }
}

/// Batches of at most this many rows are built in one shared buffer.
const SMALL_BATCH: usize = 64;

/// Where each column's part of a shared buffer starts: a multiple of every
/// native type's alignment.
const REGION_ALIGN: usize = 32;

fn region_len(bytes: usize) -> usize {
    bytes.div_ceil(REGION_ALIGN) * REGION_ALIGN
}

/// Appends `v` to a shared buffer, padded to the next region.
fn put<T: arrow_buffer::ArrowNativeType>(region: &mut MutableBuffer, v: &[T]) {
    let bytes = std::mem::size_of_val(v);
    region.extend_from_slice(v);
    region.extend_zeros(region_len(bytes) - bytes);
}

/// The next `len` values of a shared buffer (see [`put`]).
fn scalar<T: arrow_buffer::ArrowNativeType>(
    region: &Buffer,
    at: &mut usize,
    len: usize,
) -> ScalarBuffer<T> {
    let size = std::mem::size_of::<T>();
    let b = ScalarBuffer::new(region.clone(), *at / size, len);
    *at += region_len(len * size);
    b
}

impl Values {
    /// Bytes this column takes in a shared buffer.
    fn bytes(&self) -> usize {
        fn r<T>(v: &[T]) -> usize {
            region_len(std::mem::size_of_val(v))
        }
        match self {
            Values::I8(v) => r(v),
            Values::I16(v) => r(v),
            Values::I32(v) | Values::Date(v) => r(v),
            Values::I64(v) | Values::Ts(v, _) | Values::Dur(v) => r(v),
            Values::U8(v) => r(v),
            Values::U16(v) => r(v),
            Values::U32(v) => r(v),
            Values::U64(v) => r(v),
            Values::D128(v, ..) => r(v),
            Values::D256(v, ..) => r(v),
            Values::F32(v) => r(v),
            Values::F64(v) => r(v),
            Values::Str(o, d) | Values::Bin(o, d) => r(o) + r(d),
        }
    }

    fn copy_into(&self, region: &mut MutableBuffer) {
        match self {
            Values::I8(v) => put(region, v),
            Values::I16(v) => put(region, v),
            Values::I32(v) | Values::Date(v) => put(region, v),
            Values::I64(v) | Values::Ts(v, _) | Values::Dur(v) => put(region, v),
            Values::U8(v) => put(region, v),
            Values::U16(v) => put(region, v),
            Values::U32(v) => put(region, v),
            Values::U64(v) => put(region, v),
            Values::D128(v, ..) => put(region, v),
            Values::D256(v, ..) => put(region, v),
            Values::F32(v) => put(region, v),
            Values::F64(v) => put(region, v),
            Values::Str(o, d) | Values::Bin(o, d) => {
                put(region, o);
                put(region, d);
            }
        }
    }

    /// This column's array over its part of a shared buffer that
    /// [`Values::copy_into`] wrote.
    fn array_in(
        &self,
        region: &Buffer,
        at: &mut usize,
        nulls: Option<NullBuffer>,
    ) -> std::result::Result<ArrayRef, String> {
        let err = |e: arrow_schema::ArrowError| e.to_string();
        Ok(match self {
            Values::I8(v) => Arc::new(Int8Array::new(scalar(region, at, v.len()), nulls)),
            Values::I16(v) => Arc::new(Int16Array::new(scalar(region, at, v.len()), nulls)),
            Values::I32(v) => Arc::new(Int32Array::new(scalar(region, at, v.len()), nulls)),
            Values::I64(v) => Arc::new(Int64Array::new(scalar(region, at, v.len()), nulls)),
            Values::U8(v) => Arc::new(UInt8Array::new(scalar(region, at, v.len()), nulls)),
            Values::U16(v) => Arc::new(UInt16Array::new(scalar(region, at, v.len()), nulls)),
            Values::U32(v) => Arc::new(UInt32Array::new(scalar(region, at, v.len()), nulls)),
            Values::U64(v) => Arc::new(UInt64Array::new(scalar(region, at, v.len()), nulls)),
            Values::D128(v, p, s) => Arc::new(
                PrimitiveArray::<Decimal128Type>::new(scalar(region, at, v.len()), nulls)
                    .with_precision_and_scale(*p, *s as i8)
                    .map_err(err)?,
            ),
            Values::D256(v, p, s) => Arc::new(
                PrimitiveArray::<Decimal256Type>::new(scalar(region, at, v.len()), nulls)
                    .with_precision_and_scale(*p, *s as i8)
                    .map_err(err)?,
            ),
            Values::F32(v) => Arc::new(Float32Array::new(scalar(region, at, v.len()), nulls)),
            Values::F64(v) => Arc::new(Float64Array::new(scalar(region, at, v.len()), nulls)),
            Values::Date(v) => Arc::new(Date32Array::new(scalar(region, at, v.len()), nulls)),
            Values::Ts(v, tz) => Arc::new(
                TimestampMicrosecondArray::new(scalar(region, at, v.len()), nulls)
                    .with_timezone_opt(tz.clone()),
            ),
            Values::Dur(v) => Arc::new(DurationMicrosecondArray::new(
                scalar(region, at, v.len()),
                nulls,
            )),
            Values::Str(o, d) | Values::Bin(o, d) => {
                let offsets = OffsetBuffer::new(scalar(region, at, o.len()));
                let data = region.slice_with_length(*at, d.len());
                *at += region_len(d.len());
                text_or_binary(matches!(self, Values::Str(..)), offsets, data, nulls)?
            }
        })
    }

    /// Empties the column, keeping its room.
    fn clear(&mut self) {
        match self {
            Values::I8(v) => v.clear(),
            Values::I16(v) => v.clear(),
            Values::I32(v) | Values::Date(v) => v.clear(),
            Values::I64(v) | Values::Ts(v, _) | Values::Dur(v) => v.clear(),
            Values::U8(v) => v.clear(),
            Values::U16(v) => v.clear(),
            Values::U32(v) => v.clear(),
            Values::U64(v) => v.clear(),
            Values::D128(v, ..) => v.clear(),
            Values::D256(v, ..) => v.clear(),
            Values::F32(v) => v.clear(),
            Values::F64(v) => v.clear(),
            Values::Str(o, d) | Values::Bin(o, d) => {
                o.truncate(1);
                d.clear();
            }
        }
    }
}

/// A text or binary array over offsets and bytes built by this module.
fn text_or_binary(
    text: bool,
    offsets: OffsetBuffer<i32>,
    data: Buffer,
    nulls: Option<NullBuffer>,
) -> std::result::Result<ArrayRef, String> {
    if !text {
        return Ok(Arc::new(
            BinaryArray::try_new(offsets, data, nulls).map_err(|e| e.to_string())?,
        ));
    }
    if offsets.last() as usize > data.len() {
        return Err("text offsets beyond the text".into());
    }
    // SAFETY: every value of a text column was checked to be UTF-8 when it
    // was pushed (`push_value`, `push_cell`), the offsets are the ends of
    // those values (`push_bytes`, `append_null`), increasing from 0, and the
    // last is within the bytes (checked above). Checking the whole batch
    // again cost as much as decoding it.
    Ok(Arc::new(unsafe {
        StringArray::new_unchecked(offsets, data, nulls)
    }))
}

/// One value on its way into a column, borrowed where it can be.
pub enum Cell<'a> {
    Null,
    Int(i64),
    UInt(u64),
    F32(f32),
    F64(f64),
    /// Text (checked to be UTF-8 for a text column) or bytes.
    Bytes(&'a [u8]),
    /// Bytes padded with 0x00 to a width (`BINARY(n)`).
    Padded(&'a [u8], usize),
    /// Any other value, in its SELECT form.
    Value(Value),
}

/// Takes one row's values column by column (see [`RowDecoder::push_with`]).
pub struct RowWriter<'a> {
    cols: &'a mut [Col],
    defs: &'a [crate::event::ColumnDef],
    row: usize,
    next: usize,
    bytes: usize,
}

impl RowWriter<'_> {
    /// The next column's value.
    pub fn push(&mut self, cell: Cell<'_>) -> std::result::Result<(), String> {
        let i = self.next;
        let (Some(c), Some(def)) = (self.cols.get_mut(i), self.defs.get(i)) else {
            return Err(format!(
                "the row has more values than the table's {} columns",
                self.cols.len()
            ));
        };
        match cell {
            Cell::Null => append_null(c, self.row),
            Cell::Value(v) => push_value(c, self.row, def.logical, v, &mut self.bytes)?,
            cell => push_cell(c, cell, &mut self.bytes)?,
        }
        self.next += 1;
        Ok(())
    }
}

/// A borrowed value into its column (not a null, not a [`Value`]).
fn push_cell(c: &mut Col, cell: Cell<'_>, bytes: &mut usize) -> std::result::Result<(), String> {
    fn int<T: TryFrom<i128>>(i: i128) -> std::result::Result<T, String> {
        T::try_from(i).map_err(|_| format!("integer {i} out of range for the column type"))
    }
    let i = match cell {
        Cell::Int(i) => Some(i as i128),
        Cell::UInt(u) => Some(u as i128),
        _ => None,
    };
    match (&mut c.values, i, cell) {
        (Values::I8(b), Some(i), _) => b.push(int(i)?),
        (Values::I16(b), Some(i), _) => b.push(int(i)?),
        (Values::I32(b), Some(i), _) => b.push(int(i)?),
        (Values::I64(b), Some(i), _) => b.push(int(i)?),
        (Values::U8(b), Some(i), _) => b.push(int(i)?),
        (Values::U16(b), Some(i), _) => b.push(int(i)?),
        (Values::U32(b), Some(i), _) => b.push(int(i)?),
        (Values::U64(b), Some(i), _) => b.push(int(i)?),
        (Values::F32(b), _, Cell::F32(f)) => b.push(f),
        (Values::F64(b), _, Cell::F64(f)) => b.push(f),
        (Values::Str(o, data), _, Cell::Bytes(raw)) => {
            if let Err(e) = std::str::from_utf8(raw) {
                return Err(format!("text is not valid UTF-8 ({e}); is the column's character set convertible to utf8mb4?"));
            }
            *bytes += raw.len();
            push_bytes(o, data, raw)?
        }
        (Values::Bin(o, data), _, Cell::Bytes(raw)) => {
            *bytes += raw.len();
            push_bytes(o, data, raw)?
        }
        (Values::Bin(o, data), _, Cell::Padded(raw, width)) => {
            *bytes += raw.len().max(width);
            data.extend_from_slice(raw);
            data.resize(data.len() + width.saturating_sub(raw.len()), 0);
            push_bytes(o, data, &[])?
        }
        _ => return Err("a value of another type than the column's".into()),
    }
    if let Some(valid) = &mut c.valid {
        valid.push(true);
    }
    Ok(())
}

fn new_values(ty: LogicalType, cap: usize) -> Values {
    match ty {
        LogicalType::Int { bytes, unsigned } => match (bytes, unsigned) {
            (1, false) => Values::I8(Vec::with_capacity(cap)),
            (1, true) => Values::U8(Vec::with_capacity(cap)),
            (2, false) => Values::I16(Vec::with_capacity(cap)),
            (2, true) => Values::U16(Vec::with_capacity(cap)),
            (3 | 4, false) => Values::I32(Vec::with_capacity(cap)),
            (3 | 4, true) => Values::U32(Vec::with_capacity(cap)),
            (_, false) => Values::I64(Vec::with_capacity(cap)),
            (_, true) => Values::U64(Vec::with_capacity(cap)),
        },
        LogicalType::Decimal { precision, scale } if precision <= 38 => {
            Values::D128(Vec::with_capacity(cap), precision, scale)
        }
        LogicalType::Decimal { precision, scale } => {
            Values::D256(Vec::with_capacity(cap), precision, scale)
        }
        LogicalType::Float => Values::F32(Vec::with_capacity(cap)),
        LogicalType::Double => Values::F64(Vec::with_capacity(cap)),
        LogicalType::Bit { .. } => Values::U64(Vec::with_capacity(cap)),
        LogicalType::Year => Values::U16(Vec::with_capacity(cap)),
        LogicalType::Date => Values::Date(Vec::with_capacity(cap)),
        LogicalType::DateTime { .. } => Values::Ts(Vec::with_capacity(cap), None),
        LogicalType::Timestamp { .. } => Values::Ts(Vec::with_capacity(cap), Some("UTC".into())),
        LogicalType::Time { .. } => Values::Dur(Vec::with_capacity(cap)),
        t if t.is_text() => Values::Str(offsets(cap), Vec::new()),
        _ => Values::Bin(offsets(cap), Vec::new()),
    }
}

fn offsets(cap: usize) -> Vec<i32> {
    let mut o = Vec::with_capacity(cap + 1);
    o.push(0);
    o
}

/// The column's array; the column starts again with room for `cap` rows.
fn finish_col(c: &mut Col, cap: usize) -> std::result::Result<ArrayRef, String> {
    let nulls = c.valid.take().map(NullBuffer::from);
    fn take<T>(v: &mut Vec<T>, cap: usize) -> ScalarBuffer<T>
    where
        T: arrow_buffer::ArrowNativeType,
    {
        ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap)))
    }
    let err = |e: arrow_schema::ArrowError| e.to_string();
    let array: ArrayRef = match &mut c.values {
        Values::I8(v) => Arc::new(Int8Array::new(take(v, cap), nulls)),
        Values::I16(v) => Arc::new(Int16Array::new(take(v, cap), nulls)),
        Values::I32(v) => Arc::new(Int32Array::new(take(v, cap), nulls)),
        Values::I64(v) => Arc::new(Int64Array::new(take(v, cap), nulls)),
        Values::U8(v) => Arc::new(UInt8Array::new(take(v, cap), nulls)),
        Values::U16(v) => Arc::new(UInt16Array::new(take(v, cap), nulls)),
        Values::U32(v) => Arc::new(UInt32Array::new(take(v, cap), nulls)),
        Values::U64(v) => Arc::new(UInt64Array::new(take(v, cap), nulls)),
        Values::D128(v, p, s) => Arc::new(
            PrimitiveArray::<Decimal128Type>::new(take(v, cap), nulls)
                .with_precision_and_scale(*p, *s as i8)
                .map_err(err)?,
        ),
        Values::D256(v, p, s) => Arc::new(
            PrimitiveArray::<Decimal256Type>::new(take(v, cap), nulls)
                .with_precision_and_scale(*p, *s as i8)
                .map_err(err)?,
        ),
        Values::F32(v) => Arc::new(Float32Array::new(take(v, cap), nulls)),
        Values::F64(v) => Arc::new(Float64Array::new(take(v, cap), nulls)),
        Values::Date(v) => Arc::new(Date32Array::new(take(v, cap), nulls)),
        Values::Ts(v, tz) => Arc::new(
            TimestampMicrosecondArray::new(take(v, cap), nulls).with_timezone_opt(tz.clone()),
        ),
        Values::Dur(v) => Arc::new(DurationMicrosecondArray::new(take(v, cap), nulls)),
        Values::Str(o, data) | Values::Bin(o, data) => {
            // The next batch's text likely needs what this one did.
            let next = data.len();
            let data = std::mem::replace(data, Vec::with_capacity(next));
            let o = std::mem::replace(o, offsets(cap));
            let o = OffsetBuffer::new(ScalarBuffer::from(o));
            text_or_binary(
                matches!(c.values, Values::Str(..)),
                o,
                Buffer::from_vec(data),
                nulls,
            )?
        }
    };
    Ok(array)
}

/// Cuts a column back to `rows` rows (a row that failed part way).
fn truncate(c: &mut Col, rows: usize) {
    if let Some(v) = &mut c.valid {
        v.truncate(rows);
    }
    match &mut c.values {
        Values::I8(v) => v.truncate(rows),
        Values::I16(v) => v.truncate(rows),
        Values::I32(v) => v.truncate(rows),
        Values::I64(v) => v.truncate(rows),
        Values::U8(v) => v.truncate(rows),
        Values::U16(v) => v.truncate(rows),
        Values::U32(v) => v.truncate(rows),
        Values::U64(v) => v.truncate(rows),
        Values::D128(v, ..) => v.truncate(rows),
        Values::D256(v, ..) => v.truncate(rows),
        Values::F32(v) => v.truncate(rows),
        Values::F64(v) => v.truncate(rows),
        Values::Date(v) => v.truncate(rows),
        Values::Ts(v, _) => v.truncate(rows),
        Values::Dur(v) => v.truncate(rows),
        Values::Str(o, data) | Values::Bin(o, data) => {
            o.truncate(rows + 1);
            data.truncate(o.last().copied().unwrap_or(0) as usize);
        }
    }
}

/// Appends a null as row `row`: a placeholder value, flagged.
fn append_null(c: &mut Col, row: usize) {
    c.valid.get_or_insert_with(|| vec![true; row]).push(false);
    match &mut c.values {
        Values::I8(v) => v.push(0),
        Values::I16(v) => v.push(0),
        Values::I32(v) => v.push(0),
        Values::I64(v) => v.push(0),
        Values::U8(v) => v.push(0),
        Values::U16(v) => v.push(0),
        Values::U32(v) => v.push(0),
        Values::U64(v) => v.push(0),
        Values::D128(v, ..) => v.push(0),
        Values::D256(v, ..) => v.push(i256::ZERO),
        Values::F32(v) => v.push(0.0),
        Values::F64(v) => v.push(0.0),
        Values::Date(v) => v.push(0),
        Values::Ts(v, _) => v.push(0),
        Values::Dur(v) => v.push(0),
        Values::Str(o, _) | Values::Bin(o, _) => {
            let end = o.last().copied().unwrap_or(0);
            o.push(end)
        }
    }
}

/// Appends variable-length bytes; Arrow's 32-bit offsets bound a batch's bytes.
fn push_bytes(o: &mut Vec<i32>, data: &mut Vec<u8>, b: &[u8]) -> Result<(), String> {
    data.extend_from_slice(b);
    let end = i32::try_from(data.len())
        .map_err(|_| "more than 2 GiB of values in one batch; lower `batch_size`".to_string())?;
    o.push(end);
    Ok(())
}

/// An integer from whichever form the server sent.
fn as_i128(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(*i as i128),
        Value::UInt(u) => Ok(*u as i128),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<i128>().ok())
            .ok_or_else(|| format!("expected an integer, got {:?}", String::from_utf8_lossy(b))),
        other => Err(format!("expected an integer, got {other:?}")),
    }
}

fn int<T: TryFrom<i128>>(v: &Value) -> Result<T, String> {
    let i = as_i128(v)?;
    T::try_from(i).map_err(|_| format!("integer {i} out of range for the column type"))
}

/// The digits of a DECIMAL string scaled to an integer, e.g. "-1.5" at scale 2 → "-150".
fn scaled_digits(b: &[u8], scale: u8) -> Result<String, String> {
    let s = std::str::from_utf8(b).map_err(|_| "DECIMAL is not ASCII".to_string())?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int_part, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > scale as usize
        || !int_part
            .bytes()
            .chain(frac.bytes())
            .all(|c| c.is_ascii_digit())
    {
        return Err(format!("cannot read DECIMAL value {s:?} at scale {scale}"));
    }
    let mut out = String::with_capacity(s.len() + scale as usize + 1);
    if neg {
        out.push('-');
    }
    out.push_str(int_part);
    out.push_str(frac);
    for _ in frac.len()..scale as usize {
        out.push('0');
    }
    Ok(out)
}

fn bytes_of(v: Value) -> Result<Vec<u8>, String> {
    match v {
        Value::Bytes(b) => Ok(b),
        other => Err(format!("expected bytes, got {other:?}")),
    }
}

fn date_parts(v: &Value) -> Result<DateTimeParts, String> {
    match *v {
        Value::Date(year, month, day, hour, minute, second, micro) => Ok(DateTimeParts {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        }),
        ref other => Err(format!("expected a date, got {other:?}")),
    }
}

fn push_value(
    c: &mut Col,
    row: usize,
    ty: LogicalType,
    v: Value,
    bytes: &mut usize,
) -> Result<(), String> {
    if v == Value::NULL {
        append_null(c, row);
        return Ok(());
    }
    match &mut c.values {
        Values::I8(b) => b.push(int(&v)?),
        Values::I16(b) => b.push(int(&v)?),
        Values::I32(b) => b.push(int(&v)?),
        Values::I64(b) => b.push(int(&v)?),
        Values::U8(b) => b.push(int(&v)?),
        Values::U16(b) => b.push(int(&v)?),
        Values::U32(b) => b.push(int(&v)?),
        Values::U64(b) => match (ty, v) {
            (LogicalType::Bit { .. }, Value::Bytes(raw)) => {
                if raw.len() > 8 {
                    return Err(format!("BIT value of {} bytes", raw.len()));
                }
                b.push(raw.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64))
            }
            (_, v) => b.push(int(&v)?),
        },
        Values::D128(b, _, scale) => {
            let digits = scaled_digits(&bytes_of(v)?, *scale)?;
            b.push(i128::from_str(&digits).map_err(|e| format!("DECIMAL: {e}"))?)
        }
        Values::D256(b, _, scale) => {
            let digits = scaled_digits(&bytes_of(v)?, *scale)?;
            b.push(i256::from_str(&digits).map_err(|e| format!("DECIMAL: {e}"))?)
        }
        Values::F32(b) => match v {
            Value::Float(f) => b.push(f),
            Value::Double(d) => b.push(d as f32),
            other => return Err(format!("expected FLOAT, got {other:?}")),
        },
        Values::F64(b) => match v {
            Value::Double(d) => b.push(d),
            Value::Float(f) => b.push(f as f64),
            other => return Err(format!("expected DOUBLE, got {other:?}")),
        },
        Values::Date(b) => {
            let p = date_parts(&v)?;
            b.push(temporal::date_to_days(p.year, p.month, p.day))
        }
        Values::Ts(b, _) => b.push(temporal::datetime_to_us(date_parts(&v)?)),
        Values::Dur(b) => match v {
            Value::Time(neg, d, h, m, s, us) => b.push(temporal::time_to_us(neg, d, h, m, s, us)),
            other => return Err(format!("expected TIME, got {other:?}")),
        },
        Values::Str(o, data) => {
            let raw = bytes_of(v)?;
            *bytes += raw.len();
            if let Err(e) = std::str::from_utf8(&raw) {
                return Err(format!("text is not valid UTF-8 ({e}); is the column's character set convertible to utf8mb4?"));
            }
            push_bytes(o, data, &raw)?
        }
        Values::Bin(o, data) => {
            let raw = bytes_of(v)?;
            *bytes += raw.len();
            push_bytes(o, data, &raw)?
        }
    }
    if let Some(valid) = &mut c.valid {
        valid.push(true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        assert_eq!(scaled_digits(b"-1.5", 2).unwrap(), "-150");
        assert_eq!(scaled_digits(b"42", 0).unwrap(), "42");
        assert_eq!(scaled_digits(b"0.000001", 6).unwrap(), "0000001");
        assert!(scaled_digits(b"1.234", 2).is_err());
    }

    fn table() -> Arc<TableSchema> {
        use crate::event::{ColumnDef, Constraints, KeyKind, TableDdl, TableId};
        let col = |name: &str, logical: LogicalType, nullable: bool| ColumnDef {
            name: name.into(),
            logical,
            column_type: String::new(),
            nullable,
            charset: None,
            collation: None,
        };
        let columns = vec![
            col(
                "id",
                LogicalType::Int {
                    bytes: 4,
                    unsigned: false,
                },
                false,
            ),
            col("s", LogicalType::Text, true),
            col("ts", LogicalType::Timestamp { fsp: 6 }, true),
            col(
                "d",
                LogicalType::Decimal {
                    precision: 10,
                    scale: 2,
                },
                true,
            ),
        ];
        Arc::new(TableSchema {
            id: TableId::new("d", "t"),
            arrow: crate::types::arrow_schema(&columns),
            columns,
            key: vec![0],
            key_kind: KeyKind::Primary,
            ddl: TableDdl::default(),
            estimated_rows: 0,
            constraints: Constraints::default(),
        })
    }

    /// Nulls anywhere, a row refused part way, and a decoder used again
    /// after `finish`: every batch holds exactly the rows it was given.
    #[test]
    fn batches_hold_exactly_the_rows_pushed() {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Decimal128Type, Int32Type, TimestampMicrosecondType};
        use arrow_array::Array;
        let mut d = RowDecoder::with_capacity(table(), 2);
        let ts = Value::Date(2024, 1, 2, 3, 4, 5, 6);
        d.push(vec![
            Value::Int(1),
            Value::Bytes(b"a".to_vec()),
            Value::NULL,
            Value::Bytes(b"1.5".to_vec()),
        ])
        .expect("a valid row");
        d.push(vec![Value::Int(2), Value::NULL, ts.clone(), Value::NULL])
            .expect("a valid row");
        // Invalid UTF-8 in the second column: the first column's value is taken back.
        assert!(d
            .push(vec![
                Value::Int(3),
                Value::Bytes(vec![0xff]),
                Value::NULL,
                Value::NULL
            ])
            .is_err());
        d.push(vec![
            Value::Int(4),
            Value::Bytes("é".into()),
            ts.clone(),
            Value::Bytes(b"-2".to_vec()),
        ])
        .expect("a valid row");
        for round in 0..2 {
            let b = d.finish().expect("a batch");
            assert_eq!(b.num_rows(), 3, "round {round}");
            let ids = b.column(0).as_primitive::<Int32Type>();
            assert_eq!(ids.values().to_vec(), vec![1, 2, 4]);
            let s = b.column(1).as_string::<i32>();
            assert_eq!((s.value(0), s.is_null(1), s.value(2)), ("a", true, "é"));
            let t = b.column(2).as_primitive::<TimestampMicrosecondType>();
            assert!(t.is_null(0) && !t.is_null(1));
            assert_eq!(t.value(1), t.value(2));
            assert_eq!(b.schema().field(2).data_type(), t.data_type());
            let dec = b.column(3).as_primitive::<Decimal128Type>();
            assert_eq!(
                (dec.value(0), dec.is_null(1), dec.value(2)),
                (150, true, -200)
            );
            assert_eq!(d.len(), 0);
            for id in [1, 2, 4] {
                let row = match id {
                    1 => vec![
                        Value::Int(1),
                        Value::Bytes(b"a".to_vec()),
                        Value::NULL,
                        Value::Bytes(b"1.5".to_vec()),
                    ],
                    2 => vec![Value::Int(2), Value::NULL, ts.clone(), Value::NULL],
                    _ => vec![
                        Value::Int(4),
                        Value::Bytes("é".into()),
                        ts.clone(),
                        Value::Bytes(b"-2".to_vec()),
                    ],
                };
                d.push(row).expect("a valid row");
            }
        }
        let mut once = RowDecoder::with_capacity(table(), 1);
        once.push(vec![Value::Int(9), Value::NULL, Value::NULL, Value::NULL])
            .expect("a valid row");
        assert_eq!(once.finish().expect("a batch").num_rows(), 1);
    }

    /// Batches after a decoder's first skip Arrow's type check, not the
    /// rest of it: a NULL in a NOT NULL column is still refused, naming it.
    #[test]
    fn later_batches_still_refuse_nulls_in_not_null_columns() {
        let mut d = RowDecoder::with_capacity(table(), 1);
        for round in 0..3 {
            d.push(vec![
                Value::Int(round),
                Value::NULL,
                Value::NULL,
                Value::NULL,
            ])
            .expect("a valid row");
            assert_eq!(d.take_batch().expect("a batch").num_rows(), 1);
        }
        d.push(vec![Value::NULL, Value::NULL, Value::NULL, Value::NULL])
            .expect("pushed; the batch is what refuses it");
        let e = d.take_batch().expect_err("a NULL id").to_string();
        assert!(e.contains("column `id`") && e.contains("1 null"), "{e}");
    }

    /// A decoder used again and again through `take_batch` (one shared
    /// buffer for small batches, moved vectors for large ones) gives the
    /// same batches as a fresh decoder given the same rows as values.
    #[test]
    fn reused_decoders_give_the_batches_of_fresh_ones() {
        let rows = |n: usize, seed: usize| -> Vec<Vec<Value>> {
            (0..n)
                .map(|i| {
                    let k = i + seed;
                    vec![
                        Value::Int(k as i64),
                        if k.is_multiple_of(3) {
                            Value::NULL
                        } else {
                            Value::Bytes("é".repeat(k % 5).into())
                        },
                        if k.is_multiple_of(4) {
                            Value::NULL
                        } else {
                            Value::Date(2024, 1, 2, 3, 4, 5, k as u32)
                        },
                        Value::Bytes(format!("{}.{:02}", k, k % 100).into()),
                    ]
                })
                .collect()
        };
        let mut reused = RowDecoder::with_capacity(table(), 1);
        for (round, n) in [1, 3, 0, 64, 65, 200, 1, 2].into_iter().enumerate() {
            let mut fresh = RowDecoder::with_capacity(table(), 1);
            for row in rows(n, round * 7) {
                fresh.push(row.clone()).expect("a valid row");
                reused
                    .push_with(|w| {
                        for v in row {
                            w.push(Cell::Value(v))?;
                        }
                        Ok(())
                    })
                    .expect("a valid row");
            }
            // A row refused part way leaves nothing behind.
            assert!(reused
                .push_with(|w| {
                    w.push(Cell::Int(1))?;
                    w.push(Cell::Bytes(&[0xff]))
                })
                .is_err());
            let want = fresh.finish().expect("a batch");
            let got = reused.take_batch().expect("a batch");
            assert_eq!(got, want, "round {round}, {n} rows");
            assert!(reused.is_empty());
        }
    }
}
