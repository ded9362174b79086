//! Which apply lane gets which row change.
//!
//! A sink that applies changes over several connections ("lanes") may
//! reorder changes that go to different lanes. Two changes must stay in
//! source order, so in one lane, whenever they can touch the same row or
//! act on each other:
//! - **the same key under the column's collation**: `'k1'` and `'K1'` are
//!   one row in a `_ci` column, `'x'` and `'x '` one row under PAD SPACE.
//!   Key columns whose equality is byte equality (integers, temporal
//!   types, binary strings, `_nopad_bin`) are hashed by their bytes, `_bin`
//!   text without its trailing spaces; columns compared by a collation's
//!   rules (case, accents, expansions such as `ß` = `ss`) take no part in
//!   the hash, so values the server holds equal always share a lane;
//! - **another unique key**: a write of one row can collide with another
//!   row on any unique index (a REPLACE would delete it), so every change
//!   of a table with a second unique index goes to one lane;
//! - **foreign keys**: a change of a parent row cascades to child rows, and
//!   a child row must follow its parent; every change of tables a foreign
//!   key joins goes to one lane, applied one by one in source order;
//! - **tables without a key**: rows are matched by their whole image, in
//!   source order, one lane per table.
//!
//! Lanes are chosen by a fixed hash (FNV-1a), so a restarted pipeline puts
//! every change in the lane that applied it before: each lane skips what
//! its own checkpoint covers.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::event::{Equality, TableSchema};

/// How one table's changes are placed.
#[derive(Debug, Clone)]
pub struct Route {
    /// Changes are applied one by one in source order (foreign keys,
    /// tables without a key); otherwise a lane may merge changes by key.
    pub ordered: bool,
    /// The key columns whose values choose the lane, and how each compares;
    /// empty when the whole table shares one lane.
    hashed: Vec<(usize, Equality)>,
    /// The hash of what decides the lane besides the hashed columns.
    seed: u64,
}

impl Route {
    /// The route for `table`'s changes.
    pub fn of(table: &TableSchema) -> Route {
        if table.constraints.foreign_key {
            // One lane for every table a foreign key joins: a cascade may
            // reach any of them.
            return Route {
                ordered: true,
                hashed: Vec::new(),
                seed: fnv(FNV_SEED, b"\x00foreign keys"),
            };
        }
        let seed = fnv(
            fnv(FNV_SEED, table.id.database.as_bytes()),
            format!("\x00{}", table.id.name).as_bytes(),
        );
        let ordered = table.key.is_empty();
        let hashed = if ordered || table.has_other_unique_keys() {
            Vec::new()
        } else {
            table
                .key
                .iter()
                .map(|&k| (k, table.columns[k].equality()))
                .filter(|(_, e)| *e != Equality::Collation)
                .collect()
        };
        Route {
            ordered,
            hashed,
            seed,
        }
    }

    /// The lane of row `row` of `image`, among `lanes`.
    pub fn lane(&self, image: &RecordBatch, row: usize, lanes: usize) -> usize {
        let mut h = self.seed;
        for &(col, eq) in &self.hashed {
            h = hash_value(h, image.column(col).as_ref(), row, eq);
        }
        (h % lanes.max(1) as u64) as usize
    }

    /// Whether every change of the table goes to one lane.
    pub fn whole_table(&self) -> bool {
        self.hashed.is_empty()
    }
}

/// Routes per table definition (an `Arc` the source shares), computed once.
#[derive(Default)]
pub struct Routes {
    known: HashMap<usize, (Arc<TableSchema>, Route)>,
}

impl Routes {
    pub fn get(&mut self, table: &Arc<TableSchema>) -> &Route {
        let id = Arc::as_ptr(table) as usize;
        // The entry holds the Arc, so its address is not reused while known.
        &self
            .known
            .entry(id)
            .or_insert_with(|| (table.clone(), Route::of(table)))
            .1
    }
}

