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
//!
//! [`Router`] does this for any sink that applies over several
//! connections: it turns each batch into every lane's row operations.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::event::{ChangeBatch, Equality, Op, Position, TableSchema};
use crate::{Error, Result};

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
        if lanes <= 1 {
            return 0;
        }
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
    known: foldhash::HashMap<usize, (Arc<TableSchema>, Route)>,
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

/// What a routed row change asks of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Make the row equal to the after image (ordered: insert it).
    Upsert,
    /// Remove the row with the before image's key (ordered: the row equal
    /// to the before image).
    Delete,
    /// Ordered tables only: change the row of the before image into the
    /// after image.
    Update,
}

/// One row change, routed to a lane.
pub struct RowOp {
    pub batch: Arc<ChangeBatch>,
    pub row: usize,
    pub kind: Kind,
    /// The row's key, byte for byte (merged operations only): within one
    /// target transaction only the last operation on a key matters.
    pub key: KeyBytes,
    /// Applied as the source ran it, in order, not merged by key.
    pub ordered: bool,
}

impl RowOp {
    /// The row image this operation names its row by: the before image of
    /// deletes and updates, else the after image.
    pub fn image(&self, after: bool) -> Result<&RecordBatch> {
        if after {
            self.batch.after.as_ref()
        } else {
            self.batch.before.as_ref()
        }
        .ok_or_else(|| Error::Internal(format!("{}: missing row image", self.batch.table.id)))
    }
}

/// Splits change batches into each lane's row operations: an insert or an
/// update that keeps its key is an upsert of the after image, a delete a
/// delete by key, an update that changes the key both; tables whose changes
/// must run as the source ran them (foreign keys, no key) keep their
/// inserts, updates and deletes.
#[derive(Default)]
pub struct Router {
    routes: Routes,
}

impl Router {
    /// Hands each of `batch`'s operations to `push`, with its lane among
    /// `lanes`.
    pub fn route(
        &mut self,
        batch: ChangeBatch,
        lanes: usize,
        mut push: impl FnMut(usize, RowOp),
    ) -> Result<()> {
        let n = lanes.max(1);
        let batch = Arc::new(batch);
        let table = &batch.table;
        let route = self.routes.get(table);
        let missing = |op: Op| {
            Error::Internal(format!(
                "{}: a {op:?} event without its row image",
                table.id
            ))
        };
        for (row, ev) in batch.events.iter().enumerate() {
            let (before, after) = (batch.before.as_ref(), batch.after.as_ref());
            let mut put = |kind: Kind, image: &RecordBatch, key: KeyBytes| {
                push(
                    route.lane(image, row, n),
                    RowOp {
                        batch: batch.clone(),
                        row,
                        kind,
                        key,
                        ordered: route.ordered,
                    },
                )
            };
            if route.ordered {
                match (ev.op, before, after) {
                    (Op::Insert | Op::Read, _, Some(a)) => {
                        put(Kind::Upsert, a, KeyBytes::default())
                    }
                    (Op::Delete, Some(b), _) => put(Kind::Delete, b, KeyBytes::default()),
                    (Op::Update, Some(b), Some(_)) => put(Kind::Update, b, KeyBytes::default()),
                    (op, _, _) => return Err(missing(op)),
                }
                continue;
            }
            match (ev.op, before, after) {
                (Op::Insert | Op::Read, _, Some(a)) => {
                    put(Kind::Upsert, a, key_bytes(table, a, row))
                }
                (Op::Delete, Some(b), _) => put(Kind::Delete, b, key_bytes(table, b, row)),
                (Op::Update, Some(b), Some(a)) => {
                    let (kb, ka) = (key_bytes(table, b, row), key_bytes(table, a, row));
                    if kb != ka {
                        put(Kind::Delete, b, kb);
                    }
                    put(Kind::Upsert, a, ka);
                }
                (op, _, _) => return Err(missing(op)),
            }
        }
        Ok(())
    }
}

