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
        // `value` is what plugin code works with; the contract itself
        // passes values as row images.
        generate_unused_types: true,
    });
}

pub use bindings::sluice::plugin::types::{Column, Level, Op, Table, Value};

pub mod rows;

use std::cell::OnceCell;
use std::rc::Rc;

use bindings::sluice::plugin::host;

/// `table_index` of an event moved to another table.
const MOVED: u32 = u32::MAX;
use bindings::sluice::plugin::types as wit;

/// The contract version this SDK builds plugins for.
pub const CONTRACT_VERSION: u32 = 2;

/// A transform plugin.
pub trait Plugin: Default {
    /// Checks and keeps the plugin's `config:`; an error stops the pipeline
    /// before it starts, with this message.
    fn init(&mut self, _config: &Config) -> Result<(), String> {
        Ok(())
    }

    /// The tables that events of `table` leave this plugin as. The default
    /// keeps the shape; a plugin that renames, merges, adds or drops columns
    /// returns the tables its events will be moved to with
    /// [`Event::move_to`]. sluice creates the target tables from this answer.
    fn schema(&mut self, table: &Table) -> Result<Vec<Table>, String> {
        Ok(vec![table.clone()])
    }

    /// Decides what becomes of one event.
    fn process(&mut self, event: &mut Event) -> Outcome;
}

/// What becomes of an event.
pub enum Outcome {
    /// Pass it on (with any changes made through [`Event::set`] and friends).
    Keep,
    /// Remove it.
    Drop,
    /// Pass these on instead (possibly for other tables, see [`Event::move_to`]).
    FanOut(Vec<Event>),
    /// This event failed; the pipeline's `on_error` decides what follows.
    Error(String),
}

impl Column {
    /// A nullable, non-key column of a MySQL type such as `varchar(64)`.
    pub fn new(name: &str, mysql_type: &str) -> Column {
        Column {
            name: name.into(),
            mysql_type: mysql_type.into(),
            key: false,
            nullable: true,
        }
    }
}

impl Table {
    /// The position of `column`.
    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }

    /// The same table under another database and name.
    pub fn renamed(&self, database: &str, name: &str) -> Table {
        Table {
            database: database.into(),
            name: name.into(),
            columns: self.columns.clone(),
        }
    }
}

/// One change event, with its table's columns.
///
/// Changes go through methods ([`set`](Event::set), [`update`](Event::update),
/// [`move_to`](Event::move_to)) so that sluice can pass untouched events on
/// without copying them.
#[derive(Clone, Debug)]
pub struct Event {
    pub op: Op,
    /// Shared by every event of a batch until one is moved.
    table: Rc<Table>,
    before: Image,
    after: Image,
    position: Rc<str>,
    commit_ts_us: i64,
    table_index: u32,
    original_op: Op,
    changed: bool,
}

/// One row image of an event: the bytes sluice sent, read only when the
/// plugin looks at them, or values of the plugin's own.
#[derive(Clone, Debug)]
enum Image {
    Absent,
    Sent {
        data: Rc<Vec<u8>>,
        start: usize,
        end: usize,
        values: OnceCell<Vec<Value>>,
    },
    Owned(Vec<Value>),
}

impl Image {
    fn of(values: Option<Vec<Value>>) -> Image {
        values.map_or(Image::Absent, Image::Owned)
    }

    fn get(&self) -> Option<&[Value]> {
        match self {
            Image::Absent => None,
            Image::Owned(v) => Some(v),
            Image::Sent {
                data,
                start,
                end,
                values,
            } => Some(values.get_or_init(|| decode(&data[*start..*end]))),
        }
    }

    fn get_mut(&mut self) -> Option<&mut Vec<Value>> {
        if let Image::Sent { .. } = self {
            let values = self.get().map(<[Value]>::to_vec).unwrap_or_default();
            *self = Image::Owned(values);
        }
        match self {
            Image::Owned(v) => Some(v),
            _ => None,
        }
    }

    /// The image in `out`: the bytes as sent when the plugin changed
    /// nothing in it, else its values written out.
    fn write(&self, out: &mut Vec<u8>) -> Option<wit::Image> {
        let offset = out.len();
        match self {
            Image::Absent => return None,
            Image::Sent {
                data, start, end, ..
            } => out.extend_from_slice(&data[*start..*end]),
            Image::Owned(values) => {
                for v in values {
                    rows::put(out, cell(v));
                }
            }
        }
        Some(wit::Image {
            offset: offset as u32,
            len: (out.len() - offset) as u32,
        })
    }
}

