//! A source table as the PostgreSQL target holds it: its schema and name
//! there, each column's type and codec, and the statements that create
//! it, load it and change its rows.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use bytes::{BufMut, BytesMut};
use sluice_core::event::{ColumnDef, KeyKind, TableSchema};
use sluice_core::rename::Renames;
use sluice_core::Error;

use crate::connect::quote_ident;
use crate::types::{Codec, JsonType, PgType, Written, ZeroDates};

/// The change table of a table `t` is `t__history`.
pub const HISTORY_SUFFIX: &str = "__history";
/// Columns a change table has before the row's, as an INSERT lists them.
const HISTORY_META_COLUMNS: &str = "\"_sluice_op\", \"_sluice_commit_ts\", \"_sluice_binlog_file\", \"_sluice_binlog_offset\", \"_sluice_gtid\", ";
/// How many of them there are.
pub const HISTORY_META: usize = 5;

/// How column types are chosen (the sink's settings).
#[derive(Debug, Clone, Copy)]
pub struct TypeOptions {
    pub zero_dates: ZeroDates,
    pub json: JsonType,
}

#[derive(Debug)]
pub struct Column {
    pub name: String,
    pub ty: PgType,
    pub codec: Codec,
    pub nullable: bool,
}

impl Column {
    /// A source column as the target holds it.
    pub fn of(c: &ColumnDef, opts: TypeOptions) -> Column {
        let ty = PgType::of(c, opts.json);
        Column {
            name: c.name.clone(),
            ty,
            codec: Codec::new(ty, opts.zero_dates),
            // Zero dates stored as NULL need room for it.
            nullable: c.nullable || (ty.is_dated() && opts.zero_dates == ZeroDates::Null),
        }
    }
}

/// One target table.
#[derive(Debug)]
pub struct Target {
    pub source: Arc<TableSchema>,
    /// PostgreSQL schema (the source database, renamed) and table name.
    pub schema: String,
    pub name: String,
    /// `"schema"."name"`.
    pub qualified: String,
    pub columns: Vec<Column>,
}

impl Target {
    pub fn new(source: &Arc<TableSchema>, renames: &Renames, opts: TypeOptions) -> Target {
        let id = renames.target(&source.id);
        let columns = source.columns.iter().map(|c| Column::of(c, opts)).collect();
        Target {
            qualified: format!("{}.{}", quote_ident(&id.database), quote_ident(&id.name)),
            schema: id.database,
            name: id.name,
            source: source.clone(),
            columns,
        }
    }

