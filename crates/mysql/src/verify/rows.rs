//! Rows of one chunk on either side, in one comparable form, and the
//! differences between two such sets.
//!
//! Both sides are decoded into Arrow exactly as the pipeline decodes them and
//! written back as the SQL literals the MySQL sink writes, so a value
//! compares equal exactly when the sink would have written it unchanged;
//! the same literals repair the target.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use sluice_core::verify::{Checksum, DiffKind, Difference};

use crate::connect::Endpoint;
use crate::decode::RowDecoder;
use crate::encode::{column_list, row_encoders};
use crate::event::{quote_ident, TableSchema};
use crate::ranges::Chunk;
use crate::types::LogicalType;
use crate::Result;

/// One row as SQL literals, one per column, and how often it occurs (more
/// than once only in tables without a key).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub values: Vec<String>,
    pub count: u32,
}

/// A chunk's rows by key (the key columns' literals joined by `,`; the
/// whole row for tables without a key).
pub type Rows = BTreeMap<String, Row>;

/// Reads the rows of `chunk` from `table` (whose key columns are `key`).
pub async fn fetch(
    ep: &Endpoint,
    conn: &mut Conn,
    table: &Arc<TableSchema>,
    key: &[String],
    chunk: &Chunk,
) -> Result<RecordBatch> {
    let (filter, params) = chunk.filter(key);
    let sql = format!(
        "SELECT {} FROM {}{filter}",
        column_list(table),
        table.id.quoted()
    );
    let what = format!("reading {} for verification", table.id);
    // The binary protocol, as the snapshot reads: exact FLOAT/DOUBLE and temporal values.
    let mut result = conn
        .exec_iter(sql, params)
        .await
        .map_err(|e| ep.error(what.clone(), e))?;
    let mut decoder = RowDecoder::new(table.clone());
    while let Some(row) = result.next().await.map_err(|e| ep.error(what.clone(), e))? {
        decoder.push(row.unwrap())?;
    }
    decoder.finish()
}

/// Each row of a batch of `table` as `(key, literals)`, in order.
pub fn literals(table: &TableSchema, batch: &RecordBatch) -> Result<Vec<(String, Vec<String>)>> {
    let encoders = row_encoders(table, batch)?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let values: Vec<String> = encoders
            .iter()
            .map(|e| {
                let mut s = String::new();
                e.write(r, &mut s);
                s
            })
            .collect();
        let key = if table.key.is_empty() {
            values.join(",")
        } else {
            table
                .key
                .iter()
                .map(|&i| values[i].as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push((key, values));
    }
    Ok(out)
}

/// Adds the rows of a batch of `table` to `rows`.
pub fn keyed(table: &TableSchema, batch: &RecordBatch, rows: &mut Rows) -> Result<()> {
    for (key, values) in literals(table, batch)? {
        rows.entry(key)
            .and_modify(|row| row.count += 1)
            .or_insert(Row { values, count: 1 });
    }
    Ok(())
}

/// `(rows, checksum)` of a chunk computed by the server, order-free and
/// without moving the rows, over [`row_text`].
pub async fn checksum(
    ep: &Endpoint,
    conn: &mut Conn,
    table: &TableSchema,
    key: &[String],
    chunk: &Chunk,
    how: Checksum,
) -> Result<(u64, String)> {
    let (filter, params) = chunk.filter(key);
    let row = row_text(table);
    let aggregate = match how {
        Checksum::Crc32 => format!("CAST(COALESCE(SUM(CRC32({row})), 0) AS CHAR)"),
        Checksum::Md5 => format!(
            "CAST(COALESCE(BIT_XOR(CAST(CONV(LEFT(MD5({row}), 16), 16, 10) AS UNSIGNED)), 0) AS CHAR)"
        ),
    };
    let sql = format!(
        "SELECT COUNT(*), {aggregate} FROM {}{filter}",
        table.id.quoted()
    );
    let row: Option<(u64, String)> = conn
        .exec_first(sql, params)
        .await
        .map_err(|e| ep.error(format!("checksumming {}", table.id), e))?;
    Ok(row.unwrap_or_default())
}

/// 64 bits of the MD5 of every row of a chunk, by key, computed by the server: what
/// narrows a range whose checksums differ down to the differing rows
/// without moving the rows themselves.
pub async fn row_hashes(
    ep: &Endpoint,
    conn: &mut Conn,
    table: &TableSchema,
    key: &[String],
    chunk: &Chunk,
) -> Result<BTreeMap<String, (Vec<Value>, u64)>> {
    let keys: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
    let (filter, params) = chunk.filter(key);
    let sql = format!(
        "SELECT {}, CAST(CONV(LEFT(MD5({}), 16), 16, 10) AS UNSIGNED) FROM {}{filter}",
        keys.join(", "),
        row_text(table),
        table.id.quoted()
    );
    let rows: Vec<mysql_async::Row> = conn
        .exec(sql, params)
        .await
        .map_err(|e| ep.error(format!("hashing rows of {}", table.id), e))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let mut values = row.unwrap();
        let hash = match values.pop() {
            Some(Value::UInt(h)) => h,
            Some(Value::Int(h)) => h as u64,
            other => {
                return Err(crate::Error::Internal(format!(
                    "row hash of {}: {other:?}",
                    table.id
                )))
            }
        };
        let id = values
            .iter()
            .map(|v| v.as_sql(false))
            .collect::<Vec<_>>()
            .join(",");
        out.insert(id, (values, hash));
    }
    Ok(out)
}

