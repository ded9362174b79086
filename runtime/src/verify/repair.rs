//! `sluice verify --repair`: makes the target's rows of a chunk equal the
//! source's, with the literals the comparison found, in one transaction.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::rows::{Difference, Kind};
use crate::event::{quote_ident, TableSchema};
use crate::mysql::connect::Endpoint;
use crate::mysql::encode::column_list;
use crate::Result;

/// Rows per REPLACE statement.
const ROWS_PER_STATEMENT: usize = 500;

/// The statements that turn the target's rows into the source's: missing
/// and different rows are replaced, extra rows deleted (one occurrence per
/// difference, for tables without a key).
pub fn statements(table: &TableSchema, diffs: &[Difference]) -> Vec<String> {
    let mut out = Vec::new();
    let replace: Vec<&Vec<String>> = diffs
        .iter()
        .filter(|d| d.kind != Kind::Extra)
        .filter_map(|d| d.source.as_ref())
        .collect();
    for group in replace.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = group.iter().map(|v| format!("({})", v.join(","))).collect();
        out.push(format!(
            "REPLACE INTO {} ({}) VALUES {}",
            table.id.quoted(),
            column_list(table),
            rows.join(",")
        ));
    }
    let identity: Vec<usize> = if table.key.is_empty() {
        (0..table.columns.len()).collect()
    } else {
        table.key.clone()
    };
    for d in diffs.iter().filter(|d| d.kind == Kind::Extra) {
        let Some(values) = &d.target else { continue };
        let cond: Vec<String> = identity
            .iter()
            .map(|&i| format!("{} <=> {}", quote_ident(&table.columns[i].name), values[i]))
            .collect();
        out.push(format!(
            "DELETE FROM {} WHERE {} LIMIT 1",
            table.id.quoted(),
            cond.join(" AND ")
        ));
    }
    out
}

/// Applies [`statements`] on the target in one transaction.
pub async fn apply(
    ep: &Endpoint,
    conn: &mut Conn,
    table: &TableSchema,
    diffs: &[Difference],
) -> Result<()> {
    let what = format!("repairing {}", table.id);
    conn.query_drop("START TRANSACTION")
        .await
        .map_err(|e| ep.error(what.clone(), e))?;
    for sql in statements(table, diffs) {
        if let Err(e) = conn.query_drop(&sql).await {
            let _ = conn.query_drop("ROLLBACK").await;
            return Err(ep.error(what, e));
        }
    }
    conn.query_drop("COMMIT")
        .await
        .map_err(|e| ep.error(what, e))
}
