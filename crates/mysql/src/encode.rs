//! Arrow values back into text the server turns into exactly the source's
//! stored value, for a connection set up by [`crate::connect`]
//! (`utf8mb4`, `time_zone = '+00:00'`, no `NO_BACKSLASH_ESCAPES`).
//!
//! Two forms: SQL literals for `INSERT ... VALUES`, and fields of the
//! tab-separated stream `LOAD DATA LOCAL INFILE` reads (where binary columns
//! travel as hex and BIT as a decimal number, converted by the statement's
//! `SET` clause; see `sinks::mysql::load_data`).

use std::fmt::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use crate::event::{quote_ident, ColumnDef, Equality, TableSchema};
use crate::temporal;
use crate::types::{push_decimal, LogicalType};
use crate::{Error, Result};

/// Which text form to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A SQL literal: `'text'`, `X'00ff'`, `NULL`.
    Literal,
    /// A LOAD DATA field (tab-separated, backslash-escaped): `text`, `00ff`, `\N`.
    LoadData,
}

/// Writes one column's values.
pub struct ColumnEncoder<'a> {
    array: &'a ArrayRef,
    ty: LogicalType,
}

impl<'a> ColumnEncoder<'a> {
    pub fn new(array: &'a ArrayRef, ty: LogicalType) -> Result<Self> {
        if !ty.holds(array.data_type()) {
            return Err(Error::Data(format!(
                "column of type {:?} cannot hold {:?} values",
                ty,
                array.data_type()
            )));
        }
        Ok(ColumnEncoder { array, ty })
    }

    pub fn write(&self, row: usize, out: &mut String) {
        self.write_as(row, out, Form::Literal)
    }

    pub fn write_as(&self, row: usize, out: &mut String, form: Form) {
        let a = self.array;
        let quote = |out: &mut String| {
            if form == Form::Literal {
                out.push('\'')
            }
        };
        if a.is_null(row) {
            out.push_str(if form == Form::Literal { "NULL" } else { "\\N" });
            return;
        }
        match a.data_type() {
            DataType::Int8 => push_num(out, a.as_primitive::<Int8Type>().value(row)),
            DataType::Int16 => push_num(out, a.as_primitive::<Int16Type>().value(row)),
            DataType::Int32 => push_num(out, a.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => push_num(out, a.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => push_num(out, a.as_primitive::<UInt8Type>().value(row)),
            // YEAR as four digits: LOAD DATA reads a bare "0" as 2000, "0000" as 0000.
            DataType::UInt16 if self.ty == LogicalType::Year => {
                let _ = write!(out, "{:04}", a.as_primitive::<UInt16Type>().value(row));
            }
            DataType::UInt16 => push_num(out, a.as_primitive::<UInt16Type>().value(row)),
            DataType::UInt32 => push_num(out, a.as_primitive::<UInt32Type>().value(row)),
            DataType::UInt64 => push_num(out, a.as_primitive::<UInt64Type>().value(row)),
            DataType::Decimal128(_, s) => {
                let v = a.as_primitive::<Decimal128Type>().value(row);
                push_decimal(out, &v.to_string(), *s as usize)
            }
            DataType::Decimal256(_, s) => {
                let v = a.as_primitive::<Decimal256Type>().value(row);
                push_decimal(out, &v.to_string(), *s as usize)
            }
            // A FLOAT widened to f64 is exact; the shortest text for that f64
            // parses back to the same bits, so no double rounding can occur.
            DataType::Float32 => {
                let _ = write!(
                    out,
                    "{:e}",
                    a.as_primitive::<Float32Type>().value(row) as f64
                );
            }
            DataType::Float64 => {
                let _ = write!(out, "{:e}", a.as_primitive::<Float64Type>().value(row));
            }
            DataType::Date32 => {
                quote(out);
                let days = a.as_primitive::<Date32Type>().value(row);
                temporal::write_date(out, temporal::days_to_date(days));
                quote(out);
            }
            DataType::Timestamp(_, _) => {
                quote(out);
                let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
                temporal::write_datetime(out, temporal::us_to_datetime(us));
                quote(out);
            }
            DataType::Duration(_) => {
                quote(out);
                temporal::write_time(out, a.as_primitive::<DurationMicrosecondType>().value(row));
                quote(out);
            }
            DataType::Utf8 if form == Form::Literal => {
                push_str(out, a.as_string::<i32>().value(row))
            }
            DataType::Utf8 => push_field(out, a.as_string::<i32>().value(row)),
            DataType::Binary if form == Form::Literal => {
                push_hex(out, a.as_binary::<i32>().value(row))
            }
            DataType::Binary => push_hex_digits(out, a.as_binary::<i32>().value(row)),
            // `new` admits only the types above.
            _ => out.push_str("NULL"),
        }
    }
}

/// Encoders for every column of `table`, over one row image.
pub fn row_encoders<'a>(
    table: &TableSchema,
    image: &'a RecordBatch,
) -> Result<Vec<ColumnEncoder<'a>>> {
    table
        .columns
        .iter()
        .zip(image.columns())
        .map(|(c, a)| column_encoder(table, c, a))
        .collect()
}

