//! Adds audit columns: the operation, the source commit time and the source
//! position of the change that last wrote each row.
//!
//! ```yaml
//! transforms:
//!   - plugin: audit-columns
//!     config:
//!       op: _op                  # varchar(8): insert, update, delete, read
//!       commit_ts: _commit_ts    # datetime(6), UTC; NULL for snapshot rows
//!       position: _position      # varchar(255), e.g. mysql-bin.000003:1234
//!       soft_delete: false       # true: a delete keeps the row, with _op = delete
//! ```
//!
//! Each of `op`, `commit_ts` and `position` defaults to the name shown; set
//! one to null to leave that column out. With `soft_delete: true`, deletes
//! become updates that mark the row, so the target keeps every row ever seen.

use sluice_sdk::{export_plugin, Column, Config, Event, Op, Outcome, Plugin, Table, Value};

#[derive(Debug)]
pub struct Audit {
    op: Option<String>,
    commit_ts: Option<String>,
    position: Option<String>,
    soft_delete: bool,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            op: Some("_op".into()),
            commit_ts: Some("_commit_ts".into()),
            position: Some("_position".into()),
            soft_delete: false,
        }
    }
}

impl Audit {
    pub fn from_json(json: &str) -> Result<Audit, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("config is not valid: {e}"))?;
        let obj = v.as_object().ok_or("config must be a map")?;
        let mut a = Audit::default();
        for (k, val) in obj {
            let name = || match val {
                serde_json::Value::Null => Ok(None),
                serde_json::Value::String(s) if !s.is_empty() => Ok(Some(s.clone())),
                _ => Err(format!(
                    "`{k}` must be a column name, or null to leave the column out"
                )),
            };
            match k.as_str() {
                "op" => a.op = name()?,
                "commit_ts" => a.commit_ts = name()?,
                "position" => a.position = name()?,
                "soft_delete" => {
                    a.soft_delete = val.as_bool().ok_or("`soft_delete` must be true or false")?
                }
                other => {
                    return Err(format!(
                        "unknown config key `{other}`; use op, commit_ts, position, soft_delete"
                    ))
                }
            }
        }
        Ok(a)
    }

    fn added(&self) -> Vec<Column> {
        [
            (&self.op, "varchar(8)"),
            (&self.commit_ts, "datetime(6)"),
            (&self.position, "varchar(255)"),
        ]
        .into_iter()
        .filter_map(|(n, ty)| n.as_ref().map(|n| Column::new(n, ty)))
        .collect()
    }
}

impl Plugin for Audit {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        *self = Audit::from_json(config.json())?;
        Ok(())
    }

    fn schema(&mut self, table: &Table) -> Result<Vec<Table>, String> {
        let mut out = table.clone();
        for c in self.added() {
            if out.index(&c.name).is_some() {
                return Err(format!(
                    "{}.{} already has a column `{}`; give the audit column another name",
                    table.database, table.name, c.name
                ));
            }
            out.columns.push(c);
        }
        Ok(vec![out])
    }

    fn process(&mut self, event: &mut Event) -> Outcome {
        let mut out = event.table().clone();
        out.columns.extend(self.added());
        let op = event.op;
        let position = event.position().to_string();
        let ts = event.commit_ts_us();
        if op == Op::Delete && self.soft_delete {
            // The row stays, marked: an update from its last image to itself.
            let row = event.before().map(<[_]>::to_vec);
            *event = Event::new(Op::Update, event.table().clone(), row.clone(), row);
        }
        event.move_to(&out);
        if let Some(c) = &self.op {
            let name = match op {
                Op::Insert => "insert",
                Op::Update => "update",
                Op::Delete => "delete",
                Op::Read => "read",
            };
            event.set(c, Value::Text(name.into()));
        }
        if let Some(c) = &self.commit_ts {
            event.set(
                c,
                if op == Op::Read || ts == 0 {
                    Value::Null
                } else {
                    Value::Timestamp(ts)
                },
            );
        }
        if let Some(c) = &self.position {
            event.set(c, Value::Text(position));
        }
        Outcome::Keep
    }
}

export_plugin!(Audit);

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Table {
        Table {
            database: "d".into(),
            name: "t".into(),
            columns: vec![Column::new("id", "int")],
        }
    }

    #[test]
    fn adds_columns_and_soft_deletes() {
        let mut a = Audit::from_json(r#"{"position":null,"soft_delete":true}"#).unwrap();
        let out = a.schema(&t()).unwrap();
        assert_eq!(
            out[0]
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["id", "_op", "_commit_ts"]
        );
        let mut e = Event::new(Op::Delete, t(), Some(vec![Value::Int(7)]), None);
        assert!(matches!(a.process(&mut e), Outcome::Keep));
        assert_eq!(e.op, Op::Update);
        assert_eq!(e.get("_op"), Some(&Value::Text("delete".into())));
        assert_eq!(e.get("id"), Some(&Value::Int(7)));
        assert!(Audit::from_json(r#"{"colour":1}"#).is_err());
        let clash = Table {
            columns: vec![Column::new("_op", "int")],
            ..t()
        };
        assert!(Audit::default().schema(&clash).unwrap_err().contains("_op"));
    }
}
