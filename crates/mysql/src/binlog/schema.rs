//! Table definitions as the binlog itself describes them.
//!
//! Reading a table's definition from information_schema after a schema
//! change is racy: by the time sluice reads it, later statements may have
//! changed the table again (or renamed it away), and the rows in between
//! would be decoded with the wrong columns. With `binlog_row_metadata=FULL`
//! every TABLE_MAP event carries the names, types, signedness, character
//! sets, ENUM/SET values and primary key of the table *as it was when the
//! rows were written*, so sluice decodes each row event with exactly that.
//! information_schema still fills in what the binlog cannot say (MariaDB's
//! UUID and INET types travel as plain binary strings; unique keys).

use std::collections::HashMap;

use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;

use crate::event::ColumnDef;
use crate::types::LogicalType;

/// Collation id → (character set, collation) names, from the source's information_schema.
pub type Collations = HashMap<u16, (String, String)>;

/// The collation id of binary strings.
const BINARY: u16 = 63;

/// A table's columns and primary key as one TABLE_MAP event describes them.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedTable {
    pub columns: Vec<ColumnDef>,
    /// Primary key column indices, when the metadata has them.
    pub primary_key: Option<Vec<usize>>,
}

/// Decodes the columns of `tme`; `None` without column names (metadata not FULL).
pub fn from_table_map(tme: &TableMapEvent<'_>, collations: &Collations) -> Option<MappedTable> {
    let n = tme.columns_count() as usize;
    let mut names = None;
    let mut signedness = None;
    let mut default_charset = None;
    let mut non_default: Vec<(usize, u16)> = Vec::new();
    let mut column_charsets: Option<Vec<u16>> = None;
    let mut enum_values: Vec<Vec<String>> = Vec::new();
    let mut set_values: Vec<Vec<String>> = Vec::new();
    let mut primary_key = None;
    for field in tme.iter_optional_meta() {
        match field.ok()? {
            OptionalMetadataField::ColumnName(c) => {
                names = Some(
                    c.iter_names()
                        .filter_map(|r| r.ok().map(|x| x.name().into_owned()))
                        .collect::<Vec<_>>(),
                )
            }
            OptionalMetadataField::Signedness(bits) => {
                signedness = Some(bits.iter().map(|b| *b).collect::<Vec<bool>>())
            }
            OptionalMetadataField::DefaultCharset(d) => {
                default_charset = Some(d.default_charset());
                non_default = d
                    .iter_non_default()
                    .filter_map(|r| r.ok())
                    .map(|x| (x.column_index() as usize, x.charset()))
                    .collect();
            }
            OptionalMetadataField::ColumnCharset(c) => {
                column_charsets = Some(c.iter_charsets().filter_map(|r| r.ok()).collect())
            }
            OptionalMetadataField::EnumStrValue(e) => {
                enum_values = e
                    .iter_values()
                    .filter_map(|r| r.ok())
                    .map(|v| v.values().iter().map(|s| s.value().into_owned()).collect())
                    .collect()
            }
            OptionalMetadataField::SetStrValue(e) => {
                set_values = e
                    .iter_values()
                    .filter_map(|r| r.ok())
                    .map(|v| v.values().iter().map(|s| s.value().into_owned()).collect())
                    .collect()
            }
            OptionalMetadataField::SimplePrimaryKey(k) => {
                primary_key = Some(
                    k.iter_indexes()
                        .filter_map(|r| r.ok().map(|i| i as usize))
                        .collect(),
                )
            }
            OptionalMetadataField::PrimaryKeyWithPrefix(k) => {
                primary_key = Some(
                    k.iter_keys()
                        .filter_map(|r| r.ok().map(|p| p.column_index() as usize))
                        .collect(),
                )
            }
            _ => {}
        }
    }
    let names = names?;
    if names.len() != n {
        return None;
    }
    let (mut numeric_i, mut char_i, mut enum_i, mut set_i) = (0usize, 0usize, 0usize, 0usize);
    let mut columns = Vec::with_capacity(n);
    for (i, name) in names.into_iter().enumerate() {
        let ty = tme.get_column_type(i).ok()??;
        let meta = tme.get_column_metadata(i).unwrap_or(&[]);
        let unsigned = if ty.is_numeric_type() {
            let u = signedness
                .as_ref()
                .and_then(|s| s.get(numeric_i).copied())
                .unwrap_or(false);
            numeric_i += 1;
            u
        } else {
            false
        };
        let collation = if ty.is_character_type() {
            let c = column_charsets
                .as_ref()
                .and_then(|cs| cs.get(char_i).copied())
                .or_else(|| {
                    non_default
                        .iter()
                        .find(|(ci, _)| *ci == char_i)
                        .map(|(_, c)| *c)
                })
                .or(default_charset);
            char_i += 1;
            c
        } else {
            None
        };
        let names = collation.map(|c| {
            if c == BINARY {
                ("binary".to_string(), "binary".to_string())
            } else {
                collations
                    .get(&c)
                    .cloned()
                    .unwrap_or_else(|| (format!("collation#{c}"), format!("collation#{c}")))
            }
        });
        let binary = collation == Some(BINARY);
        let int = |bytes| (LogicalType::Int { bytes, unsigned }, String::new());
        let (logical, column_type) = match ty {
            ColumnType::MYSQL_TYPE_TINY => int(1),
            ColumnType::MYSQL_TYPE_SHORT => int(2),
            ColumnType::MYSQL_TYPE_INT24 => int(3),
            ColumnType::MYSQL_TYPE_LONG => int(4),
            ColumnType::MYSQL_TYPE_LONGLONG => int(8),
            ColumnType::MYSQL_TYPE_NEWDECIMAL => (
                LogicalType::Decimal {
                    precision: *meta.first()?,
                    scale: *meta.get(1)?,
                },
                String::new(),
            ),
            ColumnType::MYSQL_TYPE_FLOAT => (LogicalType::Float, String::new()),
            ColumnType::MYSQL_TYPE_DOUBLE => (LogicalType::Double, String::new()),
            ColumnType::MYSQL_TYPE_BIT => {
                let width = meta.get(1).copied().unwrap_or(0) as u16 * 8
                    + meta.first().copied().unwrap_or(0) as u16;
                (
                    LogicalType::Bit {
                        width: width.clamp(1, 64) as u8,
                    },
                    String::new(),
                )
            }
            ColumnType::MYSQL_TYPE_YEAR => (LogicalType::Year, String::new()),
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => {
                (LogicalType::Date, String::new())
            }
            ColumnType::MYSQL_TYPE_DATETIME => (LogicalType::DateTime { fsp: 0 }, String::new()),
            ColumnType::MYSQL_TYPE_DATETIME2 => (
                LogicalType::DateTime {
                    fsp: *meta.first()?,
                },
                String::new(),
            ),
            ColumnType::MYSQL_TYPE_TIMESTAMP => (LogicalType::Timestamp { fsp: 0 }, String::new()),
            ColumnType::MYSQL_TYPE_TIMESTAMP2 => (
                LogicalType::Timestamp {
                    fsp: *meta.first()?,
                },
                String::new(),
            ),
            ColumnType::MYSQL_TYPE_TIME => (LogicalType::Time { fsp: 0 }, String::new()),
            ColumnType::MYSQL_TYPE_TIME2 => (
                LogicalType::Time {
                    fsp: *meta.first()?,
                },
                String::new(),
            ),
            ColumnType::MYSQL_TYPE_ENUM => {
                let values = enum_values.get(enum_i).cloned().unwrap_or_default();
                enum_i += 1;
                (LogicalType::Enum, quoted("enum", &values))
            }
            ColumnType::MYSQL_TYPE_SET => {
                let values = set_values.get(set_i).cloned().unwrap_or_default();
                set_i += 1;
                (LogicalType::Set, quoted("set", &values))
            }
            ColumnType::MYSQL_TYPE_STRING if binary => (
                LogicalType::Bytes,
                format!("binary({})", string_length(meta)),
            ),
            ColumnType::MYSQL_TYPE_STRING => (LogicalType::Text, String::new()),
            ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB => {
                if binary {
                    (LogicalType::Bytes, String::new())
                } else {
                    (LogicalType::Text, String::new())
                }
            }
            ColumnType::MYSQL_TYPE_JSON => (LogicalType::Json, "json".to_string()),
            ColumnType::MYSQL_TYPE_GEOMETRY => (LogicalType::Geometry, "geometry".to_string()),
            _ => return None,
        };
        columns.push(ColumnDef {
            name,
            logical,
            column_type,
            nullable: tme.null_bitmask().get(i).is_none_or(|b| *b),
            charset: names.as_ref().filter(|_| !binary).map(|n| n.0.clone()),
            collation: names.filter(|_| !binary).map(|n| n.1),
        });
    }
    Some(MappedTable {
        columns,
        primary_key,
    })
}

