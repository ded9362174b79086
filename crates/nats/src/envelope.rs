//! A row change as Debezium's MySQL connector writes its value (the JSON
//! converter without schemas): `before`, `after`, `op`, `ts_ms`, `source`
//! and `transaction`, so a consumer written for Debezium reads it as is.
//!
//! Values are encoded as Debezium documents them for its defaults, except
//! DECIMAL, which is a string (`decimal.handling.mode=string`: without the
//! schema, the default bytes cannot be read):
//! - integers and YEAR as numbers, FLOAT and DOUBLE as numbers;
//! - BIT(1) as a boolean, BIT(n) as base64 bytes, least significant first;
//! - DATE as days since 1970-01-01; DATETIME(0..3) as milliseconds since
//!   the epoch, DATETIME(4..6) as microseconds; TIMESTAMP as ISO-8601 UTC
//!   text; TIME as microseconds; zero and partial-zero dates as null;
//! - text, ENUM, SET, JSON, UUID and INET as strings;
//! - binary strings and BLOBs as base64; GEOMETRY as `{"wkb", "srid"}`.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use base64::Engine;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use sluice_core::event::{Op, Position, TableSchema};
use sluice_core::temporal::{self, DAY0, DAY0_US};
use sluice_core::types::LogicalType;

/// Where a message comes from, as Debezium's `source` block says it.
pub struct Source<'a> {
    /// The pipeline (Debezium's logical server name).
    pub name: &'a str,
    pub position: &'a Position,
    pub commit_ts_us: i64,
    /// `"true"`, `"last"` or `"false"`.
    pub snapshot: &'static str,
    /// The row's index in its transaction.
    pub row: u64,
}

/// Debezium's `op`.
pub fn op_code(op: Op) -> &'static str {
    match op {
        Op::Read => "r",
        Op::Insert => "c",
        Op::Update => "u",
        Op::Delete => "d",
    }
}

/// The message value of one change of `table`, as JSON bytes: its images
/// are row `row` of `before` and `after`, when given. Written straight
/// from the batch, without a JSON tree per message (building one cost
/// more than publishing it).
pub fn change(
    table: &TableSchema,
    op: Op,
    before: Option<(&RecordBatch, usize)>,
    after: Option<(&RecordBatch, usize)>,
    source: &Source<'_>,
) -> Vec<u8> {
    let change = Change {
        table,
        op,
        before,
        after,
        source,
    };
    // Serializing into a Vec fails only for a map key that is not text.
    serde_json::to_vec(&change).unwrap_or_default()
}

/// The key columns of row `row` of `image`, as JSON text (the message
/// key); every column for a table without a key.
pub fn key(table: &TableSchema, image: &RecordBatch, row: usize) -> String {
    let columns: Vec<usize> = if table.key.is_empty() {
        (0..table.columns.len()).collect()
    } else {
        table.key.clone()
    };
    serde_json::to_string(&Image {
        table,
        batch: image,
        row,
        columns: Some(&columns),
    })
    .unwrap_or_default()
}

/// One value, as Debezium encodes a column of type `logical`.
pub fn value(logical: &LogicalType, a: &dyn Array, row: usize) -> Value {
    serde_json::to_value(Cell { logical, a, row }).unwrap_or(Value::Null)
}

struct Change<'a> {
    table: &'a TableSchema,
    op: Op,
    before: Option<(&'a RecordBatch, usize)>,
    after: Option<(&'a RecordBatch, usize)>,
    source: &'a Source<'a>,
}

impl<'a> Serialize for Change<'a> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (t, src) = (self.table, self.source);
        let p = src.position;
        let ts_ms = src.commit_ts_us / 1000;
        let image = |i: Option<(&'a RecordBatch, usize)>| {
            i.map(|(batch, row)| Image {
                table: t,
                batch,
                row,
                columns: None,
            })
        };
        let gtid = p.gtid.as_deref().filter(|g| !g.is_empty());
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("before", &image(self.before))?;
        m.serialize_entry("after", &image(self.after))?;
        m.serialize_entry(
            "source",
            &SourceBlock {
                name: src.name,
                ts_ms,
                snapshot: src.snapshot,
                db: &t.id.database,
                table: &t.id.name,
                gtid,
                file: &p.file,
                pos: p.offset,
                row: src.row,
            },
        )?;
        m.serialize_entry("op", op_code(self.op))?;
        m.serialize_entry("ts_ms", &ts_ms)?;
        let transaction = (self.op != Op::Read).then(|| Transaction {
            id: gtid.map_or_else(|| format!("{}:{}", p.file, p.offset), str::to_string),
            order: src.row + 1,
        });
        m.serialize_entry("transaction", &transaction)?;
        m.end()
    }
}

