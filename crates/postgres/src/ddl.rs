//! Schema changes from the binlog, translated to PostgreSQL.
//!
//! - [`explicit`]: what a statement says (drop or rename a table or
//!   column, truncate, drop an index, add or redefine a column as its
//!   clause defines it) becomes the same change on PostgreSQL, in the
//!   transaction that moves the checkpoint past it: exactly once.
//! - [`reconcile`]: a table's columns brought in line with a definition
//!   the rows describe (the binlog's, when they arrive), by comparing it
//!   with PostgreSQL's own catalog. Comparing with the catalog, not with
//!   what this process remembers, makes it idempotent: after a crash it
//!   finds the work done, or does it.
//!
//! MySQL fills the rows a table already has when a column is added (its
//! default, or the type's implicit one) without writing a row event. The
//! PostgreSQL column is added with the same value, which only the
//! statement says exactly ([`Filled`]); the source's catalog, read later,
//! may already describe a later statement.

use std::collections::BTreeSet;

use sluice_core::event::{ColumnDef, TableId};
use sluice_core::rename::Renames;
use sluice_core::schema_change::{AlterAction, Filled, SchemaChange};
use sluice_core::types::LogicalType;
use sluice_core::{Error, Result};
use tokio_postgres::Client;

use crate::connect::{quote_ident, quote_literal, Endpoint};
use crate::indexes;
use crate::table::TypeOptions;
use crate::table::{Column, Target, HISTORY_SUFFIX};
use crate::types::{PgType, ZeroDates};

/// A column as PostgreSQL's catalog has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    pub name: String,
    /// As [`PgType::sql`] spells it.
    pub ty: String,
    pub not_null: bool,
}

/// The columns of `qualified` (a quoted name), `None` if there is no such table.
pub async fn columns(
    ep: &Endpoint,
    client: &Client,
    qualified: &str,
) -> Result<Option<Vec<PgColumn>>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
             FROM pg_attribute a WHERE a.attrelid = to_regclass($1) \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&qualified],
        )
        .await
        .map_err(|e| ep.error(format!("reading the columns of {qualified}"), e))?;
    if rows.is_empty() {
        let exists = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])
            .await
            .map_err(|e| ep.error(format!("looking for {qualified}"), e))?;
        if !exists.get::<_, bool>(0) {
            return Ok(None);
        }
    }
    Ok(Some(
        rows.iter()
            .map(|r| PgColumn {
                name: r.get(0),
                ty: spelled(r.get(1)),
                not_null: r.get(2),
            })
            .collect(),
    ))
}

/// `format_type`'s spelling as [`PgType::sql`]'s.
fn spelled(format_type: String) -> String {
    match format_type.strip_prefix("character varying") {
        Some(rest) => format!("varchar{rest}"),
        None => format_type,
    }
}

