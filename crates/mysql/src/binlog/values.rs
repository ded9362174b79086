//! Binlog row values made identical to what SELECT returns for the same
//! stored value, so that the snapshot and CDC paths produce the same Arrow
//! data (and the same SQL on the way out).
//!
//! What the row events carry differs from the binary protocol in ways that
//! were probed against MariaDB 10.11 with mysql_common 0.37:
//! - integers arrive without their declared signedness (MEDIUMINT -1 as 16777215,
//!   TINYINT UNSIGNED 255 may come as -1): re-read at the declared width;
//! - YEAR arrives as text, and the zero year as "1900";
//! - TIMESTAMP arrives as the text "secs.micros" (UTC), the zero timestamp as "0";
//! - ENUM arrives as its index and SET as a bitmask;
//! - BINARY(n), UUID and INET6 lose their trailing 0x00 bytes;
//! - text is in the column's character set, not the connection's.

use mysql_async::Value;

use crate::event::ColumnDef;
use crate::temporal;
use crate::types::LogicalType;

/// Converts one binlog value of `col` into its SELECT form.
pub fn normalize(col: &ColumnDef, v: Value) -> Result<Value, String> {
    if v == Value::NULL {
        return Ok(v);
    }
    match col.logical {
        LogicalType::Int { bytes, unsigned } => reinterpret_int(&v, bytes, unsigned),
        LogicalType::Year => match &v {
            Value::Bytes(b) if b.as_slice() == b"1900" => Ok(Value::Int(0)),
            Value::Bytes(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .map(Value::Int)
                .ok_or_else(|| format!("YEAR value {:?}", String::from_utf8_lossy(b))),
            Value::Int(1900) | Value::UInt(1900) => Ok(Value::Int(0)),
            _ => Ok(v),
        },
        LogicalType::Timestamp { .. } => match &v {
            Value::Bytes(b) => timestamp_from_text(b),
            _ => Ok(v),
        },
        LogicalType::Enum => {
            let idx = match v {
                Value::Int(i) => i as usize,
                Value::UInt(u) => u as usize,
                Value::Bytes(ref b) => b
                    .iter()
                    .rev()
                    .fold(0usize, |acc, x| (acc << 8) | *x as usize),
                ref other => return Err(format!("ENUM value {other:?}")),
            };
            let values = crate::types::members(&col.column_type);
            match idx {
                0 => Ok(Value::Bytes(Vec::new())),
                i if i <= values.len() => Ok(Value::Bytes(values[i - 1].clone().into_bytes())),
                i => Err(format!("ENUM index {i} beyond its {} values", values.len())),
            }
        }
        LogicalType::Set => {
            let mask: u64 = match v {
                Value::Int(i) => i as u64,
                Value::UInt(u) => u,
                Value::Bytes(ref b) => b.iter().rev().fold(0u64, |acc, x| (acc << 8) | *x as u64),
                ref other => return Err(format!("SET value {other:?}")),
            };
            let values = crate::types::members(&col.column_type);
            let chosen: Vec<&str> = values
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1u64 << i) != 0)
                .map(|(_, s)| s.as_str())
                .collect();
            Ok(Value::Bytes(chosen.join(",").into_bytes()))
        }
        LogicalType::Uuid => {
            let b = padded(bytes_of(v)?, 16);
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Ok(Value::Bytes(
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                )
                .into_bytes(),
            ))
        }
        LogicalType::Inet6 => {
            let b = padded(bytes_of(v)?, 16);
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            Ok(Value::Bytes(
                std::net::Ipv6Addr::from(a).to_string().into_bytes(),
            ))
        }
        LogicalType::Inet4 => {
            let b = padded(bytes_of(v)?, 4);
            Ok(Value::Bytes(
                std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])
                    .to_string()
                    .into_bytes(),
            ))
        }
        LogicalType::Text | LogicalType::Json => {
            let b = bytes_of(v)?;
            to_utf8(col.charset.as_deref(), b).map(Value::Bytes)
        }
        LogicalType::Bytes => match binary_width(&col.column_type) {
            Some(n) => Ok(Value::Bytes(padded(bytes_of(v)?, n))),
            None => Ok(v),
        },
        _ => Ok(v),
    }
}

/// `n` of a `binary(n)` column (the binlog drops its trailing 0x00 bytes).
pub(crate) fn binary_width(column_type: &str) -> Option<usize> {
    let head = column_type.get(.."binary(".len())?;
    if !head.eq_ignore_ascii_case("binary(") {
        return None;
    }
    Some(
        column_type["binary(".len()..]
            .trim_end_matches(')')
            .parse::<usize>()
            .unwrap_or(0),
    )
}

fn bytes_of(v: Value) -> Result<Vec<u8>, String> {
    match v {
        Value::Bytes(b) => Ok(b),
        other => Err(format!("expected bytes, got {other:?}")),
    }
}

fn padded(mut b: Vec<u8>, n: usize) -> Vec<u8> {
    if b.len() < n {
        b.resize(n, 0);
    }
    b
}

/// The value re-read as a `bytes`-wide integer of the declared signedness.
fn reinterpret_int(v: &Value, bytes: u8, unsigned: bool) -> Result<Value, String> {
    let raw: u64 = match *v {
        Value::Int(i) => i as u64,
        Value::UInt(u) => u,
        ref other => return Err(format!("expected an integer, got {other:?}")),
    };
    Ok(declared_int(raw, bytes, unsigned))
}