/// An image sluice sent, as values. sluice writes well-formed images; a
/// malformed one is a bug there, reported as this plugin's panic.
fn decode(image: &[u8]) -> Vec<Value> {
    rows::cells(image)
        .map(|c| match c {
            Ok(rows::Cell::Null) => Value::Null,
            Ok(rows::Cell::Int(v)) => Value::Int(v),
            Ok(rows::Cell::Uint(v)) => Value::Uint(v),
            Ok(rows::Cell::Float32(v)) => Value::Float32(v),
            Ok(rows::Cell::Float64(v)) => Value::Float64(v),
            Ok(rows::Cell::Decimal(v)) => Value::Decimal(v.to_string()),
            Ok(rows::Cell::Text(v)) => Value::Text(v.to_string()),
            Ok(rows::Cell::Bytes(v)) => Value::Bytes(v.to_vec()),
            Ok(rows::Cell::Date(v)) => Value::Date(v),
            Ok(rows::Cell::Timestamp(v)) => Value::Timestamp(v),
            Ok(rows::Cell::Time(v)) => Value::Time(v),
            Err(e) => panic!("sluice sent a {e}"),
        })
        .collect()
}

fn cell(v: &Value) -> rows::Cell<'_> {
    match v {
        Value::Null => rows::Cell::Null,
        Value::Int(v) => rows::Cell::Int(*v),
        Value::Uint(v) => rows::Cell::Uint(*v),
        Value::Float32(v) => rows::Cell::Float32(*v),
        Value::Float64(v) => rows::Cell::Float64(*v),
        Value::Decimal(v) => rows::Cell::Decimal(v),
        Value::Text(v) => rows::Cell::Text(v),
        Value::Bytes(v) => rows::Cell::Bytes(v),
        Value::Date(v) => rows::Cell::Date(*v),
        Value::Timestamp(v) => rows::Cell::Timestamp(*v),
        Value::Time(v) => rows::Cell::Time(*v),
    }
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
            table: Rc::new(table),
            before: Image::of(before),
            after: Image::of(after),
            position: "".into(),
            commit_ts_us: 0,
            // Found by comparing, when the event goes back to sluice.
            table_index: MOVED,
            original_op: op,
            changed: false,
        }
    }

    /// The event's table: database, name, columns.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The event's database and table name.
    pub fn table_name(&self) -> (&str, &str) {
        (&self.table.database, &self.table.name)
    }

    /// The row before the change (updates and deletes), in column order.
    pub fn before(&self) -> Option<&[Value]> {
        self.before.get()
    }

    /// The row after the change (inserts, updates, snapshot reads).
    pub fn after(&self) -> Option<&[Value]> {
        self.after.get()
    }

    /// Where the event is in the source, e.g. `mysql-bin.000003:1234`.
    pub fn position(&self) -> &str {
        &self.position
    }

    /// Commit time, microseconds since the Unix epoch (0 for snapshot reads).
    pub fn commit_ts_us(&self) -> i64 {
        self.commit_ts_us
    }

    /// The current value of `column`: from the after image, or the before
    /// image of a delete.
    pub fn get(&self, column: &str) -> Option<&Value> {
        let i = self.table.index(column)?;
        self.after
            .get()
            .or(self.before.get())
            .and_then(|r| r.get(i))
    }

    /// The value of `column` before the change (updates and deletes).
    pub fn get_before(&self, column: &str) -> Option<&Value> {
        let i = self.table.index(column)?;
        self.before.get().and_then(|r| r.get(i))
    }

    /// Sets `column` in every image the event has. Returns false if the
    /// table has no such column.
    pub fn set(&mut self, column: &str, value: Value) -> bool {
        self.update(column, |_| value.clone())
    }

    /// Replaces the value of `column` in every image by `f(value)`. Returns
    /// false if the table has no such column.
    pub fn update(&mut self, column: &str, mut f: impl FnMut(&Value) -> Value) -> bool {
        let Some(i) = self.table.index(column) else {
            return false;
        };
        for image in [self.before.get_mut(), self.after.get_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(v) = image.get_mut(i) {
                let new = f(v);
                if new != *v {
                    *v = new;
                    self.changed = true;
                }
            }
        }
        true
    }

    /// Moves the event to `table` (one of the tables [`Plugin::schema`]
    /// declared): each of its columns takes the value of the column of the
    /// same name, and NULL when the event has none. Set new columns after.
    pub fn move_to(&mut self, table: &Table) {
        self.move_to_with(table, |c| Some(c));
    }

    /// Like [`move_to`](Event::move_to), with `source(column)` naming the
    /// column each new column takes its value from (for renamed columns).
    pub fn move_to_with<'a>(
        &mut self,
        table: &'a Table,
        source: impl Fn(&'a str) -> Option<&'a str>,
    ) {
        let from: Vec<Option<usize>> = table
            .columns
            .iter()
            .map(|c| source(&c.name).and_then(|s| self.table.index(s)))
            .collect();
        for image in [self.before.get_mut(), self.after.get_mut()]
            .into_iter()
            .flatten()
        {
            let old = std::mem::take(image);
            *image = from
                .iter()
                .map(|i| i.and_then(|i| old.get(i).cloned()).unwrap_or(Value::Null))
                .collect();
        }
        self.table = Rc::new(table.clone());
        self.table_index = MOVED;
        self.changed = true;
    }

    fn unchanged(&self) -> bool {
        !self.changed && self.op == self.original_op
    }
}

