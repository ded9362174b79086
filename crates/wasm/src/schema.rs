//! Tables as plugins see them, and the tables a plugin declares (through
//! its `schema` export) turned back into sluice table schemas, with the DDL
//! that creates them on a target.

use std::sync::Arc;

use super::wasm::types;
use crate::event::{quote_ident, ColumnDef, Constraints, KeyKind, TableDdl, TableId, TableSchema};
use sluice_core::types::{arrow_schema, LogicalType};

/// A table as the contract describes it.
pub fn wit_table(t: &TableSchema) -> types::Table {
    types::Table {
        database: t.id.database.clone(),
        name: t.id.name.clone(),
        columns: t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| types::Column {
                name: c.name.clone(),
                mysql_type: c.column_type.clone(),
                key: t.key.contains(&i),
                nullable: c.nullable,
            })
            .collect(),
    }
}

/// An operation's name in reports: insert, update, delete, read.
pub fn op_name(op: types::Op) -> &'static str {
    match op {
        types::Op::Insert => "insert",
        types::Op::Update => "update",
        types::Op::Delete => "delete",
        types::Op::Read => "read",
    }
}

/// Whether two schemas hold the same rows: same columns (names, types,
/// nullability) and the same key.
pub fn same_shape(a: &TableSchema, b: &TableSchema) -> bool {
    a.key == b.key
        && a.columns.len() == b.columns.len()
        && a.columns.iter().zip(&b.columns).all(|(x, y)| {
            x.name == y.name
                && x.column_type.eq_ignore_ascii_case(&y.column_type)
                && x.nullable == y.nullable
        })
}

