//! Where the bytes of a rows event become row images.
//!
//! The layout of the rows area (null bitmaps, which columns each image
//! carries, before and after images of updates) is walked here; each
//! column value is decoded by `mysql_common`, except where its decoder is
//! wrong:
//! - TIME(1) and TIME(2) with a negative value and a fraction: mysql_common
//!   0.37 keeps the fraction in a `u32`, so `frac -= 0x100` wraps (a panic in
//!   debug builds, a value hours off in release; `-00:00:00.01` came out as
//!   `625:04:19.767216`). MySQL's own `my_time_packed_from_binary` keeps it
//!   in a signed int. The fix has been offered upstream; until it is
//!   released, sluice decodes TIME2 itself.

use std::sync::Arc;

use mysql_async::binlog::events::TableMapEvent;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value;
use mysql_common::binlog::misc::{my_packed_time_make, time_from_packed, TIMEF_INT_OFS, TIMEF_OFS};
use mysql_common::io::ParseBuf;

use super::values;
use crate::decode::{Cell, RowDecoder, RowWriter};
use crate::event::ColumnDef;
use crate::types::LogicalType;

/// How to decode one column of a table map; worked out once per map.
#[derive(Debug)]
pub struct ColumnSpec {
    ty: ColumnType,
    meta: Box<[u8]>,
}

/// Every column's decoding from a table map.
pub fn column_specs(tme: &TableMapEvent<'_>) -> Result<Arc<[ColumnSpec]>, String> {
    (0..tme.columns_count() as usize)
        .map(|i| {
            let ty = tme
                .get_column_type(i)
                .map_err(|e| format!("column {i}: {e}"))?
                .ok_or_else(|| format!("column {i} has no type in the table map"))?;
            Ok(ColumnSpec {
                ty,
                meta: tme.get_column_metadata(i).unwrap_or(&[]).into(),
            })
        })
        .collect()
}

/// The rows of one rows event, still in the binlog's encoding: they are
/// decoded once the table's definition is known, straight into the
/// columns of a batch, without an owned value per column.
pub struct RawRows {
    data: Vec<u8>,
    columns: Arc<[ColumnSpec]>,
    /// Which images each row has (every column in each: the reader refuses
    /// partial images).
    before: bool,
    after: bool,
    /// Where the next row starts.
    at: usize,
}

impl std::fmt::Debug for RawRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRows")
            .field("bytes", &self.data.len())
            .field("columns", &self.columns.len())
            .finish()
    }
}

impl RawRows {
    pub fn new(data: Vec<u8>, columns: Arc<[ColumnSpec]>, before: bool, after: bool) -> Self {
        RawRows {
            data,
            columns,
            before,
            after,
            at: 0,
        }
    }

    /// Whether every row has been decoded.
    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    /// Columns per row in the binlog (generated ones included).
    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    /// Which images (before, after) the rows carry.
    pub fn images(&self) -> (bool, bool) {
        (self.before, self.after)
    }

    /// Decodes the next row into the decoders of its images. `defs` is the
    /// table's columns; `keep` the binlog's columns it has, increasing
    /// (all when `None`).
    pub fn next_into(
        &mut self,
        defs: &[ColumnDef],
        keep: Option<&[usize]>,
        before: Option<&mut RowDecoder>,
        after: Option<&mut RowDecoder>,
    ) -> crate::Result<()> {
        let mut buf = ParseBuf(self.data.get(self.at..).unwrap_or_default());
        let start = buf.len();
        for (has, decoder) in [(self.before, before), (self.after, after)] {
            if !has {
                continue;
            }
            let Some(decoder) = decoder else {
                return Err(crate::Error::Internal(
                    "a rows event's image has no decoder".into(),
                ));
            };
            let columns = &self.columns;
            decoder.push_with(|w| image(columns, defs, keep, &mut buf, w))?;
        }
        self.at += start - buf.len();
        Ok(())
    }
}

/// One row image: a null bitmap over the columns, then their values.
fn image<'a>(
    columns: &[ColumnSpec],
    defs: &[ColumnDef],
    keep: Option<&[usize]>,
    buf: &mut ParseBuf<'a>,
    w: &mut RowWriter<'_>,
) -> Result<(), String> {
    let nulls = buf
        .checked_eat(columns.len().div_ceil(8))
        .ok_or("the row ends inside its null bitmap")?;
    let mut kept = 0;
    for (i, c) in columns.iter().enumerate() {
        let null = nulls[i / 8] & (1 << (i % 8)) != 0;
        let def = match keep {
            None => defs.get(i),
            Some(k) if k.get(kept) == Some(&i) => defs.get(kept),
            // Not in the table (a generated column): read past it.
            Some(_) => {
                if !null {
                    value(c, buf).map_err(|e| format!("column {}: {e}", i + 1))?;
                }
                continue;
            }
        };
        kept += 1;
        let Some(def) = def else {
            return Err(format!(
                "the row has more values than the table's {} columns",
                defs.len()
            ));
        };
        if null {
            w.push(Cell::Null)?;
            continue;
        }
        let cell = cell(c, def, buf).map_err(|e| format!("column {}: {e}", i + 1))?;
        w.push(cell)?;
    }
    Ok(())
}