/// The plugin's `config:` from the pipeline file, as JSON.
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct Settings { column: String, #[serde(default)] keep_last: usize }
/// let settings: Settings = config.parse()?;          // typed, with serde
/// let column = config.string("column");              // one top-level field
/// let salt = config.get("hash.salt");                // a nested field
/// let config = Config::new(r#"{"column": "email"}"#)?; // in a plugin's own tests
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    json: String,
    value: serde_json::Value,
}

impl Config {
    /// A config from JSON text (for a plugin's own tests).
    pub fn new(json: &str) -> Result<Config, String> {
        let value = serde_json::from_str(json).map_err(|e| format!("config is not JSON: {e}"))?;
        Ok(Config {
            json: json.to_string(),
            value,
        })
    }

    /// The config as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The config as a JSON value.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// The config as a type of the plugin's (`#[derive(serde::Deserialize)]`);
    /// the error names the field that does not fit.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.value.clone()).map_err(|e| format!("config: {e}"))
    }

    /// The field at a dotted path (`"columns.email"`), if there is one.
    pub fn get(&self, path: &str) -> Option<&serde_json::Value> {
        path.split('.')
            .try_fold(&self.value, |v, key| v.as_object()?.get(key))
    }

    /// A top-level field as text: a string as it is, a number or a boolean
    /// written out; `None` for anything else or a missing field.
    pub fn string(&self, key: &str) -> Option<String> {
        match self.value.as_object()?.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            n @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl Value {
    /// A signed integer (INT, BIGINT, YEAR...; an unsigned one that fits):
    /// the same for a signed and an unsigned column.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// An unsigned integer (UNSIGNED columns, BIT; a signed one that is not negative).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint(u) => Some(*u),
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// A FLOAT or DOUBLE (or an integer, converted).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float32(f) => Some(*f as f64),
            Value::Float64(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Uint(u) => Some(*u as f64),
            _ => None,
        }
    }

    /// Text (CHAR, VARCHAR, TEXT, ENUM, SET, JSON...) or a DECIMAL's digits.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Decimal(s) => Some(s),
            _ => None,
        }
    }

    /// Bytes (BINARY, VARBINARY, BLOB, GEOMETRY).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
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
            // A panic's own message, for sluice to report instead of a bare trap.
            std::panic::set_hook(Box::new(|info| {
                host::log(Level::Error, &info.to_string());
            }));
            let mut p = P::default();
            p.init(&Config::new(&config)?)?;
            *self.plugin.borrow_mut() = Some(p);
            Ok(())
        }

        pub fn schema(&self, table: wit::Table) -> Result<Vec<wit::Table>, String> {
            let mut slot = self.plugin.borrow_mut();
            slot.get_or_insert_with(P::default).schema(&table)
        }

        pub fn process(&self, input: wit::Batch) -> wit::Output {
            let mut slot = self.plugin.borrow_mut();
            let p = slot.get_or_insert_with(P::default);
            let mut new_tables: Vec<Table> = Vec::new();
            let base = input.tables.len() as u32;
            let tables: Vec<Rc<Table>> = input.tables.iter().cloned().map(Rc::new).collect();
            let positions: Vec<Rc<str>> =
                input.positions.iter().map(|p| p.as_str().into()).collect();
            let data = Rc::new(input.data);
            let mut out = Vec::new();
            // A span outside the buffer is sluice's bug: the plugin panics
            // with this message rather than reading past it.
            let image = |i: Option<wit::Image>| match i {
                None => Image::Absent,
                Some(wit::Image { offset, len }) => {
                    let (start, end) = (offset as usize, offset as usize + len as usize);
                    assert!(end <= data.len(), "sluice sent an image outside its batch");
                    Image::Sent {
                        data: data.clone(),
                        start,
                        end,
                        values: OnceCell::new(),
                    }
                }
            };
            let empty = Rc::new(Table {
                database: String::new(),
                name: String::new(),
                columns: Vec::new(),
            });
            let outcomes = input
                .events
                .into_iter()
                .map(|e| {
                    let table = tables.get(e.table as usize).unwrap_or(&empty).clone();
                    let mut event = Event {
                        op: e.op,
                        table,
                        before: image(e.before),
                        after: image(e.after),
                        position: positions
                            .get(e.position as usize)
                            .cloned()
                            .unwrap_or_else(|| "".into()),
                        commit_ts_us: e.commit_ts_us,
                        table_index: e.table,
                        original_op: e.op,
                        changed: false,
                    };
                    match p.process(&mut event) {
                        // Untouched events go back as one word, not a copy.
                        Outcome::Keep if event.unchanged() => wit::Outcome::Keep,
                        Outcome::Keep => wit::Outcome::Replace(to_wit(
                            event,
                            &input.tables,
                            base,
                            &mut new_tables,
                            &mut out,
                        )),
                        Outcome::Drop => wit::Outcome::Drop,
                        Outcome::Error(m) => wit::Outcome::Error(m),
                        Outcome::FanOut(events) => wit::Outcome::FanOut(
                            events
                                .into_iter()
                                .map(|e| to_wit(e, &input.tables, base, &mut new_tables, &mut out))
                                .collect(),
                        ),
                    }
                })
                .collect();
            wit::Output {
                outcomes,
                new_tables,
                data: out,
            }
        }
    }

    /// The event with its table index: the input's if the table is unchanged,
    /// else a new table.
    fn to_wit(
        e: Event,
        tables: &[Table],
        base: u32,
        new_tables: &mut Vec<Table>,
        data: &mut Vec<u8>,
    ) -> wit::Event {
        let table = if e.table_index != MOVED {
            e.table_index
        } else {
            let same = |t: &Table| {
                t.database == e.table.database
                    && t.name == e.table.name
                    && t.columns == e.table.columns
            };
            match tables.iter().position(same) {
                Some(i) => i as u32,
                None => match new_tables.iter().position(same) {
                    Some(i) => base + i as u32,
                    None => {
                        new_tables.push((*e.table).clone());
                        base + new_tables.len() as u32 - 1
                    }
                },
            }
        };
        wit::Event {
            op: e.op,
            table,
            before: e.before.write(data),
            after: e.after.write(data),
            position: 0,
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
            fn schema(input: $crate::bindings::sluice::plugin::types::Table) -> Result<Vec<$crate::bindings::sluice::plugin::types::Table>, String> {
                __SLUICE_RUNNER.schema(input)
            }
            fn process(input: $crate::bindings::sluice::plugin::types::Batch) -> $crate::bindings::sluice::plugin::types::Output {
                __SLUICE_RUNNER.process(input)
            }
        }

        $crate::bindings::__export_transform!(__SluiceExport with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_fields_typed_by_path_and_top_level_only() {
        let c = Config::new(
            r#"{"column": "email", "n": 3, "on": true, "nested": {"column": "x", "salt": "s"}}"#,
        )
        .unwrap();
        assert_eq!(c.string("column").as_deref(), Some("email"));
        assert_eq!(c.string("n").as_deref(), Some("3"));
        assert_eq!(c.string("on").as_deref(), Some("true"));
        // A nested key of the same name is not the top-level one.
        assert_eq!(c.string("salt"), None);
        assert_eq!(c.get("nested.salt").and_then(|v| v.as_str()), Some("s"));
        assert!(c.get("nested.nope").is_none());

        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Settings {
            column: String,
            n: u32,
        }
        let s: Settings = c.parse().unwrap();
        assert_eq!(
            s,
            Settings {
                column: "email".into(),
                n: 3
            }
        );
        let wrong = Config::new(r#"{"column": 1, "n": 3}"#)
            .unwrap()
            .parse::<Settings>();
        assert!(wrong.unwrap_err().contains("invalid type"));
        assert!(Config::new("{nope").is_err());
    }

    #[test]
    fn value_accessors_hide_signedness() {
        assert_eq!(Value::Uint(7).as_i64(), Some(7));
        assert_eq!(Value::Int(7).as_u64(), Some(7));
        assert_eq!(Value::Int(-1).as_u64(), None);
        assert_eq!(Value::Uint(u64::MAX).as_i64(), None);
        assert_eq!(Value::Float32(1.5).as_f64(), Some(1.5));
        assert_eq!(Value::Text("a".into()).as_str(), Some("a"));
        assert_eq!(Value::Decimal("1.50".into()).as_str(), Some("1.50"));
        assert_eq!(Value::Bytes(vec![1]).as_bytes(), Some(&[1u8][..]));
        assert!(Value::Null.is_null());
    }
}
