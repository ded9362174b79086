//! Rewriting the source's DDL for the target's names.
//!
//! sluice recreates tables from the source's own `SHOW CREATE TABLE` text, so
//! columns, charsets, collations, indexes, foreign keys, partitioning and
//! table options come out exactly as on the source.

use crate::event::{quote_ident, TableId};

/// `CREATE DATABASE IF NOT EXISTS` for the target name, keeping the source's
/// character set and collation.
pub fn create_database(source_stmt: &str, source_db: &str, target_db: &str) -> String {
    let prefix = format!("CREATE DATABASE {}", quote_ident(source_db));
    match source_stmt.strip_prefix(&prefix) {
        Some(rest) => format!("CREATE DATABASE IF NOT EXISTS {}{rest}", quote_ident(target_db)),
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

/// A `CREATE TRIGGER` statement for a table that may have been renamed; the
/// caller runs it with the target database as the current one.
pub fn create_trigger(source_stmt: &str, source: &TableId, target: &TableId) -> String {
    if source.name == target.name {
        return source_stmt.to_string();
    }
    let on = format!(" ON {} ", quote_ident(&source.name));
    match source_stmt.find(&on) {
        Some(p) => format!(
            "{} ON {} {}",
            &source_stmt[..p],
            quote_ident(&target.name),
            &source_stmt[p + on.len()..]
        ),
        None => source_stmt.to_string(),
    }
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
        assert_eq!(db, "CREATE DATABASE IF NOT EXISTS `copy` /*!40100 DEFAULT CHARACTER SET latin1 */");
        let src = TableId::new("shop", "t");
        let dst = TableId::new("copy", "t2");
        assert_eq!(
            create_table("CREATE TABLE `t` (\n  `a` int\n)", &src, &dst).unwrap(),
            "CREATE TABLE `copy`.`t2` (\n  `a` int\n)"
        );
        assert_eq!(
            create_trigger("CREATE DEFINER=`r`@`h` TRIGGER `x` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = 1", &src, &dst),
            "CREATE DEFINER=`r`@`h` TRIGGER `x` BEFORE INSERT ON `t2` FOR EACH ROW SET NEW.a = 1"
        );
        assert_eq!(normalized(") ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT"), ") ENGINE=InnoDB DEFAULT");
    }
}
