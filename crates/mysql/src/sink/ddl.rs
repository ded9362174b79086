//! Rewriting the source's DDL for the target's names.
//!
//! sluice recreates tables from the source's own `SHOW CREATE TABLE` text, so
//! columns, charsets, collations, indexes, foreign keys, partitioning and
//! table options come out exactly as on the source.

use crate::event::{quote_ident, TableId, TriggerDdl};

/// `CREATE DATABASE IF NOT EXISTS` for the target name, keeping the source's
/// character set and collation.
pub fn create_database(source_stmt: &str, source_db: &str, target_db: &str) -> String {
    let prefix = format!("CREATE DATABASE {}", quote_ident(source_db));
    match source_stmt.strip_prefix(&prefix) {
        Some(rest) => format!(
            "CREATE DATABASE IF NOT EXISTS {}{rest}",
            quote_ident(target_db)
        ),
        None => format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(target_db)),
    }
}

/// The source's `CREATE TABLE` with the target's qualified name.
pub fn create_table(source_stmt: &str, source: &TableId, target: &TableId) -> Option<String> {
    for head in ["CREATE TABLE ", "CREATE TEMPORARY TABLE "] {
        let prefix = format!("{head}{}", quote_ident(&source.name));
        if let Some(rest) = source_stmt.strip_prefix(&prefix) {
            return Some(format!("CREATE TABLE {}{rest}", target.quoted()));
        }
    }
    None
}

/// `CREATE TRIGGER` for the target table; run with the target database as
/// the current one, so unqualified names in the body resolve there.
pub fn create_trigger(t: &TriggerDdl, target: &TableId) -> String {
    let definer = match t.definer.rsplit_once('@') {
        Some((user, host)) => format!("DEFINER={}@{} ", quote_ident(user), quote_ident(host)),
        None => String::new(),
    };
    format!(
        "CREATE {definer}TRIGGER {} {} {} ON {} FOR EACH ROW {}",
        quote_ident(&t.name),
        t.timing,
        t.event,
        target.quoted(),
        t.body
    )
}

/// Splits the plain secondary indexes (`KEY ...`) off a `CREATE TABLE`, so
/// that they can be built after the load: one sorted index build is much
/// cheaper than maintaining the index row by row. Returns the statement
/// without them and their definitions, in order; `None` when there is
/// nothing to defer or the table has foreign keys (InnoDB would otherwise
/// create an index of its own for the constraint).
pub fn split_secondary_indexes(create: &str) -> Option<(String, Vec<String>)> {
    if create.contains("FOREIGN KEY") {
        return None;
    }
    let open = create.find("(\n")?;
    let close = create.rfind("\n)")?;
    let body = &create[open + 2..close];
    let mut keep = Vec::new();
    let mut deferred = Vec::new();
    for line in body.split('\n') {
        let def = line.trim().trim_end_matches(',');
        if def.starts_with("KEY `") {
            deferred.push(def.to_string());
        } else {
            keep.push(def.to_string());
        }
    }
    if deferred.is_empty() || keep.is_empty() {
        return None;
    }
    let body = keep
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join(",\n");
    Some((
        format!("{}\n{body}{}", &create[..open + 1], &create[close..]),
        deferred,
    ))
}

/// `SHOW CREATE TABLE` text without the parts that legitimately differ
/// between a source and its copy (AUTO_INCREMENT counters), for comparison.
pub fn normalized(create: &str) -> String {
    create
        .split(' ')
        .filter(|w| !w.starts_with("AUTO_INCREMENT="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The identifiers that follow any of `markers` in a DDL statement, e.g.
/// the collations after `COLLATE ` and `COLLATE=`; quoted text is skipped.
pub fn names_after(ddl: &str, markers: &[&str]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    // ASCII upper-casing keeps byte offsets, so both index alike.
    let upper = ddl.to_ascii_uppercase().into_bytes();
    let bytes = ddl.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q != b'`' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if matches!(b, b'\'' | b'"' | b'`') => quote = Some(b),
            None => {
                if let Some(m) = markers
                    .iter()
                    .find(|m| upper[i..].starts_with(m.as_bytes()))
                {
                    let start = i + m.len();
                    let end = ddl[start..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(ddl.len(), |e| start + e);
                    if end > start {
                        out.insert(ddl[start..end].to_ascii_lowercase());
                    }
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_names() {
        let db = create_database(
            "CREATE DATABASE `shop` /*!40100 DEFAULT CHARACTER SET latin1 */",
            "shop",
            "copy",
        );
        assert_eq!(
            db,
            "CREATE DATABASE IF NOT EXISTS `copy` /*!40100 DEFAULT CHARACTER SET latin1 */"
        );
        let src = TableId::new("shop", "t");
        let dst = TableId::new("copy", "t2");
        assert_eq!(
            create_table("CREATE TABLE `t` (\n  `a` int\n)", &src, &dst).unwrap(),
            "CREATE TABLE `copy`.`t2` (\n  `a` int\n)"
        );
        let trig = TriggerDdl {
            name: "x".into(),
            timing: "BEFORE".into(),
            event: "INSERT".into(),
            body: "SET NEW.a = 1".into(),
            definer: "r@h".into(),
            sql_mode: String::new(),
        };
        assert_eq!(
            create_trigger(&trig, &dst),
            "CREATE DEFINER=`r`@`h` TRIGGER `x` BEFORE INSERT ON `copy`.`t2` FOR EACH ROW SET NEW.a = 1"
        );
        assert_eq!(
            normalized(") ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT"),
            ") ENGINE=InnoDB DEFAULT"
        );
    }

    #[test]
    fn splits_plain_secondary_indexes() {
        let create = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) NOT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`k`),\n  KEY `k_1` (`k`),\n  KEY `k_2` (`k`,`id` DESC)\n) ENGINE=InnoDB";
        let (base, keys) = split_secondary_indexes(create).unwrap();
        assert_eq!(base, "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) NOT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`k`)\n) ENGINE=InnoDB");
        assert_eq!(keys, vec!["KEY `k_1` (`k`)", "KEY `k_2` (`k`,`id` DESC)"]);
        assert!(split_secondary_indexes("CREATE TABLE `t` (\n  `a` int,\n  KEY `x` (`a`),\n  CONSTRAINT `f` FOREIGN KEY (`a`) REFERENCES `p` (`id`)\n)").is_none());
        assert!(split_secondary_indexes("CREATE TABLE `t` (\n  `a` int\n)").is_none());
    }

    #[test]
    fn finds_charsets_and_collations_outside_quotes() {
        let ddl = "CREATE TABLE `t` (\n  `a` varchar(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci DEFAULT 'COLLATE x',\n  `COLLATE y` int\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci";
        let names: Vec<String> = names_after(ddl, &["COLLATE=", "COLLATE "])
            .into_iter()
            .collect();
        assert_eq!(names, vec!["latin1_swedish_ci", "utf8mb4_0900_ai_ci"]);
        let sets: Vec<String> = names_after(ddl, &["CHARSET=", "CHARACTER SET "])
            .into_iter()
            .collect();
        assert_eq!(sets, vec!["latin1", "utf8mb4"]);
    }
}
