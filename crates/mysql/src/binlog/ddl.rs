//! Statements from the binlog: which tables they change, and the same
//! statement rewritten for the target's names.
//!
//! A small tokenizer is enough: sluice only needs the statement's kind and
//! the byte spans of the table names it mentions in table positions. A
//! statement that changes a table's definition but that this parser cannot
//! tie to its tables is [`DdlKind::Unrecognized`], never "nothing to do":
//! the source stops on it, or skips it with a warning (`on_unsupported_ddl`).

use super::column_definition;
use crate::event::{quote_ident, TableId};
use crate::schema_change::{AlterAction, NewColumn, SchemaChange};

/// What a statement does to the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DdlKind {
    CreateTable,
    AlterTable,
    DropTable,
    RenameTable,
    TruncateTable,
    CreateIndex,
    DropIndex,
    CreateDatabase,
    DropDatabase,
    AlterDatabase,
    /// Triggers, views, routines, events on a table; data moved in from
    /// outside the binlog (IMPORT TABLESPACE).
    Unsupported(String),
    /// A statement that changes a table's or database's definition in a way
    /// this parser does not know; `tables` holds what it could read.
    Unrecognized,
    /// Not schema-changing (GRANT, SET, FLUSH, ANALYZE, ...), or temporary tables.
    Other,
}

/// A table name as written in the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub table: TableId,
    /// Byte range of the (possibly qualified) name in the statement.
    pub span: (usize, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub kind: DdlKind,
    /// Tables named in table positions, resolved against the default schema.
    /// For RENAME, pairs (from, to) in order; for ALTER ... RENAME TO, the new name last.
    pub tables: Vec<TableRef>,
    /// Other tables the statement names: read (`CREATE TABLE a LIKE b`,
    /// `REFERENCES b`) or exchanged with (`EXCHANGE PARTITION ... WITH
    /// TABLE b`). They are renamed for the target like `tables`.
    pub others: Vec<TableRef>,
    /// For database statements.
    pub database: Option<(String, (usize, usize))>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Ident(String),
    Str,
    Punct(char),
}

fn tokenize(sql: &str) -> Vec<(Tok, usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            // `/*!NNNNN ... */` is executed by MySQL, `/*M!NNNNNN ... */`
            // by MariaDB: keep their content.
            let exec = match (b.get(i + 2), b.get(i + 3)) {
                (Some(b'!'), _) => Some(3),
                (Some(b'M'), Some(b'!')) => Some(4),
                _ => None,
            };
            if let Some(skip) = exec {
                i += skip;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            }
        } else if c == b'*' && b.get(i + 1) == Some(&b'/') {
            i += 2;
        } else if c == b'#' || (c == b'-' && b.get(i + 1) == Some(&b'-')) {
            i = sql[i..].find('\n').map_or(b.len(), |p| i + p);
        } else if c == b'`' {
            let start = i;
            let mut s = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == b'`' {
                    if b.get(i + 1) == Some(&b'`') {
                        s.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                let ch = sql[i..].chars().next().unwrap_or(' ');
                s.push(ch);
                i += ch.len_utf8();
            }
            out.push((Tok::Ident(s), start, i));
        } else if c == b'\'' || c == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push((Tok::Str, start, i.min(b.len())));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push((Tok::Word(sql[start..i].to_string()), start, i));
        } else {
            out.push((Tok::Punct(c as char), i, i + 1));
            i += 1;
        }
    }
    out
}

struct Parser<'a> {
    toks: Vec<(Tok, usize, usize)>,
    pos: usize,
    default_db: &'a str,
}

