//! Batches into multi-row `INSERT` statements, each below a size limit.

use crate::encode::{column_list, row_encoders, write_row, Chunked};
use crate::event::{ChangeBatch, TableId};
use crate::Result;

/// `INSERT INTO target (cols) VALUES (...), (...)` statements for the rows of
/// a snapshot batch, each at most `limit` bytes unless one row alone is larger.
pub fn statements(batch: &ChangeBatch, target: &TableId, limit: usize) -> Result<Vec<String>> {
    let Some(after) = super::load_data::snapshot_rows(batch)? else {
        return Ok(Vec::new());
    };
    let encoders = row_encoders(&batch.table, after)?;
    let head = format!(
        "INSERT INTO {} ({}) VALUES ",
        target.quoted(),
        column_list(&batch.table)
    );
    let mut out = Chunked::new(head, "", limit);
    let mut row_sql = String::new();
    for row in 0..after.num_rows() {
        row_sql.clear();
        write_row(&encoders, row, &mut row_sql);
        out.push(&row_sql);
    }
    Ok(out.finish())
}