/// The schema of `out`, a table a plugin declared for events of `input`.
/// `input` itself when nothing changed, so the target gets the source's own
/// DDL; the source's DDL under the new name for a pure rename; otherwise a
/// generated `CREATE TABLE` with the declared columns and key.
pub fn derive(
    out: &types::Table,
    input: &Arc<TableSchema>,
    reserved: &[String],
) -> Result<Arc<TableSchema>, String> {
    if *out == wit_table(input) {
        return Ok(input.clone());
    }
    let name = format!("{}.{}", out.database, out.name);
    if out.database.is_empty() || out.name.is_empty() {
        return Err(format!(
            "declared a table `{name}` without a database or a name"
        ));
    }
    if out.columns.is_empty() {
        return Err(format!("declared table `{name}` without columns"));
    }
    // A plugin is untrusted code: it must not make sinks write into the
    // server's own schemas or sluice's checkpoints.
    if let Some(system) = reserved
        .iter()
        .find(|s| s.eq_ignore_ascii_case(&out.database))
    {
        return Err(format!(
            "declared table `{name}` in `{system}`, a schema of the server (or sluice's own); plugins may only declare tables in application databases"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut columns = Vec::with_capacity(out.columns.len());
    for c in &out.columns {
        if !seen.insert(c.name.to_ascii_lowercase()) {
            return Err(format!(
                "declared table `{name}` with column `{}` twice",
                c.name
            ));
        }
        // A key column cannot be NULL (it becomes part of the primary key).
        let nullable = c.nullable && !c.key;
        let kept = input
            .columns
            .iter()
            .find(|ic| ic.name == c.name && ic.column_type.eq_ignore_ascii_case(&c.mysql_type));
        columns.push(match kept {
            Some(ic) => ColumnDef {
                nullable,
                ..ic.clone()
            },
            None => {
                let logical = LogicalType::parse(&c.mysql_type).ok_or_else(|| {
                    format!(
                        "declared column `{}` of `{name}` with type `{}`, which sluice does not know",
                        c.name, c.mysql_type
                    )
                })?;
                ColumnDef {
                    name: c.name.clone(),
                    logical,
                    column_type: c.mysql_type.clone(),
                    nullable,
                    // New text columns take the table's default character
                    // set, so values are checked against it.
                    charset: logical.is_text()
                        .then(|| default_charset(&input.ddl.create_table))
                        .flatten(),
                    collation: None,
                }
            }
        });
    }
    let key: Vec<usize> = out
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key)
        .map(|(i, _)| i)
        .collect();
    let id = TableId::new(&out.database, &out.name);
    let mut schema = TableSchema {
        id: id.clone(),
        key_kind: if key.is_empty() {
            KeyKind::None
        } else {
            KeyKind::Primary
        },
        key,
        arrow: arrow_schema(&columns),
        columns,
        ddl: TableDdl::default(),
        estimated_rows: input.estimated_rows,
        constraints: Constraints::default(),
    };
    let create_database =
        rename_database(&input.ddl.create_database, &input.id.database, &id.database);
    if same_shape(&schema, input) {
        // The source's own DDL under the new name: its indexes and foreign keys too.
        schema.ddl = TableDdl {
            create_database,
            create_table: rename_table(&input.ddl.create_table, &input.id.name, &id.name),
            ..input.ddl.clone()
        };
        schema.constraints = input.constraints.clone();
    } else {
        schema.ddl = TableDdl {
            create_database,
            create_table: create_table(&schema, &input.ddl.create_table),
            ..Default::default()
        };
        // The generated table has its primary key and nothing else.
        if !schema.key.is_empty() {
            schema.constraints.unique_keys = vec![schema.key.clone()];
        }
    }
    Ok(Arc::new(schema))
}

/// `CREATE TABLE` for a reshaped table: its columns and primary key, with
/// the source table's options (engine, charset) but not its secondary
/// indexes, partitioning or foreign keys, which named the source's columns.
fn create_table(t: &TableSchema, source_create: &str) -> String {
    let mut lines: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let charset = match (&c.charset, c.logical) {
                (Some(cs), t) if t.is_text() => format!(" CHARACTER SET {cs}"),
                _ => String::new(),
            };
            let null = if c.nullable { " NULL" } else { " NOT NULL" };
            format!(
                "  {} {}{charset}{null}",
                quote_ident(&c.name),
                c.column_type
            )
        })
        .collect();
    if !t.key.is_empty() {
        let key: Vec<String> = t
            .key
            .iter()
            .map(|&i| quote_ident(&t.columns[i].name))
            .collect();
        lines.push(format!("  PRIMARY KEY ({})", key.join(",")));
    }
    let options = source_create
        .rfind("\n)")
        .map(|i| &source_create[i + 2..])
        .map(|rest| rest.lines().next().unwrap_or("").trim())
        .map(|o| {
            o.split_whitespace()
                .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|o| o.starts_with("ENGINE="))
        .unwrap_or_else(|| "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4".into());
    format!(
        "CREATE TABLE {} (\n{}\n) {options}",
        quote_ident(&t.id.name),
        lines.join(",\n")
    )
}

/// The `DEFAULT CHARSET=` of a `SHOW CREATE TABLE` text.
fn default_charset(create: &str) -> Option<String> {
    let options = &create[create.rfind("\n)")?..];
    let at = options.find("CHARSET=")? + "CHARSET=".len();
    let name: String = options[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn rename_table(create: &str, from: &str, to: &str) -> String {
    let prefix = format!("CREATE TABLE {}", quote_ident(from));
    match create.strip_prefix(&prefix) {
        Some(rest) => format!("CREATE TABLE {}{rest}", quote_ident(to)),
        None => create.to_string(),
    }
}

fn rename_database(create: &str, from: &str, to: &str) -> String {
    let prefix = format!("CREATE DATABASE {}", quote_ident(from));
    match create.strip_prefix(&prefix) {
        Some(rest) => format!("CREATE DATABASE {}{rest}", quote_ident(to)),
        None => format!("CREATE DATABASE {}", quote_ident(to)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ddl_keeps_table_options_only() {
        let source = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  KEY `k` (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=latin1\n PARTITION BY HASH (`id`)";
        let columns = vec![ColumnDef {
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
        let t = TableSchema {
            id: TableId::new("d", "u"),
            arrow: arrow_schema(&columns),
            columns,
            key: vec![0],
            key_kind: KeyKind::Primary,
            ddl: TableDdl::default(),
            estimated_rows: 0,
            constraints: Constraints::default(),
        };
        assert_eq!(
            create_table(&t, source),
            "CREATE TABLE `u` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1"
        );
        assert_eq!(
            rename_table(source, "t", "x").lines().next(),
            Some("CREATE TABLE `x` (")
        );
    }
}