/// The encoder of `column` (a column of `table`) over `array`.
pub fn column_encoder<'a>(
    table: &TableSchema,
    column: &ColumnDef,
    array: &'a ArrayRef,
) -> Result<ColumnEncoder<'a>> {
    ColumnEncoder::new(array, column.logical)
        .map_err(|e| Error::Data(format!("{} column `{}`: {e}", table.id, column.name)))
}

/// `(v1,v2,...)` for row `row` of `image`, without a list of encoders:
/// the change path writes rows of one-row batches, where building the
/// list cost as much as the text.
pub fn write_image_row(
    table: &TableSchema,
    image: &RecordBatch,
    row: usize,
    out: &mut String,
) -> Result<()> {
    out.push('(');
    for (i, (c, a)) in table.columns.iter().zip(image.columns()).enumerate() {
        if i > 0 {
            out.push(',');
        }
        column_encoder(table, c, a)?.write(row, out);
    }
    out.push(')');
    Ok(())
}

/// `(v1,v2,...)` for one row.
pub fn write_row(encoders: &[ColumnEncoder<'_>], row: usize, out: &mut String) {
    out.push('(');
    for (i, e) in encoders.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        e.write(row, out);
    }
    out.push(')');
}

/// `column <=> literal`; with `bytes`, a text column whose collation holds
/// different bytes equal is compared byte for byte in its character set
/// instead (under a `_ci` collation `'a'` equals `'A'`, under PAD SPACE
/// `'x'` equals `'x '`).
pub fn push_exact_match(out: &mut String, column: &ColumnDef, literal: &str, bytes: bool) {
    if !bytes || column.equality() == Equality::Bytes {
        out.push_str(&quote_ident(&column.name));
        out.push_str(" <=> ");
        out.push_str(literal);
        return;
    }
    out.push_str("CAST(");
    out.push_str(&quote_ident(&column.name));
    out.push_str(" AS BINARY) <=> CAST(");
    match column.charset.as_deref() {
        None | Some("utf8mb4" | "utf8mb3" | "utf8" | "ascii") => out.push_str(literal),
        Some(cs) => {
            let _ = write!(out, "CONVERT({literal} USING {cs})");
        }
    }
    out.push_str(" AS BINARY)");
}

