//! Server row values (binary protocol) into Arrow arrays.
//!
//! The binary protocol is used for reading because it sends FLOAT and DOUBLE
//! as IEEE bits and temporal values as fields; the text protocol prints FLOAT
//! with 6 significant digits and would lose data.

use std::str::FromStr;
use std::sync::Arc;

use arrow_array::builder::*;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::i256;
use mysql_async::Value;

use crate::event::TableSchema;
use crate::temporal::{self, DateTimeParts};
use crate::types::LogicalType;
use crate::{Error, Result};

enum Col {
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    D128(Decimal128Builder, u8),
    D256(Decimal256Builder, u8),
    F32(Float32Builder),
    F64(Float64Builder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Dur(DurationMicrosecondBuilder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
}

/// Accumulates rows of one table into a [`RecordBatch`].
pub struct RowDecoder {
    table: Arc<TableSchema>,
    cols: Vec<Col>,
    rows: usize,
    bytes: usize,
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
            .map(|c| new_col(c.logical, rows))
            .collect();
        RowDecoder {
            table,
            cols,
            rows: 0,
            bytes: 0,
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
            if let Err(msg) = push_value(&mut self.cols[i], ty, v, &mut self.bytes) {
                return Err(Error::Data(format!(
                    "{} column `{}`: {msg}",
                    self.table.id, self.table.columns[i].name
                )));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Takes the accumulated rows as a batch and starts afresh.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(finish_col).collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.table.arrow.clone(), arrays)
            .map_err(|e| Error::Internal(format!("{}: building a batch: {e}", self.table.id)))
    }
}

/// A builder for `cap` rows (change batches are often one row: a
/// default builder's 1024 rows cost more than the row).
fn new_col(ty: LogicalType, cap: usize) -> Col {
    match ty {
        LogicalType::Int { bytes, unsigned } => match (bytes, unsigned) {
            (1, false) => Col::I8(Int8Builder::with_capacity(cap)),
            (1, true) => Col::U8(UInt8Builder::with_capacity(cap)),
            (2, false) => Col::I16(Int16Builder::with_capacity(cap)),
            (2, true) => Col::U16(UInt16Builder::with_capacity(cap)),
            (3 | 4, false) => Col::I32(Int32Builder::with_capacity(cap)),
            (3 | 4, true) => Col::U32(UInt32Builder::with_capacity(cap)),
            (_, false) => Col::I64(Int64Builder::with_capacity(cap)),
            (_, true) => Col::U64(UInt64Builder::with_capacity(cap)),
        },
        LogicalType::Decimal { precision, scale } if precision <= 38 => Col::D128(
            Decimal128Builder::with_capacity(cap)
                .with_precision_and_scale(precision, scale as i8)
                .unwrap_or_default(),
            scale,
        ),
        LogicalType::Decimal { precision, scale } => Col::D256(
            Decimal256Builder::with_capacity(cap)
                .with_precision_and_scale(precision, scale as i8)
                .unwrap_or_default(),
            scale,
        ),
        LogicalType::Float => Col::F32(Float32Builder::with_capacity(cap)),
        LogicalType::Double => Col::F64(Float64Builder::with_capacity(cap)),
        LogicalType::Bit { .. } => Col::U64(UInt64Builder::with_capacity(cap)),
        LogicalType::Year => Col::U16(UInt16Builder::with_capacity(cap)),
        LogicalType::Date => Col::Date(Date32Builder::with_capacity(cap)),
        LogicalType::DateTime { .. } => Col::Ts(TimestampMicrosecondBuilder::with_capacity(cap)),
        LogicalType::Timestamp { .. } => {
            Col::Ts(TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC"))
        }
        LogicalType::Time { .. } => Col::Dur(DurationMicrosecondBuilder::with_capacity(cap)),
        t if t.is_text() => Col::Str(StringBuilder::with_capacity(cap, cap * 32)),
        _ => Col::Bin(BinaryBuilder::with_capacity(cap, cap * 32)),
    }
}

fn finish_col(c: &mut Col) -> ArrayRef {
    match c {
        Col::I8(b) => Arc::new(b.finish()),
        Col::I16(b) => Arc::new(b.finish()),
        Col::I32(b) => Arc::new(b.finish()),
        Col::I64(b) => Arc::new(b.finish()),
        Col::U8(b) => Arc::new(b.finish()),
        Col::U16(b) => Arc::new(b.finish()),
        Col::U32(b) => Arc::new(b.finish()),
        Col::U64(b) => Arc::new(b.finish()),
        Col::D128(b, _) => Arc::new(b.finish()),
        Col::D256(b, _) => Arc::new(b.finish()),
        Col::F32(b) => Arc::new(b.finish()),
        Col::F64(b) => Arc::new(b.finish()),
        Col::Date(b) => Arc::new(b.finish()),
        Col::Ts(b) => Arc::new(b.finish()),
        Col::Dur(b) => Arc::new(b.finish()),
        Col::Str(b) => Arc::new(b.finish()),
        Col::Bin(b) => Arc::new(b.finish()),
    }
}

fn append_null(c: &mut Col) {
    match c {
        Col::I8(b) => b.append_null(),
        Col::I16(b) => b.append_null(),
        Col::I32(b) => b.append_null(),
        Col::I64(b) => b.append_null(),
        Col::U8(b) => b.append_null(),
        Col::U16(b) => b.append_null(),
        Col::U32(b) => b.append_null(),
        Col::U64(b) => b.append_null(),
        Col::D128(b, _) => b.append_null(),
        Col::D256(b, _) => b.append_null(),
        Col::F32(b) => b.append_null(),
        Col::F64(b) => b.append_null(),
        Col::Date(b) => b.append_null(),
        Col::Ts(b) => b.append_null(),
        Col::Dur(b) => b.append_null(),
        Col::Str(b) => b.append_null(),
        Col::Bin(b) => b.append_null(),
    }
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

fn push_value(c: &mut Col, ty: LogicalType, v: Value, bytes: &mut usize) -> Result<(), String> {
    if v == Value::NULL {
        append_null(c);
        return Ok(());
    }
    match c {
        Col::I8(b) => b.append_value(int(&v)?),
        Col::I16(b) => b.append_value(int(&v)?),
        Col::I32(b) => b.append_value(int(&v)?),
        Col::I64(b) => b.append_value(int(&v)?),
        Col::U8(b) => b.append_value(int(&v)?),
        Col::U16(b) => b.append_value(int(&v)?),
        Col::U32(b) => b.append_value(int(&v)?),
        Col::U64(b) => match (ty, v) {
            (LogicalType::Bit { .. }, Value::Bytes(raw)) => {
                if raw.len() > 8 {
                    return Err(format!("BIT value of {} bytes", raw.len()));
                }
                b.append_value(raw.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64))
            }
            (_, v) => b.append_value(int(&v)?),
        },
        Col::D128(b, scale) => {
            let digits = scaled_digits(&bytes_of(v)?, *scale)?;
            b.append_value(i128::from_str(&digits).map_err(|e| format!("DECIMAL: {e}"))?)
        }
        Col::D256(b, scale) => {
            let digits = scaled_digits(&bytes_of(v)?, *scale)?;
            b.append_value(i256::from_str(&digits).map_err(|e| format!("DECIMAL: {e}"))?)
        }
        Col::F32(b) => match v {
            Value::Float(f) => b.append_value(f),
            Value::Double(d) => b.append_value(d as f32),
            other => return Err(format!("expected FLOAT, got {other:?}")),
        },
        Col::F64(b) => match v {
            Value::Double(d) => b.append_value(d),
            Value::Float(f) => b.append_value(f as f64),
            other => return Err(format!("expected DOUBLE, got {other:?}")),
        },
        Col::Date(b) => {
            let p = date_parts(&v)?;
            b.append_value(temporal::date_to_days(p.year, p.month, p.day))
        }
        Col::Ts(b) => b.append_value(temporal::datetime_to_us(date_parts(&v)?)),
        Col::Dur(b) => match v {
            Value::Time(neg, d, h, m, s, us) => {
                b.append_value(temporal::time_to_us(neg, d, h, m, s, us))
            }
            other => return Err(format!("expected TIME, got {other:?}")),
        },
        Col::Str(b) => {
            let raw = bytes_of(v)?;
            *bytes += raw.len();
            let s = String::from_utf8(raw).map_err(|e| {
                format!("text is not valid UTF-8 ({e}); is the column's character set convertible to utf8mb4?")
            })?;
            b.append_value(s)
        }
        Col::Bin(b) => {
            let raw = bytes_of(v)?;
            *bytes += raw.len();
            b.append_value(raw)
        }
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
}
