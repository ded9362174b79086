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

use mysql_async::binlog::events::TableMapEvent;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value;
use mysql_common::binlog::misc::{my_packed_time_make, time_from_packed, TIMEF_INT_OFS, TIMEF_OFS};
use mysql_common::io::ParseBuf;

/// One row change: the images before and after, in table column order.
pub type RowImages = (Option<Vec<Value>>, Option<Vec<Value>>);

/// How to decode one column of a table map.
struct Column<'a> {
    ty: ColumnType,
    meta: &'a [u8],
}

/// Decodes every row of a rows event. `before` and `after` say which
/// columns each image carries (`None`: the event has no such image).
pub fn decode(
    tme: &TableMapEvent<'_>,
    data: &[u8],
    before: Option<&[bool]>,
    after: Option<&[bool]>,
) -> Result<Vec<RowImages>, String> {
    let n = tme.columns_count() as usize;
    let columns = (0..n)
        .map(|i| {
            let ty = tme
                .get_column_type(i)
                .map_err(|e| format!("column {i}: {e}"))?
                .ok_or_else(|| format!("column {i} has no type in the table map"))?;
            Ok(Column {
                ty,
                meta: tme.get_column_metadata(i).unwrap_or(&[]),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut buf = ParseBuf(data);
    let mut rows = Vec::new();
    while !buf.is_empty() {
        let b = before
            .map(|present| image(&columns, present, &mut buf))
            .transpose()?;
        let a = after
            .map(|present| image(&columns, present, &mut buf))
            .transpose()?;
        rows.push((b, a));
    }
    Ok(rows)
}

/// One row image: a null bitmap over the present columns, then their values.
fn image<'a>(
    columns: &[Column<'a>],
    present: &[bool],
    buf: &mut ParseBuf<'a>,
) -> Result<Vec<Value>, String> {
    let count = present.iter().filter(|p| **p).count();
    let nulls = buf
        .checked_eat(count.div_ceil(8))
        .ok_or("the row ends inside its null bitmap")?;
    let mut values = Vec::with_capacity(count);
    let mut k = 0;
    for (i, c) in columns.iter().enumerate() {
        if !present.get(i).copied().unwrap_or(false) {
            continue;
        }
        let null = nulls[k / 8] & (1 << (k % 8)) != 0;
        k += 1;
        if null {
            values.push(Value::NULL);
            continue;
        }
        let v = value(c, buf).map_err(|e| format!("column {}: {e}", i + 1))?;
        values.push(v);
    }
    Ok(values)
}

fn value<'a>(c: &Column<'a>, buf: &mut ParseBuf<'a>) -> Result<Value, String> {
    if c.ty == ColumnType::MYSQL_TYPE_TIME2 {
        let dec = c.meta.first().copied().unwrap_or(0);
        return time2(buf, dec);
    }
    let v: BinlogValue<'_> = buf
        .parse((c.ty, c.meta, false, false))
        .map_err(|e| format!("cannot decode a {:?} value: {e}", c.ty))?;
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
