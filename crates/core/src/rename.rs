//! Mapping source table names to target names (a sink's `rename:`).

use std::collections::BTreeMap;

use crate::event::TableId;

/// Rules like `shop.*: shop_copy.*` (a whole database) and
/// `shop.orders: archive.orders_2024` (one table). Exact rules win.
#[derive(Debug, Clone, Default)]
pub struct Renames {
    tables: BTreeMap<TableId, TableId>,
    databases: BTreeMap<String, String>,
}

impl Renames {
    pub fn new(rules: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut r = Renames::default();
        for (from, to) in rules {
            let split = |s: &str| -> Result<(String, String), String> {
                s.split_once('.')
                    .map(|(d, t)| (d.to_string(), t.to_string()))
                    .filter(|(d, t)| !d.is_empty() && !t.is_empty())
                    .ok_or_else(|| {
                        format!("rename `{from}: {to}`: write `db.table` or `db.*` on both sides")
                    })
            };
            let (fd, ft) = split(from)?;
            let (td, tt) = split(to)?;
            match (ft == "*", tt == "*") {
                (true, true) => {
                    r.databases.insert(fd, td);
                }
                (false, false) if !ft.contains('*') && !tt.contains('*') => {
                    r.tables.insert(TableId::new(fd, ft), TableId::new(td, tt));
                }
                _ => {
                    return Err(format!(
                        "rename `{from}: {to}`: `*` may only stand for a whole table name on both sides, as in `shop.*: shop_copy.*`"
                    ))
                }
            }
        }
        Ok(r)
    }

    /// The target name of a whole database (database rules only).
    pub fn target_database(&self, source: &str) -> String {
        self.databases
            .get(source)
            .cloned()
            .unwrap_or_else(|| source.to_string())
    }

    pub fn target(&self, source: &TableId) -> TableId {
        if let Some(t) = self.tables.get(source) {
            return t.clone();
        }
        match self.databases.get(&source.database) {
            Some(db) => TableId::new(db.clone(), source.name.clone()),
            None => source.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_rules_win_over_database_rules() {
        let rules = BTreeMap::from([
            ("shop.*".to_string(), "shop_copy.*".to_string()),
            ("shop.orders".to_string(), "archive.orders_2024".to_string()),
        ]);
        let r = Renames::new(&rules).unwrap();
        assert_eq!(
            r.target(&TableId::new("shop", "items")),
            TableId::new("shop_copy", "items")
        );
        assert_eq!(
            r.target(&TableId::new("shop", "orders")),
            TableId::new("archive", "orders_2024")
        );
        assert_eq!(
            r.target(&TableId::new("crm", "x")),
            TableId::new("crm", "x")
        );
        assert!(Renames::new(&BTreeMap::from([("shop.a*".into(), "x.*".into())])).is_err());
    }
}