/// Splits change batches into each lane's own batches, for sinks that
/// apply whole batches per lane: rows stay in source order within a lane,
/// an update that moves its row to another lane (a key change) becomes a
/// delete of the old key in the old key's lane and an insert of the new
/// row in the new key's, and tables whose changes must run as the source
/// ran them go whole to one lane.
#[derive(Default)]
pub struct Splitter {
    routes: Routes,
}

impl Splitter {
    /// `batch`'s rows as one batch per lane among `lanes`, in lane order.
    pub fn split(&mut self, batch: ChangeBatch, lanes: usize) -> Result<Vec<(usize, ChangeBatch)>> {
        let n = lanes.max(1);
        let route = self.routes.get(&batch.table);
        let any_image = batch.after.as_ref().or(batch.before.as_ref());
        let Some(image) = any_image.filter(|_| n > 1) else {
            return Ok(vec![(0, batch)]);
        };
        if route.whole_table() {
            return Ok(vec![(route.lane(image, 0, n), batch)]);
        }
        // Each lane's rows: (row, the operation it applies there).
        let mut rows: Vec<Vec<(u32, Op)>> = vec![Vec::new(); n];
        for (row, ev) in batch.events.iter().enumerate() {
            let lane_of = |img: Option<&RecordBatch>| {
                img.map(|i| route.lane(i, row, n)).ok_or_else(|| {
                    Error::Internal(format!(
                        "{}: a {:?} event without its row image",
                        batch.table.id, ev.op
                    ))
                })
            };
            match ev.op {
                Op::Insert | Op::Read => {
                    rows[lane_of(batch.after.as_ref())?].push((row as u32, ev.op))
                }
                Op::Delete => rows[lane_of(batch.before.as_ref())?].push((row as u32, ev.op)),
                Op::Update => {
                    let (from, to) = (
                        lane_of(batch.before.as_ref())?,
                        lane_of(batch.after.as_ref())?,
                    );
                    if from == to {
                        rows[from].push((row as u32, Op::Update));
                    } else {
                        rows[from].push((row as u32, Op::Delete));
                        rows[to].push((row as u32, Op::Insert));
                    }
                }
            }
        }
        let used = rows.iter().filter(|r| !r.is_empty()).count();
        if used == 1 {
            if let Some(lane) = rows.iter().position(|r| !r.is_empty()) {
                if rows[lane]
                    .iter()
                    .all(|&(r, op)| batch.events[r as usize].op == op)
                {
                    // Every row in one lane, as it came: no copy.
                    return Ok(vec![(lane, batch)]);
                }
            }
        }
        let mut out = Vec::with_capacity(used);
        for (lane, picked) in rows.into_iter().enumerate() {
            if picked.is_empty() {
                continue;
            }
            let indices = arrow_array::UInt32Array::from_iter_values(picked.iter().map(|p| p.0));
            let take = |image: &Option<RecordBatch>| -> Result<Option<RecordBatch>> {
                image
                    .as_ref()
                    .map(|b| arrow_select::take::take_record_batch(b, &indices))
                    .transpose()
                    .map_err(|e| {
                        Error::Internal(format!("{}: splitting rows: {e}", batch.table.id))
                    })
            };
            let events = picked
                .iter()
                .map(|&(r, op)| {
                    let mut ev = batch.events[r as usize].clone();
                    ev.op = op;
                    ev
                })
                .collect();
            out.push((
                lane,
                ChangeBatch {
                    table: batch.table.clone(),
                    events,
                    before: take(&batch.before)?,
                    after: take(&batch.after)?,
                },
            ));
        }
        Ok(out)
    }
}

/// How many lanes to apply with: `wanted`, unless the lanes of an earlier
/// run (`done`: each lane's checkpoint) stopped at different positions (a
/// crash) and were another number. Each lane skips what its own checkpoint
/// covers, and a change goes to the lane its hash picks among *that many*,
/// so the earlier number is kept until the lanes agree (a clean stop, or a
/// schema change, brings them to one position). Returns the number, and
/// whether it is the earlier one kept.
pub fn lanes_to_use(wanted: usize, done: &[(usize, Position)]) -> (usize, bool) {
    let wanted = wanted.max(1);
    let earlier = done.len();
    let agree = done.windows(2).all(|w| w[0].1 == w[1].1);
    if earlier == 0 || earlier == wanted || agree {
        (wanted, false)
    } else {
        (earlier, true)
    }
}

