//! Which tables a source has and how each is defined.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::connect::Endpoint;
use crate::event::{
    quote_ident, ColumnDef, Constraints, KeyKind, TableDdl, TableId, TableSchema, TriggerDdl,
};
use crate::types::{arrow_schema, LogicalType, TypeFacts};
use crate::{Error, Result};

/// Schemas that belong to the server itself (and sluice's own), never copied.
pub const SYSTEM_SCHEMAS: &[&str] = &[
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    "sluice",
];

/// Base tables visible to the connection's user, with the server's row estimates.
pub async fn list_tables(ep: &Endpoint, conn: &mut Conn) -> Result<Vec<(TableId, u64)>> {
    let rows: Vec<(String, String, Option<u64>)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .map_err(|e| ep.error("listing tables", e))?;
    Ok(rows
        .into_iter()
        .map(|(d, t, n)| (TableId::new(d, t), n.unwrap_or(0)))
        .collect())
}

type ColumnRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    String,
    Option<String>,
);

/// Reads a table's columns, identifying key and DDL.
pub async fn load_schema(
    ep: &Endpoint,
    conn: &mut Conn,
    id: &TableId,
    estimated_rows: u64,
) -> Result<TableSchema> {
    let ctx = |what: &str| format!("reading the {what} of {id}");
    let cols: Vec<ColumnRow> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, NUMERIC_PRECISION, \
             NUMERIC_SCALE, DATETIME_PRECISION, IS_NULLABLE, GENERATION_EXPRESSION \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (&id.database, &id.name),
        )
        .await
        .map_err(|e| ep.error(ctx("columns"), e))?;
    let mut columns = Vec::with_capacity(cols.len());
    let mut generated = Vec::new();
    for (i, (name, data_type, column_type, charset, collation, prec, scale, dtp, nullable, gen)) in
        cols.into_iter().enumerate()
    {
        // Generated columns are computed by the target from the others.
        if gen.as_deref().is_some_and(|g| !g.is_empty()) {
            generated.push((i, name));
            continue;
        }
        let facts = TypeFacts {
            data_type: &data_type,
            column_type: &column_type,
            charset: charset.as_deref(),
            numeric_precision: prec,
            numeric_scale: scale,
            datetime_precision: dtp,
        };
        let logical = LogicalType::from_facts(&facts).ok_or_else(|| {
            Error::precondition(
                format!("{id} column `{name}` has type `{column_type}`, which sluice cannot copy exactly"),
                format!("exclude the table with `exclude: [\"{id}\"]`, or report the type as a sluice issue"),
            )
        })?;
        columns.push(ColumnDef {
            name,
            logical,
            column_type,
            nullable: nullable == "YES",
            charset,
            collation,
        });
    }
    mark_mariadb_json(conn, id, &mut columns).await;
    if columns.is_empty() {
        return Err(Error::precondition(
            format!("{id} has no columns the user can read"),
            "grant SELECT on the table to the source user",
        ));
    }

    let (key, key_kind, unique_keys) = identifying_key(ep, conn, id, &columns).await?;
    let mut ddl = load_ddl(ep, conn, id).await?;
    ddl.generated = generated;
    Ok(TableSchema {
        arrow: arrow_schema(&columns),
        id: id.clone(),
        columns,
        key,
        key_kind,
        ddl,
        estimated_rows,
        constraints: Constraints {
            unique_keys,
            // Set by [`mark_foreign_keys`], which knows the other tables.
            foreign_key: false,
        },
    })
}

/// Every foreign key's (child, parent) table pair on the server.
pub async fn foreign_key_edges(ep: &Endpoint, conn: &mut Conn) -> Result<Vec<(TableId, TableId)>> {
    let rows: Vec<(String, String, String, String)> = conn
        .query(
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME \
             FROM information_schema.REFERENTIAL_CONSTRAINTS",
        )
        .await
        .map_err(|e| ep.error("reading the foreign keys", e))?;
    Ok(rows
        .into_iter()
        .map(|(cd, ct, pd, pt)| (TableId::new(cd, ct), TableId::new(pd, pt)))
        .collect())
}

/// Marks the tables that a foreign key joins to another of `tables` (a
/// self-reference counts): their changes are applied in source order with
/// the source's foreign key checks, so that foreign key actions happen on
/// the target too. A key to a table outside `tables` cannot act on the
/// target and is left alone. Returns whether any mark changed.
pub fn mark_foreign_keys(tables: &mut [Arc<TableSchema>], edges: &[(TableId, TableId)]) -> bool {
    let selected: std::collections::HashSet<TableId> =
        tables.iter().map(|t| t.id.clone()).collect();
    let joined: std::collections::HashSet<&TableId> = edges
        .iter()
        .filter(|(c, p)| selected.contains(c) && selected.contains(p))
        .flat_map(|(c, p)| [c, p])
        .collect();
    let mut changed = false;
    for t in tables.iter_mut() {
        let fk = joined.contains(&t.id);
        if t.constraints.foreign_key != fk {
            Arc::make_mut(t).constraints.foreign_key = fk;
            changed = true;
        }
    }
    changed
}