/// `` `a`, `b`, `c` `` for a table's columns.
pub fn column_list(table: &TableSchema) -> String {
    table
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds statements of the form `HEAD item,item,... TAIL`, each at most
/// `limit` bytes unless a single item is larger.
pub struct Chunked {
    head: String,
    tail: &'static str,
    limit: usize,
    current: String,
    done: Vec<String>,
}

impl Chunked {
    pub fn new(head: String, tail: &'static str, limit: usize) -> Self {
        Chunked {
            head,
            tail,
            limit,
            current: String::new(),
            done: Vec::new(),
        }
    }

    pub fn push(&mut self, item: &str) {
        if !self.current.is_empty()
            && self.current.len() + item.len() + self.tail.len() + 1 > self.limit
        {
            self.current.push_str(self.tail);
            self.done.push(std::mem::take(&mut self.current));
        }
        if self.current.is_empty() {
            self.current.push_str(&self.head);
        } else {
            self.current.push(',');
        }
        self.current.push_str(item);
    }

    /// [`Chunked::push`] of the item `write` writes, written in place (an
    /// item too large for the current statement starts the next one).
    pub fn push_with(&mut self, write: impl FnOnce(&mut String) -> Result<()>) -> Result<()> {
        let mark = self.current.len();
        if mark == 0 {
            self.current.push_str(&self.head);
        } else {
            self.current.push(',');
        }
        let start = self.current.len();
        if let Err(e) = write(&mut self.current) {
            self.current.truncate(mark);
            return Err(e);
        }
        if mark > 0 && self.current.len() + self.tail.len() > self.limit {
            let item = self.current.split_off(start);
            self.current.truncate(mark);
            self.current.push_str(self.tail);
            self.done.push(std::mem::take(&mut self.current));
            self.current.push_str(&self.head);
            self.current.push_str(&item);
        }
        Ok(())
    }

    pub fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.current.push_str(self.tail);
            self.done.push(self.current);
        }
        self.done
    }
}

fn push_num(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// A quoted string literal with MySQL's backslash escapes.
pub fn push_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('\'');
    push_escaped(out, s, |b| match b {
        b'\0' => Some("\\0"),
        b'\'' => Some("\\'"),
        b'\\' => Some("\\\\"),
        b'\n' => Some("\\n"),
        b'\r' => Some("\\r"),
        b'\x1a' => Some("\\Z"),
        _ => None,
    });
    out.push('\'');
}

/// A LOAD DATA field: the terminators and the escape character escaped.
pub fn push_field(out: &mut String, s: &str) {
    out.reserve(s.len());
    push_escaped(out, s, |b| match b {
        b'\0' => Some("\\0"),
        b'\\' => Some("\\\\"),
        b'\n' => Some("\\n"),
        b'\r' => Some("\\r"),
        b'\t' => Some("\\t"),
        _ => None,
    });
}

/// `s` with the bytes `escape` names replaced, the runs between them
/// copied whole (every escaped byte is ASCII, so a run never splits a
/// character; text is most of what the change path writes). `escape` may
/// name only control characters, `'` and `\\`.
fn push_escaped(out: &mut String, s: &str, escape: impl Fn(u8) -> Option<&'static str>) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any of 8 bytes is zero (exact as a yes or no).
    let any_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut at = |out: &mut String, i: usize| {
        if let Some(e) = escape(bytes[i]) {
            out.push_str(&s[start..i]);
            out.push_str(e);
            start = i + 1;
        }
    };
    // Eight bytes at a time: most words hold no byte below 0x20, no `'`
    // and no `\\`, and are skipped whole.
    let mut words = bytes.chunks_exact(8);
    let mut i = 0;
    for w in words.by_ref() {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        let x = u64::from_le_bytes(x);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0;
        if control || any_zero(x ^ (ONES * b'\'' as u64)) || any_zero(x ^ (ONES * b'\\' as u64)) {
            for j in i..i + 8 {
                at(out, j);
            }
        }
        i += 8;
    }
    for j in i..i + words.remainder().len() {
        at(out, j);
    }
    out.push_str(&s[start..]);
}

/// A hexadecimal literal, `X'..'`: binary data never passes through a character set.
pub fn push_hex(out: &mut String, b: &[u8]) {
    out.reserve(b.len() * 2 + 3);
    out.push_str("X'");
    push_hex_digits(out, b);
    out.push('\'');
}

