//! Renames databases, tables and columns, and drops columns.
//!
//! ```yaml
//! transforms:
//!   - plugin: rename
//!     config:
//!       tables:
//!         shop.customers: crm.clients    # one table
//!         legacy.*: archive.*            # a whole database
//!       columns:
//!         shop.customers:                # by source table name
//!           email: contact_email         # rename
//!           password_hash: null          # drop
//!         "*":                           # every table
//!           internal_note: null
//! ```
//!
//! Table rules match the source name exactly; `db.*` renames a database and
//! an exact rule wins over it. Column rules for a table and for `"*"` both
//! apply (the table's rule wins for the same column). A key column cannot be
//! dropped: the target would lose its key. A rule naming a column the table
//! does not have is an error, so a typo does not pass unnoticed.

use std::collections::BTreeMap;

use sluice_sdk::{export_plugin, Config, Event, Outcome, Plugin, Table};

#[derive(Debug, Default)]
pub struct Rename {
    tables: BTreeMap<String, String>,
    /// Per `db.table` or `*`: column → new name, or `None` to drop it.
    columns: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// Per source table: its output table and, per output column, its source column.
    plans: BTreeMap<(String, String), (Table, Vec<String>)>,
}

fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
        .filter(|(d, t)| !d.is_empty() && !t.is_empty())
}

impl Rename {
    pub fn from_json(json: &str) -> Result<Rename, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("config is not valid: {e}"))?;
        let obj = v.as_object().ok_or("config must be a map")?;
        if let Some(k) = obj.keys().find(|k| *k != "tables" && *k != "columns") {
            return Err(format!(
                "unknown config key `{k}`; use `tables` and `columns`"
            ));
        }
        let mut r = Rename::default();
        if let Some(t) = obj.get("tables") {
            for (from, to) in t
                .as_object()
                .ok_or("`tables` must map `db.table` to `db.table`")?
            {
                let to = to
                    .as_str()
                    .ok_or_else(|| format!("`tables.{from}` must be a `db.table` name"))?;
                let (fd, ft) = split(from)
                    .ok_or_else(|| format!("`{from}`: write tables as `db.table` or `db.*`"))?;
                let (td, tt) = split(to)
                    .ok_or_else(|| format!("`{to}`: write tables as `db.table` or `db.*`"))?;
                if (ft == "*") != (tt == "*") {
                    return Err(format!(
                        "`{from}: {to}`: rename a database as `db.*: other.*`"
                    ));
                }
                let _ = (fd, td);
                r.tables.insert(from.clone(), to.to_string());
            }
        }
        if let Some(c) = obj.get("columns") {
            for (table, rules) in c
                .as_object()
                .ok_or("`columns` must map a table to column rules")?
            {
                if table != "*" && split(table).is_none() {
                    return Err(format!(
                        "`columns.{table}`: name the table as `db.table`, or `*` for every table"
                    ));
                }
                let mut map = BTreeMap::new();
                for (col, to) in rules.as_object().ok_or_else(|| {
                    format!("`columns.{table}` must map columns to new names (or null to drop)")
                })? {
                    let to = match to {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                        _ => return Err(format!("`columns.{table}.{col}` must be a new name, or null to drop the column")),
                    };
                    map.insert(col.clone(), to);
                }
                r.columns.insert(table.clone(), map);
            }
        }
        if r.tables.is_empty() && r.columns.is_empty() {
            return Err("config needs `tables:` or `columns:`".into());
        }
        Ok(r)
    }

    /// The output table for `table` and where each of its columns comes from.
    pub fn plan(&self, table: &Table) -> Result<(Table, Vec<String>), String> {
        let full = format!("{}.{}", table.database, table.name);
        let (database, name) = match self.tables.get(&full) {
            Some(to) => split(to)
                .map(|(d, t)| (d.to_string(), t.to_string()))
                .unwrap_or_default(),
            None => match self.tables.get(&format!("{}.*", table.database)) {
                Some(to) => (
                    split(to).map(|(d, _)| d.to_string()).unwrap_or_default(),
                    table.name.clone(),
                ),
                None => (table.database.clone(), table.name.clone()),
            },
        };
        let rules: Vec<&BTreeMap<String, Option<String>>> =
            [self.columns.get(&full), self.columns.get("*")]
                .into_iter()
                .flatten()
                .collect();
        if let Some(own) = self.columns.get(&full) {
            if let Some(c) = own.keys().find(|c| table.index(c).is_none()) {
                return Err(format!(
                    "`columns.{full}` names `{c}`, which {full} does not have"
                ));
            }
        }
        let mut out = Table {
            database,
            name,
            columns: Vec::new(),
        };
        let mut sources = Vec::new();
        for c in &table.columns {
            let rule = rules.iter().find_map(|r| r.get(&c.name));
            match rule {
                Some(None) if c.key => {
                    return Err(format!(
                        "cannot drop `{}` of {full}: it is part of the key",
                        c.name
                    ));
                }
                Some(None) => continue,
                Some(Some(new)) => {
                    let mut c2 = c.clone();
                    c2.name = new.clone();
                    out.columns.push(c2);
                }
                None => out.columns.push(c.clone()),
            }
            sources.push(c.name.clone());
        }
        if let Some(dup) = out
            .columns
            .iter()
            .enumerate()
            .find(|(i, c)| out.columns[..*i].iter().any(|d| d.name == c.name))
        {
            return Err(format!(
                "{full} would have two columns named `{}`",
                dup.1.name
            ));
        }
        Ok((out, sources))
    }
}