/// The bits of a binlog integer as a `bytes`-wide integer of the declared signedness.
pub(crate) fn declared_int(raw: u64, bytes: u8, unsigned: bool) -> Value {
    let bits = bytes as u32 * 8;
    if bits >= 64 {
        return if unsigned {
            Value::UInt(raw)
        } else {
            Value::Int(raw as i64)
        };
    }
    let masked = raw & ((1u64 << bits) - 1);
    if unsigned {
        Value::UInt(masked)
    } else {
        let shift = 64 - bits;
        Value::Int(((masked << shift) as i64) >> shift)
    }
}

/// "secs[.micros]" since the epoch (UTC) into calendar parts; 0 is the zero timestamp.
fn timestamp_from_text(b: &[u8]) -> Result<Value, String> {
    let s = std::str::from_utf8(b).map_err(|_| "TIMESTAMP is not ASCII".to_string())?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| format!("TIMESTAMP value {s:?}"))?;
    let mut micros: i64 = 0;
    if !frac.is_empty() {
        let digits = format!("{frac:0<6}");
        micros = digits[..6]
            .parse()
            .map_err(|_| format!("TIMESTAMP value {s:?}"))?;
    }
    Ok(timestamp(secs, micros))
}

/// A TIMESTAMP's seconds and microseconds since the epoch (UTC) as calendar
/// parts; 0 is the zero timestamp.
pub(crate) fn timestamp(secs: i64, micros: i64) -> Value {
    if secs == 0 && micros == 0 {
        return Value::Date(0, 0, 0, 0, 0, 0, 0);
    }
    let p = temporal::us_to_datetime(secs * 1_000_000 + micros);
    Value::Date(p.year, p.month, p.day, p.hour, p.minute, p.second, p.micro)
}

/// Text in a column's character set to UTF-8.
fn to_utf8(charset: Option<&str>, b: Vec<u8>) -> Result<Vec<u8>, String> {
    match charset.unwrap_or("utf8mb4") {
        "utf8mb4" | "utf8mb3" | "utf8" | "ascii" => Ok(b),
        // MySQL's latin1 is Windows-1252 with the five undefined bytes mapped
        // to the C1 controls, exactly as the WHATWG decoder does. Without
        // BOM sniffing: `decode` would read text starting with 0xFF 0xFE
        // ("ÿþ") as UTF-16.
        "latin1" => {
            let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&b);
            Ok(s.into_owned().into_bytes())
        }
        other => Err(format!(
            "CDC of text in character set `{other}` is not supported yet; convert the column to utf8mb4 or exclude the table"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: LogicalType, column_type: &str) -> ColumnDef {
        ColumnDef {
            name: "c".into(),
            logical: ty,
            column_type: column_type.into(),
            nullable: true,
            charset: Some("latin1".into()),
            collation: None,
        }
    }

    #[test]
    fn integers_take_their_declared_sign() {
        let mi = col(
            LogicalType::Int {
                bytes: 3,
                unsigned: false,
            },
            "mediumint(9)",
        );
        assert_eq!(
            normalize(&mi, Value::Int(16777215)).expect("a valid value"),
            Value::Int(-1)
        );
        assert_eq!(
            normalize(&mi, Value::Int(8388608)).expect("a valid value"),
            Value::Int(-8388608)
        );
        let tu = col(
            LogicalType::Int {
                bytes: 1,
                unsigned: true,
            },
            "tinyint(3) unsigned",
        );
        assert_eq!(
            normalize(&tu, Value::Int(-1)).expect("a valid value"),
            Value::UInt(255)
        );
    }

    #[test]
    fn enum_set_year_timestamp_binary() {
        let e = col(LogicalType::Enum, "enum('a','b''q','c d')");
        assert_eq!(
            normalize(&e, Value::Int(2)).expect("a valid value"),
            Value::Bytes(b"b'q".to_vec())
        );
        assert_eq!(
            normalize(&e, Value::Int(0)).expect("a valid value"),
            Value::Bytes(vec![])
        );
        let s = col(LogicalType::Set, "set('x','y','z')");
        assert_eq!(
            normalize(&s, Value::Bytes(vec![5])).expect("a valid value"),
            Value::Bytes(b"x,z".to_vec())
        );
        let y = col(LogicalType::Year, "year(4)");
        assert_eq!(
            normalize(&y, Value::Bytes(b"1900".to_vec())).expect("a valid value"),
            Value::Int(0)
        );
        let ts = col(LogicalType::Timestamp { fsp: 6 }, "timestamp(6)");
        assert_eq!(
            normalize(&ts, Value::Bytes(b"1704164645.123456".to_vec())).expect("a valid value"),
            Value::Date(2024, 1, 2, 3, 4, 5, 123456)
        );
        assert_eq!(
            normalize(&ts, Value::Bytes(b"0".to_vec())).expect("a valid value"),
            Value::Date(0, 0, 0, 0, 0, 0, 0)
        );
        let b = col(LogicalType::Bytes, "binary(4)");
        assert_eq!(
            normalize(&b, Value::Bytes(vec![1])).expect("a valid value"),
            Value::Bytes(vec![1, 0, 0, 0])
        );
        let l = col(LogicalType::Text, "varchar(10)");
        assert_eq!(
            normalize(&l, Value::Bytes(vec![0x63, 0xe9, 0x80])).expect("a valid value"),
            Value::Bytes("cé€".as_bytes().to_vec())
        );
        // Not a UTF-16 byte order mark: latin1 "ÿþý".
        assert_eq!(
            normalize(&l, Value::Bytes(vec![0xff, 0xfe, 0xfd])).expect("a valid value"),
            Value::Bytes("ÿþý".as_bytes().to_vec())
        );
    }
}
