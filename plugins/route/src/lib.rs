//! Routes many tables into one: shard merge.
//!
//! ```yaml
//! transforms:
//!   - plugin: route
//!     config:
//!       routes:
//!         - from: 'shop\.orders_\d+'      # regular expression over `db.table`
//!           to: shop.orders               # may use groups: 'archive.$1'
//!           source_column: source_table   # optional
//! ```
//!
//! The first route whose `from` matches the whole `db.table` name applies;
//! other tables pass unchanged. Merged tables must have the same columns
//! (sluice checks this before it starts). With `source_column`, every row
//! carries the `db.table` it came from in a `varchar(192)` column that joins
//! the key, so shards whose keys overlap (every shard's `id` starting at 1)
//! do not overwrite each other. Without it, overlapping keys collide in the
//! target: use it unless the shards' keys are disjoint.

use regex::Regex;
use sluice_sdk::{export_plugin, Column, Config, Event, Outcome, Plugin, Table, Value};

#[derive(Debug)]
pub struct Route {
    pub from: Regex,
    pub to: String,
    pub source_column: Option<String>,
}

#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Per source `db.table`: its output table (None: unrouted).
    plans: std::collections::BTreeMap<String, Option<Table>>,
}

impl Router {
    pub fn from_json(json: &str) -> Result<Router, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("config is not valid: {e}"))?;
        let list = v
            .get("routes")
            .and_then(|r| r.as_array())
            .ok_or("config needs `routes:`, a list of {from, to, source_column}")?;
        let mut routes = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let field = |k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_string);
            if let Some(k) = r.as_object().and_then(|o| {
                o.keys()
                    .find(|k| !["from", "to", "source_column"].contains(&k.as_str()))
            }) {
                return Err(format!(
                    "routes[{i}]: unknown key `{k}`; use from, to, source_column"
                ));
            }
            let from = field("from")
                .ok_or_else(|| format!("routes[{i}] needs `from:`, a pattern over `db.table`"))?;
            let to =
                field("to").ok_or_else(|| format!("routes[{i}] needs `to:`, a `db.table` name"))?;
            if !to.contains('.') {
                return Err(format!(
                    "routes[{i}].to `{to}`: write the target as `db.table`"
                ));
            }
            let from = Regex::new(&format!("^(?:{from})$"))
                .map_err(|e| format!("routes[{i}].from: {e}"))?;
            routes.push(Route {
                from,
                to,
                source_column: field("source_column"),
            });
        }
        Ok(Router {
            routes,
            plans: Default::default(),
        })
    }

    fn plan(&self, table: &Table) -> Result<Option<Table>, String> {
        let full = format!("{}.{}", table.database, table.name);
        let Some(route) = self.routes.iter().find(|r| r.from.is_match(&full)) else {
            return Ok(None);
        };
        let to = route.from.replace(&full, route.to.as_str()).into_owned();
        let (database, name) = to
            .split_once('.')
            .ok_or_else(|| format!("route for {full} gives `{to}`, not a `db.table` name"))?;
        let mut out = table.renamed(database, name);
        if let Some(col) = &route.source_column {
            if out.index(col).is_some() {
                return Err(format!(
                    "{full} already has a column `{col}`; choose another `source_column`"
                ));
            }
            let mut c = Column::new(col, "varchar(192)");
            c.key = out.columns.iter().any(|c| c.key);
            c.nullable = false;
            out.columns.push(c);
        }
        Ok(Some(out))
    }
}

impl Plugin for Router {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        *self = Router::from_json(config.json())?;
        Ok(())
    }

    fn schema(&mut self, table: &Table) -> Result<Vec<Table>, String> {
        let plan = self.plan(table)?;
        let out = plan.clone().unwrap_or_else(|| table.clone());
        self.plans
            .insert(format!("{}.{}", table.database, table.name), plan);
        Ok(vec![out])
    }

    fn process(&mut self, event: &mut Event) -> Outcome {
        let (db, name) = event.table_name();
        let full = format!("{db}.{name}");
        if !self.plans.contains_key(&full) {
            match self.plan(event.table()) {
                Ok(p) => {
                    self.plans.insert(full.clone(), p);
                }
                Err(e) => return Outcome::Error(e),
            }
        }
        let Some(Some(table)) = self.plans.get(&full) else {
            return Outcome::Keep;
        };
        let source_column = (table.columns.len() > event.table().columns.len())
            .then(|| table.columns.last().map(|c| c.name.clone()))
            .flatten();
        let table = table.clone();
        event.move_to(&table);
        if let Some(col) = source_column {
            event.set(&col, Value::Text(full));
        }
        Outcome::Keep
    }
}

export_plugin!(Router);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Op;

    fn shard(n: u32) -> Table {
        let mut id = Column::new("id", "int(11)");
        id.key = true;
        id.nullable = false;
        Table {
            database: "shop".into(),
            name: format!("orders_{n}"),
            columns: vec![id, Column::new("total", "int(11)")],
        }
    }

    #[test]
    fn merges_shards_with_a_source_column() {
        let mut r = Router::from_json(r#"{"routes":[{"from":"shop\\.orders_\\d+","to":"shop.orders","source_column":"src"}]}"#).unwrap();
        let a = r.schema(&shard(1)).unwrap();
        let b = r.schema(&shard(2)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].name, "orders");
        assert!(a[0].columns[2].key && a[0].columns[2].name == "src");
        let mut e = Event::new(
            Op::Delete,
            shard(2),
            Some(vec![Value::Int(1), Value::Int(5)]),
            None,
        );
        assert!(matches!(r.process(&mut e), Outcome::Keep));
        assert_eq!(e.table_name(), ("shop", "orders"));
        assert_eq!(e.get("src"), Some(&Value::Text("shop.orders_2".into())));
        let other = Table {
            name: "orders_x".into(),
            ..shard(1)
        };
        assert_eq!(r.schema(&other).unwrap()[0], other);
    }

    #[test]
    fn bad_config() {
        assert!(Router::from_json(r#"{"routes":[{"from":"(","to":"a.b"}]}"#)
            .unwrap_err()
            .contains("from"));
        assert!(Router::from_json(r#"{"routes":[{"from":"x","to":"b"}]}"#)
            .unwrap_err()
            .contains("db.table"));
        assert!(Router::from_json(r#"{}"#).unwrap_err().contains("routes"));
    }
}
