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
use serde_json::{json, Map, Number, Value};

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

/// The message value of one change of `table`: its images are row `row`
/// of `before` and `after`, when given.
pub fn change(
    table: &TableSchema,
    op: Op,
    before: Option<(&RecordBatch, usize)>,
    after: Option<(&RecordBatch, usize)>,
    source: &Source<'_>,
) -> Value {
    let ts_ms = source.commit_ts_us / 1000;
    let p = source.position;
    let transaction = (op != Op::Read).then(|| {
        json!({
            "id": p.gtid.as_deref().filter(|g| !g.is_empty()).map_or_else(|| format!("{}:{}", p.file, p.offset), str::to_string),
            "total_order": source.row + 1,
            "data_collection_order": source.row + 1,
        })
    });
    json!({
        "before": before.map(|(b, r)| image(table, b, r)),
        "after": after.map(|(a, r)| image(table, a, r)),
        "source": {
            "version": concat!("sluice-", env!("CARGO_PKG_VERSION")),
            "connector": "mysql",
            "name": source.name,
            "ts_ms": ts_ms,
            "snapshot": source.snapshot,
            "db": table.id.database,
            "table": table.id.name,
            "server_id": 0,
            "gtid": p.gtid.as_deref().filter(|g| !g.is_empty()),
            "file": p.file.to_string(),
            "pos": p.offset,
            "row": source.row,
        },
        "op": op_code(op),
        "ts_ms": ts_ms,
        "transaction": transaction,
    })
}

/// The key columns of row `row` of `image`, as JSON (the message key);
/// every column for a table without a key.
pub fn key(table: &TableSchema, image: &RecordBatch, row: usize) -> Value {
    let cols: Vec<usize> = if table.key.is_empty() {
        (0..table.columns.len()).collect()
    } else {
        table.key.clone()
    };
    let mut out = Map::new();
    for c in cols {
        out.insert(
            table.columns[c].name.clone(),
            value(&table.columns[c].logical, image.column(c).as_ref(), row),
        );
    }
    Value::Object(out)
}

fn image(table: &TableSchema, image: &RecordBatch, row: usize) -> Value {
    let mut out = Map::new();
    for (c, col) in table.columns.iter().enumerate() {
        out.insert(
            col.name.clone(),
            value(&col.logical, image.column(c).as_ref(), row),
        );
    }
    Value::Object(out)
}

fn b64(bytes: &[u8]) -> Value {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into()
}

/// One value, as Debezium encodes a column of type `logical`.
pub fn value(logical: &LogicalType, a: &dyn Array, row: usize) -> Value {
    if a.is_null(row) {
        return Value::Null;
    }
    let mut text = String::new();
    match (logical, a.data_type()) {
        (LogicalType::Bit { width }, _) => {
            let v = unsigned(a, row).unwrap_or(0);
            if *width == 1 {
                return (v != 0).into();
            }
            let n = (*width as usize).div_ceil(8);
            b64(&v.to_le_bytes()[..n])
        }
        (LogicalType::Date, DataType::Date32) => {
            let days = a.as_primitive::<Date32Type>().value(row);
            if days < DAY0 {
                return Value::Null;
            }
            days.into()
        }
        (LogicalType::DateTime { fsp }, DataType::Timestamp(_, _)) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
            if us < DAY0_US {
                return Value::Null;
            }
            if *fsp <= 3 {
                us.div_euclid(1000).into()
            } else {
                us.into()
            }
        }
        (LogicalType::Timestamp { fsp }, DataType::Timestamp(_, _)) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
            if us < DAY0_US {
                return Value::Null;
            }
            let p = temporal::us_to_datetime(us);
            let mut s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                p.year, p.month, p.day, p.hour, p.minute, p.second
            );
            if *fsp > 0 {
                let frac = format!("{:06}", p.micro);
                s.push('.');
                s.push_str(&frac[..*fsp as usize]);
            }
            s.push('Z');
            s.into()
        }
        (LogicalType::Time { .. }, DataType::Duration(_)) => a
            .as_primitive::<DurationMicrosecondType>()
            .value(row)
            .into(),
        (LogicalType::Geometry, DataType::Binary) => {
            let b = a.as_binary::<i32>().value(row);
            let (srid, wkb) = if b.len() >= 4 {
                (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), &b[4..])
            } else {
                (0, b)
            };
            json!({"wkb": b64(wkb), "srid": srid})
        }
        (_, DataType::Int8) => a.as_primitive::<Int8Type>().value(row).into(),
        (_, DataType::Int16) => a.as_primitive::<Int16Type>().value(row).into(),
        (_, DataType::Int32) => a.as_primitive::<Int32Type>().value(row).into(),
        (_, DataType::Int64) => a.as_primitive::<Int64Type>().value(row).into(),
        (_, DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64) => {
            unsigned(a, row).unwrap_or(0).into()
        }
        (_, DataType::Float32) => number(a.as_primitive::<Float32Type>().value(row) as f64),
        (_, DataType::Float64) => number(a.as_primitive::<Float64Type>().value(row)),
        (_, DataType::Decimal128(_, s)) => {
            let v = a.as_primitive::<Decimal128Type>().value(row);
            sluice_core::types::push_decimal(&mut text, &v.to_string(), *s as usize);
            text.into()
        }
        (_, DataType::Decimal256(_, s)) => {
            let v = a.as_primitive::<Decimal256Type>().value(row);
            sluice_core::types::push_decimal(&mut text, &v.to_string(), *s as usize);
            text.into()
        }
        (_, DataType::Utf8) => a.as_string::<i32>().value(row).into(),
        (_, DataType::Binary) => b64(a.as_binary::<i32>().value(row)),
        (_, DataType::FixedSizeBinary(_)) => b64(a.as_fixed_size_binary().value(row)),
        // Types a plugin may declare beyond the source's.
        (_, DataType::Boolean) => a.as_boolean().value(row).into(),
        (_, DataType::Date32) => a.as_primitive::<Date32Type>().value(row).into(),
        (_, DataType::Timestamp(_, _)) => a
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .into(),
        (_, DataType::Duration(_)) => a
            .as_primitive::<DurationMicrosecondType>()
            .value(row)
            .into(),
        (_, other) => format!("(unsupported type {other})").into(),
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

/// A finite float as a number; MySQL stores no NaN or infinity.
fn number(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, Date32Array, Decimal128Array, DurationMicrosecondArray,
        TimestampMicrosecondArray, UInt64Array,
    };
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
