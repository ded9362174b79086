//! MySQL column types as PostgreSQL types (docs/pipeline-yaml.md, "The
//! PostgreSQL sink"), and values in PostgreSQL's binary format: the same
//! bytes are a field of `COPY ... (FORMAT binary)` and a bound parameter
//! of the change statements, so the load and the changes cannot disagree.
//!
//! Binary rather than text: FLOAT and DOUBLE travel as their bits, and
//! the server parses nothing.

use std::net::IpAddr;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, DurationMicrosecondType, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::Array;
use arrow_schema::DataType;
use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use sluice_core::event::ColumnDef;
use sluice_core::temporal::{DAY0, DAY0_US};
use sluice_core::types::LogicalType;

/// `zero_dates:` what happens to MySQL's zero and partial-zero dates
/// (`0000-00-00`, `2024-00-15`), which PostgreSQL cannot store.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ZeroDates {
    /// Stop, naming the table, column and row.
    #[default]
    Fail,
    /// Store NULL (date and time columns are created nullable).
    Null,
}

/// `json:` the PostgreSQL type of JSON columns.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum JsonType {
    /// `json`: the document's text exactly as the source has it (key order,
    /// duplicate keys and spacing kept).
    #[default]
    Json,
    /// `jsonb`: parsed; keys sorted, the last of duplicate keys kept,
    /// spacing normalised. Indexable.
    Jsonb,
}

/// A column's PostgreSQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Int2,
    Int4,
    Int8,
    Numeric { precision: u8, scale: u8 },
    Float4,
    Float8,
    Bit(u8),
    Date,
    Timestamp(u8),
    Timestamptz(u8),
    Interval(u8),
    Varchar(u32),
    Text,
    Json,
    Jsonb,
    Uuid,
    Inet,
    Bytea,
}

impl PgType {
    /// The type of a source column.
    pub fn of(col: &ColumnDef, json: JsonType) -> PgType {
        match col.logical {
            // Each as the narrowest PostgreSQL integer that holds every value.
            LogicalType::Int { bytes, unsigned } => match (bytes, unsigned) {
                (1, _) | (2, false) => PgType::Int2,
                (2, true) | (3, _) | (4, false) => PgType::Int4,
                (4, true) | (8, false) => PgType::Int8,
                _ => PgType::Numeric {
                    precision: 20,
                    scale: 0,
                },
            },
            LogicalType::Decimal { precision, scale } => PgType::Numeric { precision, scale },
            LogicalType::Float => PgType::Float4,
            LogicalType::Double => PgType::Float8,
            LogicalType::Bit { width } => PgType::Bit(width),
            LogicalType::Year => PgType::Int2,
            LogicalType::Date => PgType::Date,
            LogicalType::DateTime { fsp } => PgType::Timestamp(fsp),
            LogicalType::Timestamp { fsp } => PgType::Timestamptz(fsp),
            LogicalType::Time { fsp } => PgType::Interval(fsp),
            LogicalType::Text => match declared_length(&col.column_type) {
                Some(n) if n > 0 => PgType::Varchar(n),
                _ => PgType::Text,
            },
            LogicalType::Enum | LogicalType::Set => PgType::Text,
            LogicalType::Json => match json {
                JsonType::Json => PgType::Json,
                JsonType::Jsonb => PgType::Jsonb,
            },
            LogicalType::Uuid => PgType::Uuid,
            LogicalType::Inet4 | LogicalType::Inet6 => PgType::Inet,
            LogicalType::Bytes | LogicalType::Geometry => PgType::Bytea,
        }
    }

    /// As a column definition spells it.
    pub fn sql(&self) -> String {
        match *self {
            PgType::Int2 => "smallint".into(),
            PgType::Int4 => "integer".into(),
            PgType::Int8 => "bigint".into(),
            PgType::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            PgType::Float4 => "real".into(),
            PgType::Float8 => "double precision".into(),
            PgType::Bit(n) => format!("bit({n})"),
            PgType::Date => "date".into(),
            PgType::Timestamp(f) => format!("timestamp({f}) without time zone"),
            PgType::Timestamptz(f) => format!("timestamp({f}) with time zone"),
            PgType::Interval(f) => format!("interval({f})"),
            PgType::Varchar(n) => format!("varchar({n})"),
            PgType::Text => "text".into(),
            PgType::Json => "json".into(),
            PgType::Jsonb => "jsonb".into(),
            PgType::Uuid => "uuid".into(),
            PgType::Inet => "inet".into(),
            PgType::Bytea => "bytea".into(),
        }
    }

    /// Whether values can be a zero date.
    pub fn is_dated(&self) -> bool {
        matches!(
            self,
            PgType::Date | PgType::Timestamp(_) | PgType::Timestamptz(_)
        )
    }
}

