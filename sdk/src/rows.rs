//! Row images as bytes: how sluice and a plugin pass rows (contract v2).
//!
//! A batch carries one `data` buffer; each event's images are spans of it.
//! An image is its values in column order, each a tag byte and a payload:
//!
//! | tag | value | payload |
//! |-----|-------|---------|
//! | 0 | null | none |
//! | 1 | int | i64, little-endian |
//! | 2 | uint | u64, little-endian |
//! | 3 | float32 | f32 bits, little-endian |
//! | 4 | float64 | f64 bits, little-endian |
//! | 5 | decimal | u32 length, then that many bytes of UTF-8 text |
//! | 6 | text | u32 length, then that many bytes of UTF-8 text |
//! | 7 | bytes | u32 length, then that many bytes |
//! | 8 | date | i32 |
//! | 9 | timestamp | i64 |
//! | 10 | time | i64 |
//!
//! Why bytes and not a `list<value>` per image: the component model copies
//! every string and list of a call into the callee's memory with one
//! allocation each, a call into the plugin per value; one buffer per batch
//! is one allocation, and a plugin that leaves a row alone never decodes it.
//!
//! Compiled into both sides (the SDK, and sluice by `#[path]`): one
//! definition of the format, no dependencies.

/// One value of an image, borrowing text and bytes from the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Uint(u64),
    Float32(f32),
    Float64(f64),
    Decimal(&'a str),
    Text(&'a str),
    Bytes(&'a [u8]),
    Date(i32),
    Timestamp(i64),
    Time(i64),
}

/// Bytes that are not a well-formed image: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub offset: usize,
    pub what: &'static str,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed row image at byte {}: {}",
            self.offset, self.what
        )
    }
}

/// Appends one value to an image. Text and bytes longer than 4 GiB cannot
/// be written (a batch's buffer is addressed by u32 anyway).
pub fn put(out: &mut Vec<u8>, cell: Cell<'_>) {
    let mut var = |tag: u8, b: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    match cell {
        Cell::Decimal(s) => var(5, s.as_bytes()),
        Cell::Text(s) => var(6, s.as_bytes()),
        Cell::Bytes(b) => var(7, b),
        Cell::Null => out.push(0),
        Cell::Int(v) => fixed(out, 1, &v.to_le_bytes()),
        Cell::Uint(v) => fixed(out, 2, &v.to_le_bytes()),
        Cell::Float32(v) => fixed(out, 3, &v.to_bits().to_le_bytes()),
        Cell::Float64(v) => fixed(out, 4, &v.to_bits().to_le_bytes()),
        Cell::Date(v) => fixed(out, 8, &v.to_le_bytes()),
        Cell::Timestamp(v) => fixed(out, 9, &v.to_le_bytes()),
        Cell::Time(v) => fixed(out, 10, &v.to_le_bytes()),
    }
}

fn fixed(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    out.extend_from_slice(b);
}

/// The values of an image, in order; an item is an error once, then the
/// iterator ends.
pub fn cells(image: &[u8]) -> Cells<'_> {
    Cells { image, at: 0 }
}

pub struct Cells<'a> {
    image: &'a [u8],
    at: usize,
}

impl<'a> Cells<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.image.len());
        let Some(end) = end else {
            return Err(self.fail("the image ends inside a value"));
        };
        let b = &self.image[self.at..end];
        self.at = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn var(&mut self) -> Result<&'a [u8], Malformed> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }

    fn text(&mut self) -> Result<&'a str, Malformed> {
        let at = self.at;
        let b = self.var()?;
        std::str::from_utf8(b).map_err(|_| Malformed {
            offset: at,
            what: "text that is not UTF-8",
        })
    }

    fn fail(&self, what: &'static str) -> Malformed {
        Malformed {
            offset: self.at,
            what,
        }
    }

    fn cell(&mut self, tag: u8) -> Result<Cell<'a>, Malformed> {
        Ok(match tag {
            0 => Cell::Null,
            1 => Cell::Int(i64::from_le_bytes(self.array()?)),
            2 => Cell::Uint(u64::from_le_bytes(self.array()?)),
            3 => Cell::Float32(f32::from_bits(u32::from_le_bytes(self.array()?))),
            4 => Cell::Float64(f64::from_bits(u64::from_le_bytes(self.array()?))),
            5 => Cell::Decimal(self.text()?),
            6 => Cell::Text(self.text()?),
            7 => Cell::Bytes(self.var()?),
            8 => Cell::Date(i32::from_le_bytes(self.array()?)),
            9 => Cell::Timestamp(i64::from_le_bytes(self.array()?)),
            10 => Cell::Time(i64::from_le_bytes(self.array()?)),
            _ => {
                self.at -= 1;
                return Err(self.fail("an unknown value tag"));
            }
        })
    }
}

impl<'a> Iterator for Cells<'a> {
    type Item = Result<Cell<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let tag = *self.image.get(self.at)?;
        self.at += 1;
        let cell = self.cell(tag);
        if cell.is_err() {
            // Nothing is read after an error.
            self.at = self.image.len();
        }
        Some(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_round_trips_and_bad_bytes_are_named() {
        let cells = [
            Cell::Null,
            Cell::Int(i64::MIN),
            Cell::Uint(u64::MAX),
            Cell::Float32(f32::from_bits(0x7fc0_0001)),
            Cell::Float64(-0.0),
            Cell::Decimal("-12.50"),
            Cell::Text("żółw \u{0}"),
            Cell::Bytes(&[0, 255, 7]),
            Cell::Date(-719_162),
            Cell::Timestamp(253_402_300_799_999_999),
            Cell::Time(-3_020_399_000_000),
        ];
        let mut image = Vec::new();
        for c in cells {
            put(&mut image, c);
        }
        let back: Vec<Cell<'_>> = super::cells(&image).collect::<Result<_, _>>().unwrap();
        // Compared bit for bit: a NaN payload and -0.0 must survive.
        assert_eq!(format!("{back:?}"), format!("{cells:?}"));
        match back[3] {
            Cell::Float32(f) => assert_eq!(f.to_bits(), 0x7fc0_0001),
            _ => unreachable!(),
        }

        let truncated = &image[..image.len() - 1];
        let err = super::cells(truncated).find_map(|c| c.err()).unwrap();
        assert_eq!(err.what, "the image ends inside a value");
        assert_eq!(
            super::cells(&[42]).next(),
            Some(Err(Malformed {
                offset: 0,
                what: "an unknown value tag"
            }))
        );
        let mut bad_text = vec![6];
        bad_text.extend_from_slice(&2u32.to_le_bytes());
        bad_text.extend_from_slice(&[0xc3, 0x28]);
        assert_eq!(
            super::cells(&bad_text).next().unwrap().unwrap_err().what,
            "text that is not UTF-8"
        );
        // A length past the end, not a huge allocation or a panic.
        let mut huge = vec![7];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(super::cells(&huge).next().unwrap().is_err());
        assert_eq!(super::cells(&huge).count(), 1);
    }
}
