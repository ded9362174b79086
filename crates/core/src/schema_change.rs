//! Schema changes as sinks receive them: what a statement does to which
//! tables and columns, in words no SQL dialect owns. The statement's own
//! text travels beside it ([`crate::stage::DdlChange::sql`]) for sinks of
//! the source's family, which replay it under their names; other sinks
//! translate from this description.

use crate::event::{ColumnDef, TableId};

/// What a schema change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// A new table; its columns arrive with its first rows.
    CreateTable {
        table: TableId,
        /// `CREATE TABLE t LIKE other`.
        like: Option<TableId>,
        /// The column names the statement lists, in order (`None` when it
        /// lists none: `LIKE`, `AS SELECT`). A definition read from the
        /// catalog describes this statement's table only if its columns
        /// are these: after a restart the catalog may hold a later table
        /// of the same name.
        columns: Option<Vec<String>>,
    },
    /// Columns, indexes or options of a table change; the new columns
    /// arrive with its next rows.
    AlterTable {
        table: TableId,
        actions: Vec<AlterAction>,
        /// `ALTER TABLE ... RENAME TO`.
        rename_to: Option<TableId>,
    },
    DropTable {
        tables: Vec<TableId>,
    },
    /// Pairs (from, to), applied in order.
    RenameTable {
        renames: Vec<(TableId, TableId)>,
    },
    TruncateTable {
        table: TableId,
    },
    CreateIndex {
        table: TableId,
        index: String,
    },
    DropIndex {
        table: TableId,
        index: String,
    },
    CreateDatabase {
        database: String,
    },
    DropDatabase {
        database: String,
    },
    AlterDatabase {
        database: String,
    },
}

/// One clause of an [`SchemaChange::AlterTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterAction {
    AddColumn {
        column: String,
        /// As the clause defines it; `None` when sluice cannot read the
        /// definition (the next rows describe the column then).
        definition: Option<NewColumn>,
    },
    DropColumn {
        column: String,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    /// A column's type, default or name changes (`CHANGE`, `MODIFY`).
    ModifyColumn {
        column: String,
        new_name: String,
        /// As the clause redefines it (under `new_name`), if readable.
        definition: Option<NewColumn>,
    },
    /// `None` for an index the server names itself.
    AddIndex {
        index: Option<String>,
    },
    DropIndex {
        index: String,
    },
    /// Anything else (constraints, partitions, table options), by its
    /// leading words.
    Other(String),
}

/// A column as an ADD, CHANGE or MODIFY clause defines it: what a sink of
/// another family needs to make the same change at once, before (and
/// without) any row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewColumn {
    pub def: ColumnDef,
    /// What the rows the table already has hold in an added column: the
    /// source fills them without logging a row.
    pub filled: Filled,
}

/// The value an added column takes in the rows a table already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filled {
    Null,
    /// The type's implicit default (a NOT NULL column without DEFAULT):
    /// zero, the empty string, the first ENUM member, the zero date.
    Implicit,
    /// A constant: a string's characters (unquoted, unescaped), a number's
    /// digits.
    Value(String),
    /// A bit-value literal (`b'0101'`).
    Bits(u64),
    /// Computed by the server, per row or when the column was added
    /// (`CURRENT_TIMESTAMP`, an expression, AUTO_INCREMENT): the values are
    /// in no binlog event.
    Computed(String),
}

impl SchemaChange {
    /// Every table the change names, as it was before the change and after
    /// (a rename names both).
    pub fn tables(&self) -> Vec<&TableId> {
        match self {
            SchemaChange::CreateTable { table, like, .. } => {
                std::iter::once(table).chain(like.iter()).collect()
            }
            SchemaChange::AlterTable {
                table, rename_to, ..
            } => std::iter::once(table).chain(rename_to.iter()).collect(),
            SchemaChange::DropTable { tables } => tables.iter().collect(),
            SchemaChange::RenameTable { renames } => {
                renames.iter().flat_map(|(a, b)| [a, b]).collect()
            }
            SchemaChange::TruncateTable { table }
            | SchemaChange::CreateIndex { table, .. }
            | SchemaChange::DropIndex { table, .. } => vec![table],
            SchemaChange::CreateDatabase { .. }
            | SchemaChange::DropDatabase { .. }
            | SchemaChange::AlterDatabase { .. } => Vec::new(),
        }
    }
}