/// `n` of `char(n)` / `varchar(n)`; `None` for the TEXT types.
fn declared_length(column_type: &str) -> Option<u32> {
    let lower = column_type.to_ascii_lowercase();
    if !(lower.starts_with("char") || lower.starts_with("varchar")) {
        return None;
    }
    let (_, rest) = lower.split_once('(')?;
    rest.split_once(')')?.0.trim().parse().ok()
}

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i64 = 10_957;
pub const PG_EPOCH_US: i64 = PG_EPOCH_DAYS * 86_400_000_000;

/// Writes one column's values in PostgreSQL's binary format.
#[derive(Debug, Clone)]
pub struct Codec {
    pub ty: PgType,
    zero_dates: ZeroDates,
}

/// What [`Codec::write`] wrote.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Value,
    Null,
}

impl Codec {
    pub fn new(ty: PgType, zero_dates: ZeroDates) -> Self {
        Codec { ty, zero_dates }
    }

    /// Appends the binary form of `array[row]` to `out` (nothing for a
    /// NULL); an error says what is wrong with the value.
    pub fn write(
        &self,
        array: &dyn Array,
        row: usize,
        out: &mut BytesMut,
    ) -> Result<Written, String> {
        if array.is_null(row) {
            return Ok(Written::Null);
        }
        match self.ty {
            PgType::Int2 => out
                .put_i16(i16::try_from(int_at(array, row)?).map_err(|_| "out of smallint range")?),
            PgType::Int4 => {
                out.put_i32(i32::try_from(int_at(array, row)?).map_err(|_| "out of integer range")?)
            }
            PgType::Int8 => {
                out.put_i64(i64::try_from(int_at(array, row)?).map_err(|_| "out of bigint range")?)
            }
            PgType::Numeric { .. } => {
                let (digits, scale) = decimal_at(array, row)?;
                put_numeric(out, &digits, scale)?;
            }
            PgType::Float4 => out.put_u32(prim::<Float32Type>(array, row)?.to_bits()),
            PgType::Float8 => out.put_u64(prim::<Float64Type>(array, row)?.to_bits()),
            PgType::Bit(n) => {
                let v = prim::<UInt64Type>(array, row)?;
                let n = n.clamp(1, 64) as u32;
                let bits = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                out.put_i32(n as i32);
                let bytes = (bits << (64 - n)).to_be_bytes();
                out.put_slice(&bytes[..n.div_ceil(8) as usize]);
            }
            PgType::Date => {
                let d = prim::<Date32Type>(array, row)?;
                if d < DAY0 {
                    return self.zero_date();
                }
                out.put_i32((d as i64 - PG_EPOCH_DAYS) as i32);
            }
            PgType::Timestamp(_) | PgType::Timestamptz(_) => {
                let us = prim::<TimestampMicrosecondType>(array, row)?;
                if us < DAY0_US {
                    return self.zero_date();
                }
                out.put_i64(us - PG_EPOCH_US);
            }
            PgType::Interval(_) => {
                out.put_i64(prim::<DurationMicrosecondType>(array, row)?);
                out.put_i32(0); // days
                out.put_i32(0); // months
            }
            PgType::Varchar(_) | PgType::Text | PgType::Json | PgType::Jsonb => {
                let s = text_at(array, row)?;
                if s.as_bytes().contains(&0) {
                    return Err(
                        "the text holds the character U+0000, which PostgreSQL text cannot store"
                            .into(),
                    );
                }
                if self.ty == PgType::Jsonb {
                    out.put_u8(1); // jsonb's binary format version
                }
                out.put_slice(s.as_bytes());
            }
            PgType::Uuid => {
                let s = text_at(array, row)?;
                out.put_slice(&parse_uuid(s).ok_or_else(|| format!("not a UUID: {s:?}"))?);
            }
            PgType::Inet => {
                let s = text_at(array, row)?;
                let ip: IpAddr = s.parse().map_err(|_| format!("not an IP address: {s:?}"))?;
                match ip {
                    IpAddr::V4(a) => {
                        out.put_slice(&[2, 32, 0, 4]);
                        out.put_slice(&a.octets());
                    }
                    IpAddr::V6(a) => {
                        out.put_slice(&[3, 128, 0, 16]);
                        out.put_slice(&a.octets());
                    }
                }
            }
            PgType::Bytea => match array.data_type() {
                DataType::Binary => out.put_slice(array.as_binary::<i32>().value(row)),
                DataType::Utf8 => out.put_slice(array.as_string::<i32>().value(row).as_bytes()),
                other => return Err(format!("bytes expected, the batch has {other}")),
            },
        }
        Ok(Written::Value)
    }

    fn zero_date(&self) -> Result<Written, String> {
        match self.zero_dates {
            ZeroDates::Null => Ok(Written::Null),
            ZeroDates::Fail => Err(
                "a zero or partial-zero date (such as 0000-00-00), which PostgreSQL cannot store"
                    .into(),
            ),
        }
    }
}

