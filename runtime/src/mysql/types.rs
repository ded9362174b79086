//! MySQL column types and their Arrow mapping (documented in
//! docs/pipeline-yaml.md, "Type mapping"). The mapping is chosen so that every
//! value the server can store comes back bit-exactly when written to MySQL.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::event::ColumnDef;

/// How a column stores its values, as far as moving them exactly needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlType {
    /// TINYINT (1), SMALLINT (2), MEDIUMINT (3), INT (4), BIGINT (8).
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Decimal {
        precision: u8,
        scale: u8,
    },
    Float,
    Double,
    Bit {
        width: u8,
    },
    Year,
    Date,
    DateTime {
        fsp: u8,
    },
    Timestamp {
        fsp: u8,
    },
    Time {
        fsp: u8,
    },
    /// Character data the server converts to UTF-8 for us: CHAR, VARCHAR,
    /// TEXT, ENUM, SET, JSON, and MariaDB's UUID, INET4 and INET6.
    Text,
    /// Bytes kept as they are: BINARY, VARBINARY, BLOB, and character
    /// columns declared with the `binary` character set.
    Binary,
    /// Spatial types, in the server's internal format (4-byte SRID + WKB).
    Geometry,
}

/// The information_schema.COLUMNS facts a type is derived from.
pub struct ColumnFacts<'a> {
    pub data_type: &'a str,
    pub column_type: &'a str,
    pub charset: Option<&'a str>,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
}

impl MysqlType {
    /// Derives the type; `None` for a type sluice cannot move exactly.
    pub fn from_facts(f: &ColumnFacts<'_>) -> Option<MysqlType> {
        let dt = f.data_type.to_ascii_lowercase();
        let unsigned = f.column_type.to_ascii_lowercase().contains("unsigned");
        let fsp = f.datetime_precision.unwrap_or(0).min(6) as u8;
        let int = |bytes| Some(MysqlType::Int { bytes, unsigned });
        match dt.as_str() {
            "tinyint" => int(1),
            "smallint" => int(2),
            "mediumint" => int(3),
            "int" | "integer" => int(4),
            "bigint" => int(8),
            "decimal" | "numeric" => Some(MysqlType::Decimal {
                precision: f.numeric_precision.unwrap_or(10).clamp(1, 65) as u8,
                scale: f.numeric_scale.unwrap_or(0).min(38) as u8,
            }),
            "float" => Some(MysqlType::Float),
            "double" | "real" | "double precision" => Some(MysqlType::Double),
            "bit" => Some(MysqlType::Bit {
                width: f.numeric_precision.unwrap_or(1).clamp(1, 64) as u8,
            }),
            "year" => Some(MysqlType::Year),
            "date" => Some(MysqlType::Date),
            "datetime" => Some(MysqlType::DateTime { fsp }),
            "timestamp" => Some(MysqlType::Timestamp { fsp }),
            "time" => Some(MysqlType::Time { fsp }),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                if f.charset.is_some_and(|c| c.eq_ignore_ascii_case("binary")) {
                    Some(MysqlType::Binary)
                } else {
                    Some(MysqlType::Text)
                }
            }
            "enum" | "set" | "json" | "uuid" | "inet4" | "inet6" => Some(MysqlType::Text),
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Some(MysqlType::Binary)
            }
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => Some(MysqlType::Geometry),
            _ => None,
        }
    }

    /// The Arrow type that carries this column's values.
    pub fn arrow_type(&self) -> DataType {
        match *self {
            MysqlType::Int { bytes, unsigned } => match (bytes, unsigned) {
                (1, false) => DataType::Int8,
                (1, true) => DataType::UInt8,
                (2, false) => DataType::Int16,
                (2, true) => DataType::UInt16,
                (3 | 4, false) => DataType::Int32,
                (3 | 4, true) => DataType::UInt32,
                (_, false) => DataType::Int64,
                (_, true) => DataType::UInt64,
            },
            MysqlType::Decimal { precision, scale } if precision <= 38 => {
                DataType::Decimal128(precision, scale as i8)
            }
            MysqlType::Decimal { precision, scale } => DataType::Decimal256(precision, scale as i8),
            MysqlType::Float => DataType::Float32,
            MysqlType::Double => DataType::Float64,
            MysqlType::Bit { .. } => DataType::UInt64,
            MysqlType::Year => DataType::UInt16,
            MysqlType::Date => DataType::Date32,
            MysqlType::DateTime { .. } => DataType::Timestamp(TimeUnit::Microsecond, None),
            MysqlType::Timestamp { .. } => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            MysqlType::Time { .. } => DataType::Duration(TimeUnit::Microsecond),
            MysqlType::Text => DataType::Utf8,
            MysqlType::Binary | MysqlType::Geometry => DataType::Binary,
        }
    }
}

/// Field metadata key holding the source column type, e.g. `set('a','b')`.
pub const MYSQL_TYPE_KEY: &str = "mysql.type";

/// The Arrow schema of a table's row images.
pub fn arrow_schema(columns: &[ColumnDef]) -> Arc<Schema> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            Field::new(&c.name, c.source_type.arrow_type(), c.nullable).with_metadata(
                HashMap::from([(MYSQL_TYPE_KEY.to_string(), c.column_type.clone())]),
            )
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(dt: &'a str, ct: &'a str) -> ColumnFacts<'a> {
        ColumnFacts {
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
        let t = |dt, ct| MysqlType::from_facts(&facts(dt, ct)).unwrap().arrow_type();
        assert_eq!(t("bigint", "bigint(20) unsigned"), DataType::UInt64);
        assert_eq!(t("mediumint", "mediumint(9)"), DataType::Int32);
        assert_eq!(t("decimal", "decimal(65,30)"), DataType::Decimal256(65, 30));
        assert_eq!(
            t("time", "time(6)"),
            DataType::Duration(TimeUnit::Microsecond)
        );
        assert_eq!(t("inet6", "inet6"), DataType::Utf8);
        assert_eq!(t("point", "point"), DataType::Binary);
        assert!(MysqlType::from_facts(&facts("vector", "vector(3)")).is_none());
    }
}
