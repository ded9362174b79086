//! One row change as one JSON object (a line of the file).

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use serde_json::{Map, Number, Value};

use sluice_core::event::{ChangeBatch, Op, Position};
use sluice_core::temporal;

/// Appends one line per row of `batch` to `out`: its operation, table,
/// the position (the snapshot's, or the end of the row's transaction), the
/// commit time, and the row images.
pub fn write_lines(batch: &ChangeBatch, position: &Position, commit_ts_us: i64, out: &mut Vec<u8>) {
    for (row, ev) in batch.events.iter().enumerate() {
        let mut line = Map::new();
        line.insert("op".into(), op_name(ev.op).into());
        line.insert(
            "table".into(),
            format!("{}.{}", batch.table.id.database, batch.table.id.name).into(),
        );
        line.insert("position".into(), position.to_string().into());
        line.insert("commit_ts_us".into(), commit_ts_us.into());
        if matches!(ev.op, Op::Update | Op::Delete) {
            if let Some(b) = &batch.before {
                line.insert("before".into(), image(b, row));
            }
        }
        if matches!(ev.op, Op::Read | Op::Insert | Op::Update) {
            if let Some(a) = &batch.after {
                line.insert("after".into(), image(a, row));
            }
        }
        // A map of strings and numbers always serializes.
        if serde_json::to_writer(&mut *out, &Value::Object(line)).is_ok() {
            out.push(b'\n');
        }
    }
}

/// A schema change as a line.
pub fn write_schema_change(sql: &str, position: &Position, commit_ts_us: i64, out: &mut Vec<u8>) {
    let mut line = Map::new();
    line.insert("op".into(), "schema_change".into());
    line.insert("sql".into(), sql.into());
    line.insert("position".into(), position.to_string().into());
    line.insert("commit_ts_us".into(), commit_ts_us.into());
    if serde_json::to_writer(&mut *out, &Value::Object(line)).is_ok() {
        out.push(b'\n');
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Insert => "insert",
        Op::Update => "update",
        Op::Delete => "delete",
    }
}

/// Row `row` of `image` as an object of column values.
fn image(image: &RecordBatch, row: usize) -> Value {
    let schema = image.schema();
    let mut out = Map::new();
    for (field, col) in schema.fields().iter().zip(image.columns()) {
        out.insert(field.name().clone(), value(col.as_ref(), row));
    }
    Value::Object(out)
}

/// A value in JSON: integers as numbers, decimals as exact strings,
/// floating point as numbers, dates and times as text in the server's
/// format, text as strings, bytes as hex.
fn value(a: &dyn Array, row: usize) -> Value {
    if a.is_null(row) {
        return Value::Null;
    }
    let mut text = String::new();
    match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float32 => number(a.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => number(a.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, s) => {
            let v = a.as_primitive::<Decimal128Type>().value(row);
            sluice_core::types::push_decimal(&mut text, &v.to_string(), *s as usize);
            text.into()
        }
        DataType::Decimal256(_, s) => {
            let v = a.as_primitive::<Decimal256Type>().value(row);
            sluice_core::types::push_decimal(&mut text, &v.to_string(), *s as usize);
            text.into()
        }
        DataType::Date32 => {
            let days = a.as_primitive::<Date32Type>().value(row);
            temporal::write_date(&mut text, temporal::days_to_date(days));
            text.into()
        }
        DataType::Timestamp(_, _) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
            temporal::write_datetime(&mut text, temporal::us_to_datetime(us));
            text.into()
        }
        DataType::Duration(_) => {
            let us = a.as_primitive::<DurationMicrosecondType>().value(row);
            temporal::write_time(&mut text, us);
            text.into()
        }
        DataType::Utf8 => a.as_string::<i32>().value(row).into(),
        DataType::Binary => {
            for b in a.as_binary::<i32>().value(row) {
                text.push_str(&format!("{b:02x}"));
            }
            text.into()
        }
        other => format!("(unsupported type {other})").into(),
    }
}

/// A finite float as a number; MySQL stores no NaN or infinity.
fn number(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}
