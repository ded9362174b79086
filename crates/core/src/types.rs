//! Column types as every stage understands them, whatever the source
//! (documented in docs/pipeline-yaml.md, "Type mapping"), and the Arrow
//! types that carry their values between stages. The mapping is chosen so
//! that every value a MySQL-family server can store comes back bit-exactly.
//!
//! A column also keeps its source's own spelling of the type
//! ([`ColumnDef::column_type`](crate::event::ColumnDef)), for sinks of the
//! same family; sinks of another family translate from the logical type.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::event::ColumnDef;

/// How a column stores its values, as far as moving them exactly needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalType {
    /// An integer of 1, 2, 3, 4 or 8 bytes.
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// IEEE 754 single precision.
    Float,
    /// IEEE 754 double precision.
    Double,
    /// A bit string of 1 to 64 bits.
    Bit {
        width: u8,
    },
    Year,
    Date,
    /// A date and time of day without a time zone; `fsp` fractional digits.
    DateTime {
        fsp: u8,
    },
    /// An instant (stored as UTC); `fsp` fractional digits.
    Timestamp {
        fsp: u8,
    },
    /// A signed duration or time of day (MySQL: −838:59:59 to 838:59:59).
    Time {
        fsp: u8,
    },
    /// Character data; the column's character set says which characters fit.
    Text,
    /// One of the members the type lists.
    Enum,
    /// A set of the members the type lists.
    Set,
    /// A JSON document, as text.
    Json,
    /// A UUID, as its canonical text.
    Uuid,
    /// An IPv4 address, as text.
    Inet4,
    /// An IPv6 address, as text.
    Inet6,
    /// Bytes kept as they are.
    Bytes,
    /// Spatial values: a 4-byte SRID, then WKB.
    Geometry,
}

/// The facts a type is derived from: its base name (`varchar`), its whole
/// spelling (`varchar(20)`, `int(10) unsigned`), character set, precision
/// and scale, and fractional seconds.
pub struct TypeFacts<'a> {
    pub data_type: &'a str,
    pub column_type: &'a str,
    pub charset: Option<&'a str>,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
}

