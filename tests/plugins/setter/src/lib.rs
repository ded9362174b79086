//! Writes what its config says, for tests of what sluice accepts from a
//! plugin: `{"column": C, "text" | "float" | "int": V, "only_id": N}` sets
//! column C to V (a float may be "nan" or "inf") in every event, or only in
//! the row whose `id` is N; `{"declare_database": D}` declares each table
//! under database D and moves its events there.
use sluice_sdk::{export_plugin, Config, Event, Outcome, Plugin, Table, Value};

#[derive(Default)]
struct Setter {
    column: Option<String>,
    value: Option<Value>,
    only_id: Option<i64>,
    declare: Option<String>,
}

impl Plugin for Setter {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.column = config.string("column");
        self.only_id = config.get("only_id").and_then(|v| v.as_i64());
        self.declare = config.string("declare_database");
        self.value = if let Some(t) = config.string("text") {
            Some(Value::Text(t))
        } else if let Some(f) = config.string("float") {
            Some(Value::Float64(f.parse().map_err(|_| format!("float {f}"))?))
        } else {
            config.get("int").and_then(|v| v.as_i64()).map(Value::Int)
        };
        Ok(())
    }

    fn schema(&mut self, table: &Table) -> Result<Vec<Table>, String> {
        Ok(vec![match &self.declare {
            Some(db) => table.renamed(db, &table.name),
            None => table.clone(),
        }])
    }

    fn process(&mut self, e: &mut Event) -> Outcome {
        if let Some(db) = &self.declare {
            let moved = e.table().renamed(db, &e.table().name);
            e.move_to(&moved);
        }
        let (Some(column), Some(value)) = (&self.column, &self.value) else {
            return Outcome::Keep;
        };
        if self.only_id.is_none() || e.get("id").and_then(Value::as_i64) == self.only_id {
            e.set(column, value.clone());
        }
        Outcome::Keep
    }
}

export_plugin!(Setter);
