//! The data model every stage shares: tables, their schemas, and change
//! batches (Arrow row images plus per-row operation, position and commit time).

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::mysql::types::MysqlType;

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
    pub file: String,
    pub offset: u64,
    /// MariaDB `gtid_binlog_pos` or MySQL `gtid_executed`, when known.
    pub gtid: Option<String>,
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
}

/// One column as the source defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub source_type: MysqlType,
    /// The full type as the server prints it, e.g. `decimal(65,30) unsigned`.
    pub column_type: String,
    pub nullable: bool,
    /// Character set of a character column (`utf8mb4`, `latin1`, ...). The
    /// binlog carries text in this charset; SELECT converts it for us.
    pub charset: Option<String>,
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
    /// Applied after the data, so they do not fire during the load.
    pub triggers: Vec<TriggerDdl>,
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