impl LogicalType {
    /// Derives the type from its SQL spelling; `None` for a type sluice
    /// cannot move exactly.
    pub fn from_facts(f: &TypeFacts<'_>) -> Option<LogicalType> {
        let dt = f.data_type.to_ascii_lowercase();
        let unsigned = f.column_type.to_ascii_lowercase().contains("unsigned");
        let fsp = f.datetime_precision.unwrap_or(0).min(6) as u8;
        let int = |bytes| Some(LogicalType::Int { bytes, unsigned });
        match dt.as_str() {
            "tinyint" => int(1),
            "smallint" => int(2),
            "mediumint" => int(3),
            "int" | "integer" => int(4),
            "bigint" => int(8),
            "decimal" | "numeric" => Some(LogicalType::Decimal {
                precision: f.numeric_precision.unwrap_or(10).clamp(1, 65) as u8,
                scale: f.numeric_scale.unwrap_or(0).min(38) as u8,
            }),
            "float" => Some(LogicalType::Float),
            "double" | "real" | "double precision" => Some(LogicalType::Double),
            "bit" => Some(LogicalType::Bit {
                width: f.numeric_precision.unwrap_or(1).clamp(1, 64) as u8,
            }),
            "year" => Some(LogicalType::Year),
            "date" => Some(LogicalType::Date),
            "datetime" => Some(LogicalType::DateTime { fsp }),
            "timestamp" => Some(LogicalType::Timestamp { fsp }),
            "time" => Some(LogicalType::Time { fsp }),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                if f.charset.is_some_and(|c| c.eq_ignore_ascii_case("binary")) {
                    Some(LogicalType::Bytes)
                } else {
                    Some(LogicalType::Text)
                }
            }
            "enum" => Some(LogicalType::Enum),
            "set" => Some(LogicalType::Set),
            "json" => Some(LogicalType::Json),
            "uuid" => Some(LogicalType::Uuid),
            "inet4" => Some(LogicalType::Inet4),
            "inet6" => Some(LogicalType::Inet6),
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Some(LogicalType::Bytes)
            }
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => {
                Some(LogicalType::Geometry)
            }
            _ => None,
        }
    }

    /// A type as it is written in a column definition (`varchar(64)`,
    /// `bigint unsigned`, `datetime(6)`, `decimal(12,2)`), as plugins
    /// declare their tables' columns.
    pub fn parse(text: &str) -> Option<LogicalType> {
        let lower = text.trim().to_ascii_lowercase();
        let base = lower
            .split(|c: char| c == '(' || c.is_whitespace())
            .next()
            .unwrap_or("");
        let args: Vec<u64> = lower
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inner, _)| {
                inner
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let arg = |i: usize| args.get(i).copied();
        let (precision, scale, fsp) = match base {
            "decimal" | "numeric" => (arg(0).or(Some(10)), arg(1).or(Some(0)), None),
            "bit" => (arg(0).or(Some(1)), None, None),
            "datetime" | "timestamp" | "time" => (None, None, arg(0).or(Some(0))),
            _ => (None, None, None),
        };
        LogicalType::from_facts(&TypeFacts {
            data_type: base,
            column_type: &lower,
            charset: None,
            numeric_precision: precision,
            numeric_scale: scale,
            datetime_precision: fsp,
        })
    }

    /// Values travel as UTF-8 text (a character set may limit them further).
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            LogicalType::Text
                | LogicalType::Enum
                | LogicalType::Set
                | LogicalType::Json
                | LogicalType::Uuid
                | LogicalType::Inet4
                | LogicalType::Inet6
        )
    }

    /// The Arrow type that carries this column's values.
    /// Whether Arrow arrays of `dt` hold this type's values: `arrow_type`
    /// without building a type (a TIMESTAMP's time zone is an allocation,
    /// and the change path asks for every column of every row).
    pub fn holds(&self, dt: &DataType) -> bool {
        use DataType as D;
        // Compared variant by variant: building the other `DataType` and
        // dropping it again cost more than writing the value.
        match (*self, dt) {
            (LogicalType::Timestamp { .. }, D::Timestamp(TimeUnit::Microsecond, Some(tz))) => {
                &**tz == "UTC"
            }
            (LogicalType::Timestamp { .. }, _) => false,
            (LogicalType::Int { bytes, unsigned }, _) => {
                matches!(
                    (bytes, unsigned, dt),
                    (1, false, D::Int8)
                        | (1, true, D::UInt8)
                        | (2, false, D::Int16)
                        | (2, true, D::UInt16)
                        | (3 | 4, false, D::Int32)
                        | (3 | 4, true, D::UInt32)
                ) || (!matches!(bytes, 1..=4)
                    && matches!((unsigned, dt), (false, D::Int64) | (true, D::UInt64)))
            }
            (LogicalType::Decimal { precision, scale }, D::Decimal128(p, s)) => {
                precision <= 38 && *p == precision && *s == scale as i8
            }
            (LogicalType::Decimal { precision, scale }, D::Decimal256(p, s)) => {
                precision > 38 && *p == precision && *s == scale as i8
            }
            (LogicalType::Float, D::Float32)
            | (LogicalType::Double, D::Float64)
            | (LogicalType::Bit { .. }, D::UInt64)
            | (LogicalType::Year, D::UInt16)
            | (LogicalType::Date, D::Date32)
            | (LogicalType::DateTime { .. }, D::Timestamp(TimeUnit::Microsecond, None))
            | (LogicalType::Time { .. }, D::Duration(TimeUnit::Microsecond)) => true,
            (t, D::Utf8) => t.is_text(),
            (t, D::Binary) => !t.is_text() && self.arrow_type() == D::Binary,
            _ => false,
        }
    }

    pub fn arrow_type(&self) -> DataType {
        match *self {
            LogicalType::Int { bytes, unsigned } => match (bytes, unsigned) {
                (1, false) => DataType::Int8,
                (1, true) => DataType::UInt8,
                (2, false) => DataType::Int16,
                (2, true) => DataType::UInt16,
                (3 | 4, false) => DataType::Int32,
                (3 | 4, true) => DataType::UInt32,
                (_, false) => DataType::Int64,
                (_, true) => DataType::UInt64,
            },
            LogicalType::Decimal { precision, scale } if precision <= 38 => {
                DataType::Decimal128(precision, scale as i8)
            }
            LogicalType::Decimal { precision, scale } => {
                DataType::Decimal256(precision, scale as i8)
            }
            LogicalType::Float => DataType::Float32,
            LogicalType::Double => DataType::Float64,
            LogicalType::Bit { .. } => DataType::UInt64,
            LogicalType::Year => DataType::UInt16,
            LogicalType::Date => DataType::Date32,
            LogicalType::DateTime { .. } => DataType::Timestamp(TimeUnit::Microsecond, None),
            LogicalType::Timestamp { .. } => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            LogicalType::Time { .. } => DataType::Duration(TimeUnit::Microsecond),
            t if t.is_text() => DataType::Utf8,
            _ => DataType::Binary,
        }
    }
}

/// Field metadata key holding the source's spelling of the column type,
/// e.g. `set('a','b')`.
pub const NATIVE_TYPE_KEY: &str = "sluice.native_type";

