//! Schema changes as sinks receive them: what a statement does to which
//! tables and columns, in words no SQL dialect owns. The statement's own
//! text travels beside it ([`crate::stage::DdlChange::sql`]) for sinks of
//! the source's family, which replay it under their names; other sinks
//! translate from this description.

use crate::event::TableId;

/// What a schema change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// A new table; its columns arrive with its first rows.
    CreateTable {
        table: TableId,
        /// `CREATE TABLE t LIKE other`.
        like: Option<TableId>,
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

impl SchemaChange {
    /// Every table the change names, as it was before the change and after
    /// (a rename names both).
    pub fn tables(&self) -> Vec<&TableId> {
        match self {
            SchemaChange::CreateTable { table, like } => {
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