/// A row's key bytes, held inline when short (integer keys: no allocation
/// for every row change), else on the heap.
#[derive(Clone, Default)]
pub struct KeyBytes {
    len: usize,
    inline: [u8; KEY_INLINE],
    heap: Vec<u8>,
}

const KEY_INLINE: usize = 32;

impl KeyBytes {
    pub fn as_slice(&self) -> &[u8] {
        if self.len <= KEY_INLINE {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for KeyBytes {}

impl std::hash::Hash for KeyBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_slice())
    }
}

impl Bytes for KeyBytes {
    fn put(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        if end <= KEY_INLINE {
            self.inline[self.len..end].copy_from_slice(b);
        } else {
            if self.len <= KEY_INLINE {
                self.heap = self.inline[..self.len].to_vec();
            }
            self.heap.extend_from_slice(b);
        }
        self.len = end;
    }
}

/// Row `row`'s key values in `image`, byte for byte and unambiguous
/// (each value tagged and, when variable, length-prefixed).
pub fn key_bytes(table: &TableSchema, image: &RecordBatch, row: usize) -> KeyBytes {
    let mut out = KeyBytes::default();
    for &k in &table.key {
        value_bytes(
            image.column(k).as_ref(),
            row,
            Equality::Bytes,
            true,
            &mut out,
        );
    }
    out
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
    // The bytes without length prefixes: lanes must stay what earlier
    // versions chose, so that a restarted pipeline finds its changes where
    // each lane's checkpoint expects them. Hashed as they are written: the
    // lane of every row change is asked for.
    let mut fnv_out = Fnv(h);
    value_bytes(a, row, eq, false, &mut fnv_out);
    fnv_out.0
}

/// Where `value_bytes` writes: a buffer (keys), or a running hash (lanes).
trait Bytes {
    fn put(&mut self, b: &[u8]);
    fn put_byte(&mut self, b: u8) {
        self.put(&[b])
    }
}

impl Bytes for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b)
    }
}

struct Fnv(u64);

impl Bytes for Fnv {
    fn put(&mut self, b: &[u8]) {
        self.0 = fnv(self.0, b)
    }
}