fn push_hex_digits(out: &mut String, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(b.len() * 2);
    for x in b {
        out.push(HEX[(x >> 4) as usize] as char);
        out.push(HEX[(x & 15) as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_written_in_place_split_as_pushed_ones() {
        let items = [
            "(1)",
            "(22)",
            "(333)",
            "(4444)",
            "(55555)",
            "(6)",
            "(777777777777)",
        ];
        for limit in [1, 10, 20, 30, 40, 1000] {
            let (mut a, mut b) = (
                Chunked::new("INSERT INTO t VALUES ".into(), ")", limit),
                Chunked::new("INSERT INTO t VALUES ".into(), ")", limit),
            );
            for item in items {
                a.push(item);
                b.push_with(|out| {
                    out.push_str(item);
                    Ok(())
                })
                .expect("written");
            }
            assert_eq!(a.finish(), b.finish(), "limit {limit}");
        }
        let mut c = Chunked::new("H ".into(), "", 100);
        c.push("(1)");
        assert!(c.push_with(|_| Err(Error::Data("no".into()))).is_err());
        c.push("(2)");
        assert_eq!(c.finish(), vec!["H (1),(2)".to_string()]);
    }

    #[test]
    fn chunked_statements_stay_under_the_limit() {
        let mut c = Chunked::new("INSERT INTO t VALUES ".into(), "", 30);
        for item in ["(1)", "(2)", "(3)", "(4)"] {
            c.push(item);
        }
        assert_eq!(
            c.finish(),
            vec![
                "INSERT INTO t VALUES (1),(2)",
                "INSERT INTO t VALUES (3),(4)"
            ]
        );
        let mut c = Chunked::new("DELETE FROM t WHERE k IN (".into(), ")", 1000);
        c.push("1");
        c.push("2");
        assert_eq!(c.finish(), vec!["DELETE FROM t WHERE k IN (1,2)"]);
        assert!(Chunked::new("x".into(), "", 10).finish().is_empty());
    }

    #[test]
    fn decimals() {
        let mut s = String::new();
        push_decimal(&mut s, "-150", 2);
        assert_eq!(s, "-1.50");
        s.clear();
        push_decimal(&mut s, "5", 3);
        assert_eq!(s, "0.005");
        s.clear();
        push_decimal(&mut s, "12", 0);
        assert_eq!(s, "12");
    }

    #[test]
    fn strings_and_bytes() {
        let mut s = String::new();
        push_str(&mut s, "a'b\\c\0\n");
        assert_eq!(s, "'a\\'b\\\\c\\0\\n'");
        s.clear();
        push_hex(&mut s, &[0, 255, 16]);
        assert_eq!(s, "X'00FF10'");
        s.clear();
        push_field(&mut s, "a\tb\\N\n\0");
        assert_eq!(s, "a\\tb\\\\N\\n\\0");
    }

    /// Every byte that needs an escape, at every offset within and across
    /// the 8-byte words, next to bytes that look alike (other controls,
    /// bytes above 0x7f, multi-byte characters).
    #[test]
    fn escapes_at_every_offset() {
        let naive = |s: &str, lit: bool| {
            let mut o = String::new();
            for c in s.chars() {
                let e = match (c, lit) {
                    ('\0', _) => "\\0",
                    ('\\', _) => "\\\\",
                    ('\n', _) => "\\n",
                    ('\r', _) => "\\r",
                    ('\'', true) => "\\'",
                    ('\x1a', true) => "\\Z",
                    ('\t', false) => "\\t",
                    _ => {
                        o.push(c);
                        continue;
                    }
                };
                o.push_str(e);
            }
            o
        };
        let specials = [
            '\0', '\'', '\\', '\n', '\r', '\x1a', '\t', '\x1f', ' ', '"', 'é', '€', '\x7f',
        ];
        for len in 0..20 {
            for at in 0..len.max(1) {
                for &c in &specials {
                    let s: String = (0..len)
                        .map(|i| {
                            if i == at {
                                c
                            } else {
                                (b'a' + (i % 26) as u8) as char
                            }
                        })
                        .collect();
                    let mut lit = String::new();
                    push_str(&mut lit, &s);
                    assert_eq!(lit, format!("'{}'", naive(&s, true)), "{s:?}");
                    let mut field = String::new();
                    push_field(&mut field, &s);
                    assert_eq!(field, naive(&s, false), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn floats_round_trip_through_text() {
        for f in [f32::MAX, f32::MIN_POSITIVE, 0.1f32, -3.4028235e38, 1e-45] {
            let s = format!("{:e}", f as f64);
            assert_eq!(s.parse::<f64>().unwrap() as f32, f, "{s}");
        }
    }
}
