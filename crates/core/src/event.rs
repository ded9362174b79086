//! The data model every stage shares: tables, their schemas, and change
//! batches (Arrow row images plus per-row operation, position and commit time).

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::types::LogicalType;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Insert = 0,
    Update = 1,
    Delete = 2,
    /// A row read by the snapshot, not a change.
    Read = 3,
}

/// A table's database and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    pub database: String,
    pub name: String,
}

impl TableId {
    pub fn new(database: impl Into<String>, name: impl Into<String>) -> Self {
        TableId {
            database: database.into(),
            name: name.into(),
        }
    }

    /// `` `db`.`name` `` for SQL.
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.database),
            quote_ident(&self.name)
        )
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.name)
    }
}

/// Quotes a MySQL identifier with backticks.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A point in the source's binlog. For a snapshot it is the point the
/// snapshot was taken at, from which CDC continues.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    /// Shared, not copied: every row change carries its position.
    pub file: Arc<str>,
    pub offset: u64,
    /// MariaDB `gtid_binlog_pos` or MySQL `gtid_executed`, when known.
    pub gtid: Option<Arc<str>>,
}

impl Position {
    /// Orders positions in one server's binlog: by file sequence number, then offset.
    pub fn binlog_cmp(&self, other: &Position) -> std::cmp::Ordering {
        fn seq(file: &str) -> (u64, &str) {
            match file.rsplit_once('.') {
                Some((base, n)) => (n.parse().unwrap_or(0), base),
                None => (0, file),
            }
        }
        let (a, b) = (seq(&self.file), seq(&other.file));
        (a.1, a.0, self.offset).cmp(&(b.1, b.0, other.offset))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.is_empty() {
            return write!(f, "(no binlog)");
        }
        write!(f, "{}:{}", self.file, self.offset)?;
        if let Some(g) = &self.gtid {
            if !g.is_empty() {
                write!(f, " gtid {g}")?;
            }
        }
        Ok(())
    }
}

/// Per-row event metadata, aligned with the rows of a batch's images.
#[derive(Debug, Clone)]
pub struct EventInfo {
    pub op: Op,
    pub position: Arc<Position>,
    /// Commit time, microseconds since the Unix epoch (UTC).
    pub commit_ts_us: i64,
    /// Whether the source checked foreign keys when it made this change
    /// (a session may turn `foreign_key_checks` off); a replica applies it
    /// the same way, so foreign key actions happen on both or neither.
    pub foreign_key_checks: bool,
}

impl EventInfo {
    /// A change at `position`, committed at `commit_ts_us`, made with
    /// foreign keys checked.
    pub fn new(op: Op, position: Arc<Position>, commit_ts_us: i64) -> Self {
        EventInfo {
            op,
            position,
            commit_ts_us,
            foreign_key_checks: true,
        }
    }
}

/// One column as the source defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub logical: LogicalType,
    /// The full type as the server prints it, e.g. `decimal(65,30) unsigned`.
    pub column_type: String,
    pub nullable: bool,
    /// Character set of a character column (`utf8mb4`, `latin1`, ...). The
    /// binlog carries text in this charset; SELECT converts it for us.
    pub charset: Option<String>,
    /// Collation of a character column (`utf8mb4_general_ci`, ...): it
    /// decides which values the server holds equal (case, accents,
    /// trailing spaces), so which changes may touch the same row.
    pub collation: Option<String>,
}

impl ColumnDef {
    /// When the server holds two values of this column equal.
    pub fn equality(&self) -> Equality {
        // ENUM and SET values are distinct members; UUID and INET are
        // printed in one canonical form; JSON (MariaDB's LONGTEXT) compares
        // as its text does.
        if self.logical != LogicalType::Text && self.logical != LogicalType::Json {
            return Equality::Bytes;
        }
        match self.collation.as_deref().map(str::to_ascii_lowercase) {
            Some(c) if c == "binary" || c.ends_with("_nopad_bin") || c.ends_with("_0900_bin") => {
                Equality::Bytes
            }
            Some(c) if c.ends_with("_bin") => Equality::BytesPadded,
            _ => Equality::Collation,
        }
    }
}