fn prim<T: arrow_array::ArrowPrimitiveType>(
    array: &dyn Array,
    row: usize,
) -> Result<T::Native, String> {
    array
        .as_primitive_opt::<T>()
        .map(|a| a.value(row))
        .ok_or_else(|| format!("unexpected Arrow type {}", array.data_type()))
}

/// An integer column's value, whatever its Arrow width.
fn int_at(array: &dyn Array, row: usize) -> Result<i128, String> {
    Ok(match array.data_type() {
        DataType::Int8 => prim::<Int8Type>(array, row)? as i128,
        DataType::Int16 => prim::<Int16Type>(array, row)? as i128,
        DataType::Int32 => prim::<Int32Type>(array, row)? as i128,
        DataType::Int64 => prim::<Int64Type>(array, row)? as i128,
        DataType::UInt8 => prim::<UInt8Type>(array, row)? as i128,
        DataType::UInt16 => prim::<UInt16Type>(array, row)? as i128,
        DataType::UInt32 => prim::<UInt32Type>(array, row)? as i128,
        DataType::UInt64 => prim::<UInt64Type>(array, row)? as i128,
        other => return Err(format!("an integer expected, the batch has {other}")),
    })
}

/// A numeric value as its unscaled digits (with a leading `-`) and scale.
fn decimal_at(array: &dyn Array, row: usize) -> Result<(String, u32), String> {
    Ok(match array.data_type() {
        DataType::Decimal128(_, s) => (
            prim::<Decimal128Type>(array, row)?.to_string(),
            (*s).max(0) as u32,
        ),
        DataType::Decimal256(_, s) => (
            prim::<Decimal256Type>(array, row)?.to_string(),
            (*s).max(0) as u32,
        ),
        _ => (int_at(array, row)?.to_string(), 0),
    })
}

fn text_at(array: &dyn Array, row: usize) -> Result<&str, String> {
    array
        .as_string_opt::<i32>()
        .map(|a| a.value(row))
        .ok_or_else(|| format!("text expected, the batch has {}", array.data_type()))
}

/// PostgreSQL's binary numeric: base-10000 digit groups around the
/// decimal point, the weight of the first, the sign and the display scale.
fn put_numeric(out: &mut BytesMut, digits: &str, scale: u32) -> Result<(), String> {
    let (negative, d) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits),
    };
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("not a decimal: {digits:?}"));
    }
    let scale = scale as usize;
    let (int, frac) = if d.len() > scale {
        (&d[..d.len() - scale], d[d.len() - scale..].to_string())
    } else {
        ("", format!("{}{d}", "0".repeat(scale - d.len())))
    };
    let group = |s: &str| -> i16 { s.bytes().fold(0i16, |acc, b| acc * 10 + (b - b'0') as i16) };
    let mut groups: Vec<i16> = Vec::new();
    let int_pad = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    for chunk in int_pad.as_bytes().chunks(4) {
        groups.push(group(std::str::from_utf8(chunk).unwrap_or("0")));
    }
    let int_groups = groups.len() as i32;
    let frac_pad = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    for chunk in frac_pad.as_bytes().chunks(4) {
        groups.push(group(std::str::from_utf8(chunk).unwrap_or("0")));
    }
    let mut weight = int_groups - 1;
    let lead = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..lead);
    weight -= lead as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(weight as i16);
    out.put_u16(if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    });
    out.put_u16(scale as u16);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

/// The 16 bytes of a UUID in its canonical text form.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(digits: &str, scale: u32) -> Vec<i16> {
        let mut b = BytesMut::new();
        put_numeric(&mut b, digits, scale).unwrap();
        b.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_are_base_10000_groups_around_the_point() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(numeric("1230", 2), vec![2, 0, 0, 2, 12, 3000]);
        assert_eq!(numeric("-5", 3), vec![1, -1, 0x4000, 3, 50]);
        assert_eq!(numeric("0", 2), vec![0, 0, 0, 2]);
        assert_eq!(numeric("100000000", 0), vec![1, 2, 0, 0, 1]);
        assert_eq!(
            numeric("18446744073709551615", 0),
            vec![5, 4, 0, 0, 1844, 6744, 737, 955, 1615]
        );
        assert!(put_numeric(&mut BytesMut::new(), "1e5", 0).is_err());
    }

    #[test]
    fn char_lengths_come_from_the_declaration() {
        assert_eq!(declared_length("varchar(20)"), Some(20));
        assert_eq!(declared_length("char(3)"), Some(3));
        assert_eq!(declared_length("text"), None);
        assert_eq!(declared_length("tinytext"), None);
    }

    #[test]
    fn uuids_parse_from_canonical_text() {
        let u = parse_uuid("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(u[0], 0x01);
        assert_eq!(u[15], 0xef);
        assert!(parse_uuid("nope").is_none());
    }
}
