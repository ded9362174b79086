//! A column definition of `ALTER TABLE ... ADD | CHANGE | MODIFY`, read
//! into neutral words ([`NewColumn`]): its type, NULL or NOT NULL, and what
//! the rows a table already has hold in an added column.
//!
//! The statement is the only exact witness of that last part: MySQL fills
//! existing rows with the column's default without logging them, and the
//! source's catalog, read later, may already describe a later statement.

use sluice_core::event::{ColumnDef, ColumnDetails};
use sluice_core::schema_change::{Filled, NewColumn};
use sluice_core::types::LogicalType;

/// Words that end a column's type and start its attributes.
const ATTRIBUTES: &[&str] = &[
    "NOT",
    "NULL",
    "DEFAULT",
    "AUTO_INCREMENT",
    "PRIMARY",
    "UNIQUE",
    "KEY",
    "COMMENT",
    "COLLATE",
    "CHARSET",
    "GENERATED",
    "AS",
    "CHECK",
    "REFERENCES",
    "ON",
    "INVISIBLE",
    "FIRST",
    "AFTER",
    "COLUMN_FORMAT",
    "STORAGE",
    "WITH",
    "WITHOUT",
    "PERSISTENT",
    "VIRTUAL",
    "STORED",
    "COMPRESSED",
    "ASCII",
    "UNICODE",
    "BYTE",
    "SRID",
    "REF_SYSTEM_ID",
];

/// The column `name` as `text` (the clause after its name) defines it;
/// `None` when the definition cannot be read exactly (an unknown type, a
/// generated column).
pub fn new_column(name: &str, text: &str) -> Option<NewColumn> {
    let words = words(text);
    let upper: Vec<String> = words.iter().map(|(w, _)| w.to_ascii_uppercase()).collect();
    let has = |w: &str| upper.iter().any(|u| u == w);
    let after = |w: &str| {
        upper
            .iter()
            .position(|u| u == w)
            .and_then(|i| words.get(i + 1))
            .map(|(w, _)| w.to_string())
    };
    // Generated columns are computed by the target; sinks never hold them.
    if has("AS") || has("GENERATED") {
        return None;
    }
    // The type: up to the first attribute word (a second CHARACTER or
    // BINARY is an attribute; the first is the type).
    let end = words
        .iter()
        .enumerate()
        .skip(1)
        .find(|(i, (w, _))| {
            let u = w.to_ascii_uppercase();
            ATTRIBUTES.contains(&u.as_str())
                || (u == "CHARACTER" && upper.get(i + 1).is_some_and(|n| n == "SET"))
                || (u == "BINARY" && *i > 0)
        })
        .map_or(text.len(), |(_, (_, at))| *at);
    let written = text[..end].trim();
    let charset = after("CHARSET").or_else(|| {
        upper
            .windows(2)
            .position(|p| p[0] == "CHARACTER" && p[1] == "SET")
            .and_then(|i| words.get(i + 2))
            .map(|(w, _)| w.to_string())
    });
    let collation = after("COLLATE");
    let (logical, column_type) = column_type(written, charset.as_deref())?;
    let nullable = !(upper.windows(2).any(|p| p[0] == "NOT" && p[1] == "NULL") || has("PRIMARY"));
    let filled = if has("AUTO_INCREMENT") {
        Filled::Computed("AUTO_INCREMENT".into())
    } else if let Some((_, at)) = words
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case("DEFAULT"))
    {
        default_value(text[at + "DEFAULT".len()..].trim_start())
    } else if matches!(logical, LogicalType::Timestamp { .. }) && !(nullable && has("NULL")) {
        // Without NULL or DEFAULT, a TIMESTAMP's default depends on the
        // server's explicit_defaults_for_timestamp.
        Filled::Computed("the default of a TIMESTAMP declared without one".into())
    } else if nullable {
        Filled::Null
    } else {
        Filled::Implicit
    };
    Some(NewColumn {
        def: ColumnDef {
            name: name.to_string(),
            logical,
            column_type,
            nullable,
            charset,
            collation,
        },
        filled,
    })
}

/// What `SHOW CREATE TABLE` says beyond the columns' types.
#[derive(Debug, Default, PartialEq)]
pub struct TableDetails {
    pub columns: Vec<ColumnDetails>,
    pub next_auto_increment: Option<u64>,
    pub comment: Option<String>,
}