/// Keys present on one side only, or whose rows hash differently.
pub fn differing_keys(
    source: &BTreeMap<String, (Vec<Value>, u64)>,
    target: &BTreeMap<String, (Vec<Value>, u64)>,
) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for (id, (values, hash)) in source {
        if target.get(id).is_none_or(|(_, h)| h != hash) {
            out.push(values.clone());
        }
    }
    for (id, (values, _)) in target {
        if !source.contains_key(id) {
            out.push(values.clone());
        }
    }
    out
}

/// Keys per statement when reading rows by key.
const KEYS_PER_READ: usize = 500;

/// Reads the rows of `table` whose `key` columns equal one of `keys`.
pub async fn fetch_keys(
    ep: &Endpoint,
    conn: &mut Conn,
    table: &Arc<TableSchema>,
    key: &[String],
    keys: &[Vec<Value>],
) -> Result<RecordBatch> {
    let mut decoder = RowDecoder::new(table.clone());
    let what = format!("reading rows of {} by key", table.id);
    let one = format!(
        "({})",
        key.iter()
            .map(|k| format!("{} <=> ?", quote_ident(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    for group in keys.chunks(KEYS_PER_READ) {
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            column_list(table),
            table.id.quoted(),
            vec![one.as_str(); group.len()].join(" OR ")
        );
        let params: Vec<Value> = group.iter().flatten().cloned().collect();
        let mut result = conn
            .exec_iter(sql, params)
            .await
            .map_err(|e| ep.error(what.clone(), e))?;
        while let Some(row) = result.next().await.map_err(|e| ep.error(what.clone(), e))? {
            decoder.push(row.unwrap())?;
        }
    }
    decoder.finish()
}

/// A whole row as one string for hashing, unambiguous and exact. Values
/// are joined by `#`; a value that may hold a `#` (text, bytes) comes with
/// its length in bytes first, so no value can pass for another across a
/// column boundary (`('p#', 'q')` and `('p', '#q')` differ); NULL is `N`,
/// which no number, date or length is. FLOAT enters through its exact
/// DOUBLE (the server prints a FLOAT with six digits, a DOUBLE with all it
/// needs to round-trip), BIT as its number; text of a character set other
/// than utf8mb4 as its own bytes (the binary separator would otherwise
/// convert it), and all text as bytes when the table mixes collations.
/// Collations play no part.
fn row_text(table: &TableSchema) -> String {
    // Text of two collations in one CONCAT_WS is an error ("Illegal mix of
    // collations"): such a table's text goes in as bytes.
    let collations: std::collections::BTreeSet<Option<&str>> = table
        .columns
        .iter()
        .filter(|c| c.logical.is_text())
        .map(|c| c.collation.as_deref())
        .collect();
    let mixed = collations.len() > 1;
    let parts: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let q = quote_ident(&c.name);
            let null = |e: String| {
                if c.nullable {
                    format!("IFNULL({e}, 'N')")
                } else {
                    e
                }
            };
            match c.logical {
                LogicalType::Float => null(format!("CAST({q} AS DOUBLE)")),
                LogicalType::Bit { .. } => null(format!("{q} + 0")),
                t if t.is_text() || matches!(t, LogicalType::Bytes | LogicalType::Geometry) => {
                    let value = match c.charset.as_deref() {
                        None | Some("utf8mb4" | "utf8mb3" | "utf8" | "binary") if !mixed => {
                            q.clone()
                        }
                        _ => format!("CAST({q} AS BINARY)"),
                    };
                    // NULL: `N` for the length, and the value is skipped.
                    format!("{}, {value}", null(format!("OCTET_LENGTH({q})")))
                }
                _ => null(q),
            }
        })
        .collect();
    format!("CONCAT_WS(_binary'#', {})", parts.join(", "))
}

/// A value the target cannot say: a column an archive's older files lack
/// (added by a schema change after the row was archived; the server filled
/// it in without a change in the binlog). It matches any source value.
pub const UNKNOWN: &str = "\u{0}(not in the archive)";

fn same(source: &str, target: &str) -> bool {
    source == target || target == UNKNOWN
}

pub fn same_row(source: &[String], target: &[String]) -> bool {
    source.len() == target.len() && source.iter().zip(target).all(|(s, t)| same(s, t))
}

/// Values longer than this are cut in reports.
const SHOWN: usize = 120;

fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

/// Every difference between the source's rows and the target's rows of one
/// chunk of `table` (the target's shape).
pub fn diff(table: &TableSchema, source: &Rows, target: &Rows) -> Vec<Difference> {
    let key_of = |values: &[String]| -> BTreeMap<String, String> {
        let idx: Vec<usize> = if table.key.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            table.key.clone()
        };
        idx.iter()
            .map(|&i| (table.columns[i].name.clone(), shown(&values[i])))
            .collect()
    };
    let mut out = Vec::new();
    for (k, s) in source {
        match target.get(k) {
            None => out.extend((0..s.count).map(|_| Difference {
                kind: DiffKind::Missing,
                key: key_of(&s.values),
                columns: BTreeMap::new(),
                source: Some(s.values.clone()),
                target: None,
            })),
            Some(t) if !same_row(&s.values, &t.values) => {
                let columns = table
                    .columns
                    .iter()
                    .zip(s.values.iter().zip(&t.values))
                    .filter(|(_, (a, b))| !same(a, b))
                    .map(|(c, (a, b))| (c.name.clone(), [shown(a), shown(b)]))
                    .collect();
                out.push(Difference {
                    kind: DiffKind::Different,
                    key: key_of(&s.values),
                    columns,
                    source: Some(s.values.clone()),
                    target: Some(t.values.clone()),
                });
            }
            Some(t) => {
                // Tables without a key: the same row, maybe not as often.
                let kind = if s.count > t.count {
                    DiffKind::Missing
                } else {
                    DiffKind::Extra
                };
                out.extend((0..s.count.abs_diff(t.count)).map(|_| Difference {
                    kind,
                    key: key_of(&s.values),
                    columns: BTreeMap::new(),
                    source: Some(s.values.clone()),
                    target: Some(t.values.clone()),
                }));
            }
        }
    }
    for (k, t) in target {
        if !source.contains_key(k) {
            out.extend((0..t.count).map(|_| Difference {
                kind: DiffKind::Extra,
                key: key_of(&t.values),
                columns: BTreeMap::new(),
                source: None,
                target: Some(t.values.clone()),
            }));
        }
    }
    if table.key.is_empty() {
        pair_unknowns(&mut out);
    }
    out
}

