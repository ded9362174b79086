//! Batches into multi-row `INSERT` statements, each below a size limit.

use crate::event::{quote_ident, ChangeBatch, Op, TableId};
use crate::mysql::encode::ColumnEncoder;
use crate::{Error, Result};

/// `INSERT INTO target (cols) VALUES (...), (...)` statements for the rows of
/// `batch`, each at most `limit` bytes unless one row alone is larger.
pub fn statements(batch: &ChangeBatch, target: &TableId, limit: usize) -> Result<Vec<String>> {
    let table = &batch.table;
    if batch
        .events
        .iter()
        .any(|e| !matches!(e.op, Op::Read | Op::Insert))
    {
        return Err(Error::Internal(format!(
            "{}: the MySQL sink applies only inserts and snapshot rows in this version",
            table.id
        )));
    }
    let Some(after) = &batch.after else {
        return Ok(Vec::new());
    };
    let encoders = table
        .columns
        .iter()
        .zip(after.columns())
        .map(|(c, a)| {
            ColumnEncoder::new(a, c.source_type)
                .map_err(|e| Error::Data(format!("{} column `{}`: {e}", table.id, c.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let head = format!(
        "INSERT INTO {} ({}) VALUES ",
        target.quoted(),
        table
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut out = Vec::new();
    let mut sql = String::with_capacity(limit.min(1 << 20));
    let mut row_sql = String::new();
    for row in 0..after.num_rows() {
        row_sql.clear();
        row_sql.push('(');
        for (i, enc) in encoders.iter().enumerate() {
            if i > 0 {
                row_sql.push(',');
            }
            enc.write(row, &mut row_sql);
        }
        row_sql.push(')');
        if !sql.is_empty() && sql.len() + row_sql.len() + 1 > limit {
            out.push(std::mem::take(&mut sql));
        }
        if sql.is_empty() {
            sql.push_str(&head);
        } else {
            sql.push(',');
        }
        sql.push_str(&row_sql);
    }
    if !sql.is_empty() {
        out.push(sql);
    }
    Ok(out)
}
