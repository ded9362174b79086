//! A table split into ranges of its identifying key, so that it is read
//! (the snapshot) or compared (`sluice verify`) piece by piece, in parallel.
//!
//! Ranges are `(lower, upper]` on a prefix of the key tuple, with bounds
//! taken from the source. The first range has no lower bound and the last
//! no upper bound, so every row is in exactly one range, including rows
//! outside the source's range on a target.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Value};

use crate::connect::Endpoint;
use crate::event::{quote_ident, TableSchema};
use crate::types::LogicalType;
use crate::Result;

/// One key range of a table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// Exclusive lower bound (the first key columns' values, in key order);
    /// `None`: from the start.
    pub lower: Option<Vec<Value>>,
    /// Inclusive upper bound; `None`: to the end.
    pub upper: Option<Vec<Value>>,
}

/// How a table may be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// By value of the key's first column when it is an integer, from its
    /// MIN and MAX (no scan); otherwise one range.
    ByValue,
    /// A single integer key by value; any other key by walking its index,
    /// in ranges of `rows` rows (a first column with few values cannot
    /// make ranges of some size by value).
    ByIndex,
}

impl std::fmt::Display for Chunk {
    /// `(lower, upper]` of the key, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn bound(b: &Option<Vec<Value>>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let Some(values) = b else { return Ok(()) };
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                match v {
                    Value::Int(i) => write!(f, "{i}")?,
                    Value::UInt(u) => write!(f, "{u}")?,
                    Value::Bytes(b) => write!(f, "'{}'", String::from_utf8_lossy(b))?,
                    other => write!(f, "{other:?}")?,
                }
            }
            Ok(())
        }
        f.write_str("(")?;
        bound(&self.lower, f)?;
        f.write_str(" .. ")?;
        bound(&self.upper, f)?;
        f.write_str("]")
    }
}

impl Chunk {
    /// The whole table, for tables without a key.
    pub fn all() -> Chunk {
        Chunk::default()
    }

    /// ` WHERE ...` (or nothing) selecting this range of `key` columns, and
    /// its parameters.
    pub fn filter(&self, key: &[String]) -> (String, Params) {
        let mut parts = Vec::new();
        let mut params = Vec::new();
        if let Some(lo) = &self.lower {
            parts.push(compare(key, lo, ">", ">", &mut params));
        }
        if let Some(hi) = &self.upper {
            parts.push(compare(key, hi, "<", "<=", &mut params));
        }
        if parts.is_empty() {
            return (String::new(), Params::Empty);
        }
        (
            format!(" WHERE {}", parts.join(" AND ")),
            Params::Positional(params),
        )
    }
}

/// `key OP bound` on a tuple, spelled out so every server's range optimizer
/// uses the index: `(a > ?) OR (a = ? AND b >= ?)`. `last` is the operator
/// for the last column (`>`/`<` make the comparison strict, `<=` inclusive).
fn compare(
    key: &[String],
    bound: &[Value],
    op: &str,
    last: &str,
    params: &mut Vec<Value>,
) -> String {
    // A bound on the key's first columns compares those only.
    let key = &key[..bound.len().min(key.len())];
    let mut alts = Vec::new();
    for i in 0..key.len() {
        let mut conj = Vec::new();
        for j in 0..i {
            conj.push(format!("{} = ?", quote_ident(&key[j])));
            params.push(bound[j].clone());
        }
        let o = if i + 1 == key.len() { last } else { op };
        conj.push(format!("{} {o} ?", quote_ident(&key[i])));
        params.push(bound[i].clone());
        alts.push(format!("({})", conj.join(" AND ")));
    }
    format!("({})", alts.join(" OR "))
}

/// The names of `table`'s key columns.
pub fn key_names(table: &TableSchema) -> Vec<String> {
    table
        .key
        .iter()
        .map(|&i| table.columns[i].name.clone())
        .collect()
}

/// Splits `table` (on the source, or within the snapshot's transaction)
/// into ranges of about `rows` rows each; a table without a key is one
/// range.
pub async fn plan(
    ep: &Endpoint,
    conn: &mut Conn,
    table: &TableSchema,
    rows: u64,
    split: Split,
) -> Result<Vec<Chunk>> {
    let key = key_names(table);
    let Some(&first) = table.key.first() else {
        return Ok(vec![Chunk::all()]);
    };
    let integer = matches!(table.columns[first].logical, LogicalType::Int { .. });
    match split {
        Split::ByValue if integer => return plan_integer(ep, conn, table, &key[0], rows).await,
        Split::ByValue => return Ok(vec![Chunk::all()]),
        Split::ByIndex if integer && key.len() == 1 => {
            return plan_integer(ep, conn, table, &key[0], rows).await
        }
        Split::ByIndex => {}
    }
    let cols = key
        .iter()
        .map(|k| quote_ident(k))
        .collect::<Vec<_>>()
        .join(", ");
    let mut chunks = Vec::new();
    let mut lower: Option<Vec<Value>> = None;
    loop {
        let open = Chunk {
            lower: lower.clone(),
            upper: None,
        };
        let (filter, params) = open.filter(&key);
        let sql = format!(
            "SELECT {cols} FROM {}{filter} ORDER BY {cols} LIMIT 1 OFFSET {}",
            table.id.quoted(),
            rows.max(1) - 1
        );
        let bound: Option<mysql_async::Row> = conn
            .exec_first(sql, params)
            .await
            .map_err(|e| ep.error(format!("splitting {} into key ranges", table.id), e))?;
        match bound {
            Some(row) => {
                let upper = row.unwrap();
                chunks.push(Chunk {
                    lower: lower.take(),
                    upper: Some(upper.clone()),
                });
                lower = Some(upper);
            }
            None => {
                chunks.push(open);
                return Ok(chunks);
            }
        }
    }
}