/// Names of the foreign keys PostgreSQL has on `qualified`.
pub async fn foreign_key_names(
    ep: &Endpoint,
    client: &Client,
    qualified: &str,
) -> Result<BTreeSet<String>> {
    let rows = client
        .query(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'f'",
            &[&qualified],
        )
        .await
        .map_err(|e| ep.error(format!("reading the foreign keys of {qualified}"), e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The unique constraints of `qualified` (not its primary key): each name
/// and its columns, in order.
pub async fn unique_keys(
    ep: &Endpoint,
    client: &Client,
    qualified: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    let rows = client
        .query(
            "SELECT c.conname::text, array_agg(a.attname::text ORDER BY k.ord) \
             FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
             WHERE c.conrelid = to_regclass($1) AND c.contype = 'u' GROUP BY c.conname",
            &[&qualified],
        )
        .await
        .map_err(|e| ep.error(format!("reading the unique keys of {qualified}"), e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The statements that make PostgreSQL's table `have` hold `target`'s
/// columns: each missing column added (with the default MySQL gave the
/// rows it already had), each changed type cast, NOT NULL set or dropped.
/// Columns the source no longer has are left: a drop is explicit.
/// `history` is the change table's columns, if it has one. `empty`: the
/// table has no rows, so no default is needed for old rows.
pub fn reconcile(
    target: &Target,
    have: &[PgColumn],
    history: Option<&[PgColumn]>,
    empty: bool,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let alter = |what: String| format!("ALTER TABLE {} {what}", target.qualified);
    for col in &target.columns {
        let name = quote_ident(&col.name);
        let ty = col.ty.sql();
        match have.iter().find(|h| h.name == col.name) {
            // Added when its statement was applied, unless the statement
            // could not be read: then only an empty table is certain.
            None if !empty => {
                return Err(Error::precondition(
                    format!(
                        "PostgreSQL table {}: the source has a column `{}` that the table lacks, and the rows it already has hold values the binlog does not carry",
                        target.display(),
                        col.name
                    ),
                    RELOAD,
                ))
            }
            None => out.push(alter(format!(
                "ADD COLUMN {name} {ty}{}",
                if col.nullable { "" } else { " NOT NULL" }
            ))),
            Some(h) => out.extend(redefine(&target.qualified, &col.name, h, col)),
        }
    }
    if let Some(hist) = history {
        let q = target.history_qualified();
        for col in &target.columns {
            let name = quote_ident(&col.name);
            let ty = col.ty.sql();
            match hist.iter().find(|h| h.name == col.name) {
                None => out.push(format!("ALTER TABLE {q} ADD COLUMN {name} {ty}")),
                Some(h) if h.ty != ty => out.push(format!(
                    "ALTER TABLE {q} ALTER COLUMN {name} TYPE {ty} USING {}",
                    cast(&name, col.ty)
                )),
                Some(_) => {}
            }
        }
    }
    Ok(out)
}

/// What to do when the rows of a table cannot be brought in line here.
const RELOAD: &str = "reload the table: stop sluice, drop the PostgreSQL table and its row in sluice.checkpoints, and run again from a snapshot; or change the PostgreSQL table by hand and set `on_schema_change: skip` until sluice is past the statement";

/// The statements that turn column `h` into `col`: its type cast, NOT
/// NULL set or dropped.
fn redefine(qualified: &str, column: &str, h: &PgColumn, col: &Column) -> Vec<String> {
    let name = quote_ident(column);
    let mut out = Vec::new();
    if h.ty != col.ty.sql() {
        out.push(format!(
            "ALTER TABLE {qualified} ALTER COLUMN {name} TYPE {} USING {}",
            col.ty.sql(),
            cast(&name, col.ty)
        ));
    }
    if h.not_null && col.nullable {
        out.push(format!(
            "ALTER TABLE {qualified} ALTER COLUMN {name} DROP NOT NULL"
        ));
    } else if !h.not_null && !col.nullable {
        out.push(format!(
            "ALTER TABLE {qualified} ALTER COLUMN {name} SET NOT NULL"
        ));
    }
    out
}

/// How a column's values become type `to`. MySQL keeps a BIT value's
/// number when its width changes; PostgreSQL's bit-to-bit cast pads or
/// cuts on the right, so the number goes through bigint.
fn cast(name: &str, to: PgType) -> String {
    match to {
        PgType::Bit(_) => format!("{name}::bigint::{}", to.sql()),
        _ => format!("{name}::{}", to.sql()),
    }
}

/// What MySQL put in the rows a table had when column `col` was added,
/// as SQL of the column's type; `None` for NULL. An error when the value
/// is in no event (an expression the server evaluated, AUTO_INCREMENT
/// numbers) and the table has rows.
fn filled_with(
    table: &str,
    source: &ColumnDef,
    col: &Column,
    filled: &Filled,
    empty: bool,
    zero_dates: ZeroDates,
) -> Result<Option<String>> {
    let cannot = |why: String| {
        Error::precondition(
            format!(
                "PostgreSQL table {table}: column `{}` was added on the source, which filled the table's existing rows with {why}, and the binlog does not carry those values",
                col.name
            ),
            RELOAD,
        )
    };
    let value = match filled {
        _ if empty => return Ok(None),
        Filled::Null => return Ok(None),
        Filled::Computed(e) => {
            return Err(cannot(format!(
                "the value of `{e}` when the column was added"
            )))
        }
        Filled::Bits(v) => return Ok(Some(bits(*v, col.ty))),
        Filled::Value(v) => v.clone(),
        Filled::Implicit => implicit_default(source)
            .ok_or_else(|| cannot("the implicit default of its type".into()))?,
    };
    literal(&value, source, col, zero_dates)
        .map(Some)
        .map_err(cannot)
}

/// A DEFAULT's value as PostgreSQL SQL of the column's type.
pub(crate) fn literal(
    v: &str,
    source: &ColumnDef,
    col: &Column,
    zero_dates: ZeroDates,
) -> std::result::Result<String, String> {
    let ty = col.ty.sql();
    match col.ty {
        PgType::Bit(_) => Ok(bits(
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("the default {v:?}"))?,
            col.ty,
        )),
        PgType::Date | PgType::Timestamp(_) | PgType::Timestamptz(_) => {
            let zero =
                v.starts_with("0000") || v.get(5..7) == Some("00") || v.get(8..10) == Some("00");
            if zero {
                return match zero_dates {
                    ZeroDates::Null if col.nullable => Ok("NULL".into()),
                    _ => Err(format!(
                        "the zero date {v:?} (set `zero_dates: null` to store NULL)"
                    )),
                };
            }
            // The source's session runs in UTC (connect.rs of the MySQL
            // source), so a TIMESTAMP default is printed in UTC.
            let zone = if matches!(col.ty, PgType::Timestamptz(_)) {
                "+00"
            } else {
                ""
            };
            Ok(format!("{}::{ty}", quote_literal(&format!("{v}{zone}"))))
        }
        PgType::Bytea => {
            let mut bytes = v.as_bytes().to_vec();
            // BINARY(n) pads with zero bytes.
            if let Some(n) = fixed_length(&source.column_type, "binary") {
                bytes.resize(bytes.len().max(n), 0);
            }
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            Ok(format!("'\\x{hex}'::bytea"))
        }
        PgType::Varchar(_) | PgType::Text
            if source.column_type.to_ascii_lowercase().starts_with("char") =>
        {
            // CHAR(n) reads back without its trailing spaces.
            Ok(format!("{}::{ty}", quote_literal(v.trim_end_matches(' '))))
        }
        _ => Ok(format!("{}::{ty}", quote_literal(v))),
    }
}

pub(crate) fn bits(v: u64, ty: PgType) -> String {
    format!("{}::bigint::{}", v as i64, ty.sql())
}

/// `n` of `binary(n)` (or `char(n)`).
fn fixed_length(column_type: &str, kind: &str) -> Option<usize> {
    let lower = column_type.to_ascii_lowercase();
    let rest = lower.strip_prefix(kind)?.strip_prefix('(')?;
    rest.split_once(')')?.0.trim().parse().ok()
}

/// What a NOT NULL column without a DEFAULT holds in rows that were there
/// before it (MySQL's implicit default), as the literal text of a DEFAULT.
fn implicit_default(c: &ColumnDef) -> Option<String> {
    match c.logical {
        LogicalType::Int { .. }
        | LogicalType::Decimal { .. }
        | LogicalType::Float
        | LogicalType::Double
        | LogicalType::Bit { .. }
        | LogicalType::Year => Some("0".into()),
        LogicalType::Text | LogicalType::Bytes | LogicalType::Set => Some(String::new()),
        LogicalType::Time { .. } => Some("00:00:00".into()),
        LogicalType::Date | LogicalType::DateTime { .. } | LogicalType::Timestamp { .. } => {
            Some("0000-00-00".into())
        }
        // The first member.
        LogicalType::Enum => sluice_core::types::members(&c.column_type)
            .into_iter()
            .next(),
        _ => None,
    }
}

/// What [`explicit`] needs besides the change.
pub struct Context<'a> {
    pub renames: &'a Renames,
    /// Change tables exist beside the tables (`history: true`).
    pub history: bool,
    /// Every source table the sink has a target for.
    pub known: &'a [TableId],
    pub types: TypeOptions,
    /// The altered table has no rows on PostgreSQL (or is not there):
    /// an added column needs no value for old rows.
    pub empty: bool,
}

/// The statements a change says explicitly, for the target: table drops
/// and renames, column drops and renames, truncation, index drops, and
/// columns added or redefined as their clauses define them. What needs a
/// definition the statement lacks waits for the table's next rows
/// ([`reconcile`]).
pub fn explicit(change: &SchemaChange, ctx: &Context<'_>) -> Result<Vec<String>> {
    let (renames, history, known) = (ctx.renames, ctx.history, ctx.known);
    let target = |t: &TableId| {
        let id = renames.target(t);
        (
            id.clone(),
            format!("{}.{}", quote_ident(&id.database), quote_ident(&id.name)),
        )
    };
    let history_of = |id: &TableId| {
        format!(
            "{}.{}",
            quote_ident(&id.database),
            quote_ident(&format!("{}{HISTORY_SUFFIX}", id.name))
        )
    };
    let rename_table = |from: &TableId, to: &TableId, out: &mut Vec<String>| {
        let (f, fq) = target(from);
        let (t, _) = target(to);
        let mut pairs = vec![(fq, f.name.clone(), t.name.clone())];
        if history {
            pairs.push((
                history_of(&f),
                format!("{}{HISTORY_SUFFIX}", f.name),
                format!("{}{HISTORY_SUFFIX}", t.name),
            ));
        }
        for (q, from_name, to_name) in pairs {
            let mut q = q;
            if f.database != t.database {
                out.push(format!(
                    "CREATE SCHEMA IF NOT EXISTS {}",
                    quote_ident(&t.database)
                ));
                out.push(format!(
                    "ALTER TABLE IF EXISTS {q} SET SCHEMA {}",
                    quote_ident(&t.database)
                ));
                q = format!("{}.{}", quote_ident(&t.database), quote_ident(&from_name));
            }
            if from_name != to_name {
                out.push(format!(
                    "ALTER TABLE IF EXISTS {q} RENAME TO {}",
                    quote_ident(&to_name)
                ));
            }
        }
    };
    let mut out = Vec::new();
    match change {
        // Created with its first rows, as the binlog describes them.
        SchemaChange::CreateTable { .. }
        | SchemaChange::CreateIndex { .. }
        | SchemaChange::CreateDatabase { .. }
        | SchemaChange::AlterDatabase { .. } => {}
        SchemaChange::DropTable { tables } => {
            for t in tables {
                // The change table stays: it is the record of what was.
                out.push(format!("DROP TABLE IF EXISTS {} CASCADE", target(t).1));
            }
        }
        SchemaChange::DropDatabase { database } => {
            // Its tables only: a renamed database may share a schema.
            for t in known.iter().filter(|t| &t.database == database) {
                out.push(format!("DROP TABLE IF EXISTS {} CASCADE", target(t).1));
            }
        }
        SchemaChange::RenameTable { renames: pairs } => {
            for (from, to) in pairs {
                rename_table(from, to, &mut out);
            }
        }
        SchemaChange::TruncateTable { table } => {
            // A table created on the source that had no rows yet is not
            // on PostgreSQL (it is created with its first rows).
            let q = target(table).1;
            out.push(format!(
                "DO $$BEGIN IF to_regclass({}) IS NOT NULL THEN TRUNCATE {q}; END IF; END$$",
                quote_literal(&q)
            ))
        }
        SchemaChange::DropIndex { table, index } => {
            let (id, _) = target(table);
            out.push(drop_index(&id, index));
        }
        SchemaChange::AlterTable {
            table,
            actions,
            rename_to,
        } => {
            let (id, q) = target(table);
            let mut tables = vec![q];
            if history {
                tables.push(history_of(&id));
            }
            for a in actions {
                match a {
                    AlterAction::DropColumn { column } => {
                        // The change table keeps the column's past values.
                        out.push(format!(
                            "ALTER TABLE IF EXISTS {} DROP COLUMN IF EXISTS {}",
                            tables[0],
                            quote_ident(column)
                        ));
                    }
                    AlterAction::RenameColumn { from, to }
                    | AlterAction::ModifyColumn {
                        column: from,
                        new_name: to,
                        ..
                    } if from != to => {
                        for q in &tables {
                            out.push(rename_column(q, from, to));
                        }
                    }
                    AlterAction::DropIndex { index } => out.push(drop_index(&id, index)),
                    _ => {}
                }
                match a {
                    AlterAction::AddColumn {
                        definition: Some(d),
                        ..
                    } => {
                        let col = Column::of(&d.def, ctx.types);
                        let display = format!("{}.{}", id.database, id.name);
                        let fill = filled_with(
                            &display,
                            &d.def,
                            &col,
                            &d.filled,
                            ctx.empty,
                            ctx.types.zero_dates,
                        )?;
                        let mut def = format!(
                            "ADD COLUMN IF NOT EXISTS {} {}",
                            quote_ident(&col.name),
                            col.ty.sql()
                        );
                        if let Some(f) = fill {
                            def.push_str(&format!(" DEFAULT {f}"));
                        }
                        if !col.nullable {
                            def.push_str(" NOT NULL");
                        }
                        out.push(format!("ALTER TABLE IF EXISTS {} {def}", tables[0]));
                        if let Some(h) = tables.get(1) {
                            out.push(format!(
                                "ALTER TABLE IF EXISTS {h} ADD COLUMN IF NOT EXISTS {} {}",
                                quote_ident(&col.name),
                                col.ty.sql()
                            ));
                        }
                    }
                    AlterAction::ModifyColumn {
                        definition: Some(d),
                        ..
                    } => {
                        // MySQL converted every value: PostgreSQL's cast
                        // does the same here (docs/pipeline-yaml.md).
                        let col = Column::of(&d.def, ctx.types);
                        let name = quote_ident(&col.name);
                        let ty = col.ty.sql();
                        let null = if col.nullable { "DROP" } else { "SET" };
                        out.push(format!(
                            "ALTER TABLE IF EXISTS {} ALTER COLUMN {name} TYPE {ty} USING {}, ALTER COLUMN {name} {null} NOT NULL",
                            tables[0],
                            cast(&name, col.ty)
                        ));
                        if let Some(h) = tables.get(1) {
                            out.push(format!(
                                "ALTER TABLE IF EXISTS {h} ALTER COLUMN {name} TYPE {ty} USING {}",
                                cast(&name, col.ty)
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if let Some(to) = rename_to {
                rename_table(table, to, &mut out);
            }
        }
    }
    Ok(out)
}

/// Renames a column if the table has it under the old name (a crash after
/// the rename committed leaves nothing to do).
fn rename_column(qualified: &str, from: &str, to: &str) -> String {
    format!(
        "DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass({q}) AND attname = {f} AND NOT attisdropped) THEN ALTER TABLE {qualified} RENAME COLUMN {fi} TO {ti}; END IF; END$$",
        q = quote_literal(qualified),
        f = quote_literal(from),
        fi = quote_ident(from),
        ti = quote_ident(to),
    )
}

fn drop_index(table: &TableId, index: &str) -> String {
    format!(
        "DROP INDEX IF EXISTS {}.{}",
        quote_ident(&table.database),
        quote_ident(&indexes::index_name(&table.name, index))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_and_drops_are_said_by_name() {
        let renames = Renames::new(&Default::default()).unwrap();
        let t = TableId::new("db", "t");
        let change = SchemaChange::AlterTable {
            table: t.clone(),
            actions: vec![
                AlterAction::DropColumn { column: "x".into() },
                AlterAction::RenameColumn {
                    from: "a".into(),
                    to: "b".into(),
                },
                AlterAction::ModifyColumn {
                    column: "c".into(),
                    new_name: "c".into(),
                    definition: None,
                },
            ],
            rename_to: Some(TableId::new("db2", "u")),
        };
        let ctx = Context {
            renames: &renames,
            history: false,
            known: &[],
            types: TypeOptions {
                zero_dates: ZeroDates::Fail,
                json: crate::types::JsonType::Json,
            },
            empty: false,
        };
        let sql = explicit(&change, &ctx).unwrap();
        assert_eq!(
            sql[0],
            "ALTER TABLE IF EXISTS \"db\".\"t\" DROP COLUMN IF EXISTS \"x\""
        );
        assert!(
            sql[1].contains("RENAME COLUMN \"a\" TO \"b\""),
            "{}",
            sql[1]
        );
        assert_eq!(sql[2], "CREATE SCHEMA IF NOT EXISTS \"db2\"");
        assert_eq!(
            sql[3],
            "ALTER TABLE IF EXISTS \"db\".\"t\" SET SCHEMA \"db2\""
        );
        assert_eq!(
            sql[4],
            "ALTER TABLE IF EXISTS \"db2\".\"t\" RENAME TO \"u\""
        );
        assert_eq!(sql.len(), 5);
    }
}
