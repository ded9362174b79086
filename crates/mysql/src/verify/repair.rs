//! `sluice verify --repair`: makes the target's rows of a chunk equal the
//! source's, with the literals the comparison found, in one transaction.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::connect::Endpoint;
use crate::encode::{column_list, push_exact_match};
use crate::event::TableSchema;
use crate::Result;
use sluice_core::verify::{DiffKind, Difference};

/// Rows per REPLACE statement.
const ROWS_PER_STATEMENT: usize = 500;

/// The statements that turn the target's rows into the source's: extra
/// rows deleted first (one occurrence per difference, for tables without a
/// key), matched byte for byte, then missing and different rows replaced.
/// In the other order, a row whose key differs only in case from an extra
/// one (`'c00777'` against `'C00777'` under a `_ci` collation) would be
/// written and then deleted as the extra row.
pub fn statements(table: &TableSchema, diffs: &[Difference]) -> Vec<String> {
    let mut out = Vec::new();
    let keyless = table.key.is_empty();
    let identity: Vec<usize> = if keyless {
        (0..table.columns.len()).collect()
    } else {
        table.key.clone()
    };
    for d in diffs.iter().filter(|d| d.kind == DiffKind::Extra) {
        let Some(values) = &d.target else { continue };
        let mut cond = String::new();
        for (n, &i) in identity.iter().enumerate() {
            if n > 0 {
                cond.push_str(" AND ");
            }
            let column = &table.columns[i];
            if !keyless {
                // The key's own comparison finds the row by its index...
                push_exact_match(&mut cond, column, &values[i], false);
                cond.push_str(" AND ");
            }
            // ...and only the row with exactly these bytes is deleted.
            push_exact_match(&mut cond, column, &values[i], true);
        }
        out.push(format!(
            "DELETE FROM {} WHERE {cond} LIMIT 1",
            table.id.quoted()
        ));
    }
    let replace: Vec<&Vec<String>> = diffs
        .iter()
        .filter(|d| d.kind != DiffKind::Extra)
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
