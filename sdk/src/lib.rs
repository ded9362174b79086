//! Write sluice transform plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`], exported with
//! [`export_plugin!`]. sluice calls it with batches of change events; the
//! SDK hands the plugin one [`Event`] at a time and collects what it returns,
//! so plugin code never sees the batching.
//!
//! ```ignore
//! use sluice_sdk::{export_plugin, Config, Event, Outcome, Plugin, Value};
//!
//! #[derive(Default)]
//! struct Redact { column: String }
//!
//! impl Plugin for Redact {
//!     fn init(&mut self, config: &Config) -> Result<(), String> {
//!         self.column = config.string("column").ok_or("`column` is required")?;
//!         Ok(())
//!     }
//!     fn process(&mut self, event: &mut Event) -> Outcome {
//!         event.set(&self.column, Value::Text("***".into()));
//!         Outcome::Keep
//!     }
//! }
//!
//! export_plugin!(Redact);
//! ```
//!
//! Build it with `sluice plugin build DIR`; see docs/plugins.md.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "transform",
        pub_export_macro: true,
        export_macro_name: "__export_transform",
        default_bindings_module: "sluice_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::sluice::plugin::types::{Column, Level, Op, Table, Value};

use bindings::sluice::plugin::host;
use bindings::sluice::plugin::types as wit;

/// The contract version this SDK builds plugins for.
pub const CONTRACT_VERSION: u32 = 1;

/// A transform plugin.
pub trait Plugin: Default {
    /// Checks and keeps the plugin's `config:`; an error stops the pipeline
    /// before it starts, with this message.
    fn init(&mut self, _config: &Config) -> Result<(), String> {
        Ok(())
    }

    /// Decides what becomes of one event.
    fn process(&mut self, event: &mut Event) -> Outcome;
}

/// What becomes of an event.
pub enum Outcome {
    /// Pass it on (with any changes made through [`Event::set`]).
    Keep,
    /// Remove it.
    Drop,
    /// Pass these on instead (possibly for other tables, see [`Event::retarget`]).
    FanOut(Vec<Event>),
    /// This event failed; the pipeline's `on_error` decides what follows.
    Error(String),
}

/// One change event, with its table's columns.
#[derive(Clone, Debug)]
pub struct Event {
    pub op: Op,
    pub table: Table,
    pub before: Option<Vec<Value>>,
    pub after: Option<Vec<Value>>,
    /// Where the event is in the source (read-only).
    pub position: String,
    /// Commit time, microseconds since the epoch (read-only).
    pub commit_ts_us: i64,
    table_index: u32,
}

impl Event {
    /// An event of `table`, for a plugin's own tests.
    pub fn new(
        op: Op,
        table: Table,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Event {
        Event {
            op,
            table,
            before,
            after,
            position: String::new(),
            commit_ts_us: 0,
            table_index: 0,
        }
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.table.columns.iter().position(|c| c.name == column)
    }

    /// The current value of `column`: from the after image, or the before
    /// image of a delete.
    pub fn get(&self, column: &str) -> Option<&Value> {
        let i = self.index(column)?;
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .and_then(|r| r.get(i))
    }

    /// Sets `column` in every image the event has. Returns false if the
    /// table has no such column.
    pub fn set(&mut self, column: &str, value: Value) -> bool {
        let Some(i) = self.index(column) else {
            return false;
        };
        for image in [self.before.as_mut(), self.after.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(v) = image.get_mut(i) {
                *v = value.clone();
            }
        }
        true
    }

    /// The event's database and table name.
    pub fn table_name(&self) -> (&str, &str) {
        (&self.table.database, &self.table.name)
    }
}

/// The plugin's `config:` from the pipeline file.
pub struct Config {
    json: String,
}

impl Config {
    /// The config as JSON text (parse it with the JSON library of your choice).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// A top-level string field, for simple configs.
    pub fn string(&self, key: &str) -> Option<String> {
        let needle = format!("\"{key}\":");
        let rest = self.json[self.json.find(&needle)? + needle.len()..].trim_start();
        let rest = rest.strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.push(chars.next()?),
                c => out.push(c),
            }
        }
        None
    }
}