const FNV_SEED: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Mixes one value into `h`: values the server holds equal mix equally.
fn hash_value(h: u64, a: &dyn Array, row: usize, eq: Equality) -> u64 {
    if a.is_null(row) {
        return fnv(h, &[0]);
    }
    let h = fnv(h, &[1]);
    match a.data_type() {
        DataType::Int8 => fnv(
            h,
            &(a.as_primitive::<Int8Type>().value(row) as i64).to_le_bytes(),
        ),
        DataType::Int16 => fnv(
            h,
            &(a.as_primitive::<Int16Type>().value(row) as i64).to_le_bytes(),
        ),
        DataType::Int32 => fnv(
            h,
            &(a.as_primitive::<Int32Type>().value(row) as i64).to_le_bytes(),
        ),
        DataType::Int64 => fnv(h, &a.as_primitive::<Int64Type>().value(row).to_le_bytes()),
        DataType::UInt8 => fnv(
            h,
            &(a.as_primitive::<UInt8Type>().value(row) as u64).to_le_bytes(),
        ),
        DataType::UInt16 => fnv(
            h,
            &(a.as_primitive::<UInt16Type>().value(row) as u64).to_le_bytes(),
        ),
        DataType::UInt32 => fnv(
            h,
            &(a.as_primitive::<UInt32Type>().value(row) as u64).to_le_bytes(),
        ),
        DataType::UInt64 => fnv(h, &a.as_primitive::<UInt64Type>().value(row).to_le_bytes()),
        // -0 and 0 are one key.
        DataType::Float32 => {
            let f = a.as_primitive::<Float32Type>().value(row) as f64 + 0.0;
            fnv(h, &f.to_bits().to_le_bytes())
        }
        DataType::Float64 => {
            let f = a.as_primitive::<Float64Type>().value(row) + 0.0;
            fnv(h, &f.to_bits().to_le_bytes())
        }
        DataType::Decimal128(_, _) => fnv(
            h,
            &a.as_primitive::<Decimal128Type>().value(row).to_le_bytes(),
        ),
        DataType::Decimal256(_, _) => fnv(
            h,
            &a.as_primitive::<Decimal256Type>().value(row).to_le_bytes(),
        ),
        DataType::Date32 => fnv(h, &a.as_primitive::<Date32Type>().value(row).to_le_bytes()),
        DataType::Timestamp(_, _) => fnv(
            h,
            &a.as_primitive::<TimestampMicrosecondType>()
                .value(row)
                .to_le_bytes(),
        ),
        DataType::Duration(_) => fnv(
            h,
            &a.as_primitive::<DurationMicrosecondType>()
                .value(row)
                .to_le_bytes(),
        ),
        DataType::Utf8 => {
            let s = a.as_string::<i32>().value(row);
            let s = if eq == Equality::BytesPadded {
                s.trim_end_matches(' ')
            } else {
                s
            };
            fnv(h, s.as_bytes())
        }
        DataType::Binary => fnv(h, a.as_binary::<i32>().value(row)),
        // Types without a hash here share a lane.
        _ => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ColumnDef, Constraints, KeyKind, TableDdl, TableId};
    use crate::types::{arrow_schema, LogicalType};
    use arrow_array::{ArrayRef, Int32Array, StringArray};

    fn table(collations: &[&str], unique: Vec<Vec<usize>>, fk: bool) -> TableSchema {
        let mut columns = vec![ColumnDef {
            name: "id".into(),
            logical: LogicalType::Int {
                bytes: 4,
                unsigned: false,
            },
            column_type: "int(11)".into(),
            nullable: false,
            charset: None,
            collation: None,
        }];
        for (i, c) in collations.iter().enumerate() {
            columns.push(ColumnDef {
                name: format!("s{i}"),
                logical: LogicalType::Text,
                column_type: "varchar(20)".into(),
                nullable: false,
                charset: Some("utf8mb4".into()),
                collation: Some(c.to_string()),
            });
        }
        let key: Vec<usize> = (0..columns.len()).collect();
        TableSchema {
            id: TableId::new("d", "t"),
            arrow: arrow_schema(&columns),
            columns,
            key: key.clone(),
            key_kind: KeyKind::Primary,
            ddl: TableDdl::default(),
            estimated_rows: 0,
            constraints: Constraints {
                unique_keys: [vec![key], unique].concat(),
                foreign_key: fk,
            },
        }
    }

    fn batch(t: &TableSchema, ids: &[i32], texts: &[&str]) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(ids.to_vec()))];
        for _ in 1..t.columns.len() {
            cols.push(Arc::new(StringArray::from(texts.to_vec())));
        }
        RecordBatch::try_new(t.arrow.clone(), cols).expect("a batch of the table")
    }

    #[test]
    fn values_equal_under_the_collation_share_a_lane() {
        for (collation, same) in [
            ("utf8mb4_general_ci", ["k1", "K1", "k1 ", "ķ1"]),
            ("utf8mb4_bin", ["ab", "ab ", "ab  ", "ab"]),
        ] {
            let t = table(&[collation], Vec::new(), false);
            let r = Route::of(&t);
            let b = batch(&t, &[7, 7, 7, 7], &same);
            let lanes: Vec<usize> = (0..4).map(|i| r.lane(&b, i, 8)).collect();
            assert!(
                lanes.iter().all(|l| *l == lanes[0]),
                "{collation}: {lanes:?}"
            );
        }
    }

    #[test]
    fn byte_keys_spread_and_collated_keys_fall_back_to_the_table() {
        let t = table(&[], Vec::new(), false);
        let r = Route::of(&t);
        let b = batch(&t, &(0..64).collect::<Vec<_>>(), &[]);
        let lanes: std::collections::HashSet<usize> = (0..64).map(|i| r.lane(&b, i, 4)).collect();
        assert_eq!(lanes.len(), 4);
        assert!(!r.ordered);
        // A text key under a case-insensitive collation: the int part still spreads.
        assert!(!Route::of(&table(&["utf8mb4_unicode_ci"], Vec::new(), false)).whole_table());
        // A second unique key, or a foreign key: one lane for the table.
        assert!(Route::of(&table(&[], vec![vec![0, 0]], false)).whole_table());
        let fk = Route::of(&table(&[], Vec::new(), true));
        assert!(fk.whole_table() && fk.ordered);
    }
}