/// The declared length of a CHAR/BINARY column from its TABLE_MAP metadata.
fn string_length(meta: &[u8]) -> usize {
    let (b0, b1) = (
        meta.first().copied().unwrap_or(0),
        meta.get(1).copied().unwrap_or(0),
    );
    if b0 & 0x30 != 0x30 {
        (b1 as usize) | ((((b0 & 0x30) ^ 0x30) as usize) << 4)
    } else {
        b1 as usize
    }
}

fn quoted(kind: &str, values: &[String]) -> String {
    let list: Vec<String> = values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect();
    format!("{kind}({})", list.join(","))
}

/// Keeps what information_schema knows and the binlog cannot say: MariaDB's
/// UUID and INET columns (binary strings in the binlog, text in SELECT),
/// and MariaDB's JSON (LONGTEXT in the binlog).
pub fn merge_known(mapped: &mut [ColumnDef], known: &[ColumnDef]) {
    for col in mapped.iter_mut() {
        let Some(k) = known.iter().find(|k| k.name == col.name) else {
            continue;
        };
        if binary_in_binlog(k, col) {
            *col = k.clone();
        } else if col.column_type.is_empty()
            && same_text(k.logical, col.logical)
            && k.charset == col.charset
        {
            col.logical = k.logical;
            col.column_type = k.column_type.clone();
        }
    }
}

