//! A Parquet archive's table as it stands: its committed files replayed in
//! order (snapshot rows, then inserts, updates and deletes by key), in the
//! form [`super::rows`] compares. A table without a key has no key to
//! update by: an update replaces the row equal to its before image, which
//! the archive holds only with `before_images: true`.

use std::sync::Arc;

use arrow_array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema, TimeUnit};

use super::rows::{self, Row, Rows};
use crate::event::TableSchema;
use crate::sinks::parquet::files::{BEFORE, OP};
use crate::{Error, Result};

/// An archive's table as it stands.
pub struct Replayed {
    pub rows: Rows,
    /// Rows with columns their files lack ([`rows::UNKNOWN`]).
    pub partial_rows: usize,
}

/// Replays `batches` (files of `table`, oldest first) into the table's
/// rows; `Ok(Err(why))` when the archive cannot say (an update of a table
/// without a key, in files without before images).
pub fn replay(
    table: &TableSchema,
    batches: &[RecordBatch],
) -> Result<std::result::Result<Replayed, String>> {
    let mut state = Rows::new();
    let keyless = table.key.is_empty();
    for batch in batches {
        let ops = batch
            .column_by_name(OP)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| {
                Error::Data(format!("archive file of {} has no `{OP}` column", table.id))
            })?
            .clone();
        let missing: Vec<usize> = (0..table.columns.len())
            .filter(|&i| batch.column_by_name(&table.columns[i].name).is_none())
            .collect();
        let mut after = rows::literals(table, &image(table, batch, "")?)?;
        if !missing.is_empty() {
            // Added after these rows were archived: the server filled them
            // in without a change in the binlog.
            for (key, values) in after.iter_mut() {
                for &i in &missing {
                    values[i] = rows::UNKNOWN.to_string();
                }
                if table.key.is_empty() {
                    *key = values.join(",");
                }
            }
        }
        let updates = (0..ops.len()).any(|r| ops.value(r) == "update");
        let before = if keyless && updates {
            if !(0..table.columns.len()).all(|i| {
                batch
                    .column_by_name(&format!("{BEFORE}{}", table.columns[i].name))
                    .is_some()
            }) {
                return Ok(Err(format!(
                    "{} has no key and its archive holds updates without their old rows; write the archive with `before_images: true` to verify it",
                    table.id
                )));
            }
            Some(rows::literals(table, &image(table, batch, BEFORE)?)?)
        } else {
            None
        };
        for (r, (key, values)) in after.into_iter().enumerate() {
            match ops.value(r) {
                "delete" if keyless => remove_row(&mut state, &key, &values),
                "delete" => remove_one(&mut state, &key),
                "update" if keyless => {
                    if let Some((old, old_values)) = before.as_ref().and_then(|b| b.get(r)) {
                        remove_row(&mut state, old, old_values);
                    }
                    add_one(&mut state, key, values);
                }
                _ if keyless => add_one(&mut state, key, values),
                _ => {
                    state.insert(key, Row { values, count: 1 });
                }
            }
        }
    }
    let partial_rows = state
        .values()
        .filter(|r| r.values.iter().any(|v| v == rows::UNKNOWN))
        .map(|r| r.count as usize)
        .sum();
    Ok(Ok(Replayed {
        rows: state,
        partial_rows,
    }))
}

fn remove_one(state: &mut Rows, key: &str) {
    let gone = match state.get_mut(key) {
        Some(row) if row.count > 1 => {
            row.count -= 1;
            false
        }
        Some(_) => true,
        None => false,
    };
    if gone {
        state.remove(key);
    }
}

/// Removes one occurrence of a row of a table without a key: the row with
/// exactly these values, else one that agrees with them on every value
/// the archive knows (rows archived before a column was added).
fn remove_row(state: &mut Rows, key: &str, values: &[String]) {
    if state.contains_key(key) {
        return remove_one(state, key);
    }
    let partial = state
        .iter()
        .find(|(_, row)| {
            row.values.len() == values.len()
                && row
                    .values
                    .iter()
                    .zip(values)
                    .all(|(known, v)| known == v || known == rows::UNKNOWN)
        })
        .map(|(k, _)| k.clone());
    if let Some(k) = partial {
        remove_one(state, &k);
    }
}

fn add_one(state: &mut Rows, key: String, values: Vec<String>) {
    state
        .entry(key)
        .and_modify(|row| row.count += 1)
        .or_insert(Row { values, count: 1 });
}

/// The row image columns of a file batch in `table`'s current shape (the
/// after image, or with `prefix` the before image): by name, NULL for
/// columns older files lack, TIME back from the file's microsecond integers.
fn image(table: &TableSchema, batch: &RecordBatch, prefix: &str) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for field in table.arrow.fields() {
        let want = field.data_type();
        let col = match batch.column_by_name(&format!("{prefix}{}", field.name())) {
            None => new_null_array(want, n),
            Some(c) if c.data_type() == want => c.clone(),
            Some(c) if matches!(want, DataType::Duration(TimeUnit::Microsecond)) && c.data_type() == &DataType::Int64 => {
                let data = c
                    .to_data()
                    .into_builder()
                    .data_type(want.clone())
                    .build()
                    .map_err(|e| Error::Internal(format!("TIME column `{}`: {e}", field.name())))?;
                arrow_array::make_array(data)
            }
            Some(c) => {
                return Err(Error::Data(format!(
                    "archive column `{}` of {} holds {:?} where the table now has {:?}; files written before a type change cannot be compared",
                    field.name(),
                    table.id,
                    c.data_type(),
                    want
                )))
            }
        };
        columns.push(col);
    }
    // Nullable throughout: rows older than an added NOT NULL column have none.
    let schema = Schema::new(
        table
            .arrow
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns)
        .map_err(|e| Error::Internal(format!("{}: archive rows: {e}", table.id)))
}