/// One value in its SELECT form: read straight from the event where its
/// encoding is simple (integers, floats, text in UTF-8, bytes, TIMESTAMP),
/// else decoded by `mysql_common` and normalized.
fn cell<'a>(c: &ColumnSpec, def: &ColumnDef, buf: &mut ParseBuf<'a>) -> Result<Cell<'a>, String> {
    use ColumnType::*;
    let mut eat = |n: usize| {
        buf.checked_eat(n)
            .ok_or_else(|| format!("the row ends inside a {:?} value", c.ty))
    };
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |acc, x| (acc << 8) | *x as u64);
    // Text, bytes and the types MariaDB keeps as strings (UUID, INET6).
    let bytes_cell = |b: &'a [u8]| -> Result<Cell<'a>, String> {
        Ok(match def.logical {
            LogicalType::Text | LogicalType::Json if utf8(def) => Cell::Bytes(b),
            // ASCII is the same in latin1 and in UTF-8.
            LogicalType::Text if b.is_ascii() && def.charset.as_deref() == Some("latin1") => {
                Cell::Bytes(b)
            }
            LogicalType::Bytes => match values::binary_width(&def.column_type) {
                Some(n) => Cell::Padded(b, n),
                None => Cell::Bytes(b),
            },
            _ => Cell::Value(values::normalize(def, Value::Bytes(b.to_vec()))?),
        })
    };
    match (c.ty, def.logical) {
        (
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG,
            LogicalType::Int { bytes, unsigned },
        ) => {
            let width = match c.ty {
                MYSQL_TYPE_TINY => 1,
                MYSQL_TYPE_SHORT => 2,
                MYSQL_TYPE_INT24 => 3,
                MYSQL_TYPE_LONG => 4,
                _ => 8,
            };
            // Read signed, as the event's type says, then at the declared width and sign.
            let shift = 64 - 8 * width;
            let raw = ((le(eat(width)?) << shift) as i64 >> shift) as u64;
            return Ok(match values::declared_int(raw, bytes, unsigned) {
                Value::UInt(u) => Cell::UInt(u),
                Value::Int(i) => Cell::Int(i),
                v => Cell::Value(v),
            });
        }
        (MYSQL_TYPE_FLOAT, LogicalType::Float) => {
            return Ok(Cell::F32(f32::from_bits(le(eat(4)?) as u32)));
        }
        (MYSQL_TYPE_DOUBLE, LogicalType::Double) => {
            return Ok(Cell::F64(f64::from_bits(le(eat(8)?))));
        }
        (MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_STRING, _) => {
            let max = match (c.ty, c.meta.first(), c.meta.get(1)) {
                (MYSQL_TYPE_STRING, Some(&b0), Some(&b1)) if b0 >= 1 => {
                    let (b0, b1) = (b0 as usize, b1 as usize);
                    if b0 & 0x30 != 0x30 {
                        // A long CHAR: part of its length is in the type byte.
                        b1 | (((b0 & 0x30) ^ 0x30) << 4)
                    } else {
                        b1
                    }
                }
                (_, Some(&b0), Some(&b1)) => b0 as usize | (b1 as usize) << 8,
                _ => return Err(format!("{:?} without its length in the table map", c.ty)),
            };
            let n = le(eat(if max < 256 { 1 } else { 2 })?) as usize;
            return bytes_cell(eat(n)?);
        }
        (
            MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_BLOB,
            _,
        ) => {
            let width = c.meta.first().copied().unwrap_or(0) as usize;
            if (1..=4).contains(&width) {
                let n = le(eat(width)?) as usize;
                return bytes_cell(eat(n)?);
            }
        }
        (MYSQL_TYPE_TIMESTAMP2, LogicalType::Timestamp { .. }) => {
            let be = |b: &[u8]| b.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64);
            let secs = be(eat(4)?) as u32 as i32 as i64;
            let dec = c.meta.first().copied().unwrap_or(0);
            let frac_bytes = [0, 1, 1, 2, 2, 3, 3]
                .get(dec as usize)
                .copied()
                .unwrap_or(0);
            let shift = 64 - 8 * frac_bytes.max(1);
            let frac = (be(eat(frac_bytes)?) << shift) as i64 >> shift;
            let micros = match dec {
                1 | 2 => frac * 10_000,
                3 | 4 => frac * 100,
                5 | 6 => frac,
                _ => 0,
            };
            return Ok(Cell::Value(values::timestamp(secs, micros)));
        }
        _ => {}
    }
    let v = value(c, buf)?;
    Ok(Cell::Value(values::normalize(def, v)?))
}

/// Text in one of the character sets whose bytes are UTF-8 already.
fn utf8(def: &ColumnDef) -> bool {
    matches!(
        def.charset.as_deref().unwrap_or("utf8mb4"),
        "utf8mb4" | "utf8mb3" | "utf8" | "ascii"
    )
}