/// Writes a line into sluice's log.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Adds to a counter in sluice's metrics.
pub fn counter(name: &str, delta: u64) {
    host::counter(name, delta);
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::cell::RefCell;

    pub struct Runner<P: Plugin> {
        plugin: RefCell<Option<P>>,
    }

    // A component instance is single-threaded.
    unsafe impl<P: Plugin> Sync for Runner<P> {}

    impl<P: Plugin> Runner<P> {
        pub const fn new() -> Self {
            Runner {
                plugin: RefCell::new(None),
            }
        }

        pub fn init(&self, config: String) -> Result<(), String> {
            let mut p = P::default();
            p.init(&Config { json: config })?;
            *self.plugin.borrow_mut() = Some(p);
            Ok(())
        }

        pub fn process(&self, input: wit::Batch) -> wit::Output {
            let mut slot = self.plugin.borrow_mut();
            let p = slot.get_or_insert_with(P::default);
            let mut new_tables: Vec<Table> = Vec::new();
            let base = input.tables.len() as u32;
            let outcomes = input
                .events
                .into_iter()
                .map(|e| {
                    let table = input
                        .tables
                        .get(e.table as usize)
                        .cloned()
                        .unwrap_or(Table {
                            database: String::new(),
                            name: String::new(),
                            columns: Vec::new(),
                        });
                    let mut event = Event {
                        op: e.op,
                        table,
                        before: e.before,
                        after: e.after,
                        position: e.position,
                        commit_ts_us: e.commit_ts_us,
                        table_index: e.table,
                    };
                    match p.process(&mut event) {
                        Outcome::Keep => wit::Outcome::Replace(to_wit(
                            event,
                            &input.tables,
                            base,
                            &mut new_tables,
                        )),
                        Outcome::Drop => wit::Outcome::Drop,
                        Outcome::Error(m) => wit::Outcome::Error(m),
                        Outcome::FanOut(events) => wit::Outcome::FanOut(
                            events
                                .into_iter()
                                .map(|e| to_wit(e, &input.tables, base, &mut new_tables))
                                .collect(),
                        ),
                    }
                })
                .collect();
            wit::Output {
                outcomes,
                new_tables,
            }
        }
    }

    /// The event with its table index: the input's if the table is unchanged,
    /// else a new table.
    fn to_wit(e: Event, tables: &[Table], base: u32, new_tables: &mut Vec<Table>) -> wit::Event {
        let same = |t: &Table| {
            t.database == e.table.database && t.name == e.table.name && t.columns == e.table.columns
        };
        let table = match tables.get(e.table_index as usize) {
            Some(t) if same(t) => e.table_index,
            _ => match new_tables.iter().position(same) {
                Some(i) => base + i as u32,
                None => {
                    new_tables.push(e.table.clone());
                    base + new_tables.len() as u32 - 1
                }
            },
        };
        wit::Event {
            op: e.op,
            table,
            before: e.before,
            after: e.after,
            position: e.position,
            commit_ts_us: e.commit_ts_us,
        }
    }
}

/// Exports a [`Plugin`] type as the component's `transform` world.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        static __SLUICE_RUNNER: $crate::__private::Runner<$plugin> = $crate::__private::Runner::new();

        struct __SluiceExport;

        impl $crate::bindings::Guest for __SluiceExport {
            fn contract_version() -> u32 {
                $crate::CONTRACT_VERSION
            }
            fn init(config: String) -> Result<(), String> {
                __SLUICE_RUNNER.init(config)
            }
            fn process(input: $crate::bindings::sluice::plugin::types::Batch) -> $crate::bindings::sluice::plugin::types::Output {
                __SLUICE_RUNNER.process(input)
            }
        }

        $crate::bindings::__export_transform!(__SluiceExport with_types_in $crate::bindings);
    };
}