/// A table without a key is keyed by whole rows, so a row with a value the
/// archive cannot say shows up as one missing and one extra row: such
/// pairs that agree on every known value are the same row.
fn pair_unknowns(diffs: &mut Vec<Difference>) {
    let mut i = 0;
    while i < diffs.len() {
        let partner = (diffs[i].kind == DiffKind::Extra)
            .then(|| diffs[i].target.as_deref())
            .flatten()
            .filter(|t| t.iter().any(|v| v == UNKNOWN))
            .and_then(|t| {
                diffs.iter().position(|d| {
                    d.kind == DiffKind::Missing
                        && d.source.as_deref().is_some_and(|s| same_row(s, t))
                })
            });
        match partner {
            Some(j) => {
                let (a, b) = (i.max(j), i.min(j));
                diffs.remove(a);
                diffs.remove(b);
                i = b;
            }
            None => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ColumnDef, KeyKind, TableDdl, TableId};
    use crate::types::{arrow_schema, LogicalType};

    fn table(key: Vec<usize>) -> TableSchema {
        let col = |name: &str| ColumnDef {
            name: name.into(),
            logical: LogicalType::Int {
                bytes: 4,
                unsigned: false,
            },
            column_type: "int(11)".into(),
            nullable: true,
            charset: None,
            collation: None,
        };
        let columns = vec![col("id"), col("v")];
        TableSchema {
            id: TableId::new("d", "t"),
            arrow: arrow_schema(&columns),
            columns,
            key_kind: if key.is_empty() {
                KeyKind::None
            } else {
                KeyKind::Primary
            },
            key,
            ddl: TableDdl::default(),
            estimated_rows: 0,
            constraints: Default::default(),
        }
    }

    fn rows(t: &TableSchema, list: &[[&str; 2]]) -> Rows {
        let mut out = Rows::new();
        for r in list {
            let values: Vec<String> = r.iter().map(|s| s.to_string()).collect();
            let key = if t.key.is_empty() {
                values.join(",")
            } else {
                values[0].clone()
            };
            out.entry(key)
                .and_modify(|x: &mut Row| x.count += 1)
                .or_insert(Row { values, count: 1 });
        }
        out
    }

    #[test]
    fn finds_missing_extra_and_changed_rows() {
        let t = table(vec![0]);
        let src = rows(&t, &[["1", "10"], ["2", "20"], ["3", "NULL"]]);
        let dst = rows(&t, &[["2", "20"], ["3", "0"], ["4", "40"]]);
        let d = diff(&t, &src, &dst);
        let kinds: Vec<(DiffKind, &str)> =
            d.iter().map(|x| (x.kind, x.key["id"].as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (DiffKind::Missing, "1"),
                (DiffKind::Different, "3"),
                (DiffKind::Extra, "4")
            ]
        );
        assert_eq!(d[1].columns["v"], ["NULL".to_string(), "0".to_string()]);
        assert!(diff(&t, &src, &src).is_empty());
    }

    #[test]
    fn values_an_archive_cannot_say_match_anything() {
        let t = table(vec![0]);
        let src = rows(&t, &[["1", "94"]]);
        let dst = rows(&t, &[["1", UNKNOWN]]);
        assert!(diff(&t, &src, &dst).is_empty());
        let keyless = table(vec![]);
        let src = rows(&keyless, &[["1", "94"], ["2", "94"]]);
        let dst = rows(&keyless, &[["1", UNKNOWN], ["3", UNKNOWN]]);
        let kinds: Vec<DiffKind> = diff(&keyless, &src, &dst).iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            vec![DiffKind::Missing, DiffKind::Extra],
            "row 2 missing, row 3 extra"
        );
    }

    #[test]
    fn tables_without_a_key_compare_as_multisets() {
        let t = table(vec![]);
        let src = rows(&t, &[["1", "1"], ["1", "1"], ["2", "2"]]);
        let dst = rows(&t, &[["1", "1"], ["2", "2"], ["2", "2"]]);
        let d = diff(&t, &src, &dst);
        let kinds: Vec<DiffKind> = d.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, vec![DiffKind::Missing, DiffKind::Extra]);
    }
}