fn value<'a>(c: &ColumnSpec, buf: &mut ParseBuf<'a>) -> Result<Value, String> {
    if c.ty == ColumnType::MYSQL_TYPE_TIME2 {
        let dec = c.meta.first().copied().unwrap_or(0);
        return time2(buf, dec);
    }
    // Parsed from a copy of the cursor: the library wants the metadata to
    // live as long as the bytes.
    let rest: &[u8] = buf.0;
    let mut sub = ParseBuf(rest);
    let v: BinlogValue<'_> = sub
        .parse((c.ty, &c.meta[..], false, false))
        .map_err(|e| format!("cannot decode a {:?} value: {e}", c.ty))?;
    let used = rest.len() - sub.0.len();
    buf.checked_eat(used);
    Value::try_from(v).map_err(|e| e.to_string())
}
/// TIME2 (MySQL 5.6+ and MariaDB 10.1+ with `mysql56_temporal_format`):
/// a 3-byte offset integer part of hours, minutes and seconds, then a
/// fraction of 0 to 3 bytes; a negative value stores its integer part
/// rounded down and the fraction as a positive complement.
fn time2(buf: &mut ParseBuf<'_>, dec: u8) -> Result<Value, String> {
    let mut take = |n: usize| {
        buf.checked_eat(n)
            .map(|b| b.iter().fold(0i64, |acc, x| (acc << 8) | *x as i64))
            .ok_or_else(|| "the row ends inside a TIME value".to_string())
    };
    let packed = match dec {
        1 | 2 => {
            let mut int = take(3)? - TIMEF_INT_OFS;
            let mut frac = take(1)?;
            if int < 0 && frac > 0 {
                int += 1;
                frac -= 0x100;
            }
            my_packed_time_make(int, frac * 10_000)
        }
        3 | 4 => {
            let mut int = take(3)? - TIMEF_INT_OFS;
            let mut frac = take(2)?;
            if int < 0 && frac > 0 {
                int += 1;
                frac -= 0x10000;
            }
            my_packed_time_make(int, frac * 100)
        }
        5 | 6 => take(6)? - TIMEF_OFS,
        _ => my_packed_time_make(take(3)? - TIMEF_INT_OFS, 0),
    };
    Ok(time_from_packed(packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_time(bytes: &[u8], dec: u8) -> Value {
        time2(&mut ParseBuf(bytes), dec).expect("a whole TIME value")
    }

    /// The bytes MySQL's `my_time_packed_to_binary` writes.
    fn encode(neg: bool, h: i64, m: i64, s: i64, micros: i64, dec: u8) -> Vec<u8> {
        let hms = (h << 12) | (m << 6) | s;
        let mut packed = (hms << 24) + micros;
        if neg {
            packed = -packed;
        }
        let int = packed >> 24;
        let frac = packed % (1 << 24);
        let be = |v: i64, n: usize| {
            (0..n)
                .rev()
                .map(|i| (v >> (8 * i)) as u8)
                .collect::<Vec<u8>>()
        };
        // The integer part rounded down (an arithmetic shift), the
        // fraction truncated toward zero and stored as a two's complement.
        match dec {
            1 | 2 => [be(int + TIMEF_INT_OFS, 3), be((frac / 10_000) & 0xff, 1)].concat(),
            3 | 4 => [be(int + TIMEF_INT_OFS, 3), be((frac / 100) & 0xffff, 2)].concat(),
            5 | 6 => be(packed + TIMEF_OFS, 6),
            _ => be(int + TIMEF_INT_OFS, 3),
        }
    }

    #[test]
    fn negative_times_with_fractions_of_every_precision() {
        let cases = [
            (
                true,
                0,
                0,
                0,
                10_000,
                2,
                Value::Time(true, 0, 0, 0, 0, 10_000),
            ),
            (
                true,
                838,
                59,
                58,
                990_000,
                2,
                Value::Time(true, 34, 22, 59, 58, 990_000),
            ),
            (
                true,
                0,
                0,
                0,
                100_000,
                1,
                Value::Time(true, 0, 0, 0, 0, 100_000),
            ),
            (
                true,
                12,
                34,
                56,
                789_000,
                3,
                Value::Time(true, 0, 12, 34, 56, 789_000),
            ),
            (true, 0, 0, 0, 1, 6, Value::Time(true, 0, 0, 0, 0, 1)),
            (
                false,
                838,
                59,
                59,
                0,
                0,
                Value::Time(false, 34, 22, 59, 59, 0),
            ),
            (
                true,
                838,
                59,
                59,
                0,
                0,
                Value::Time(true, 34, 22, 59, 59, 0),
            ),
            (
                false,
                1,
                2,
                3,
                450_000,
                2,
                Value::Time(false, 0, 1, 2, 3, 450_000),
            ),
        ];
        for (neg, h, m, s, us, dec, want) in cases {
            let bytes = encode(neg, h, m, s, us, dec);
            assert_eq!(
                decode_time(&bytes, dec),
                want,
                "{neg} {h}:{m}:{s}.{us} TIME({dec})"
            );
        }
    }

    #[test]
    fn a_short_row_is_an_error_not_a_panic() {
        assert!(time2(&mut ParseBuf(&[0x80, 0x00]), 2).is_err());
    }
}