impl Parser<'_> {
    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.pos) {
            Some((Tok::Word(w), _, _)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_seq(&mut self, words: &[&str]) -> bool {
        let save = self.pos;
        for w in words {
            if !self.eat(w) {
                self.pos = save;
                return false;
            }
        }
        true
    }

    fn name_part(&mut self) -> Option<(String, usize, usize)> {
        match self.toks.get(self.pos)? {
            (Tok::Ident(s), a, b) | (Tok::Word(s), a, b) => {
                let r = (s.clone(), *a, *b);
                self.pos += 1;
                Some(r)
            }
            _ => None,
        }
    }

    /// `name` or `db.name`.
    fn table(&mut self) -> Option<TableRef> {
        let (first, start, mut end) = self.name_part()?;
        if matches!(self.toks.get(self.pos), Some((Tok::Punct('.'), _, _))) {
            self.pos += 1;
            let (second, _, e) = self.name_part()?;
            end = e;
            return Some(TableRef {
                table: TableId::new(first, second),
                span: (start, end),
            });
        }
        Some(TableRef {
            table: TableId::new(self.default_db, first),
            span: (start, end),
        })
    }

    fn comma(&mut self) -> bool {
        if matches!(self.toks.get(self.pos), Some((Tok::Punct(','), _, _))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

/// Objects on tables that sluice does not copy: a statement about one on a
/// selected table is refused (or skipped with a warning).
const TABLE_OBJECTS: &[&str] = &["TRIGGER", "VIEW", "PROCEDURE", "FUNCTION", "EVENT"];

/// Objects whose statements change no table: they are not copied.
const NOT_TABLES: &[&str] = &[
    "USER",
    "ROLE",
    "SERVER",
    "TABLESPACE",
    "LOGFILE",
    "SEQUENCE",
    "PACKAGE",
    "RESOURCE",
    "SPATIAL",
    "AGGREGATE",
    "FUNCTION",
    "PROCEDURE",
    "EVENT",
    "VIEW",
    "ALGORITHM",
    "SQL",
];

/// Classifies `sql`, run with `default_db` as the current database.
pub fn parse(default_db: &str, sql: &str) -> Statement {
    let mut p = Parser {
        toks: tokenize(sql),
        pos: 0,
        default_db,
    };
    let mut st = Statement {
        kind: DdlKind::Other,
        tables: Vec::new(),
        others: Vec::new(),
        database: None,
    };
    // MariaDB's `SET STATEMENT var = value [, ...] FOR statement`.
    if p.eat_seq(&["SET", "STATEMENT"]) {
        while p.pos < p.toks.len() && !p.eat("FOR") {
            p.pos += 1;
        }
    }
    let Some(first) = p.peek_word() else {
        return st;
    };
    p.pos += 1;
    match first.as_str() {
        "CREATE" => create(&mut p, &mut st),
        "ALTER" => alter(&mut p, &mut st),
        "DROP" => drop(&mut p, &mut st),
        "RENAME" => {
            if p.eat("TABLE") || p.eat("TABLES") {
                p.eat_seq(&["IF", "EXISTS"]);
                st.kind = DdlKind::RenameTable;
                loop {
                    let from = p.table();
                    p.eat("TO");
                    let to = p.table();
                    match (from, to) {
                        (Some(a), Some(b)) => st.tables.extend([a, b]),
                        _ => st.kind = DdlKind::Unrecognized,
                    }
                    if !p.comma() {
                        break;
                    }
                    p.eat_seq(&["IF", "EXISTS"]);
                }
            } else if !p
                .peek_word()
                .is_some_and(|w| NOT_TABLES.contains(&w.as_str()))
            {
                st.kind = DdlKind::Unrecognized;
            }
        }
        "TRUNCATE" => {
            p.eat("TABLE");
            st.kind = DdlKind::TruncateTable;
            match p.table() {
                Some(t) => st.tables.push(t),
                None => st.kind = DdlKind::Unrecognized,
            }
        }
        _ => {}
    }
    let names_a_table = matches!(
        st.kind,
        DdlKind::CreateTable
            | DdlKind::AlterTable
            | DdlKind::DropTable
            | DdlKind::CreateIndex
            | DdlKind::DropIndex
    );
    if names_a_table && st.tables.is_empty() {
        st.kind = DdlKind::Unrecognized;
    }
    st
}

fn create(p: &mut Parser<'_>, st: &mut Statement) {
    p.eat_seq(&["OR", "REPLACE"]);
    // ALGORITHM = x, DEFINER = user@host, SQL SECURITY x (views, routines):
    // skip to the object keyword.
    while p.eat("DEFINER") || p.eat("ALGORITHM") || p.eat_seq(&["SQL", "SECURITY"]) {
        while p.pos < p.toks.len() {
            let stop = p.peek_word().is_some_and(|w| {
                [
                    "TRIGGER",
                    "VIEW",
                    "PROCEDURE",
                    "FUNCTION",
                    "EVENT",
                    "SQL",
                    "DEFINER",
                    "AGGREGATE",
                ]
                .contains(&w.as_str())
            });
            if stop {
                break;
            }
            p.pos += 1;
        }
    }
    if p.eat("TEMPORARY") {
        return;
    }
    if p.eat("TABLE") {
        p.eat_seq(&["IF", "NOT", "EXISTS"]);
        st.kind = DdlKind::CreateTable;
        st.tables.extend(p.table());
        references(p, st);
        return;
    }
    if p.eat("DATABASE") || p.eat("SCHEMA") {
        p.eat_seq(&["IF", "NOT", "EXISTS"]);
        st.kind = DdlKind::CreateDatabase;
        st.database = p.name_part().map(|(n, a, b)| (n, (a, b)));
        return;
    }
    let _ = p.eat("ONLINE") || p.eat("OFFLINE");
    let _ = p.eat("UNIQUE") || p.eat("FULLTEXT") || p.eat("SPATIAL");
    if p.eat("INDEX") || p.eat("KEY") {
        st.kind = DdlKind::CreateIndex;
        p.eat_seq(&["IF", "NOT", "EXISTS"]);
        p.name_part();
        // `USING BTREE` / `TYPE HASH` may come before ON.
        while p.eat("USING") || p.eat("TYPE") {
            p.name_part();
        }
        if p.eat("ON") {
            st.tables.extend(p.table());
        }
        return;
    }
    match p.peek_word() {
        Some(w) if TABLE_OBJECTS.contains(&w.as_str()) => {
            st.kind = DdlKind::Unsupported(format!("CREATE {w}"));
            if w == "TRIGGER" {
                // CREATE TRIGGER name {BEFORE|AFTER} event ON table
                while p.pos < p.toks.len() {
                    let on = p.eat("ON");
                    if on {
                        st.tables.extend(p.table());
                        break;
                    }
                    p.pos += 1;
                }
            }
        }
        Some(w) if NOT_TABLES.contains(&w.as_str()) => {}
        _ => st.kind = DdlKind::Unrecognized,
    }
}

fn alter(p: &mut Parser<'_>, st: &mut Statement) {
    let _ = p.eat("ONLINE") || p.eat("OFFLINE");
    p.eat("IGNORE");
    if p.eat("TABLE") {
        p.eat_seq(&["IF", "EXISTS"]);
        st.kind = DdlKind::AlterTable;
        st.tables.extend(p.table());
        // ALTER TABLE t ..., RENAME [TO|AS] new; ... WITH TABLE other;
        // ... REFERENCES parent; IMPORT / DISCARD TABLESPACE.
        let mut renamed = None;
        while p.pos < p.toks.len() {
            if p.eat("RENAME") {
                if p.eat("COLUMN") || p.eat("INDEX") || p.eat("KEY") || p.eat("CONSTRAINT") {
                    continue;
                }
                let _ = p.eat("TO") || p.eat("AS");
                renamed = p.table();
                continue;
            }
            if p.eat_seq(&["WITH", "TABLE"]) {
                st.others.extend(p.table());
                continue;
            }
            if p.eat("REFERENCES") {
                st.others.extend(p.table());
                continue;
            }
            if (p.eat("IMPORT") || p.eat("DISCARD")) && p.eat("TABLESPACE") {
                st.kind = DdlKind::Unsupported("ALTER TABLE ... IMPORT/DISCARD TABLESPACE".into());
            }
            p.pos += 1;
        }
        st.tables.extend(renamed);
        return;
    }
    if p.eat("DATABASE") || p.eat("SCHEMA") {
        st.kind = DdlKind::AlterDatabase;
        st.database = p.name_part().map(|(n, a, b)| (n, (a, b)));
        return;
    }
    match p.peek_word() {
        Some(w) if NOT_TABLES.contains(&w.as_str()) || w == "DEFINER" => {}
        _ => st.kind = DdlKind::Unrecognized,
    }
}

fn drop(p: &mut Parser<'_>, st: &mut Statement) {
    if p.eat("TEMPORARY") {
        return;
    }
    if p.eat("TABLE") || p.eat("TABLES") {
        p.eat_seq(&["IF", "EXISTS"]);
        st.kind = DdlKind::DropTable;
        loop {
            st.tables.extend(p.table());
            if !p.comma() {
                break;
            }
        }
        return;
    }
    if p.eat("DATABASE") || p.eat("SCHEMA") {
        p.eat_seq(&["IF", "EXISTS"]);
        st.kind = DdlKind::DropDatabase;
        st.database = p.name_part().map(|(n, a, b)| (n, (a, b)));
        return;
    }
    let _ = p.eat("ONLINE") || p.eat("OFFLINE");
    if p.eat("INDEX") || p.eat("KEY") {
        st.kind = DdlKind::DropIndex;
        p.eat_seq(&["IF", "EXISTS"]);
        p.name_part();
        if p.eat("ON") {
            st.tables.extend(p.table());
        }
        return;
    }
    match p.peek_word() {
        Some(w) if TABLE_OBJECTS.contains(&w.as_str()) => {
            st.kind = DdlKind::Unsupported(format!("DROP {w}"));
        }
        Some(w) if NOT_TABLES.contains(&w.as_str()) => {}
        _ => st.kind = DdlKind::Unrecognized,
    }
}

/// Tables after `REFERENCES` and `LIKE` in a CREATE TABLE.
fn references(p: &mut Parser<'_>, st: &mut Statement) {
    if p.eat("LIKE") {
        st.others.extend(p.table());
        return;
    }
    while p.pos < p.toks.len() {
        if p.eat("REFERENCES") {
            st.others.extend(p.table());
        } else {
            p.pos += 1;
        }
    }
}

/// The column names `CREATE TABLE name (...)` lists, in order; `None` when
/// the statement lists none (`LIKE`, `AS SELECT`, or unreadable), so its
/// columns are known only from the catalog.
fn created_columns(sql: &str) -> Option<Vec<String>> {
    let toks = tokenize(sql);
    let mut i = toks.iter().position(|(t, _, _)| *t == Tok::Punct('('))?;
    // A `SELECT` anywhere (CREATE ... AS SELECT, or SELECT without AS)
    // adds columns the list does not name.
    if toks
        .iter()
        .any(|(t, _, _)| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("SELECT")))
    {
        return None;
    }
    i += 1;
    const NOT_COLUMNS: &[&str] = &[
        "PRIMARY",
        "KEY",
        "INDEX",
        "UNIQUE",
        "CONSTRAINT",
        "FOREIGN",
        "FULLTEXT",
        "SPATIAL",
        "CHECK",
        "PERIOD",
        "LIKE",
    ];
    let mut out = Vec::new();
    let mut first = true;
    let mut depth = 0usize;
    while let Some((tok, _, _)) = toks.get(i) {
        i += 1;
        match tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') if depth == 0 => return Some(out),
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                first = true;
                continue;
            }
            Tok::Word(w) if first && NOT_COLUMNS.iter().any(|k| w.eq_ignore_ascii_case(k)) => {}
            Tok::Word(w) | Tok::Ident(w) if first => out.push(w.clone()),
            _ if first => return None,
            _ => {}
        }
        first = false;
    }
    None
}

/// What `st` (parsed from `sql`) does, in the words every sink reads;
/// `None` for statements that reach no sink (not schema-changing,
/// unsupported, unrecognized).
pub fn schema_change(default_db: &str, sql: &str, st: &Statement) -> Option<SchemaChange> {
    let table = |i: usize| st.tables.get(i).map(|t| t.table.clone());
    let database = || st.database.as_ref().map(|(d, _)| d.clone());
    Some(match &st.kind {
        DdlKind::CreateTable => SchemaChange::CreateTable {
            table: table(0)?,
            like: (!sql.to_ascii_uppercase().contains("REFERENCES"))
                .then(|| st.others.first().map(|t| t.table.clone()))
                .flatten(),
            columns: created_columns(sql),
        },
        DdlKind::AlterTable => SchemaChange::AlterTable {
            table: table(0)?,
            actions: alter_actions(default_db, sql),
            rename_to: table(1),
        },
        DdlKind::DropTable => SchemaChange::DropTable {
            tables: st.tables.iter().map(|t| t.table.clone()).collect(),
        },
        DdlKind::RenameTable => SchemaChange::RenameTable {
            renames: st
                .tables
                .chunks(2)
                .filter(|p| p.len() == 2)
                .map(|p| (p[0].table.clone(), p[1].table.clone()))
                .collect(),
        },
        DdlKind::TruncateTable => SchemaChange::TruncateTable { table: table(0)? },
        DdlKind::CreateIndex => SchemaChange::CreateIndex {
            table: table(0)?,
            index: index_name(sql, "CREATE").unwrap_or_default(),
        },
        DdlKind::DropIndex => SchemaChange::DropIndex {
            table: table(0)?,
            index: index_name(sql, "DROP").unwrap_or_default(),
        },
        DdlKind::CreateDatabase => SchemaChange::CreateDatabase {
            database: database()?,
        },
        DdlKind::DropDatabase => SchemaChange::DropDatabase {
            database: database()?,
        },
        DdlKind::AlterDatabase => SchemaChange::AlterDatabase {
            database: database()?,
        },
        DdlKind::Unsupported(_) | DdlKind::Unrecognized | DdlKind::Other => return None,
    })
}

/// The index name of `CREATE [UNIQUE|...] INDEX name` / `DROP INDEX name`.
fn index_name(sql: &str, verb: &str) -> Option<String> {
    let mut p = Parser {
        toks: tokenize(sql),
        pos: 0,
        default_db: "",
    };
    while p.pos < p.toks.len() && !p.eat(verb) {
        p.pos += 1;
    }
    while p.pos < p.toks.len() && !(p.eat("INDEX") || p.eat("KEY")) {
        p.pos += 1;
    }
    p.eat_seq(&["IF", "NOT", "EXISTS"]);
    p.eat_seq(&["IF", "EXISTS"]);
    p.name_part().map(|n| n.0)
}

/// The clauses of `ALTER TABLE t clause, clause, ...`.
fn alter_actions(default_db: &str, sql: &str) -> Vec<AlterAction> {
    let mut p = Parser {
        toks: tokenize(sql),
        pos: 0,
        default_db,
    };
    while p.pos < p.toks.len() && !p.eat("TABLE") {
        p.pos += 1;
    }
    p.eat_seq(&["IF", "EXISTS"]);
    if p.table().is_none() {
        return Vec::new();
    }
    // Split at commas outside parentheses.
    let mut clauses: Vec<Vec<(Tok, usize, usize)>> = vec![Vec::new()];
    let mut depth = 0usize;
    for (tok, start, end) in p.toks.drain(p.pos..) {
        match tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth = depth.saturating_sub(1),
            Tok::Punct(',') if depth == 0 => {
                clauses.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(c) = clauses.last_mut() {
            c.push((tok, start, end));
        }
    }
    clauses
        .into_iter()
        .filter(|c| !c.is_empty())
        .flat_map(|c| alter_action(sql, c))
        .collect()
}

/// The definition of column `name` in `toks` (the clause after the name),
/// read from the statement's text.
fn definition(sql: &str, name: &str, toks: &[(Tok, usize, usize)]) -> Option<NewColumn> {
    let (first, last) = (toks.first()?, toks.last()?);
    let text = sql.get(first.1..last.2)?;
    column_definition::new_column(name, text)
}

/// One ALTER TABLE clause (ADD may add several columns at once).
fn alter_action(sql: &str, spans: Vec<(Tok, usize, usize)>) -> Vec<AlterAction> {
    let clause: Vec<Tok> = spans.iter().map(|(t, _, _)| t.clone()).collect();
    let words: Vec<String> = clause
        .iter()
        .map(|t| match t {
            Tok::Word(w) => w.to_ascii_uppercase(),
            _ => String::new(),
        })
        .collect();
    let name = |i: usize| match clause.get(i) {
        Some(Tok::Ident(s) | Tok::Word(s)) => Some(s.clone()),
        _ => None,
    };
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let other = || {
        let lead: Vec<&str> = words
            .iter()
            .take_while(|w| !w.is_empty())
            .take(2)
            .map(String::as_str)
            .collect();
        vec![AlterAction::Other(lead.join(" "))]
    };
    // Index of the first word after `skip` optional words.
    let after = |mut i: usize, optional: &[&[&str]]| {
        for seq in optional {
            if seq.iter().enumerate().all(|(k, s)| w(i + k) == *s) {
                i += seq.len();
            }
        }
        i
    };
    const INDEX_WORDS: &[&str] = &["INDEX", "KEY"];
    match w(0) {
        "ADD" => {
            match w(1) {
                "INDEX" | "KEY" | "FULLTEXT" | "SPATIAL" | "UNIQUE" => {
                    let mut i = 2;
                    if INDEX_WORDS.contains(&w(i)) {
                        i += 1;
                    }
                    i = after(i, &[&["IF", "NOT", "EXISTS"]]);
                    let index = match clause.get(i) {
                        Some(Tok::Punct('(')) | None => None,
                        _ if w(i) == "USING" => None,
                        _ => name(i),
                    };
                    return vec![AlterAction::AddIndex { index }];
                }
                "PRIMARY" => {
                    return vec![AlterAction::AddIndex {
                        index: Some("PRIMARY".into()),
                    }]
                }
                "CONSTRAINT" | "FOREIGN" | "CHECK" | "PARTITION" | "PERIOD" | "SYSTEM" => {
                    return other()
                }
                _ => {}
            }
            let i = after(1, &[&["COLUMN"], &["IF", "NOT", "EXISTS"]]);
            if matches!(clause.get(i), Some(Tok::Punct('('))) {
                // ADD COLUMN (a INT, b INT): each name after `(` or a
                // comma, its definition up to the next.
                let mut columns: Vec<(String, usize, usize)> = Vec::new();
                let mut depth = 0;
                let mut expect_name = true;
                for (k, t) in clause.iter().enumerate().skip(i) {
                    match t {
                        Tok::Punct('(') => {
                            depth += 1;
                            if depth == 1 {
                                expect_name = true;
                                continue;
                            }
                        }
                        Tok::Punct(')') => {
                            depth -= 1;
                            if depth == 0 {
                                if let Some(c) = columns.last_mut() {
                                    c.2 = k;
                                }
                            }
                        }
                        Tok::Punct(',') if depth == 1 => {
                            if let Some(c) = columns.last_mut() {
                                c.2 = k;
                            }
                            expect_name = true;
                            continue;
                        }
                        Tok::Ident(s) | Tok::Word(s) if expect_name && depth == 1 => {
                            columns.push((s.clone(), k + 1, clause.len()));
                        }
                        _ => {}
                    }
                    expect_name = false;
                }
                return columns
                    .into_iter()
                    .map(|(column, from, to)| AlterAction::AddColumn {
                        definition: definition(sql, &column, spans.get(from..to).unwrap_or(&[])),
                        column,
                    })
                    .collect();
            }
            match name(i) {
                Some(column) => vec![AlterAction::AddColumn {
                    definition: definition(sql, &column, spans.get(i + 1..).unwrap_or(&[])),
                    column,
                }],
                None => other(),
            }
        }
        "DROP" => match w(1) {
            "INDEX" | "KEY" => {
                let i = after(2, &[&["IF", "EXISTS"]]);
                match name(i) {
                    Some(index) => vec![AlterAction::DropIndex { index }],
                    None => other(),
                }
            }
            "PRIMARY" => vec![AlterAction::DropIndex {
                index: "PRIMARY".into(),
            }],
            "FOREIGN" | "CONSTRAINT" | "CHECK" | "PARTITION" | "PERIOD" | "SYSTEM" => other(),
            _ => {
                let i = after(1, &[&["COLUMN"], &["IF", "EXISTS"]]);
                match name(i) {
                    Some(column) => vec![AlterAction::DropColumn { column }],
                    None => other(),
                }
            }
        },
        "CHANGE" => {
            let i = after(1, &[&["COLUMN"], &["IF", "EXISTS"]]);
            match (name(i), name(i + 1)) {
                (Some(column), Some(new_name)) => {
                    vec![AlterAction::ModifyColumn {
                        definition: definition(sql, &new_name, spans.get(i + 2..).unwrap_or(&[])),
                        column,
                        new_name,
                    }]
                }
                _ => other(),
            }
        }
        "MODIFY" => {
            let i = after(1, &[&["COLUMN"], &["IF", "EXISTS"]]);
            match name(i) {
                Some(column) => vec![AlterAction::ModifyColumn {
                    definition: definition(sql, &column, spans.get(i + 1..).unwrap_or(&[])),
                    new_name: column.clone(),
                    column,
                }],
                None => other(),
            }
        }
        "RENAME" if w(1) == "COLUMN" => {
            let i = after(2, &[&["IF", "EXISTS"]]);
            match (name(i), w(i + 1), name(i + 2)) {
                (Some(from), "TO", Some(to)) => vec![AlterAction::RenameColumn { from, to }],
                _ => other(),
            }
        }
        // RENAME [TO|AS] new_name: the statement's `rename_to`.
        "RENAME" if !["INDEX", "KEY", "CONSTRAINT"].contains(&w(1)) => Vec::new(),
        _ => other(),
    }
}

/// `sql` with each table name replaced by `map(table)`, fully qualified.
/// Database statements get their database mapped by `map_db`.
pub fn rewrite(
    sql: &str,
    st: &Statement,
    map: impl Fn(&TableId) -> TableId,
    map_db: impl Fn(&str) -> String,
) -> String {
    let mut spans: Vec<((usize, usize), String)> = st
        .tables
        .iter()
        .chain(&st.others)
        .map(|t| (t.span, map(&t.table).quoted()))
        .collect();
    if let Some((db, span)) = &st.database {
        spans.push((*span, quote_ident(&map_db(db))));
    }
    spans.sort_by_key(|(s, _)| s.0);
    let mut out = String::with_capacity(sql.len() + 32);
    let mut at = 0;
    for ((a, b), text) in spans {
        if a < at {
            continue;
        }
        out.push_str(&sql[at..a]);
        out.push_str(&text);
        at = b;
    }
    out.push_str(&sql[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema_change::Filled;

    fn names(st: &Statement) -> Vec<String> {
        st.tables.iter().map(|t| t.table.to_string()).collect()
    }

    #[test]
    fn classifies_table_statements() {
        let st = parse("shop", "ALTER TABLE `orders` ADD COLUMN note TEXT");
        assert_eq!(st.kind, DdlKind::AlterTable);
        assert_eq!(names(&st), ["shop.orders"]);
        let st = parse("x", "RENAME TABLE shop.a TO shop.b, c TO d");
        assert_eq!(names(&st), ["shop.a", "shop.b", "x.c", "x.d"]);
        let st = parse(
            "shop",
            "DROP TABLE IF EXISTS `t1`,`t2` /* generated by server */",
        );
        assert_eq!(
            (st.kind.clone(), names(&st)),
            (DdlKind::DropTable, vec!["shop.t1".into(), "shop.t2".into()])
        );
        let st = parse("shop", "CREATE TABLE IF NOT EXISTS t (id int primary key)");
        assert_eq!(
            (st.kind.clone(), names(&st)),
            (DdlKind::CreateTable, vec!["shop.t".into()])
        );
        assert_eq!(
            parse("shop", "CREATE TEMPORARY TABLE t (a int)").kind,
            DdlKind::Other
        );
        let st = parse("shop", "ALTER TABLE t RENAME COLUMN a TO b, RENAME TO t2");
        assert_eq!(names(&st), ["shop.t", "shop.t2"]);
        let st = parse("x", "CREATE DEFINER=`root`@`localhost` TRIGGER shop.tr BEFORE INSERT ON shop.t FOR EACH ROW SET NEW.a=1");
        assert_eq!(st.kind, DdlKind::Unsupported("CREATE TRIGGER".into()));
        assert_eq!(names(&st), ["shop.t"]);
        assert_eq!(parse("shop", "GRANT ALL ON *.* TO x").kind, DdlKind::Other);
        let st = parse("", "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop2` /*!40100 DEFAULT CHARACTER SET utf8mb4 */");
        assert_eq!(st.kind, DdlKind::CreateDatabase);
        assert_eq!(st.database.as_ref().map(|d| d.0.as_str()), Some("shop2"));
    }

    /// The statements of tests/data/ddl-corpus.sql with their expectations.
    fn corpus() -> Vec<(String, String)> {
        let text = include_str!("../../../../tests/data/ddl-corpus.sql");
        let mut out = Vec::new();
        let mut expect = None;
        let mut sql = String::new();
        for line in text.lines() {
            if let Some(e) = line.strip_prefix("-- expect: ") {
                expect = Some(e.to_string());
                continue;
            }
            if line.starts_with("--") || (sql.is_empty() && line.trim().is_empty()) {
                continue;
            }
            sql.push_str(line);
            sql.push('\n');
            if line.trim_end().ends_with(';') {
                let stmt = sql.trim().trim_end_matches(';').to_string();
                out.push((
                    stmt,
                    expect
                        .take()
                        .expect("an `-- expect:` line before every statement"),
                ));
                sql.clear();
            }
        }
        out
    }

    fn describe(st: &Statement) -> String {
        let kind = match &st.kind {
            DdlKind::Unsupported(_) => "Unsupported".to_string(),
            k => format!("{k:?}"),
        };
        let mut out = kind;
        if !st.tables.is_empty() {
            out.push_str(": ");
            out.push_str(&names(st).join(", "));
        }
        if !st.others.is_empty() {
            let others: Vec<String> = st.others.iter().map(|t| t.table.to_string()).collect();
            out.push_str(" | ");
            out.push_str(&others.join(", "));
        }
        out
    }

    #[test]
    fn a_corpus_of_real_schema_changes() {
        let all = corpus();
        assert!(all.len() >= 40, "the corpus has {} statements", all.len());
        for (sql, expect) in all {
            assert_eq!(describe(&parse("ddl", &sql)), expect, "{sql}");
        }
    }

    #[test]
    fn what_cannot_be_tied_to_tables_is_never_nothing() {
        for (sql, want) in [
            // ANSI_QUOTES names, and statements of kinds the parser does not know.
            ("CREATE TABLE \"t\" (a INT)", "Unrecognized"),
            ("ALTER TABLE \"t\" ADD COLUMN b INT", "Unrecognized"),
            ("CREATE INDEX i ON", "Unrecognized"),
            ("RENAME TABLE a", "Unrecognized"),
            ("CREATE FANCY THING x", "Unrecognized"),
            ("DROP MATERIALIZED VIEW x", "Unrecognized"),
            ("ALTER TABLE t IMPORT TABLESPACE", "Unsupported: ddl.t"),
            (
                "CREATE TRIGGER tr AFTER DELETE ON t FOR EACH ROW SET @x = 1",
                "Unsupported: ddl.t",
            ),
            ("CREATE OR REPLACE VIEW v AS SELECT 1", "Unsupported"),
            (
                "CREATE DEFINER=`a`@`%` SQL SECURITY INVOKER VIEW v AS SELECT 1",
                "Unsupported",
            ),
            ("CREATE TEMPORARY TABLE tmp (a INT)", "Other"),
            ("DROP TEMPORARY TABLE IF EXISTS tmp", "Other"),
            ("CREATE SEQUENCE s START WITH 1", "Other"),
            ("ALTER USER 'a'@'%' IDENTIFIED BY 'x'", "Other"),
            ("RENAME USER a TO b", "Other"),
            ("FLUSH PRIVILEGES", "Other"),
            ("SAVEPOINT a", "Other"),
        ] {
            assert_eq!(describe(&parse("ddl", sql)), want, "{sql}");
        }
    }

    #[test]
    fn describes_changes_in_neutral_words() {
        // Definitions are checked below; here, which clauses there are.
        let d = |sql: &str| {
            schema_change("shop", sql, &parse("shop", sql)).map(|c| match c {
                SchemaChange::AlterTable {
                    table,
                    actions,
                    rename_to,
                } => SchemaChange::AlterTable {
                    table,
                    actions: actions
                        .into_iter()
                        .map(|a| match a {
                            AlterAction::AddColumn { column, .. } => AlterAction::AddColumn {
                                column,
                                definition: None,
                            },
                            AlterAction::ModifyColumn {
                                column, new_name, ..
                            } => AlterAction::ModifyColumn {
                                column,
                                new_name,
                                definition: None,
                            },
                            other => other,
                        })
                        .collect(),
                    rename_to,
                },
                other => other,
            })
        };
        let t = |n: &str| TableId::new("shop", n);
        assert_eq!(
            d("ALTER TABLE `orders` ADD COLUMN note TEXT, ADD (a INT, `b c` INT), DROP COLUMN old, \
               CHANGE c d INT, MODIFY e BIGINT, RENAME COLUMN f TO g, ADD UNIQUE KEY uk (x), \
               ADD INDEX (y), DROP INDEX k, ADD CONSTRAINT fk FOREIGN KEY (p) REFERENCES p (id), \
               ENGINE=InnoDB, RENAME TO orders2"),
            Some(SchemaChange::AlterTable {
                table: t("orders"),
                actions: vec![
                    AlterAction::AddColumn { column: "note".into(), definition: None },
                    AlterAction::AddColumn { column: "a".into(), definition: None },
                    AlterAction::AddColumn { column: "b c".into(), definition: None },
                    AlterAction::DropColumn { column: "old".into() },
                    AlterAction::ModifyColumn { column: "c".into(), new_name: "d".into(), definition: None },
                    AlterAction::ModifyColumn { column: "e".into(), new_name: "e".into(), definition: None },
                    AlterAction::RenameColumn { from: "f".into(), to: "g".into() },
                    AlterAction::AddIndex { index: Some("uk".into()) },
                    AlterAction::AddIndex { index: None },
                    AlterAction::DropIndex { index: "k".into() },
                    AlterAction::Other("ADD CONSTRAINT".into()),
                    AlterAction::Other("ENGINE".into()),
                ],
                rename_to: Some(t("orders2")),
            })
        );
        // Each column's definition, from its own clause.
        let sql = "ALTER TABLE t ADD COLUMN n INT NOT NULL DEFAULT 3 AFTER id, \
                   ADD (a VARCHAR(5) DEFAULT 'x,y', b DECIMAL(9,2)), CHANGE c d BIGINT, MODIFY e TEXT";
        let Some(SchemaChange::AlterTable { actions, .. }) =
            schema_change("shop", sql, &parse("shop", sql))
        else {
            panic!("{sql}")
        };
        let defs: Vec<(String, String, bool, Filled)> = actions
            .iter()
            .filter_map(|a| match a {
                AlterAction::AddColumn {
                    definition: Some(d),
                    ..
                }
                | AlterAction::ModifyColumn {
                    definition: Some(d),
                    ..
                } => Some((
                    d.def.name.clone(),
                    d.def.column_type.clone(),
                    d.def.nullable,
                    d.filled.clone(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            defs,
            vec![
                ("n".into(), "int".into(), false, Filled::Value("3".into())),
                (
                    "a".into(),
                    "varchar(5)".into(),
                    true,
                    Filled::Value("x,y".into())
                ),
                ("b".into(), "decimal(9,2)".into(), true, Filled::Null),
                ("d".into(), "bigint".into(), true, Filled::Null),
                ("e".into(), "text".into(), true, Filled::Null),
            ]
        );
        assert_eq!(
            d("CREATE UNIQUE INDEX li USING BTREE ON t (id)"),
            Some(SchemaChange::CreateIndex {
                table: t("t"),
                index: "li".into()
            })
        );
        assert_eq!(
            d("DROP INDEX IF EXISTS li ON t"),
            Some(SchemaChange::DropIndex {
                table: t("t"),
                index: "li".into()
            })
        );
        assert_eq!(
            d("CREATE TABLE t2 LIKE t1"),
            Some(SchemaChange::CreateTable {
                table: t("t2"),
                like: Some(t("t1")),
                columns: None,
            })
        );
        assert_eq!(
            d("CREATE TABLE IF NOT EXISTS `t3` (id BIGINT PRIMARY KEY, `v w` VARCHAR(20) DEFAULT ',', \
               n DECIMAL(9,2), KEY (n), CONSTRAINT f FOREIGN KEY (n) REFERENCES p (x), UNIQUE uq (v))"),
            Some(SchemaChange::CreateTable {
                table: t("t3"),
                like: None,
                columns: Some(vec!["id".into(), "v w".into(), "n".into()]),
            })
        );
        assert_eq!(
            d("CREATE TABLE t4 (id INT) AS SELECT id, 1 AS x FROM t1"),
            Some(SchemaChange::CreateTable {
                table: t("t4"),
                like: None,
                columns: None,
            })
        );
        assert_eq!(
            d("RENAME TABLE a TO b, c TO d"),
            Some(SchemaChange::RenameTable {
                renames: vec![(t("a"), t("b")), (t("c"), t("d"))]
            })
        );
        assert_eq!(
            d("TRUNCATE t"),
            Some(SchemaChange::TruncateTable { table: t("t") })
        );
        assert_eq!(d("GRANT ALL ON *.* TO x"), None);
        assert_eq!(
            d("CREATE TRIGGER tr AFTER DELETE ON t FOR EACH ROW SET @x = 1"),
            None
        );
        // Every statement of the corpus that reaches sinks is described.
        for (sql, _) in corpus() {
            let st = parse("ddl", &sql);
            let reaches = !matches!(
                st.kind,
                DdlKind::Other | DdlKind::Unsupported(_) | DdlKind::Unrecognized
            );
            assert_eq!(schema_change("ddl", &sql, &st).is_some(), reaches, "{sql}");
        }
    }

    #[test]
    fn rewrites_names_for_the_target() {
        let sql = "ALTER TABLE shop.`orders` ADD COLUMN x INT";
        let st = parse("shop", sql);
        let out = rewrite(
            sql,
            &st,
            |t| TableId::new("copy", &t.name),
            |d| d.to_string(),
        );
        assert_eq!(out, "ALTER TABLE `copy`.`orders` ADD COLUMN x INT");
        let sql = "CREATE DATABASE `shop` CHARACTER SET latin1";
        let st = parse("", sql);
        assert_eq!(
            rewrite(sql, &st, |t| t.clone(), |_| "copy".into()),
            "CREATE DATABASE `copy` CHARACTER SET latin1"
        );
        let sql = "CREATE TABLE t2 LIKE shop.t1";
        let to_copy = |t: &TableId| TableId::new("copy", &t.name);
        assert_eq!(
            rewrite(sql, &parse("shop", sql), to_copy, |d| d.to_string()),
            "CREATE TABLE `copy`.`t2` LIKE `copy`.`t1`"
        );
        let sql = "ALTER TABLE c ADD FOREIGN KEY (p) REFERENCES shop.p (id)";
        assert_eq!(
            rewrite(sql, &parse("shop", sql), to_copy, |d| d.to_string()),
            "ALTER TABLE `copy`.`c` ADD FOREIGN KEY (p) REFERENCES `copy`.`p` (id)"
        );
    }
}
