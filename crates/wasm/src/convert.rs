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

use super::wasm::types::{Image, Value};
use crate::rows::{self, Cell};
use crate::temporal;
use sluice_core::types::LogicalType;

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

/// Every row of `image` appended to `data` as a row image (contract v2),
/// with each row's span.
pub fn encode_rows(image: &RecordBatch, data: &mut Vec<u8>) -> Vec<Image> {
    let mut spans = Vec::with_capacity(image.num_rows());
    let mut decimal = String::new();
    for row in 0..image.num_rows() {
        let offset = data.len();
        for a in image.columns() {
            rows::put(data, cell(a.as_ref(), row, &mut decimal));
        }
        spans.push(Image {
            offset: offset as u32,
            len: (data.len() - offset) as u32,
        });
    }
    spans
}

/// One value, borrowing text and bytes from the array (a DECIMAL's text
/// from `decimal`).
fn cell<'a>(a: &'a dyn Array, row: usize, decimal: &'a mut String) -> Cell<'a> {
    if a.is_null(row) {
        return Cell::Null;
    }
    match a.data_type() {
        DataType::Utf8 => Cell::Text(a.as_string::<i32>().value(row)),
        DataType::Binary => Cell::Bytes(a.as_binary::<i32>().value(row)),
        _ => match value(a, row) {
            Value::Decimal(v) => {
                *decimal = v;
                Cell::Decimal(decimal)
            }
            Value::Int(v) => Cell::Int(v),
            Value::Uint(v) => Cell::Uint(v),
            Value::Float32(v) => Cell::Float32(v),
            Value::Float64(v) => Cell::Float64(v),
            Value::Date(v) => Cell::Date(v),
            Value::Timestamp(v) => Cell::Timestamp(v),
            Value::Time(v) => Cell::Time(v),
            // Text and bytes are borrowed above.
            Value::Null | Value::Text(_) | Value::Bytes(_) => Cell::Null,
        },
    }
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
    sluice_core::types::push_decimal(&mut out, digits, scale);
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

/// What a column accepts, to check every value a plugin wrote before any
/// sink sees it: a value the target would refuse (strict mode) would stop a
/// sink half way through a transaction, and one it would change (a `?` for
/// a character its charset lacks, a rounded fraction) must never pass.
struct ColumnCheck {
    name: String,
    column_type: String,
    ty: LogicalType,
    nullable: bool,
    capacity: Option<Capacity>,
    charset: Option<(&'static encoding_rs::Encoding, String)>,
    /// utf8mb3 and ucs2 hold the Basic Multilingual Plane only, ascii 7 bits.
    max_char: char,
    /// ENUM or SET members.
    members: Option<(bool, Vec<String>)>,
    json: bool,
    unsigned: bool,
}

impl ColumnCheck {
    fn of(c: &crate::event::ColumnDef) -> ColumnCheck {
        let ct = c.column_type.to_ascii_lowercase();
        let cs = c.charset.as_deref().map(str::to_ascii_lowercase);
        let max_char = match cs.as_deref() {
            Some("utf8mb3" | "utf8" | "ucs2") => '\u{ffff}',
            Some("ascii") => '\u{7f}',
            _ => char::MAX,
        };
        let encoding = match cs.as_deref() {
            // MySQL's latin1 is windows-1252 with its five holes kept as
            // C1 controls, as the WHATWG encoding does.
            Some("latin1") => Some(encoding_rs::WINDOWS_1252),
            Some(other)
                if !other.starts_with("utf")
                    && other != "ascii"
                    && other != "ucs2"
                    && other != "binary" =>
            {
                encoding_rs::Encoding::for_label(mysql_charset_label(other).as_bytes())
            }
            _ => None,
        };
        let charset = encoding.zip(cs.clone());
        let members = match c.logical {
            LogicalType::Enum => Some((false, sluice_core::types::members(&c.column_type))),
            LogicalType::Set => Some((true, sluice_core::types::members(&c.column_type))),
            _ => None,
        };
        ColumnCheck {
            name: c.name.clone(),
            column_type: c.column_type.clone(),
            ty: c.logical,
            nullable: c.nullable,
            capacity: capacity(&c.column_type),
            charset,
            max_char,
            members,
            json: c.logical == LogicalType::Json,
            unsigned: ct.contains("unsigned"),
        }
    }

    fn check(&self, v: &Value) -> Result<(), String> {
        let bad = |what: String| Err(format!("{what}, which `{}` cannot hold", self.column_type));
        if let Some(cap) = self.capacity {
            check_fits(v, cap, &self.column_type)?;
        }
        match (v, self.ty) {
            (Value::Null, _) if !self.nullable => Err("NULL, but the column is NOT NULL".into()),
            (Value::Null, _) => Ok(()),
            (Value::Float32(f), _) if !f.is_finite() => bad(format!("{f}")),
            (Value::Float64(f), _) if !f.is_finite() => bad(format!("{f}")),
            (Value::Float64(f), LogicalType::Float) if f.abs() > f32::MAX as f64 => {
                bad(format!("{f} (beyond FLOAT's range)"))
            }
            (Value::Int(i), LogicalType::Int { bytes: 3, unsigned }) => {
                let ok = if unsigned {
                    (0..=0xff_ffff).contains(i)
                } else {
                    (-0x80_0000..=0x7f_ffff).contains(i)
                };
                if ok {
                    Ok(())
                } else {
                    bad(format!("{i}"))
                }
            }
            (Value::Uint(u), LogicalType::Int { bytes: 3, .. }) if *u > 0xff_ffff => {
                bad(format!("{u}"))
            }
            (Value::Uint(u), LogicalType::Bit { width }) if width < 64 && *u >> width != 0 => {
                bad(format!("{u}"))
            }
            (Value::Int(i), LogicalType::Bit { width })
                if *i < 0 || (width < 64 && *i >> width != 0) =>
            {
                bad(format!("{i}"))
            }
            (Value::Int(y), LogicalType::Year) if *y != 0 && !(1901..=2155).contains(y) => {
                bad(format!("the year {y}"))
            }
            (Value::Uint(y), LogicalType::Year) if *y != 0 && !(1901..=2155).contains(y) => {
                bad(format!("the year {y}"))
            }
            (Value::Decimal(d) | Value::Text(d), LogicalType::Decimal { precision, scale }) => {
                let t = d.trim();
                let negative = t.starts_with('-');
                let digits = t
                    .trim_start_matches(['-', '+'])
                    .split('.')
                    .next()
                    .unwrap_or("");
                let int_digits = digits.trim_start_matches('0').len();
                if int_digits > (precision - scale) as usize {
                    bad(format!(
                        "{d} (more than {} digits before the point)",
                        precision - scale
                    ))
                } else if negative && self.unsigned && t.trim_start_matches(['-', '0', '.']) != "" {
                    bad(format!("{d} (negative)"))
                } else {
                    Ok(())
                }
            }
            (Value::Date(days), _) => {
                let (y, m, d) = temporal::days_to_date(*days);
                if y <= 9999 && temporal::date_to_days(y, m, d) == *days {
                    Ok(())
                } else {
                    bad(format!("the date {days} days from 1970-01-01"))
                }
            }
            (
                Value::Timestamp(us),
                LogicalType::DateTime { fsp } | LogicalType::Timestamp { fsp },
            ) => {
                let p = temporal::us_to_datetime(*us);
                if p.year > 9999 || temporal::datetime_to_us(p) != *us {
                    return bad(format!("the time {us} µs from 1970-01-01"));
                }
                let zero = p.year == 0
                    && p.month == 0
                    && p.day == 0
                    && *us
                        == temporal::datetime_to_us(temporal::DateTimeParts {
                            hour: 0,
                            minute: 0,
                            second: 0,
                            micro: 0,
                            ..p
                        });
                if matches!(self.ty, LogicalType::Timestamp { .. })
                    && !zero
                    && !(1_000_000..=2_147_483_647_999_999).contains(us)
                {
                    return bad(format!(
                        "{} (TIMESTAMP holds 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC)",
                        shown_datetime(*us)
                    ));
                }
                fraction(*us, fsp).or_else(|()| {
                    bad(format!(
                        "{} (a finer fraction than {fsp} digits)",
                        shown_datetime(*us)
                    ))
                })
            }
            (Value::Time(us), LogicalType::Time { fsp }) => {
                const MAX: i64 = ((838 * 60 + 59) * 60 + 59) * 1_000_000;
                if us.abs() > MAX {
                    return bad(format!(
                        "a time of {us} µs (TIME holds -838:59:59 to 838:59:59)"
                    ));
                }
                fraction(*us, fsp).or_else(|()| {
                    bad(format!(
                        "a time of {us} µs (a finer fraction than {fsp} digits)"
                    ))
                })
            }
            (Value::Text(s), _) => self.check_text(s),
            _ => Ok(()),
        }
    }

    fn check_text(&self, s: &str) -> Result<(), String> {
        let shown = || shown_text(s);
        if let Some(c) = s.chars().find(|c| *c > self.max_char) {
            return Err(format!(
                "{} holds {c:?} (U+{:04X}), which `{}` in its character set cannot hold",
                shown(),
                c as u32,
                self.column_type
            ));
        }
        if let Some((enc, name)) = &self.charset {
            let (_, _, unmappable) = enc.encode(s);
            if unmappable {
                let c = s
                    .chars()
                    .find(|c| enc.encode(c.encode_utf8(&mut [0; 4])).2)
                    .unwrap_or('?');
                return Err(format!(
                    "{} holds {c:?} (U+{:04X}), which the column's character set ({name}) cannot hold; the target would store `?`",
                    shown(),
                    c as u32,
                ));
            }
        }
        if let Some((set, members)) = &self.members {
            let ok = if *set {
                s.is_empty()
                    || s.split(',')
                        .all(|m| members.iter().any(|x| x.eq_ignore_ascii_case(m)))
            } else {
                members.iter().any(|x| x.eq_ignore_ascii_case(s))
            };
            if !ok {
                return Err(format!(
                    "{} is not a member of `{}`",
                    shown(),
                    self.column_type
                ));
            }
        }
        if self.json && serde_json::from_str::<serde::de::IgnoredAny>(s).is_err() {
            return Err(format!("{} is not valid JSON", shown()));
        }
        Ok(())
    }
}

/// MySQL's name of a character set as the WHATWG encoding label.
fn mysql_charset_label(cs: &str) -> &str {
    match cs {
        "cp1250" => "windows-1250",
        "cp1251" => "windows-1251",
        "cp1256" => "windows-1256",
        "cp1257" => "windows-1257",
        "latin2" => "iso-8859-2",
        "greek" => "iso-8859-7",
        "hebrew" => "iso-8859-8",
        "latin5" => "windows-1254",
        "koi8r" => "koi8-r",
        "koi8u" => "koi8-u",
        "sjis" | "cp932" => "shift_jis",
        "ujis" | "eucjpms" => "euc-jp",
        "euckr" => "euc-kr",
        "gb2312" | "gbk" => "gbk",
        "gb18030" => "gb18030",
        "big5" => "big5",
        other => other,
    }
}

/// Whether `us` has no more fractional digits than `fsp`.
fn fraction(us: i64, fsp: u8) -> Result<(), ()> {
    let unit = 10i64.pow(6u32.saturating_sub(fsp as u32));
    if us.rem_euclid(unit) == 0 {
        Ok(())
    } else {
        Err(())
    }
}

fn shown_datetime(us: i64) -> String {
    let mut s = String::new();
    temporal::write_datetime(&mut s, temporal::us_to_datetime(us));
    s
}

fn shown_text(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((at, _)) => format!("{:?}...", &s[..at]),
        None => format!("{s:?}"),
    }
}

/// What every column of a table accepts, to check the values a plugin wrote.
pub struct Checks(Vec<ColumnCheck>);

impl Checks {
    pub fn of(columns: &[crate::event::ColumnDef]) -> Self {
        Checks(columns.iter().map(ColumnCheck::of).collect())
    }

    /// `Err` naming the column when column `j` cannot hold `v` exactly.
    pub fn check(&self, j: usize, v: &Value) -> Result<(), String> {
        match self.0.get(j) {
            Some(c) => c.check(v).map_err(|m| format!("column `{}`: {m}", c.name)),
            None => Ok(()),
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

    fn col(
        name: &str,
        ty: LogicalType,
        column_type: &str,
        charset: Option<&str>,
    ) -> crate::event::ColumnDef {
        crate::event::ColumnDef {
            name: name.into(),
            logical: ty,
            column_type: column_type.into(),
            nullable: false,
            charset: charset.map(str::to_string),
            collation: None,
        }
    }

    #[test]
    fn checks_name_the_column() {
        let checks = Checks::of(&[
            col(
                "id",
                LogicalType::Int {
                    bytes: 4,
                    unsigned: false,
                },
                "int(11)",
                None,
            ),
            col("code", LogicalType::Text, "varchar(2)", Some("utf8mb4")),
        ]);
        assert!(checks.check(1, &Value::Text("ab".into())).is_ok());
        let e = checks.check(1, &Value::Text("abc".into())).unwrap_err();
        assert!(e.contains("`code`") && e.contains("varchar(2)"), "{e}");
        let e = checks.check(0, &Value::Null).unwrap_err();
        assert!(e.contains("`id`") && e.contains("NOT NULL"), "{e}");
    }

    #[test]
    fn values_the_target_would_change_or_refuse() {
        let bad = |ty, ct: &str, cs: Option<&str>, v: Value| {
            Checks::of(&[col("c", ty, ct, cs)]).check(0, &v).is_err()
        };
        assert!(bad(
            LogicalType::Text,
            "varchar(10)",
            Some("latin1"),
            Value::Text("🎉".into())
        ));
        assert!(!bad(
            LogicalType::Text,
            "varchar(10)",
            Some("latin1"),
            Value::Text("café €".into())
        ));
        assert!(bad(
            LogicalType::Text,
            "varchar(10)",
            Some("utf8mb3"),
            Value::Text("🎉".into())
        ));
        assert!(!bad(
            LogicalType::Text,
            "varchar(10)",
            Some("utf8mb4"),
            Value::Text("🎉".into())
        ));
        assert!(bad(
            LogicalType::Double,
            "double",
            None,
            Value::Float64(f64::NAN)
        ));
        assert!(bad(
            LogicalType::Double,
            "double",
            None,
            Value::Float64(f64::INFINITY)
        ));
        assert!(bad(
            LogicalType::Float,
            "float",
            None,
            Value::Float64(1e300)
        ));
        assert!(bad(
            LogicalType::Int {
                bytes: 3,
                unsigned: false
            },
            "mediumint(9)",
            None,
            Value::Int(9_000_000)
        ));
        assert!(bad(
            LogicalType::Bit { width: 3 },
            "bit(3)",
            None,
            Value::Uint(8)
        ));
        assert!(bad(LogicalType::Year, "year(4)", None, Value::Int(1800)));
        assert!(bad(
            LogicalType::Decimal {
                precision: 5,
                scale: 2
            },
            "decimal(5,2)",
            None,
            Value::Decimal("1234.5".into())
        ));
        assert!(!bad(
            LogicalType::Decimal {
                precision: 5,
                scale: 2
            },
            "decimal(5,2)",
            None,
            Value::Decimal("-123.45".into())
        ));
        assert!(bad(
            LogicalType::DateTime { fsp: 0 },
            "datetime",
            None,
            Value::Timestamp(1_500_000)
        ));
        assert!(!bad(
            LogicalType::DateTime { fsp: 1 },
            "datetime(1)",
            None,
            Value::Timestamp(1_500_000)
        ));
        assert!(bad(
            LogicalType::Time { fsp: 0 },
            "time",
            None,
            Value::Time(839 * 3_600_000_000)
        ));
        assert!(bad(
            LogicalType::Enum,
            "enum('a','b')",
            None,
            Value::Text("c".into())
        ));
        assert!(!bad(
            LogicalType::Set,
            "set('a','b')",
            None,
            Value::Text("a,b".into())
        ));
        assert!(bad(
            LogicalType::Json,
            "json",
            None,
            Value::Text("{nope".into())
        ));
    }
}