/// MariaDB's UUID and INET columns: text in SELECT, binary in the binlog.
fn binary_in_binlog(known: &ColumnDef, mapped: &ColumnDef) -> bool {
    matches!(
        known.logical,
        LogicalType::Uuid | LogicalType::Inet4 | LogicalType::Inet6
    ) && mapped.logical == LogicalType::Bytes
}

/// Whether the binlog's type and information_schema's are one: equal, or
/// MariaDB's JSON, which the binlog calls LONGTEXT.
fn same_text(known: LogicalType, mapped: LogicalType) -> bool {
    known == mapped || (known == LogicalType::Json && mapped == LogicalType::Text)
}

/// Whether `known` decodes rows described by `mapped` the same way.
pub fn same_shape(known: &[ColumnDef], mapped: &[ColumnDef]) -> bool {
    known.len() == mapped.len()
        && known.iter().zip(mapped).all(|(k, m)| {
            let special = binary_in_binlog(k, m);
            let lists_match = !matches!(m.logical, LogicalType::Enum | LogicalType::Set)
                || m.column_type.eq_ignore_ascii_case(&k.column_type);
            // Another collation changes which values are equal.
            let collation_match = k.collation.is_none()
                || m.collation.is_none()
                || k.collation.as_deref().map(str::to_ascii_lowercase)
                    == m.collation.as_deref().map(str::to_ascii_lowercase);
            k.name == m.name
                && (special
                    || (same_text(k.logical, m.logical)
                        && k.charset == m.charset
                        && lists_match
                        && collation_match))
        })
}