/// Each column's DEFAULT, AUTO_INCREMENT and COMMENT, and the table's
/// next AUTO_INCREMENT value and COMMENT, from `SHOW CREATE TABLE` text.
pub fn table_details(create_table: &str) -> TableDetails {
    let mut out = TableDetails::default();
    for line in create_table.lines().map(str::trim) {
        if let Some(options) = line.strip_prefix(')') {
            for (w, at) in words(options) {
                let rest = options[at + w.len()..].trim_start();
                let value = rest.strip_prefix('=').map(str::trim_start);
                match (w.to_ascii_uppercase().as_str(), value) {
                    ("AUTO_INCREMENT", Some(v)) => {
                        out.next_auto_increment = v
                            .split(|c: char| !c.is_ascii_digit())
                            .next()
                            .and_then(|n| n.parse().ok());
                    }
                    ("COMMENT", Some(v)) => out.comment = quoted(v).map(|q| q.0),
                    _ => {}
                }
            }
            continue;
        }
        let Some((name, rest)) = crate::text::backquoted(line) else {
            continue;
        };
        let text = rest.trim().trim_end_matches(',');
        let ws = words(text);
        let after = |word: &str| {
            ws.iter()
                .find(|(w, _)| w.eq_ignore_ascii_case(word))
                .map(|(w, at)| text[at + w.len()..].trim_start())
        };
        out.columns.push(ColumnDetails {
            name,
            default: after("DEFAULT").map(default_value),
            auto_increment: ws
                .iter()
                .any(|(w, _)| w.eq_ignore_ascii_case("AUTO_INCREMENT")),
            comment: after("COMMENT").and_then(|v| quoted(v).map(|q| q.0)),
        });
    }
    out
}

/// A type as written (`INT UNSIGNED`, `national varchar(10)`,
/// `ENUM('a','b')`), as its logical type and the spelling
/// information_schema would print (lower case, but for ENUM members).
fn column_type(written: &str, charset: Option<&str>) -> Option<(LogicalType, String)> {
    let collapsed = written.split_whitespace().collect::<Vec<_>>().join(" ");
    let (head, args) = match collapsed.find('(') {
        Some(i) => (collapsed[..i].trim().to_ascii_lowercase(), &collapsed[i..]),
        None => (collapsed.to_ascii_lowercase(), ""),
    };
    // Words after the base and its arguments (`unsigned`, `zerofill`).
    let (args, tail) = match args.rfind(')') {
        Some(i) => (&args[..=i], args[i + 1..].trim().to_ascii_lowercase()),
        None => ("", String::new()),
    };
    let mut words: Vec<&str> = head.split(' ').collect();
    let mut modifiers: Vec<String> = Vec::new();
    while let Some(last) = words.last() {
        if ["unsigned", "signed", "zerofill"].contains(last) {
            modifiers.insert(0, last.to_string());
            words.pop();
        } else {
            break;
        }
    }
    let base = words.join(" ");
    let base = match base.as_str() {
        "bool" | "boolean" => {
            return Some((
                LogicalType::Int {
                    bytes: 1,
                    unsigned: false,
                },
                "tinyint(1)".into(),
            ))
        }
        "int1" => "tinyint",
        "int2" => "smallint",
        "int3" | "middleint" => "mediumint",
        "int4" | "integer" => "int",
        "int8" => "bigint",
        "dec" | "fixed" | "numeric" => "decimal",
        "double precision" | "real" => "double",
        "character" | "nchar" | "national char" | "national character" => "char",
        "character varying"
        | "char varying"
        | "nvarchar"
        | "national varchar"
        | "national char varying"
        | "national character varying" => "varchar",
        "long varchar" | "long" | "long char varying" => "mediumtext",
        "long varbinary" => "mediumblob",
        other => other,
    };
    let mut spelled = format!(
        "{base}{}",
        if base == "enum" || base == "set" {
            args.to_string()
        } else {
            args.to_ascii_lowercase()
        }
    );
    if args.is_empty() && (base == "char" || base == "binary") {
        spelled.push_str("(1)");
    }
    for m in modifiers.iter().chain(
        tail.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
            .iter(),
    ) {
        if m == "unsigned" || m == "zerofill" {
            if !spelled.ends_with(" unsigned") {
                spelled.push_str(" unsigned");
            }
        }
    }
    // FLOAT(p) is a DOUBLE from 25 bits of precision on.
    if base == "float" {
        let inner: Vec<u32> = args
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        if inner.len() == 1 && inner[0] > 24 {
            return Some((LogicalType::Double, "double".into()));
        }
    }
    let mut logical = LogicalType::parse(&spelled)?;
    if logical == LogicalType::Text && charset.is_some_and(|c| c.eq_ignore_ascii_case("binary")) {
        logical = LogicalType::Bytes;
    }
    Some((logical, spelled))
}

