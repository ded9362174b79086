//! Secondary indexes and foreign keys, read from the source's own
//! `SHOW CREATE TABLE` and written as PostgreSQL statements run after the
//! load.
//!
//! Foreign keys matter for exactness, not only for structure: MySQL does
//! not log the rows its foreign key actions change (ON DELETE CASCADE, SET
//! NULL...), so the target must run the same actions when the parent's
//! change arrives.

use sluice_core::event::TableId;
use sluice_core::rename::Renames;

use crate::connect::quote_ident;

/// A plain (non-unique) index: its name and its parts, each a column and
/// an optional prefix length in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub parts: Vec<(String, Option<u32>)>,
}

/// A foreign key as the source declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    /// The referenced table, in the source's names.
    pub references: TableId,
    pub referenced: Vec<String>,
    pub on_delete: Option<String>,
    pub on_update: Option<String>,
}

/// Backquoted identifiers at the start of `s`, separated by `,` or `.`,
/// each with an optional `(N)` prefix length; returns them and the rest.
fn identifiers(s: &str) -> (Vec<(String, Option<u32>)>, &str) {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while let Some((name, after)) = sluice_core::text::backquoted(rest) {
        rest = after;
        let mut prefix = None;
        if let Some(p) = rest.strip_prefix('(') {
            if let Some((n, after)) = p.split_once(')') {
                prefix = n.trim().parse().ok();
                rest = after;
            }
        }
        out.push((name, prefix));
        rest = rest.trim_start();
        match rest.strip_prefix(',').or_else(|| rest.strip_prefix('.')) {
            Some(r) => rest = r.trim_start(),
            None => break,
        }
    }
    (out, rest)
}

/// The action after `ON DELETE` / `ON UPDATE` in `clause`.
fn action(clause: &str, on: &str) -> Option<String> {
    let at = clause.find(on)? + on.len();
    let words: Vec<&str> = clause[at..].split_whitespace().collect();
    let two = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    ["SET NULL", "SET DEFAULT", "NO ACTION"]
        .into_iter()
        .find(|a| two.eq_ignore_ascii_case(a))
        .map(str::to_string)
        .or_else(|| {
            words
                .first()
                .filter(|w| w.eq_ignore_ascii_case("CASCADE") || w.eq_ignore_ascii_case("RESTRICT"))
                .map(|w| w.to_ascii_uppercase())
        })
}

/// The plain indexes and foreign keys of a `SHOW CREATE TABLE` text of a
/// table in `database`. FULLTEXT and SPATIAL indexes are left out (they
/// have no PostgreSQL equivalent of the same meaning).
pub fn parse(create_table: &str, database: &str) -> (Vec<Index>, Vec<ForeignKey>) {
    let mut indexes = Vec::new();
    let mut fks = Vec::new();
    for line in create_table.lines().map(str::trim) {
        let line = line.trim_end_matches(',');
        if let Some(rest) = line.strip_prefix("KEY ") {
            let (name, rest) = identifiers(rest);
            let Some(body) = rest.trim_start().strip_prefix('(') else {
                continue;
            };
            let (parts, _) = identifiers(body);
            if let (Some((name, _)), false) = (name.into_iter().next(), parts.is_empty()) {
                indexes.push(Index { name, parts });
            }
        } else if let Some(rest) = line.strip_prefix("CONSTRAINT ") {
            let (name, rest) = identifiers(rest);
            let Some(rest) = rest.trim_start().strip_prefix("FOREIGN KEY") else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix('(') else {
                continue;
            };
            let (columns, rest) = identifiers(rest);
            let Some(rest) = rest.trim_start().strip_prefix(')') else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix("REFERENCES") else {
                continue;
            };
            let (table, rest) = identifiers(rest);
            let Some(rest) = rest.trim_start().strip_prefix('(') else {
                continue;
            };
            let (referenced, rest) = identifiers(rest);
            let references = match table.as_slice() {
                [(t, _)] => TableId::new(database, t.clone()),
                [(d, _), (t, _)] => TableId::new(d.clone(), t.clone()),
                _ => continue,
            };
            fks.push(ForeignKey {
                name: name.into_iter().next().map(|n| n.0).unwrap_or_default(),
                columns: columns.into_iter().map(|c| c.0).collect(),
                references,
                referenced: referenced.into_iter().map(|c| c.0).collect(),
                on_delete: action(rest, "ON DELETE"),
                on_update: action(rest, "ON UPDATE"),
            });
        }
    }
    (indexes, fks)
}