/// Appends one value's bytes to `out`: a tag (null or not), then the value
/// (integers widened to 64 bits, -0.0 as 0.0, text without trailing
/// spaces under `BytesPadded`), variable-length values length-prefixed
/// with `prefixed` (so that a sequence of values is unambiguous). Values
/// the server holds equal under `eq` give equal bytes; types without bytes
/// here give the tag only.
fn value_bytes(a: &dyn Array, row: usize, eq: Equality, prefixed: bool, out: &mut impl Bytes) {
    if a.is_null(row) {
        out.put_byte(0);
        return;
    }
    out.put_byte(1);
    let var = |out: &mut _, b: &[u8]| {
        if prefixed {
            Bytes::put(out, &(b.len() as u64).to_le_bytes());
        }
        Bytes::put(out, b);
    };
    match a.data_type() {
        // Integers widened to 64 bits, so a column's width plays no part.
        DataType::Int8 => {
            out.put(&i64::from(a.as_primitive::<Int8Type>().value(row)).to_le_bytes())
        }
        DataType::Int16 => {
            out.put(&i64::from(a.as_primitive::<Int16Type>().value(row)).to_le_bytes())
        }
        DataType::Int32 => {
            out.put(&i64::from(a.as_primitive::<Int32Type>().value(row)).to_le_bytes())
        }
        DataType::Int64 => out.put(&a.as_primitive::<Int64Type>().value(row).to_le_bytes()),
        DataType::UInt8 => {
            out.put(&u64::from(a.as_primitive::<UInt8Type>().value(row)).to_le_bytes())
        }
        DataType::UInt16 => {
            out.put(&u64::from(a.as_primitive::<UInt16Type>().value(row)).to_le_bytes())
        }
        DataType::UInt32 => {
            out.put(&u64::from(a.as_primitive::<UInt32Type>().value(row)).to_le_bytes())
        }
        DataType::UInt64 => out.put(&a.as_primitive::<UInt64Type>().value(row).to_le_bytes()),
        // -0 and 0 are one key.
        DataType::Float32 => {
            let f = a.as_primitive::<Float32Type>().value(row) as f64 + 0.0;
            out.put(&f.to_bits().to_le_bytes())
        }
        DataType::Float64 => {
            let f = a.as_primitive::<Float64Type>().value(row) + 0.0;
            out.put(&f.to_bits().to_le_bytes())
        }
        DataType::Decimal128(_, _) => {
            out.put(&a.as_primitive::<Decimal128Type>().value(row).to_le_bytes())
        }
        DataType::Decimal256(_, _) => {
            out.put(&a.as_primitive::<Decimal256Type>().value(row).to_le_bytes())
        }
        DataType::Date32 => out.put(&a.as_primitive::<Date32Type>().value(row).to_le_bytes()),
        DataType::Timestamp(_, _) => out.put(
            &a.as_primitive::<TimestampMicrosecondType>()
                .value(row)
                .to_le_bytes(),
        ),
        DataType::Duration(_) => out.put(
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
            var(out, s.as_bytes())
        }
        DataType::Binary => var(out, a.as_binary::<i32>().value(row)),
        _ => {}
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

    /// Keys short enough to be held inline and keys spilled to the heap
    /// hold the same bytes a plain buffer would.
    #[test]
    fn keys_inline_and_spilled_are_their_bytes() {
        let t = table(&["utf8mb4_bin"], Vec::new(), false);
        let long = "x".repeat(40);
        let b = batch(&t, &[7, 8, 9], &["", "short", &long]);
        for row in 0..3 {
            let mut want: Vec<u8> = Vec::new();
            for &k in &t.key {
                value_bytes(b.column(k).as_ref(), row, Equality::Bytes, true, &mut want);
            }
            let got = key_bytes(&t, &b, row);
            assert_eq!(got.as_slice(), want.as_slice(), "row {row}");
            assert_eq!(got, key_bytes(&t, &b, row));
        }
        assert_ne!(key_bytes(&t, &b, 1), key_bytes(&t, &b, 2));
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

    /// Lanes must be what earlier versions chose (a restarted pipeline
    /// finds its changes where each lane's checkpoint expects them): the
    /// hash of every type equals the one sluice 0.1 shipped, kept here.
    #[test]
    fn lanes_are_the_ones_earlier_versions_chose() {
        use arrow_array::{
            ArrayRef, BinaryArray, Float64Array, Int32Array, StringArray, UInt64Array,
        };
        let arrays: Vec<(ArrayRef, Equality)> = vec![
            (
                Arc::new(Int32Array::from(vec![Some(-7), None, Some(1 << 30)])),
                Equality::Bytes,
            ),
            (
                Arc::new(UInt64Array::from(vec![0, u64::MAX, 42])),
                Equality::Bytes,
            ),
            (
                Arc::new(Float64Array::from(vec![-0.0, 1.5, f64::MAX])),
                Equality::Bytes,
            ),
            (
                Arc::new(StringArray::from(vec![Some("ab  "), Some(""), None])),
                Equality::BytesPadded,
            ),
            (
                Arc::new(StringArray::from(vec!["k1", "K1", "ķ1"])),
                Equality::Bytes,
            ),
            (
                Arc::new(BinaryArray::from(vec![&b"\x00\x01"[..], b"", b"xyz"])),
                Equality::Bytes,
            ),
        ];
        for (a, eq) in &arrays {
            for row in 0..a.len() {
                for h in [FNV_SEED, 12345] {
                    assert_eq!(
                        hash_value(h, a.as_ref(), row, *eq),
                        earlier_hash_value(h, a.as_ref(), row, *eq),
                        "{:?} row {row}",
                        a.data_type()
                    );
                }
            }
        }
    }

    fn change(t: &TableSchema, ops: &[Op], before: &[i32], after: &[i32]) -> ChangeBatch {
        let texts = vec!["x"; ops.len()];
        ChangeBatch {
            table: Arc::new(t.clone()),
            events: ops
                .iter()
                .map(|op| crate::event::EventInfo::new(*op, Arc::new(Position::default()), 0))
                .collect(),
            before: (!before.is_empty()).then(|| batch(t, before, &texts)),
            after: (!after.is_empty()).then(|| batch(t, after, &texts)),
        }
    }

    /// Each lane gets its rows in source order; a key change that moves a
    /// row to another lane is a delete there and an insert here; a table
    /// with another unique key goes whole to one lane.
    #[test]
    fn batches_split_by_lane_keep_every_row_once_in_order() {
        let t = table(&["utf8mb4_bin"], Vec::new(), false);
        let route = Route::of(&t);
        let ids: Vec<i32> = (0..64).collect();
        let moved: Vec<i32> = ids.iter().map(|i| i + 1000).collect();
        let b = change(&t, &[Op::Update; 64], &ids, &moved);
        let lane_of = |id: i32| route.lane(&batch(&t, &[id], &["x"]), 0, 4);
        let parts = Splitter::default().split(b, 4).expect("split");
        assert!(parts.len() > 1, "64 keys in one lane");
        let mut seen: Vec<(i32, Op, usize)> = Vec::new();
        for (lane, part) in &parts {
            let img = |b: &Option<RecordBatch>, r: usize| {
                b.as_ref()
                    .expect("image")
                    .column(0)
                    .as_primitive::<Int32Type>()
                    .value(r)
            };
            let mut last = -1;
            for (r, ev) in part.events.iter().enumerate() {
                let (old, new) = (img(&part.before, r), img(&part.after, r));
                assert!(old > last, "lane {lane}: rows out of order");
                last = old;
                match ev.op {
                    Op::Update => assert!(lane_of(old) == *lane && lane_of(new) == *lane),
                    Op::Delete => assert_eq!(lane_of(old), *lane),
                    Op::Insert => assert_eq!(lane_of(new), *lane),
                    Op::Read => panic!("a read"),
                }
                seen.push((old, ev.op, *lane));
            }
        }
        for id in ids {
            let of: Vec<Op> = seen.iter().filter(|s| s.0 == id).map(|s| s.1).collect();
            let want = if lane_of(id) == lane_of(id + 1000) {
                vec![Op::Update]
            } else {
                vec![Op::Delete, Op::Insert]
            };
            let mut of_sorted = of.clone();
            of_sorted.sort_by_key(|o| *o as u8);
            let mut want_sorted = want.clone();
            want_sorted.sort_by_key(|o| *o as u8);
            assert_eq!(of_sorted, want_sorted, "row {id}");
        }
        let u = table(&["utf8mb4_bin"], vec![vec![1]], false);
        let parts = Splitter::default()
            .split(
                change(&u, &[Op::Insert; 8], &[], &[1, 2, 3, 4, 5, 6, 7, 8]),
                4,
            )
            .expect("split");
        assert_eq!(
            parts.len(),
            1,
            "a table with a second unique key in one lane"
        );
        assert_eq!(parts[0].1.len(), 8);
    }

    #[test]
    fn a_crashed_runs_lane_count_is_kept_until_its_lanes_agree() {
        let at = |o: u64| Position {
            file: "binlog.000001".into(),
            offset: o,
            gtid: None,
        };
        assert_eq!(lanes_to_use(4, &[]), (4, false));
        assert_eq!(lanes_to_use(4, &[(0, at(5)), (1, at(5))]), (4, false));
        assert_eq!(lanes_to_use(4, &[(0, at(5)), (1, at(9))]), (2, true));
        assert_eq!(lanes_to_use(2, &[(0, at(5)), (1, at(9))]), (2, false));
        assert_eq!(lanes_to_use(1, &[(0, at(5))]), (1, false));
    }

    fn earlier_hash_value(h: u64, a: &dyn Array, row: usize, eq: Equality) -> u64 {
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
}