/// When two values of a column are equal for the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Equality {
    /// Exactly when their bytes are equal.
    Bytes,
    /// When their bytes are equal but for trailing spaces (PAD SPACE).
    BytesPadded,
    /// By the rules of a collation (case, accents, expansions, padding).
    Collation,
}

/// Which index identifies a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Primary,
    /// A unique index whose columns are all NOT NULL.
    Unique,
    None,
}

/// DDL needed to recreate a table elsewhere, as the source prints it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableDdl {
    pub create_database: String,
    pub create_table: String,
    /// Generated columns (position among all the table's columns, name):
    /// the target computes them, so sinks never write them, but the
    /// binlog's rows carry them.
    pub generated: Vec<(usize, String)>,
    /// Applied after the data, so they do not fire during the load.
    pub triggers: Vec<TriggerDdl>,
    /// What each column's definition says beyond its type (for sinks of
    /// another family, which cannot replay `create_table`).
    pub columns: Vec<ColumnDetails>,
    /// The value AUTO_INCREMENT gives the next row, when the table has it.
    pub next_auto_increment: Option<u64>,
    pub comment: Option<String>,
}

/// A column's definition beyond its type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnDetails {
    pub name: String,
    /// Its DEFAULT, when it has one.
    pub default: Option<crate::schema_change::Filled>,
    pub auto_increment: bool,
    pub comment: Option<String>,
}

/// A trigger, from information_schema.TRIGGERS (rather than the original
/// statement text, which may name the source's database and table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerDdl {
    pub name: String,
    /// `BEFORE` or `AFTER`.
    pub timing: String,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub event: String,
    /// The body after `FOR EACH ROW`.
    pub body: String,
    /// `user@host`, as the server reports it.
    pub definer: String,
    /// The sql_mode the trigger was created under; its body is parsed with it.
    pub sql_mode: String,
}

/// A table's schema: columns, key, Arrow schema, and source DDL.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub id: TableId,
    pub columns: Vec<ColumnDef>,
    /// Indices into `columns` of the identifying key, in key order.
    pub key: Vec<usize>,
    pub key_kind: KeyKind,
    pub arrow: SchemaRef,
    pub ddl: TableDdl,
    /// The server's row estimate, for progress display only.
    pub estimated_rows: u64,
    /// What constrains rows beyond the identifying key.
    pub constraints: Constraints,
}

/// A table's constraints that decide how its changes may be reordered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// Every unique index (the primary key too), as column indices; two
    /// changes of different rows can collide on any of them.
    pub unique_keys: Vec<Vec<usize>>,
    /// The table references another through a foreign key, or is
    /// referenced by one: a change of one row may check or change rows of
    /// the other (ON DELETE CASCADE, SET NULL...).
    pub foreign_key: bool,
}

impl TableSchema {
    /// Whether a unique index other than the identifying key exists, so
    /// that changes of different rows can collide.
    pub fn has_other_unique_keys(&self) -> bool {
        self.constraints.unique_keys.iter().any(|k| {
            let mut a = k.clone();
            let mut b = self.key.clone();
            a.sort_unstable();
            b.sort_unstable();
            a != b
        })
    }
}

/// A batch of events for one table.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub table: Arc<TableSchema>,
    pub events: Vec<EventInfo>,
    /// Row images before the change (updates, deletes); `None` when no row has one.
    pub before: Option<RecordBatch>,
    /// Row images after the change (inserts, updates, snapshot reads).
    pub after: Option<RecordBatch>,
}

impl ChangeBatch {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Approximate in-memory size of the row images.
    pub fn byte_size(&self) -> usize {
        self.before
            .as_ref()
            .map_or(0, |b| b.get_array_memory_size())
            + self.after.as_ref().map_or(0, |b| b.get_array_memory_size())
    }
}
