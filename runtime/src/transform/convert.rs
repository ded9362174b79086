//! Arrow row images to plugin values and back. The encoding is the one
//! sluice's Arrow data already uses, so nothing is lost in either direction.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use super::wasm::types::Value;
use crate::mysql::temporal;
use crate::mysql::types::MysqlType;

/// One row of `image` as plugin values.
pub fn row_values(image: &RecordBatch, row: usize) -> Vec<Value> {
    image
        .columns()
        .iter()
        .map(|a| value(a.as_ref(), row))
        .collect()
}

fn value(a: &dyn Array, row: usize) -> Value {
    if a.is_null(row) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Int8 => Value::Int(a.as_primitive::<Int8Type>().value(row) as i64),
        DataType::Int16 => Value::Int(a.as_primitive::<Int16Type>().value(row) as i64),
        DataType::Int32 => Value::Int(a.as_primitive::<Int32Type>().value(row) as i64),
        DataType::Int64 => Value::Int(a.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::Uint(a.as_primitive::<UInt8Type>().value(row) as u64),
        DataType::UInt16 => Value::Uint(a.as_primitive::<UInt16Type>().value(row) as u64),
        DataType::UInt32 => Value::Uint(a.as_primitive::<UInt32Type>().value(row) as u64),
        DataType::UInt64 => Value::Uint(a.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => Value::Float32(a.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => Value::Float64(a.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, s) => Value::Decimal(scaled(
            &a.as_primitive::<Decimal128Type>().value(row).to_string(),
            *s as usize,
        )),
        DataType::Decimal256(_, s) => Value::Decimal(scaled(
            &a.as_primitive::<Decimal256Type>().value(row).to_string(),
            *s as usize,
        )),
        DataType::Date32 => Value::Date(a.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(_, _) => {
            Value::Timestamp(a.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Duration(_) => {
            Value::Time(a.as_primitive::<DurationMicrosecondType>().value(row))
        }
        DataType::Utf8 => Value::Text(a.as_string::<i32>().value(row).to_string()),
        DataType::Binary => Value::Bytes(a.as_binary::<i32>().value(row).to_vec()),
        _ => Value::Null,
    }
}

/// "-150" at scale 2 → "-1.50".
fn scaled(digits: &str, scale: usize) -> String {
    let mut out = String::new();
    crate::mysql::encode::push_decimal(&mut out, digits, scale);
    out
}

/// A plugin value as the binary-protocol value the row decoder takes, for a
/// column of type `ty`; `Err` names what does not fit.
pub fn to_mysql(v: &Value, ty: MysqlType) -> Result<mysql_async::Value, String> {
    use mysql_async::Value as M;
    Ok(match (v, ty) {
        (Value::Null, _) => M::NULL,
        (Value::Int(i), _) => M::Int(*i),
        (Value::Uint(u), MysqlType::Bit { .. }) => M::Bytes(
            u.to_be_bytes()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect(),
        ),
        (Value::Uint(u), _) => M::UInt(*u),
        (Value::Float32(f), _) => M::Float(*f),
        (Value::Float64(f), _) => M::Double(*f),
        (Value::Decimal(s), _) | (Value::Text(s), _) => M::Bytes(s.clone().into_bytes()),
        (Value::Bytes(b), _) => M::Bytes(b.clone()),
        (Value::Date(d), _) => {
            let (y, m, day) = temporal::days_to_date(*d);
            M::Date(y, m, day, 0, 0, 0, 0)
        }
        (Value::Timestamp(us), _) => {
            let p = temporal::us_to_datetime(*us);
            M::Date(p.year, p.month, p.day, p.hour, p.minute, p.second, p.micro)
        }
        (Value::Time(us), _) => {
            let neg = *us < 0;
            let a = us.unsigned_abs();
            let secs = a / 1_000_000;
            M::Time(
                neg,
                (secs / 86_400) as u32,
                (secs / 3600 % 24) as u8,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
                (a % 1_000_000) as u32,
            )
        }
    })
}

/// How much a string or binary column holds, for values a plugin wrote (the
/// target's non-strict mode would silently cut a longer one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    Chars(usize),
    Bytes(usize),
}

/// The capacity of a column type such as `varchar(64)`, `text` or `binary(16)`.
pub fn capacity(column_type: &str) -> Option<Capacity> {
    let t = column_type.trim().to_ascii_lowercase();
    let base = t.split(['(', ' ']).next().unwrap_or("");
    let n = t
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .and_then(|(n, _)| n.trim().parse::<usize>().ok());
    match base {
        "char" | "varchar" => n.map(Capacity::Chars),
        "binary" | "varbinary" => n.map(Capacity::Bytes),
        "tinytext" | "tinyblob" => Some(Capacity::Bytes(255)),
        "text" | "blob" => Some(Capacity::Bytes(65_535)),
        "mediumtext" | "mediumblob" => Some(Capacity::Bytes(16_777_215)),
        _ => None,
    }
}

/// `Err` with the sizes when `v` does not fit.
pub fn check_fits(v: &Value, cap: Capacity, column_type: &str) -> Result<(), String> {
    let (len, max, unit) = match (v, cap) {
        (Value::Text(s), Capacity::Chars(max)) => (s.chars().count(), max, "characters"),
        (Value::Text(s), Capacity::Bytes(max)) => (s.len(), max, "bytes"),
        (Value::Bytes(b), Capacity::Bytes(max) | Capacity::Chars(max)) => (b.len(), max, "bytes"),
        _ => return Ok(()),
    };
    if len > max {
        return Err(format!(
            "the plugin's value is {len} {unit}, longer than `{column_type}` holds ({max})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities() {
        assert_eq!(capacity("varchar(64)"), Some(Capacity::Chars(64)));
        assert_eq!(capacity("binary(16)"), Some(Capacity::Bytes(16)));
        assert_eq!(capacity("text"), Some(Capacity::Bytes(65_535)));
        assert_eq!(capacity("int(11)"), None);
        let v = Value::Text("ééé".into());
        assert!(check_fits(&v, Capacity::Chars(3), "char(3)").is_ok());
        assert!(check_fits(&v, Capacity::Chars(2), "char(2)")
            .unwrap_err()
            .contains("3 characters"));
    }
}
