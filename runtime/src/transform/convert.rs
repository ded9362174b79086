//! Arrow row images to plugin values and back. The encoding is the one
//! sluice's Arrow data already uses, so nothing is lost in either direction.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    Array, ArrayRef, BinaryArray, Date32Array, Decimal128Array, Decimal256Array,
    DurationMicrosecondArray, Float32Array, Float64Array, PrimitiveArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::i256;
use arrow_schema::{DataType, SchemaRef};

use super::wasm::types::Value;

/// Every row of `image` as plugin values, converted column by column.
pub fn rows(image: &RecordBatch) -> Vec<Vec<Value>> {
    let n = image.num_rows();
    let mut rows: Vec<Vec<Value>> = (0..n)
        .map(|_| Vec::with_capacity(image.num_columns()))
        .collect();
    for a in image.columns() {
        let a = a.as_ref();
        for (row, out) in rows.iter_mut().enumerate() {
            out.push(value(a, row));
        }
    }
    rows
}

/// Rows of plugin values (already checked to have one value per column) as
/// an Arrow image of `schema`, built column by column.
pub fn image(schema: &SchemaRef, mut rows: Vec<Vec<Value>>) -> Result<RecordBatch, String> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let column: Vec<Value> = rows
            .iter_mut()
            .map(|r| std::mem::replace(&mut r[i], Value::Null))
            .collect();
        arrays.push(
            array(column, field.data_type())
                .map_err(|m| format!("column `{}`: {m}", field.name()))?,
        );
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Uint(_) => "an unsigned integer",
        Value::Float32(_) | Value::Float64(_) => "a float",
        Value::Decimal(_) => "a decimal",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Date(_) => "a date",
        Value::Timestamp(_) => "a timestamp",
        Value::Time(_) => "a time",
    }
}

fn ints<T>(values: Vec<Value>) -> Result<ArrayRef, String>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i64> + TryFrom<u64>,
    PrimitiveArray<T>: From<Vec<Option<T::Native>>>,
{
    let out = values
        .into_iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Int(i) => T::Native::try_from(i)
                .map(Some)
                .map_err(|_| format!("{i} is out of range")),
            Value::Uint(u) => T::Native::try_from(u)
                .map(Some)
                .map_err(|_| format!("{u} is out of range")),
            other => Err(format!("expected an integer, got {}", kind(&other))),
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Arc::new(PrimitiveArray::<T>::from(out)))
}

/// "-1.5" at scale 2 → "-150" (the unscaled integer's digits).
fn unscaled(text: &str, scale: usize) -> Option<String> {
    let t = text.trim();
    let (sign, t) = match t.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || frac.len() > scale
    {
        return None;
    }
    Some(format!("{sign}{int}{frac:0<scale$}"))
}

fn decimal_text(v: Value, scale: usize) -> Result<Option<String>, String> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Decimal(s) | Value::Text(s) => s,
        Value::Int(i) => i.to_string(),
        Value::Uint(u) => u.to_string(),
        other => return Err(format!("expected a decimal, got {}", kind(&other))),
    };
    unscaled(&text, scale)
        .map(Some)
        .ok_or_else(|| format!("`{text}` is not a decimal with at most {scale} decimals"))
}