impl Plugin for Rename {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        *self = Rename::from_json(config.json())?;
        Ok(())
    }

    fn schema(&mut self, table: &Table) -> Result<Vec<Table>, String> {
        let plan = self.plan(table)?;
        let out = plan.0.clone();
        self.plans
            .insert((table.database.clone(), table.name.clone()), plan);
        Ok(vec![out])
    }

    fn process(&mut self, event: &mut Event) -> Outcome {
        let (db, name) = event.table_name();
        let key = (db.to_string(), name.to_string());
        if !self.plans.contains_key(&key) {
            match self.plan(event.table()) {
                Ok(p) => {
                    self.plans.insert(key.clone(), p);
                }
                Err(e) => return Outcome::Error(e),
            }
        }
        let Some((table, sources)) = self.plans.get(&key) else {
            return Outcome::Error("no plan for this table".into());
        };
        if table == event.table() {
            return Outcome::Keep;
        }
        let from: BTreeMap<&str, &str> = table
            .columns
            .iter()
            .zip(sources)
            .map(|(c, s)| (c.name.as_str(), s.as_str()))
            .collect();
        event.move_to_with(table, |c| from.get(c).copied());
        Outcome::Keep
    }
}

export_plugin!(Rename);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::{Column, Op, Value};

    fn customers() -> Table {
        let mut id = Column::new("id", "int(11)");
        id.key = true;
        Table {
            database: "shop".into(),
            name: "customers".into(),
            columns: vec![
                id,
                Column::new("email", "varchar(100)"),
                Column::new("note", "text"),
            ],
        }
    }

    #[test]
    fn renames_and_drops() {
        let mut r = Rename::from_json(
            r#"{"tables":{"shop.*":"crm.*"},"columns":{"shop.customers":{"email":"contact"},"*":{"note":null}}}"#,
        )
        .unwrap();
        let out = r.schema(&customers()).unwrap();
        assert_eq!(
            (out[0].database.as_str(), out[0].name.as_str()),
            ("crm", "customers")
        );
        assert_eq!(
            out[0]
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["id", "contact"]
        );
        let mut e = Event::new(
            Op::Insert,
            customers(),
            None,
            Some(vec![
                Value::Int(1),
                Value::Text("a@b".into()),
                Value::Text("n".into()),
            ]),
        );
        assert!(matches!(r.process(&mut e), Outcome::Keep));
        assert_eq!(e.table_name(), ("crm", "customers"));
        assert_eq!(e.get("contact"), Some(&Value::Text("a@b".into())));
        assert_eq!(e.after().map(|a| a.len()), Some(2));
    }

    #[test]
    fn refuses_what_would_break_the_target() {
        let mut r = Rename::from_json(r#"{"columns":{"shop.customers":{"id":null}}}"#).unwrap();
        assert!(r
            .schema(&customers())
            .unwrap_err()
            .contains("part of the key"));
        let mut r = Rename::from_json(r#"{"columns":{"shop.customers":{"emial":"x"}}}"#).unwrap();
        assert!(r.schema(&customers()).unwrap_err().contains("`emial`"));
        let mut r =
            Rename::from_json(r#"{"columns":{"shop.customers":{"email":"note"}}}"#).unwrap();
        assert!(r.schema(&customers()).unwrap_err().contains("two columns"));
        assert!(Rename::from_json(r#"{"tables":{"shop":"crm"}}"#).is_err());
    }
}