/// Debezium's `source` block.
struct SourceBlock<'a> {
    name: &'a str,
    ts_ms: i64,
    snapshot: &'static str,
    db: &'a str,
    table: &'a str,
    gtid: Option<&'a str>,
    file: &'a str,
    pos: u64,
    row: u64,
}

impl Serialize for SourceBlock<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(12))?;
        m.serialize_entry("version", concat!("sluice-", env!("CARGO_PKG_VERSION")))?;
        m.serialize_entry("connector", "mysql")?;
        m.serialize_entry("name", self.name)?;
        m.serialize_entry("ts_ms", &self.ts_ms)?;
        m.serialize_entry("snapshot", self.snapshot)?;
        m.serialize_entry("db", self.db)?;
        m.serialize_entry("table", self.table)?;
        m.serialize_entry("server_id", &0)?;
        m.serialize_entry("gtid", &self.gtid)?;
        m.serialize_entry("file", self.file)?;
        m.serialize_entry("pos", &self.pos)?;
        m.serialize_entry("row", &self.row)?;
        m.end()
    }
}

/// Debezium's `transaction` block of a change.
struct Transaction {
    id: String,
    /// The change's place in its transaction, from 1.
    order: u64,
}

impl Serialize for Transaction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("total_order", &self.order)?;
        m.serialize_entry("data_collection_order", &self.order)?;
        m.end()
    }
}

/// A row image as an object of its columns (`columns` of them, else all),
/// in the table's order.
struct Image<'a> {
    table: &'a TableSchema,
    batch: &'a RecordBatch,
    row: usize,
    columns: Option<&'a [usize]>,
}

impl Serialize for Image<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let all = self.table.columns.len();
        let mut m = s.serialize_map(Some(self.columns.map_or(all, <[usize]>::len)))?;
        let mut entry = |c: usize| -> Result<(), S::Error> {
            let (Some(def), Some(a)) = (self.table.columns.get(c), self.batch.columns().get(c))
            else {
                return Ok(());
            };
            m.serialize_entry(
                &def.name,
                &Cell {
                    logical: &def.logical,
                    a: a.as_ref(),
                    row: self.row,
                },
            )
        };
        match self.columns {
            Some(cols) => cols.iter().try_for_each(|&c| entry(c))?,
            None => (0..all).try_for_each(&mut entry)?,
        }
        m.end()
    }
}

/// One value of a column of type `logical`.
struct Cell<'a> {
    logical: &'a LogicalType,
    a: &'a dyn Array,
    row: usize,
}

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (a, row) = (self.a, self.row);
        if a.is_null(row) {
            return s.serialize_none();
        }
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        match (self.logical, a.data_type()) {
            (LogicalType::Bit { width }, _) => {
                let v = unsigned(a, row).unwrap_or(0);
                if *width == 1 {
                    return s.serialize_bool(v != 0);
                }
                let n = (*width as usize).div_ceil(8);
                s.serialize_str(&b64(&v.to_le_bytes()[..n]))
            }
            (LogicalType::Date, DataType::Date32) => {
                let days = a.as_primitive::<Date32Type>().value(row);
                if days < DAY0 {
                    return s.serialize_none();
                }
                s.serialize_i32(days)
            }
            (LogicalType::DateTime { fsp }, DataType::Timestamp(_, _)) => {
                let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
                if us < DAY0_US {
                    return s.serialize_none();
                }
                s.serialize_i64(if *fsp <= 3 { us.div_euclid(1000) } else { us })
            }
            (LogicalType::Timestamp { fsp }, DataType::Timestamp(_, _)) => {
                let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
                if us < DAY0_US {
                    return s.serialize_none();
                }
                let p = temporal::us_to_datetime(us);
                let mut text = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                    p.year, p.month, p.day, p.hour, p.minute, p.second
                );
                if *fsp > 0 {
                    let frac = format!("{:06}", p.micro);
                    text.push('.');
                    text.push_str(&frac[..(*fsp as usize).min(6)]);
                }
                text.push('Z');
                s.serialize_str(&text)
            }
            (LogicalType::Time { .. }, DataType::Duration(_)) => {
                s.serialize_i64(a.as_primitive::<DurationMicrosecondType>().value(row))
            }
            (LogicalType::Geometry, DataType::Binary) => {
                let b = a.as_binary::<i32>().value(row);
                let (srid, wkb) = if b.len() >= 4 {
                    (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), &b[4..])
                } else {
                    (0, b)
                };
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("wkb", &b64(wkb))?;
                m.serialize_entry("srid", &srid)?;
                m.end()
            }
            (_, DataType::Int8) => s.serialize_i8(a.as_primitive::<Int8Type>().value(row)),
            (_, DataType::Int16) => s.serialize_i16(a.as_primitive::<Int16Type>().value(row)),
            (_, DataType::Int32) => s.serialize_i32(a.as_primitive::<Int32Type>().value(row)),
            (_, DataType::Int64) => s.serialize_i64(a.as_primitive::<Int64Type>().value(row)),
            (_, DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64) => {
                s.serialize_u64(unsigned(a, row).unwrap_or(0))
            }
            (_, DataType::Float32) => float(s, a.as_primitive::<Float32Type>().value(row) as f64),
            (_, DataType::Float64) => float(s, a.as_primitive::<Float64Type>().value(row)),
            (_, DataType::Decimal128(_, scale)) => {
                let mut text = String::new();
                let v = a.as_primitive::<Decimal128Type>().value(row);
                sluice_core::types::push_decimal(&mut text, &v.to_string(), *scale as usize);
                s.serialize_str(&text)
            }
            (_, DataType::Decimal256(_, scale)) => {
                let mut text = String::new();
                let v = a.as_primitive::<Decimal256Type>().value(row);
                sluice_core::types::push_decimal(&mut text, &v.to_string(), *scale as usize);
                s.serialize_str(&text)
            }
            (_, DataType::Utf8) => s.serialize_str(a.as_string::<i32>().value(row)),
            (_, DataType::Binary) => s.serialize_str(&b64(a.as_binary::<i32>().value(row))),
            (_, DataType::FixedSizeBinary(_)) => {
                s.serialize_str(&b64(a.as_fixed_size_binary().value(row)))
            }
            // Types a plugin may declare beyond the source's.
            (_, DataType::Boolean) => s.serialize_bool(a.as_boolean().value(row)),
            (_, DataType::Date32) => s.serialize_i32(a.as_primitive::<Date32Type>().value(row)),
            (_, DataType::Timestamp(_, _)) => {
                s.serialize_i64(a.as_primitive::<TimestampMicrosecondType>().value(row))
            }
            (_, DataType::Duration(_)) => {
                s.serialize_i64(a.as_primitive::<DurationMicrosecondType>().value(row))
            }
            (_, other) => s.serialize_str(&format!("(unsupported type {other})")),
        }
    }
}