/// One column of plugin values as an Arrow array of type `ty`.
pub fn array(values: Vec<Value>, ty: &DataType) -> Result<ArrayRef, String> {
    let each = |f: &dyn Fn(Value) -> Result<Option<i64>, String>| {
        values
            .iter()
            .cloned()
            .map(f)
            .collect::<Result<Vec<_>, String>>()
    };
    Ok(match ty {
        DataType::Int8 => ints::<Int8Type>(values)?,
        DataType::Int16 => ints::<Int16Type>(values)?,
        DataType::Int32 => ints::<Int32Type>(values)?,
        DataType::Int64 => ints::<Int64Type>(values)?,
        DataType::UInt8 => ints::<UInt8Type>(values)?,
        DataType::UInt16 => ints::<UInt16Type>(values)?,
        DataType::UInt32 => ints::<UInt32Type>(values)?,
        DataType::UInt64 => ints::<UInt64Type>(values)?,
        DataType::Float32 | DataType::Float64 => {
            let fs = values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Float32(f) => Ok(Some(f as f64)),
                    Value::Float64(f) => Ok(Some(f)),
                    Value::Int(i) => Ok(Some(i as f64)),
                    Value::Uint(u) => Ok(Some(u as f64)),
                    other => Err(format!("expected a float, got {}", kind(&other))),
                })
                .collect::<Result<Vec<_>, String>>()?;
            if *ty == DataType::Float32 {
                Arc::new(Float32Array::from(
                    fs.into_iter()
                        .map(|f| f.map(|f| f as f32))
                        .collect::<Vec<_>>(),
                ))
            } else {
                Arc::new(Float64Array::from(fs))
            }
        }
        DataType::Decimal128(p, s) => {
            let ds = values
                .into_iter()
                .map(|v| {
                    decimal_text(v, *s as usize)?
                        .map(|t| t.parse::<i128>().map_err(|_| format!("`{t}` is too large")))
                        .transpose()
                })
                .collect::<Result<Vec<_>, String>>()?;
            Arc::new(
                Decimal128Array::from(ds)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Decimal256(p, s) => {
            let ds = values
                .into_iter()
                .map(|v| {
                    decimal_text(v, *s as usize)?
                        .map(|t| i256::from_string(&t).ok_or_else(|| format!("`{t}` is too large")))
                        .transpose()
                })
                .collect::<Result<Vec<_>, String>>()?;
            Arc::new(
                Decimal256Array::from(ds)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Date32 => Arc::new(Date32Array::from(
            each(&|v| match v {
                Value::Null => Ok(None),
                Value::Date(d) => Ok(Some(d as i64)),
                other => Err(format!("expected a date, got {}", kind(&other))),
            })?
            .into_iter()
            .map(|d| d.map(|d| d as i32))
            .collect::<Vec<_>>(),
        )),
        DataType::Timestamp(_, tz) => Arc::new(
            TimestampMicrosecondArray::from(each(&|v| match v {
                Value::Null => Ok(None),
                Value::Timestamp(t) => Ok(Some(t)),
                other => Err(format!("expected a timestamp, got {}", kind(&other))),
            })?)
            .with_timezone_opt(tz.clone()),
        ),
        DataType::Duration(_) => Arc::new(DurationMicrosecondArray::from(each(&|v| match v {
            Value::Null => Ok(None),
            Value::Time(t) => Ok(Some(t)),
            other => Err(format!("expected a time, got {}", kind(&other))),
        })?)),
        DataType::Utf8 => Arc::new(StringArray::from(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Text(s) | Value::Decimal(s) => Ok(Some(s)),
                    Value::Bytes(b) => String::from_utf8(b)
                        .map(Some)
                        .map_err(|_| "bytes that are not UTF-8 for a text column".to_string()),
                    other => Err(format!("expected text, got {}", kind(&other))),
                })
                .collect::<Result<Vec<_>, String>>()?,
        )),
        DataType::Binary => Arc::new(BinaryArray::from_iter(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bytes(b) => Ok(Some(b)),
                    Value::Text(s) => Ok(Some(s.into_bytes())),
                    other => Err(format!("expected bytes, got {}", kind(&other))),
                })
                .collect::<Result<Vec<_>, String>>()?,
        )),
        other => return Err(format!("unsupported Arrow type {other}")),
    })
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

/// The capacities of a table's columns, to check values a plugin wrote:
/// (capacity, column name, column type) for columns that have one.
pub struct Limits(Vec<Option<(Capacity, String, String)>>);

impl Limits {
    pub fn of(columns: &[crate::event::ColumnDef]) -> Self {
        Limits(
            columns
                .iter()
                .map(|c| {
                    capacity(&c.column_type).map(|cap| (cap, c.name.clone(), c.column_type.clone()))
                })
                .collect(),
        )
    }

    /// `Err` naming the column when `v` does not fit column `j`.
    pub fn check(&self, j: usize, v: &Value) -> Result<(), String> {
        match self.0.get(j) {
            Some(Some((cap, name, column_type))) => {
                check_fits(v, *cap, column_type).map_err(|m| format!("column `{name}`: {m}"))
            }
            _ => Ok(()),
        }
    }
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

    #[test]
    fn limits_name_the_column() {
        let col = |name: &str, ty: &str| crate::event::ColumnDef {
            name: name.into(),
            source_type: crate::mysql::types::MysqlType::Text,
            column_type: ty.into(),
            nullable: true,
            charset: None,
        };
        let limits = Limits::of(&[col("id", "int(11)"), col("code", "varchar(2)")]);
        assert!(limits.check(0, &Value::Text("long".into())).is_ok());
        let e = limits.check(1, &Value::Text("abc".into())).unwrap_err();
        assert!(e.contains("`code`") && e.contains("varchar(2)"), "{e}");
    }
}