/// MariaDB's JSON is LONGTEXT with a `json_valid()` check; such columns are
/// given the type `json`, so sinks that know JSON (Parquet's logical type)
/// keep it. MySQL has a real JSON type, and its CHECK_CONSTRAINTS has no
/// TABLE_NAME, so the query fails there and nothing changes.
async fn mark_mariadb_json(conn: &mut Conn, id: &TableId, columns: &mut [ColumnDef]) {
    if !columns
        .iter()
        .any(|c| c.column_type.eq_ignore_ascii_case("longtext"))
    {
        return;
    }
    let clauses: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (&id.database, &id.name),
        )
        .await
        .unwrap_or_default();
    for c in columns.iter_mut() {
        let check = format!("json_valid(`{}`)", c.name);
        if c.column_type.eq_ignore_ascii_case("longtext")
            && clauses
                .iter()
                .any(|k| k.trim().eq_ignore_ascii_case(&check))
        {
            c.logical = crate::types::LogicalType::Json;
            c.column_type = "json".into();
        }
    }
}

/// The primary key, else the narrowest unique key over NOT NULL columns;
/// and every unique index.
async fn identifying_key(
    ep: &Endpoint,
    conn: &mut Conn,
    id: &TableId,
    columns: &[ColumnDef],
) -> Result<(Vec<usize>, KeyKind, Vec<Vec<usize>>)> {
    // COLUMN_NAME is NULL for MySQL's functional index parts.
    let rows: Vec<(String, u64, Option<String>, String)> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, NULLABLE FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (&id.database, &id.name),
        )
        .await
        .map_err(|e| ep.error(format!("reading the indexes of {id}"), e))?;
    let mut indexes: Vec<(String, Vec<usize>, bool)> = Vec::new();
    for (index, non_unique, column, nullable) in rows {
        if non_unique != 0 {
            continue;
        }
        let pos = column.and_then(|column| columns.iter().position(|c| c.name == column));
        match indexes.last_mut() {
            Some((name, cols, ok)) if *name == index => {
                *ok &= nullable != "YES" && pos.is_some();
                cols.extend(pos);
            }
            _ => indexes.push((
                index,
                pos.into_iter().collect(),
                nullable != "YES" && pos.is_some(),
            )),
        }
    }
    let unique: Vec<Vec<usize>> = indexes.iter().map(|(_, cols, _)| cols.clone()).collect();
    if let Some((_, cols, _)) = indexes.iter().find(|(n, _, _)| n == "PRIMARY") {
        return Ok((cols.clone(), KeyKind::Primary, unique));
    }
    let (key, kind) = indexes
        .into_iter()
        .filter(|(_, _, ok)| *ok)
        .min_by_key(|(_, cols, _)| cols.len())
        .map(|(_, cols, _)| (cols, KeyKind::Unique))
        .unwrap_or((Vec::new(), KeyKind::None));
    Ok((key, kind, unique))
}

async fn load_ddl(ep: &Endpoint, conn: &mut Conn, id: &TableId) -> Result<TableDdl> {
    let db: Option<(String, String)> = conn
        .query_first(format!(
            "SHOW CREATE DATABASE {}",
            quote_ident(&id.database)
        ))
        .await
        .map_err(|e| {
            ep.error(
                format!("reading the definition of database {}", id.database),
                e,
            )
        })?;
    let table: Option<(String, String)> = conn
        .query_first(format!("SHOW CREATE TABLE {}", id.quoted()))
        .await
        .map_err(|e| ep.error(format!("reading the definition of {id}"), e))?;
    let rows: Vec<(String, String, String, String, String, String)> = conn
        .exec(
            "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, DEFINER, SQL_MODE \
             FROM information_schema.TRIGGERS \
             WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY ACTION_ORDER",
            (&id.database, &id.name),
        )
        .await
        .map_err(|e| ep.error(format!("reading the triggers of {id}"), e))?;
    let triggers = rows
        .into_iter()
        .map(
            |(name, timing, event, body, definer, sql_mode)| TriggerDdl {
                name,
                timing,
                event,
                body,
                definer,
                sql_mode,
            },
        )
        .collect();
    let create_table = table.map(|t| t.1).unwrap_or_default();
    let details = crate::binlog::column_definition::table_details(&create_table);
    Ok(TableDdl {
        create_database: db.map(|d| d.1).unwrap_or_default(),
        create_table,
        triggers,
        generated: Vec::new(),
        columns: details.columns,
        next_auto_increment: details.next_auto_increment,
        comment: details.comment,
    })
}

/// Shared handle type for discovered tables.
pub type Tables = Vec<Arc<TableSchema>>;