fn unsigned(a: &dyn Array, row: usize) -> Option<u64> {
    Some(match a.data_type() {
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(row) as u64,
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(row) as u64,
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(row) as u64,
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(row),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(row) as u64,
        _ => return None,
    })
}

/// A finite float as a number; MySQL stores no NaN or infinity (null,
/// as JSON has neither).
fn float<S: Serializer>(s: S, f: f64) -> Result<S::Ok, S::Error> {
    if f.is_finite() {
        s.serialize_f64(f)
    } else {
        s.serialize_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, Date32Array, Decimal128Array, DurationMicrosecondArray,
        TimestampMicrosecondArray, UInt64Array,
    };
    use serde_json::json;
    use std::sync::Arc;

    fn one(logical: LogicalType, a: ArrayRef) -> Value {
        value(&logical, a.as_ref(), 0)
    }

    /// Values as Debezium's documentation encodes them.
    #[test]
    fn values_are_encoded_as_debezium_documents() {
        let us = 1_704_067_200_123_456i64; // 2024-01-01 00:00:00.123456 UTC
        assert_eq!(
            one(LogicalType::Date, Arc::new(Date32Array::from(vec![19_723]))),
            json!(19_723)
        );
        assert_eq!(
            one(
                LogicalType::Date,
                Arc::new(Date32Array::from(vec![DAY0 - 1]))
            ),
            Value::Null,
            "a zero date"
        );
        let ts = || Arc::new(TimestampMicrosecondArray::from(vec![us])) as ArrayRef;
        assert_eq!(
            one(LogicalType::DateTime { fsp: 3 }, ts()),
            json!(1_704_067_200_123i64)
        );
        assert_eq!(one(LogicalType::DateTime { fsp: 6 }, ts()), json!(us));
        assert_eq!(
            one(LogicalType::Timestamp { fsp: 3 }, ts()),
            json!("2024-01-01T00:00:00.123Z")
        );
        assert_eq!(
            one(LogicalType::Timestamp { fsp: 0 }, ts()),
            json!("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            one(
                LogicalType::Time { fsp: 6 },
                Arc::new(DurationMicrosecondArray::from(vec![-3_000_000]))
            ),
            json!(-3_000_000)
        );
        assert_eq!(
            one(
                LogicalType::Bit { width: 1 },
                Arc::new(UInt64Array::from(vec![1]))
            ),
            json!(true)
        );
        // BIT(12) b'1000 0000 0001': two bytes, least significant first.
        assert_eq!(
            one(
                LogicalType::Bit { width: 12 },
                Arc::new(UInt64Array::from(vec![0x801]))
            ),
            json!("AQg=")
        );
        let d = Decimal128Array::from(vec![-12_345i128])
            .with_precision_and_scale(10, 3)
            .expect("a decimal");
        assert_eq!(
            one(
                LogicalType::Decimal {
                    precision: 10,
                    scale: 3
                },
                Arc::new(d)
            ),
            json!("-12.345")
        );
    }
}
