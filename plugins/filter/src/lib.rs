//! Keeps the rows that match a predicate, like a SQL `WHERE`.
//!
//! ```yaml
//! transforms:
//!   - plugin: filter
//!     tables: [shop.orders]
//!     config:
//!       where: "status IN ('paid', 'shipped') AND total >= 10 AND note IS NOT NULL"
//!       delete: "true"            # optional, per operation: insert, update, delete, read
//! ```
//!
//! `where` applies to every operation without a predicate of its own
//! (`read` is a snapshot row). The target then holds exactly the source rows
//! that match: an update whose row stops matching becomes a delete, and one
//! whose row starts matching becomes an insert. Deletes are tested on the
//! row before, everything else on the row after.
//!
//! The language: comparisons `= != <> < <= > >=` between columns and
//! literals (numbers, 'strings', TRUE, FALSE, NULL), `AND`, `OR`, `NOT`,
//! parentheses, `IN (...)`, `BETWEEN a AND b`, `IS [NOT] NULL`, `LIKE` with
//! `%` and `_`. As in SQL, a comparison with NULL is unknown and the row is
//! not kept. Unlike MySQL's default collations, text comparisons are
//! case-sensitive. Dates and times compare with literals written as MySQL
//! prints them ('2024-05-01', '2024-05-01 12:00:00'). Every column named
//! must exist in every table the transform selects; sluice checks this
//! before it starts.

use sluice_sdk::{export_plugin, Config, Event, Op, Outcome, Plugin, Table, Value};

mod expr;
pub use expr::{parse, Expr};

#[derive(Debug, Default)]
pub struct Filter {
    /// Per op: insert, update, delete, read.
    predicates: [Option<Expr>; 4],
}

fn slot(op: Op) -> usize {
    match op {
        Op::Insert => 0,
        Op::Update => 1,
        Op::Delete => 2,
        Op::Read => 3,
    }
}

impl Filter {
    pub fn from_json(json: &str) -> Result<Filter, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("config is not valid: {e}"))?;
        let obj = v.as_object().ok_or("config must be a map")?;
        let keys = ["where", "insert", "update", "delete", "read"];
        if let Some(k) = obj.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(format!(
                "unknown config key `{k}`; use where, insert, update, delete or read"
            ));
        }
        let get = |k: &str| -> Result<Option<Expr>, String> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => {
                    parse(s).map(Some).map_err(|e| format!("`{k}`: {e}"))
                }
                Some(serde_json::Value::Bool(b)) => Ok(Some(Expr::Literal(Value::Int(*b as i64)))),
                Some(_) => Err(format!(
                    "`{k}` must be a predicate, e.g. \"status = 'paid'\""
                )),
            }
        };
        let default = get("where")?;
        let mut f = Filter::default();
        for (i, k) in ["insert", "update", "delete", "read"].iter().enumerate() {
            f.predicates[i] = get(k)?.or_else(|| default.clone());
        }
        if f.predicates.iter().all(|p| p.is_none()) {
            return Err("config needs `where:` (or a predicate per operation: insert, update, delete, read)".into());
        }
        Ok(f)
    }

    fn matches(&self, op: Op, table: &Table, row: &[Value]) -> Option<bool> {
        match &self.predicates[slot(op)] {
            None => Some(true),
            Some(e) => e.eval(&|c| table.index(c).and_then(|i| row.get(i))),
        }
    }
}

impl Plugin for Filter {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        *self = Filter::from_json(config.json())?;
        Ok(())
    }

    fn schema(&mut self, table: &Table) -> Result<Vec<Table>, String> {
        for p in self.predicates.iter().flatten() {
            for c in p.columns() {
                if table.index(c).is_none() {
                    return Err(format!(
                        "the predicate names column `{c}`, which {}.{} does not have",
                        table.database, table.name
                    ));
                }
            }
        }
        Ok(vec![table.clone()])
    }

    fn process(&mut self, event: &mut Event) -> Outcome {
        let keep = |row: Option<&[Value]>| {
            row.is_some_and(|r| self.matches(event.op, event.table(), r) == Some(true))
        };
        match event.op {
            Op::Insert | Op::Read => {
                if keep(event.after()) {
                    Outcome::Keep
                } else {
                    Outcome::Drop
                }
            }
            Op::Delete => {
                if keep(event.before()) {
                    Outcome::Keep
                } else {
                    Outcome::Drop
                }
            }
            Op::Update => match (keep(event.before()), keep(event.after())) {
                (true, true) => Outcome::Keep,
                (false, false) => Outcome::Drop,
                // The row leaves the filtered set: remove it from the target.
                (true, false) => {
                    let e = Event::new(
                        Op::Delete,
                        event.table().clone(),
                        event.before().map(<[_]>::to_vec),
                        None,
                    );
                    Outcome::FanOut(vec![e])
                }
                // The row enters the filtered set: the target has not seen it yet.
                (false, true) => {
                    let e = Event::new(
                        Op::Insert,
                        event.table().clone(),
                        None,
                        event.after().map(<[_]>::to_vec),
                    );
                    Outcome::FanOut(vec![e])
                }
            },
        }
    }
}

export_plugin!(Filter);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Column;

    fn table() -> Table {
        Table {
            database: "shop".into(),
            name: "orders".into(),
            columns: vec![
                Column::new("id", "int"),
                Column::new("status", "varchar(10)"),
                Column::new("total", "decimal(10,2)"),
            ],
        }
    }

    fn row(id: i64, status: &str, total: &str) -> Vec<Value> {
        vec![
            Value::Int(id),
            Value::Text(status.into()),
            Value::Decimal(total.into()),
        ]
    }

    #[test]
    fn updates_move_rows_in_and_out() {
        let mut f = Filter::from_json(r#"{"where":"status = 'paid'"}"#).unwrap();
        let ev = |b: &str, a: &str| {
            Event::new(
                Op::Update,
                table(),
                Some(row(1, b, "1")),
                Some(row(1, a, "1")),
            )
        };
        assert!(matches!(f.process(&mut ev("paid", "paid")), Outcome::Keep));
        assert!(matches!(f.process(&mut ev("new", "new")), Outcome::Drop));
        match f.process(&mut ev("paid", "void")) {
            Outcome::FanOut(es) => assert!(es[0].op == Op::Delete && es[0].after().is_none()),
            _ => panic!("expected a delete"),
        }
        match f.process(&mut ev("new", "paid")) {
            Outcome::FanOut(es) => assert!(es[0].op == Op::Insert && es[0].before().is_none()),
            _ => panic!("expected an insert"),
        }
    }

    #[test]
    fn per_op_predicates_and_checks() {
        let mut f = Filter::from_json(r#"{"where":"total >= 10","delete":false}"#).unwrap();
        let mut del = Event::new(Op::Delete, table(), Some(row(1, "x", "50")), None);
        assert!(matches!(f.process(&mut del), Outcome::Drop));
        let mut ins = Event::new(Op::Insert, table(), None, Some(row(1, "x", "9.99")));
        assert!(matches!(f.process(&mut ins), Outcome::Drop));
        assert!(f.schema(&table()).is_ok());
        let mut g = Filter::from_json(r#"{"where":"missing = 1"}"#).unwrap();
        assert!(g.schema(&table()).unwrap_err().contains("`missing`"));
        assert!(Filter::from_json(r#"{"wher":"x = 1"}"#)
            .unwrap_err()
            .contains("unknown config key"));
        assert!(Filter::from_json(r#"{}"#).unwrap_err().contains("where"));
    }
}