/// A key whose first column is an integer is split by that column's value,
/// from its MIN and MAX, without reading the rows: ranges at least `rows` keys wide (wider for sparse
/// keys, by the table's row estimate), open-ended at both ends.
async fn plan_integer(
    ep: &Endpoint,
    conn: &mut Conn,
    table: &TableSchema,
    key: &str,
    rows: u64,
) -> Result<Vec<Chunk>> {
    let k = quote_ident(key);
    let sql = format!("SELECT MIN({k}), MAX({k}) FROM {}", table.id.quoted());
    let bounds: Option<(Value, Value)> = conn
        .query_first(sql)
        .await
        .map_err(|e| ep.error(format!("finding the key range of {}", table.id), e))?;
    let as_int = |v: &Value| match v {
        Value::Int(i) => Some(*i as i128),
        Value::UInt(u) => Some(*u as i128),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    };
    let Some((lo, hi)) = bounds.and_then(|(a, b)| Some((as_int(&a)?, as_int(&b)?))) else {
        return Ok(vec![Chunk::all()]);
    };
    // Sparse keys would make ranges of a few rows each: as many ranges as
    // the row estimate asks for, at most.
    let rows = rows.max(1) as i128;
    let pieces = (table.estimated_rows as i128 / rows).max(1);
    let width = rows.max((hi - lo + 1 + pieces - 1) / pieces);
    Ok(integer_ranges(lo, hi, width))
}

/// `(.., lo + w - 1], (lo + w - 1, lo + 2w - 1], ..., (.., ..)`: the first
/// and last ranges open, so keys outside `lo..=hi` on either side are seen.
fn integer_ranges(lo: i128, hi: i128, width: i128) -> Vec<Chunk> {
    let value = |v: i128| {
        if v < 0 {
            Value::Int(v as i64)
        } else {
            Value::UInt(v as u64)
        }
    };
    let mut chunks = Vec::new();
    let mut lower: Option<Vec<Value>> = None;
    let mut upper = lo + width - 1;
    while upper < hi {
        chunks.push(Chunk {
            lower: lower.take(),
            upper: Some(vec![value(upper)]),
        });
        lower = Some(vec![value(upper)]);
        upper += width;
    }
    chunks.push(Chunk { lower, upper: None });
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_split_by_value() {
        let c = integer_ranges(1, 25, 10);
        let bounds: Vec<(Option<Vec<Value>>, Option<Vec<Value>>)> =
            c.into_iter().map(|c| (c.lower, c.upper)).collect();
        let v = |n: u64| Some(vec![Value::UInt(n)]);
        assert_eq!(bounds, vec![(None, v(10)), (v(10), v(20)), (v(20), None)]);
        assert_eq!(integer_ranges(-5, -5, 10).len(), 1);
    }

    #[test]
    fn filters_spell_out_tuple_comparisons() {
        let key = vec!["a".to_string(), "b".to_string()];
        let c = Chunk {
            lower: Some(vec![Value::Int(1), Value::Int(2)]),
            upper: Some(vec![Value::Int(5), Value::Int(0)]),
        };
        let (sql, params) = c.filter(&key);
        assert_eq!(
            sql,
            " WHERE ((`a` > ?) OR (`a` = ? AND `b` > ?)) AND ((`a` < ?) OR (`a` = ? AND `b` <= ?))"
        );
        let Params::Positional(p) = params else {
            panic!("positional parameters expected")
        };
        assert_eq!(
            p,
            vec![1, 1, 2, 5, 5, 0]
                .into_iter()
                .map(Value::Int)
                .collect::<Vec<_>>()
        );
        assert_eq!(Chunk::all().filter(&key).0, "");
        let single = Chunk {
            lower: None,
            upper: Some(vec![Value::Int(9)]),
        };
        assert_eq!(single.filter(&["id".to_string()]).0, " WHERE ((`id` <= ?))");
    }
}