    /// `"schema".name` as a message names it.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `CREATE TABLE`, with its keys unless they are added after the load.
    pub fn create(&self, with_keys: bool) -> Vec<String> {
        let mut cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    quote_ident(&c.name),
                    c.ty.sql(),
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect();
        let mut out = vec![format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(&self.schema)
        )];
        if with_keys {
            cols.extend(self.key_clauses());
        }
        out.push(format!(
            "CREATE TABLE {} ({})",
            self.qualified,
            cols.join(", ")
        ));
        out
    }

    /// The primary key and unique constraints, as table constraint clauses.
    fn key_clauses(&self) -> Vec<String> {
        let names = |idx: &[usize]| {
            idx.iter()
                .map(|i| quote_ident(&self.columns[*i].name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let t = &self.source;
        let mut out = Vec::new();
        if t.key_kind == KeyKind::Primary {
            out.push(format!("PRIMARY KEY ({})", names(&t.key)));
        }
        for k in &t.constraints.unique_keys {
            if t.key_kind == KeyKind::Primary && same_columns(k, &t.key) {
                continue;
            }
            out.push(format!("UNIQUE ({})", names(k)));
        }
        out
    }

    /// Adds the keys after a load (`ALTER TABLE ... ADD`), each once.
    pub fn add_keys(&self) -> Vec<String> {
        self.key_clauses()
            .into_iter()
            .map(|c| format!("ALTER TABLE {} ADD {c}", self.qualified))
            .collect()
    }

    /// The change table of `history: true`: `"schema"."name__history"`.
    pub fn history_qualified(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&format!("{}{HISTORY_SUFFIX}", self.name))
        )
    }

    /// The change table: the metadata columns, then every column of the
    /// row, all nullable (a delete's row is its old image), no keys.
    pub fn create_history(&self) -> String {
        let mut cols: Vec<String> = vec![
            "\"_sluice_seq\" bigint GENERATED ALWAYS AS IDENTITY".into(),
            "\"_sluice_op\" char(1) NOT NULL".into(),
            "\"_sluice_commit_ts\" timestamp(6) with time zone NOT NULL".into(),
            "\"_sluice_binlog_file\" text NOT NULL".into(),
            "\"_sluice_binlog_offset\" bigint NOT NULL".into(),
            "\"_sluice_gtid\" text".into(),
        ];
        cols.extend(
            self.columns
                .iter()
                .map(|c| format!("{} {}", quote_ident(&c.name), c.ty.sql())),
        );
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.history_qualified(),
            cols.join(", ")
        )
    }

    /// Appends one change to the change table: `$1` op, `$2` commit time,
    /// `$3` binlog file, `$4` offset, `$5` GTID position, then the row.
    pub fn history_insert_sql(&self) -> String {
        let params: Vec<String> = (1..=HISTORY_META + self.columns.len())
            .map(|i| format!("${i}"))
            .collect();
        format!(
            "INSERT INTO {} ({}{}) VALUES ({})",
            self.history_qualified(),
            HISTORY_META_COLUMNS,
            self.column_list(),
            params.join(", ")
        )
    }

    /// COPY into the change table (the snapshot's rows, op `r`).
    pub fn history_copy_sql(&self) -> String {
        format!(
            "COPY {} ({}{}) FROM STDIN (FORMAT binary)",
            self.history_qualified(),
            HISTORY_META_COLUMNS,
            self.column_list()
        )
    }

    /// Whether an update moves the row to another key (the change table
    /// then records a delete of the old key and an insert of the new one,
    /// as Debezium does).
    pub fn key_changed(&self, before: &RecordBatch, after: &RecordBatch, row: usize) -> bool {
        if !self.has_key() {
            return false;
        }
        self.source.key.iter().any(|k| {
            let (a, b) = (
                before.column(*k).slice(row, 1),
                after.column(*k).slice(row, 1),
            );
            a.to_data() != b.to_data()
        })
    }

    /// Whether the table has every column `columns` names (an index or
    /// foreign key of a definition read ahead of the binlog may name a
    /// column the rows do not have yet).
    fn has_columns<'a>(&self, mut columns: impl Iterator<Item = &'a String>) -> bool {
        columns.all(|c| self.columns.iter().any(|t| &t.name == c))
    }

    /// The source's plain secondary indexes, as `CREATE INDEX`.
    pub fn indexes(&self) -> Vec<String> {
        let (idx, _) =
            crate::indexes::parse(&self.source.ddl.create_table, &self.source.id.database);
        idx.iter()
            .filter(|i| self.has_columns(i.parts.iter().map(|p| &p.0)))
            .map(|i| crate::indexes::create_index(&self.name, &self.qualified, i))
            .collect()
    }

    /// The source's foreign keys, as `ALTER TABLE ... ADD CONSTRAINT`:
    /// each with its name and the target table it references.
    pub fn foreign_keys(&self, renames: &Renames) -> Vec<(String, String, String)> {
        let (_, fks) =
            crate::indexes::parse(&self.source.ddl.create_table, &self.source.id.database);
        fks.iter()
            .filter(|fk| self.has_columns(fk.columns.iter()))
            .map(|fk| {
                let t = renames.target(&fk.references);
                (
                    fk.name.clone(),
                    format!("{}.{}", quote_ident(&t.database), quote_ident(&t.name)),
                    crate::indexes::add_foreign_key(&self.qualified, fk, renames),
                )
            })
            .collect()
    }

    pub fn copy_sql(&self) -> String {
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            self.qualified,
            self.column_list()
        )
    }

    fn has_key(&self) -> bool {
        self.source.key_kind != KeyKind::None && !self.source.key.is_empty()
    }

    /// Makes the row equal to the parameters `$1..$n` (every column).
    pub fn upsert_sql(&self) -> String {
        let params: Vec<String> = (1..=self.columns.len()).map(|i| format!("${i}")).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.qualified,
            self.column_list(),
            params.join(", ")
        );
        if self.has_key() {
            let key: Vec<String> = self
                .source
                .key
                .iter()
                .map(|i| quote_ident(&self.columns[*i].name))
                .collect();
            let rest: Vec<String> = (0..self.columns.len())
                .filter(|i| !self.source.key.contains(i))
                .map(|i| {
                    let c = quote_ident(&self.columns[i].name);
                    format!("{c} = EXCLUDED.{c}")
                })
                .collect();
            if rest.is_empty() {
                sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", key.join(", ")));
            } else {
                sql.push_str(&format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    key.join(", "),
                    rest.join(", ")
                ));
            }
        }
        sql
    }

    /// The row the parameters from `$first` on identify: by its key, or
    /// (a table without one) by every column, one row of equal ones.
    fn row_match(&self, first: usize) -> String {
        if self.has_key() {
            return self
                .source
                .key
                .iter()
                .enumerate()
                .map(|(n, i)| format!("{} = ${}", quote_ident(&self.columns[*i].name), first + n))
                .collect::<Vec<_>>()
                .join(" AND ");
        }
        let cond: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(n, c)| {
                // json has no equality operator: its text is compared.
                let (l, r) = match c.ty {
                    PgType::Json => (
                        format!("{}::text", quote_ident(&c.name)),
                        format!("${}::text", first + n),
                    ),
                    _ => (quote_ident(&c.name), format!("${}", first + n)),
                };
                format!("{l} IS NOT DISTINCT FROM {r}")
            })
            .collect();
        format!(
            "ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)",
            self.qualified,
            cond.join(" AND ")
        )
    }

    /// The parameters [`row_match`](Self::row_match) compares: the key's
    /// columns, or all of them.
    pub fn match_columns(&self) -> Vec<usize> {
        if self.has_key() {
            self.source.key.clone()
        } else {
            (0..self.columns.len()).collect()
        }
    }

    /// Every column set to `$1..$n`, in the row the old image identifies.
    pub fn update_sql(&self) -> String {
        let set: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = ${}", quote_ident(&c.name), i + 1))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {}",
            self.qualified,
            set.join(", "),
            self.row_match(self.columns.len() + 1)
        )
    }

    pub fn delete_sql(&self) -> String {
        format!("DELETE FROM {} WHERE {}", self.qualified, self.row_match(1))
    }

    /// Appends the binary value of column `col` of `image[row]`; `None`
    /// for a NULL, else the range it takes in `out`.
    pub fn encode(
        &self,
        image: &RecordBatch,
        row: usize,
        col: usize,
        out: &mut BytesMut,
    ) -> Result<Option<std::ops::Range<usize>>, Error> {
        self.encode_as(image, row, col, out, self.columns[col].nullable)
    }

    /// As [`encode`](Self::encode), for a column of a change table (every
    /// column nullable there).
    pub fn encode_nullable(
        &self,
        image: &RecordBatch,
        row: usize,
        col: usize,
        out: &mut BytesMut,
    ) -> Result<Option<std::ops::Range<usize>>, Error> {
        self.encode_as(image, row, col, out, true)
    }

    fn encode_as(
        &self,
        image: &RecordBatch,
        row: usize,
        col: usize,
        out: &mut BytesMut,
        nullable: bool,
    ) -> Result<Option<std::ops::Range<usize>>, Error> {
        let start = out.len();
        match self.columns[col]
            .codec
            .write(image.column(col).as_ref(), row, out)
        {
            Ok(Written::Value) => Ok(Some(start..out.len())),
            Ok(Written::Null) if !nullable => {
                Err(self.value_error(image, row, col, "NULL in a NOT NULL column".into()))
            }
            Ok(Written::Null) => Ok(None),
            Err(e) => Err(self.value_error(image, row, col, e)),
        }
    }

    /// A value that cannot be written, naming table, column and row.
    fn value_error(&self, image: &RecordBatch, row: usize, col: usize, what: String) -> Error {
        let key: Vec<String> = self
            .match_columns()
            .iter()
            .take(4)
            .map(|k| {
                format!(
                    "{} = {}",
                    self.columns[*k].name,
                    cell_text(image.column(*k).as_ref(), row)
                )
            })
            .collect();
        Error::precondition(
            format!(
                "PostgreSQL table {} column `{}`, row ({}): {what}",
                self.display(),
                self.columns[col].name,
                key.join(", ")
            ),
            match self.columns[col].ty {
                PgType::Date | PgType::Timestamp(_) | PgType::Timestamptz(_) => {
                    "set `zero_dates: null` on the sink to store such dates as NULL, or fix the row on the source"
                }
                _ => "fix the row on the source, or mask or drop the column with a transform (see docs/plugins.md)",
            },
        )
    }
}