/// The value after `DEFAULT`.
fn default_value(v: &str) -> Filled {
    // `DEFAULT (5)` is an expression, but a constant one.
    if let Some(inner) = v.strip_prefix('(') {
        let mut depth = 1;
        for (i, c) in inner.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        // A constant only if it is all there is.
                        let body = inner[..i].trim();
                        let single = match quoted(body) {
                            Some((_, rest)) => rest.trim().is_empty(),
                            None => !body.contains(char::is_whitespace),
                        };
                        return match default_value(body) {
                            constant @ (Filled::Value(_) | Filled::Null | Filled::Bits(_))
                                if single =>
                            {
                                constant
                            }
                            _ => Filled::Computed(format!("({})", &inner[..i])),
                        };
                    }
                }
                _ => {}
            }
        }
        return Filled::Computed(v.to_string());
    }
    // `_utf8mb4'x'`: a character set introducer before a string.
    let unintroduced = v
        .strip_prefix('_')
        .and_then(|r| r.find(['\'', '"']).map(|q| &r[q..]))
        .filter(|r| {
            let intro = &v[1..v.len() - r.len()];
            intro.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    let s = unintroduced.unwrap_or(v);
    if let Some((text, _)) = quoted(s) {
        return Filled::Value(text);
    }
    let token: &str = v
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .unwrap_or("");
    if let Some(bits) = token
        .strip_prefix("b'")
        .or_else(|| token.strip_prefix("B'"))
        .and_then(|b| b.strip_suffix('\''))
        .or_else(|| token.strip_prefix("0b"))
    {
        return u64::from_str_radix(bits, 2).map_or(Filled::Computed(token.into()), Filled::Bits);
    }
    match token.to_ascii_uppercase().as_str() {
        "NULL" => return Filled::Null,
        "TRUE" => return Filled::Value("1".into()),
        "FALSE" => return Filled::Value("0".into()),
        _ => {}
    }
    let number = token.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
        && token
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && token.parse::<f64>().is_ok();
    if number {
        return Filled::Value(token.trim_start_matches('+').to_string());
    }
    Filled::Computed(token.to_string())
}

/// The words of `s` outside quoted strings, each with its byte offset.
fn words(s: &str) -> Vec<(&str, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((&s[start..i], start));
            }
            _ => i += 1,
        }
    }
    out
}