/// The Arrow schema of a table's row images.
pub fn arrow_schema(columns: &[ColumnDef]) -> Arc<Schema> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            Field::new(&c.name, c.logical.arrow_type(), c.nullable).with_metadata(HashMap::from([
                (NATIVE_TYPE_KEY.to_string(), c.column_type.clone()),
            ]))
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `schema` with every field nullable: what a copy read back can hold
/// (rows older than an added NOT NULL column have none, zero dates stored
/// as NULL).
pub fn all_nullable(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// A decimal's text (`-12.3`) as the digits of its value times
/// 10^`scale` (`-1230` at scale 2); `None` for text that is not a decimal
/// of at most `scale` fraction digits.
pub fn scaled_decimal_digits(text: &str, scale: usize) -> Option<String> {
    let (sign, digits) = text.strip_prefix('-').map_or(("", text), |d| ("-", d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.len() > scale || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{sign}{int}{frac}{}",
        "0".repeat(scale - frac.len())
    ))
}

/// The members of an ENUM or SET type spelled `enum('a','b''c')` /
/// `set(...)`, unquoted.
pub fn members(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let body = &column_type[open + 1..column_type.rfind(')').unwrap_or(column_type.len())];
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quote, c) {
            (false, '\'') => in_quote = true,
            (true, '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            (true, '\'') => {
                in_quote = false;
                out.push(std::mem::take(&mut cur));
            }
            (true, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (true, c) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// `digits` is the unscaled integer, e.g. "-150" at scale 2 is -1.50.
pub fn push_decimal(out: &mut String, digits: &str, scale: usize) {
    let (neg, d) = match digits.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, digits),
    };
    if neg {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(d);
        return;
    }
    if d.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - d.len()));
        out.push_str(d);
    } else {
        out.push_str(&d[..d.len() - scale]);
        out.push('.');
        out.push_str(&d[d.len() - scale..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_is_equality_with_the_arrow_type() {
        let mut types = vec![
            LogicalType::Float,
            LogicalType::Double,
            LogicalType::Year,
            LogicalType::Date,
            LogicalType::Text,
            LogicalType::Enum,
            LogicalType::Set,
            LogicalType::Json,
            LogicalType::Uuid,
            LogicalType::Inet4,
            LogicalType::Inet6,
            LogicalType::Bytes,
            LogicalType::Geometry,
            LogicalType::Bit { width: 7 },
            LogicalType::DateTime { fsp: 3 },
            LogicalType::Timestamp { fsp: 6 },
            LogicalType::Time { fsp: 0 },
            LogicalType::Decimal {
                precision: 10,
                scale: 2,
            },
            LogicalType::Decimal {
                precision: 38,
                scale: 0,
            },
            LogicalType::Decimal {
                precision: 65,
                scale: 30,
            },
        ];
        for bytes in [1, 2, 3, 4, 8] {
            for unsigned in [false, true] {
                types.push(LogicalType::Int { bytes, unsigned });
            }
        }
        let mut arrow: Vec<DataType> = types.iter().map(|t| t.arrow_type()).collect();
        arrow.extend([
            DataType::Timestamp(TimeUnit::Microsecond, Some("+01:00".into())),
            DataType::Timestamp(TimeUnit::Millisecond, None),
            DataType::Decimal128(10, 3),
            DataType::Decimal256(38, 0),
            DataType::LargeUtf8,
            DataType::Boolean,
        ]);
        for t in &types {
            for dt in &arrow {
                assert_eq!(t.holds(dt), *dt == t.arrow_type(), "{t:?} holds {dt:?}");
            }
        }
    }

    fn facts<'a>(dt: &'a str, ct: &'a str) -> TypeFacts<'a> {
        TypeFacts {
            data_type: dt,
            column_type: ct,
            charset: None,
            numeric_precision: Some(65),
            numeric_scale: Some(30),
            datetime_precision: Some(6),
        }
    }

    #[test]
    fn mapping() {
        let t = |dt, ct| {
            LogicalType::from_facts(&facts(dt, ct))
                .unwrap()
                .arrow_type()
        };
        assert_eq!(t("bigint", "bigint(20) unsigned"), DataType::UInt64);
        assert_eq!(t("mediumint", "mediumint(9)"), DataType::Int32);
        assert_eq!(t("decimal", "decimal(65,30)"), DataType::Decimal256(65, 30));
        assert_eq!(
            t("time", "time(6)"),
            DataType::Duration(TimeUnit::Microsecond)
        );
        assert_eq!(t("inet6", "inet6"), DataType::Utf8);
        assert_eq!(t("point", "point"), DataType::Binary);
        assert!(LogicalType::from_facts(&facts("vector", "vector(3)")).is_none());
    }

    #[test]
    fn types_plugins_write() {
        assert_eq!(
            LogicalType::parse("bigint unsigned"),
            Some(LogicalType::Int {
                bytes: 8,
                unsigned: true
            })
        );
        assert_eq!(
            LogicalType::parse("DECIMAL(12, 2)"),
            Some(LogicalType::Decimal {
                precision: 12,
                scale: 2
            })
        );
        assert_eq!(
            LogicalType::parse("datetime(6)"),
            Some(LogicalType::DateTime { fsp: 6 })
        );
        assert_eq!(LogicalType::parse("varchar(64)"), Some(LogicalType::Text));
        assert_eq!(LogicalType::parse("enum('a','b')"), Some(LogicalType::Enum));
        assert_eq!(
            LogicalType::parse("varbinary(16)"),
            Some(LogicalType::Bytes)
        );
        assert_eq!(LogicalType::parse("vector(3)"), None);
        assert_eq!(LogicalType::parse(""), None);
    }
}
