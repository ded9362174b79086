//! An archive's table as it stands: its committed files replayed in
//! order (snapshot rows, then inserts, updates and deletes by key), in the
//! form [`super::rows`] compares. A table without a key has no key to
//! update by: an update replaces the row equal to its before image, which
//! the archive holds only with `before_images: true`.

use super::rows::{self, Row, Rows};
use crate::event::{Op, TableSchema};
use crate::view::LoggedBatch;
use crate::Result;

/// An archive's table as it stands.
pub struct Replayed {
    pub rows: Rows,
    /// Rows with columns their files lack ([`rows::UNKNOWN`]).
    pub partial_rows: usize,
}

/// Replays `batches` (committed files of `table`, oldest first) into the
/// table's rows; `Ok(Err(why))` when the archive cannot say (an update of a
/// table without a key, in files without before images).
pub fn replay(
    table: &TableSchema,
    batches: &[LoggedBatch],
) -> Result<std::result::Result<Replayed, String>> {
    let mut state = Rows::new();
    let keyless = table.key.is_empty();
    for batch in batches {
        let ops = &batch.ops;
        let missing = &batch.missing;
        let mut after = rows::literals(table, &batch.image)?;
        if !missing.is_empty() {
            // Added after these rows were archived: the server filled them
            // in without a change in the binlog.
            for (key, values) in after.iter_mut() {
                for &i in missing {
                    values[i] = rows::UNKNOWN.to_string();
                }
                if table.key.is_empty() {
                    *key = values.join(",");
                }
            }
        }
        let updates = ops.contains(&Op::Update);
        let before = if keyless && updates {
            let Some(before) = &batch.before else {
                return Ok(Err(format!(
                    "{} has no key and its archive holds updates without their old rows; write the archive with `before_images: true` to verify it",
                    table.id
                )));
            };
            Some(rows::literals(table, before)?)
        } else {
            None
        };
        for (r, (key, values)) in after.into_iter().enumerate() {
            match ops[r] {
                Op::Delete if keyless => remove_row(&mut state, &key, &values),
                Op::Delete => remove_one(&mut state, &key),
                Op::Update if keyless => {
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