/// A MySQL string literal at the start of `s` (`'it''s'`, `'a\'b'`,
/// `"x"`), unescaped, and the text after it.
pub fn quoted(s: &str) -> Option<(String, &str)> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &s[1..];
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == q && chars.peek().map(|(_, n)| *n) == Some(q) => {
                chars.next();
                out.push(q);
            }
            c if c == q => return Some((out, &rest[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '0')) => out.push('\0'),
                Some((_, 'Z')) => out.push('\u{1a}'),
                Some((_, 'b')) => out.push('\u{8}'),
                // `\%` and `\_` keep their backslash (they are LIKE escapes).
                Some((_, c @ ('%' | '_'))) => {
                    out.push('\\');
                    out.push(c);
                }
                Some((_, other)) => out.push(other),
                None => return None,
            },
            other => out.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(text: &str) -> NewColumn {
        new_column("c", text).unwrap_or_else(|| panic!("{text} not read"))
    }

    #[test]
    fn types_are_spelled_as_the_catalog_spells_them() {
        for (text, logical, spelled) in [
            (
                "INT",
                LogicalType::Int {
                    bytes: 4,
                    unsigned: false,
                },
                "int",
            ),
            (
                "integer(11) UNSIGNED NOT NULL",
                LogicalType::Int {
                    bytes: 4,
                    unsigned: true,
                },
                "int(11) unsigned",
            ),
            (
                "BIGINT UNSIGNED ZEROFILL",
                LogicalType::Int {
                    bytes: 8,
                    unsigned: true,
                },
                "bigint unsigned",
            ),
            (
                "BOOL DEFAULT TRUE",
                LogicalType::Int {
                    bytes: 1,
                    unsigned: false,
                },
                "tinyint(1)",
            ),
            (
                "VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin",
                LogicalType::Text,
                "varchar(20)",
            ),
            ("national varchar(5)", LogicalType::Text, "varchar(5)"),
            ("CHAR", LogicalType::Text, "char(1)"),
            (
                "VARCHAR(8) CHARACTER SET binary",
                LogicalType::Bytes,
                "varchar(8)",
            ),
            (
                "DECIMAL(9,2) DEFAULT 1.50",
                LogicalType::Decimal {
                    precision: 9,
                    scale: 2,
                },
                "decimal(9,2)",
            ),
            (
                "dec",
                LogicalType::Decimal {
                    precision: 10,
                    scale: 0,
                },
                "decimal",
            ),
            ("FLOAT(30)", LogicalType::Double, "double"),
            ("DOUBLE PRECISION", LogicalType::Double, "double"),
            (
                "DATETIME(6) NULL",
                LogicalType::DateTime { fsp: 6 },
                "datetime(6)",
            ),
            (
                "ENUM('Red','DEFAULT x') NOT NULL",
                LogicalType::Enum,
                "enum('Red','DEFAULT x')",
            ),
            (
                "BIT(4) DEFAULT b'101'",
                LogicalType::Bit { width: 4 },
                "bit(4)",
            ),
        ] {
            let c = col(text);
            assert_eq!(
                (c.def.logical, c.def.column_type.as_str()),
                (logical, spelled),
                "{text}"
            );
        }
        assert!(new_column("c", "INT AS (a + 1) VIRTUAL").is_none());
        assert!(new_column("c", "SERIAL").is_none());
        assert!(new_column("c", "FROBNICATE(3)").is_none());
    }

    #[test]
    fn show_create_table_says_defaults_auto_increment_and_comments() {
        let ct = "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT COMMENT 'the ''key''',\n  `a` int(11) NOT NULL DEFAULT 5,\n  `b` varchar(10) DEFAULT 'x, COMMENT y',\n  `c` datetime DEFAULT current_timestamp() ON UPDATE current_timestamp(),\n  `d` int(11) DEFAULT NULL,\n  `e` text,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=1042 DEFAULT CHARSET=utf8mb4 COMMENT='orders, all'";
        let d = table_details(ct);
        assert_eq!(d.next_auto_increment, Some(1042));
        assert_eq!(d.comment.as_deref(), Some("orders, all"));
        let by = |n: &str| d.columns.iter().find(|c| c.name == n).cloned().unwrap();
        assert!(by("id").auto_increment);
        assert_eq!(by("id").comment.as_deref(), Some("the 'key'"));
        assert_eq!(by("a").default, Some(Filled::Value("5".into())));
        assert_eq!(by("b").default, Some(Filled::Value("x, COMMENT y".into())));
        assert_eq!(by("b").comment, None);
        assert_eq!(
            by("c").default,
            Some(Filled::Computed("current_timestamp()".into()))
        );
        assert_eq!(by("d").default, Some(Filled::Null));
        assert_eq!(by("e").default, None);
        assert_eq!(d.columns.len(), 6);
    }

    #[test]
    fn existing_rows_get_what_the_statement_says() {
        for (text, filled, nullable) in [
            ("INT NOT NULL DEFAULT 5", Filled::Value("5".into()), false),
            (
                "INT DEFAULT -7 COMMENT 'x'",
                Filled::Value("-7".into()),
                true,
            ),
            (
                "DECIMAL(5,2) DEFAULT +1.5e1",
                Filled::Value("1.5e1".into()),
                true,
            ),
            (
                "VARCHAR(9) DEFAULT 'it''s \\'ok\\''",
                Filled::Value("it's 'ok'".into()),
                true,
            ),
            (
                "VARCHAR(9) DEFAULT _utf8mb4'x y'",
                Filled::Value("x y".into()),
                true,
            ),
            ("VARCHAR(9) DEFAULT ('k')", Filled::Value("k".into()), true),
            ("INT", Filled::Null, true),
            ("INT DEFAULT NULL", Filled::Null, true),
            ("INT NOT NULL", Filled::Implicit, false),
            ("BIT(3) NOT NULL DEFAULT b'011'", Filled::Bits(3), false),
            (
                "DATETIME DEFAULT CURRENT_TIMESTAMP",
                Filled::Computed("CURRENT_TIMESTAMP".into()),
                true,
            ),
            (
                "INT DEFAULT (1 + 2)",
                Filled::Computed("(1 + 2)".into()),
                true,
            ),
            (
                "BIGINT NOT NULL AUTO_INCREMENT UNIQUE",
                Filled::Computed("AUTO_INCREMENT".into()),
                false,
            ),
            ("INT PRIMARY KEY", Filled::Implicit, false),
        ] {
            let c = col(text);
            assert_eq!((&c.filled, c.def.nullable), (&filled, nullable), "{text}");
        }
        assert!(matches!(col("TIMESTAMP").filled, Filled::Computed(_)));
        assert_eq!(col("TIMESTAMP NULL").filled, Filled::Null);
    }
}