/// A PostgreSQL index name for index `index` of table `table`: unique in
/// the schema, at most 63 bytes.
pub fn index_name(table: &str, index: &str) -> String {
    let mut n = format!("{table}_{index}");
    while n.len() > 63 {
        n.pop();
    }
    n
}

/// `CREATE INDEX` for a plain index; a prefix is an index on `left()`.
pub fn create_index(table: &str, qualified: &str, i: &Index) -> String {
    let parts: Vec<String> = i
        .parts
        .iter()
        .map(|(c, prefix)| match prefix {
            Some(n) => format!("(left({}, {n}))", quote_ident(c)),
            None => quote_ident(c),
        })
        .collect();
    format!(
        "CREATE INDEX IF NOT EXISTS {} ON {qualified} ({})",
        quote_ident(&index_name(table, &i.name)),
        parts.join(", ")
    )
}

/// `ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY`, NOT VALID: rows the
/// source let in with `foreign_key_checks = 0` do not stop the load, and
/// every change after it is checked (and acted on) as on the source.
pub fn add_foreign_key(qualified: &str, fk: &ForeignKey, renames: &Renames) -> String {
    let target = renames.target(&fk.references);
    let cols = |c: &[String]| {
        c.iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sql = format!(
        "ALTER TABLE {qualified} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {}.{} ({})",
        quote_ident(&fk.name),
        cols(&fk.columns),
        quote_ident(&target.database),
        quote_ident(&target.name),
        cols(&fk.referenced)
    );
    if let Some(a) = &fk.on_delete {
        sql.push_str(&format!(" ON DELETE {a}"));
    }
    if let Some(a) = &fk.on_update {
        sql.push_str(&format!(" ON UPDATE {a}"));
    }
    sql.push_str(" NOT VALID");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "CREATE TABLE `child` (\n  `id` int(11) NOT NULL,\n  `p` int(11) DEFAULT NULL,\n  `q` int(11) DEFAULT NULL,\n  `note` varchar(200) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uq` (`q`),\n  KEY `by_p` (`p`),\n  KEY `by``note` (`note`(10),`p`),\n  FULLTEXT KEY `ft` (`note`),\n  CONSTRAINT `fk_p` FOREIGN KEY (`p`) REFERENCES `parent` (`id`) ON DELETE CASCADE ON UPDATE SET NULL,\n  CONSTRAINT `fk_q` FOREIGN KEY (`q`) REFERENCES `other`.`t` (`k`)\n) ENGINE=InnoDB";

    #[test]
    fn plain_indexes_and_foreign_keys_come_from_show_create_table() {
        let (idx, fks) = parse(CREATE, "shop");
        assert_eq!(
            idx,
            vec![
                Index {
                    name: "by_p".into(),
                    parts: vec![("p".into(), None)]
                },
                Index {
                    name: "by`note".into(),
                    parts: vec![("note".into(), Some(10)), ("p".into(), None)]
                },
            ]
        );
        assert_eq!(fks.len(), 2);
        assert_eq!(fks[0].references, TableId::new("shop", "parent"));
        assert_eq!(fks[0].on_delete.as_deref(), Some("CASCADE"));
        assert_eq!(fks[0].on_update.as_deref(), Some("SET NULL"));
        assert_eq!(fks[1].references, TableId::new("other", "t"));
        assert_eq!(fks[1].on_delete, None);
        assert_eq!(
            create_index("child", "\"shop\".\"child\"", &idx[1]),
            "CREATE INDEX IF NOT EXISTS \"child_by`note\" ON \"shop\".\"child\" ((left(\"note\", 10)), \"p\")"
        );
        let renames = Renames::new(&[("shop.*".to_string(), "pg.*".to_string())].into()).unwrap();
        assert_eq!(
            add_foreign_key("\"pg\".\"child\"", &fks[0], &renames),
            "ALTER TABLE \"pg\".\"child\" ADD CONSTRAINT \"fk_p\" FOREIGN KEY (\"p\") REFERENCES \"pg\".\"parent\" (\"id\") ON DELETE CASCADE ON UPDATE SET NULL NOT VALID"
        );
    }
}
