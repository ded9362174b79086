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
}