/// A value for a message: integers and text as they are, anything else by
/// Arrow's debug form.
fn cell_text(a: &dyn Array, row: usize) -> String {
    if a.is_null(row) {
        return "NULL".into();
    }
    if let Some(s) = a.as_string_opt::<i32>() {
        let v = s.value(row);
        let cut: String = v.chars().take(40).collect();
        return format!("{cut:?}");
    }
    let one = a.slice(row, 1);
    let dbg = format!("{one:?}");
    // `PrimitiveArray<Int32>\n[\n  5,\n]` → `5`
    dbg.split_once('[')
        .and_then(|(_, r)| r.rsplit_once(']'))
        .map(|(v, _)| v.trim().trim_end_matches(',').to_string())
        .unwrap_or(dbg)
}

fn same_columns(a: &[usize], b: &[usize]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// The metadata of one change in a change table's binary format, each
/// value's range in `out` (see [`Target::history_insert_sql`]).
pub fn put_history_meta(
    op: u8,
    info: &sluice_core::event::EventInfo,
    out: &mut BytesMut,
) -> Vec<Option<std::ops::Range<usize>>> {
    let mut ranges = Vec::with_capacity(HISTORY_META);
    let mut field = |out: &mut BytesMut, write: &dyn Fn(&mut BytesMut)| {
        let start = out.len();
        write(out);
        ranges.push(Some(start..out.len()));
    };
    field(out, &|o| o.put_u8(op));
    field(out, &|o| {
        o.put_i64(info.commit_ts_us - crate::types::PG_EPOCH_US)
    });
    field(out, &|o| o.put_slice(info.position.file.as_bytes()));
    field(out, &|o| o.put_i64(info.position.offset as i64));
    match &info.position.gtid {
        Some(g) => field(out, &|o| o.put_slice(g.as_bytes())),
        None => ranges.push(None),
    }
    ranges
}

/// The same metadata as COPY fields.
pub fn put_history_copy_meta(op: u8, info: &sluice_core::event::EventInfo, out: &mut BytesMut) {
    let mut scratch = BytesMut::new();
    let ranges = put_history_meta(op, info, &mut scratch);
    for r in ranges {
        match r {
            Some(r) => {
                out.put_i32((r.end - r.start) as i32);
                out.put_slice(&scratch[r]);
            }
            None => out.put_i32(-1),
        }
    }
}

/// The field of one value in COPY's binary format: its length (−1 for
/// NULL), then its bytes.
pub fn put_copy_field(
    target: &Target,
    image: &RecordBatch,
    row: usize,
    col: usize,
    out: &mut BytesMut,
) -> Result<(), Error> {
    let at = out.len();
    out.put_i32(0);
    match target.encode(image, row, col, out)? {
        Some(r) => {
            let len = (r.end - r.start) as i32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        None => out[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes()),
    }
    Ok(())
}
