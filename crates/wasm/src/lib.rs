//! WebAssembly transforms: plugins that rewrite change batches between the
//! source and the sinks.
//!
//! - this file: a pipeline's chain of plugins, applied to every batch;
//! - [`wasm`]: the sandbox (wasmtime) a plugin runs in;
//! - [`schema`]: tables as plugins see them, and the tables they declare;
//! - [`convert`]: Arrow rows to plugin values and back;
//! - [`dead_letter`]: where failed events go under `on_error: dead-letter`;
//! - [`build`]: `sluice plugin build`, a plugin folder to a component;
//! - [`scaffold`]: `sluice plugin new`, a plugin project to start from;
//! - [`sample`]: `sluice plugin test`, a plugin over sample events.

pub mod build;
pub mod convert;
pub mod dead_letter;
pub mod events;
/// The byte form of row images, shared with the SDK (one definition of
/// the format on both sides of the contract).
#[path = "../../../sdk/src/rows.rs"]
pub mod rows;
pub mod sample;
pub mod scaffold;
pub mod schema;
pub mod wasm;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

// The core's modules under the names this crate's code was written with.
pub(crate) use sluice_core::{config, event, filter, progress, temporal, Error, Result};

use config::{OnError, TransformConfig};
use dead_letter::DeadLetter;
use event::{ChangeBatch, EventInfo, Op, Position, TableId, TableSchema};
use filter::TableFilter;
use sluice_core::connectors::Plugins;
use sluice_core::stage::Transform;
use wasm::types;

/// Where a `plugin:` value points: a `.wasm` component, a plugin folder
/// (built on the spot), or the name of a bundled plugin under `plugins/`.
pub fn resolve_plugin(spec: &str) -> Result<PathBuf> {
    let given = Path::new(spec);
    let candidates = [given.to_path_buf(), Path::new("plugins").join(spec)];
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
        if c.join("Cargo.toml").is_file() {
            return build::build(c);
        }
    }
    Err(Error::precondition(
        format!(
            "plugin `{spec}` not found (looked for {} and plugins/{spec})",
            given.display()
        ),
        "give the path of a .wasm component or of a plugin folder, or the name of a bundled plugin",
    ))
}

/// A configured transform: the compiled plugin and its settings, shared by
/// every worker.
struct Spec {
    plugin: wasm::Plugin,
    config_json: String,
    filter: Option<Arc<TableFilter>>,
    on_error: OnError,
    dead_letter: Option<Arc<DeadLetter>>,
    /// Schemas it may not declare tables in.
    reserved: Arc<Vec<String>>,
}

impl Spec {
    fn load(config: &TransformConfig, reserved: &Arc<Vec<String>>) -> Result<Spec> {
        let spec = &config.plugin.value;
        let path = resolve_plugin(spec)?;
        let limits = wasm::Limits {
            deadline: Duration::from_millis(config.deadline_ms),
            memory_bytes: (config.memory_mb as usize) << 20,
        };
        let name = Path::new(spec)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.clone());
        let filter = if config.tables.is_empty() {
            None
        } else {
            Some(Arc::new(
                TableFilter::new(&config.tables, &[]).map_err(Error::Data)?,
            ))
        };
        let dead_letter = match (&config.on_error, &config.dead_letter) {
            (OnError::DeadLetter, Some(p)) => Some(DeadLetter::open(Path::new(&p.value))?),
            _ => None,
        };
        Ok(Spec {
            plugin: wasm::Plugin::compile(&name, &path, limits)?,
            config_json: config
                .config
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_else(|| "{}".into()),
            filter,
            on_error: config.on_error,
            dead_letter,
            reserved: reserved.clone(),
        })
    }

    fn instantiate(&self) -> Result<WasmTransform> {
        Ok(WasmTransform {
            instance: self.plugin.instantiate(&self.config_json)?,
            filter: self.filter.clone(),
            on_error: self.on_error,
            dead_letter: self.dead_letter.clone(),
            reserved: self.reserved.clone(),
            skipped: 0,
            shapes: HashMap::new(),
            data: Vec::new(),
        })
    }
}

/// What a plugin makes of one input table.
struct Shape {
    input: Arc<TableSchema>,
    outputs: Vec<Arc<TableSchema>>,
}

impl Shape {
    fn identity(&self) -> bool {
        self.outputs.len() == 1 && Arc::ptr_eq(&self.outputs[0], &self.input)
    }
}

/// One plugin instance with its settings: a worker's share of a transform.
pub struct WasmTransform {
    instance: wasm::Instance,
    filter: Option<Arc<TableFilter>>,
    on_error: OnError,
    dead_letter: Option<Arc<DeadLetter>>,
    reserved: Arc<Vec<String>>,
    skipped: u64,
    /// Per input table, what the plugin's `schema` answered.
    shapes: HashMap<TableId, Shape>,
    /// The row images of the batch being processed, kept between batches.
    data: Vec<u8>,
}

/// An output event and the table it belongs to.
type Routed = (Arc<TableSchema>, events::Event, EventInfo);

impl WasmTransform {
    fn selects(&self, table: &TableId) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(table))
    }

    /// The plugin's output tables for `input`, asked once per table shape.
    fn shape(&mut self, input: &Arc<TableSchema>) -> Result<&Shape> {
        // The change stream may describe a table with a new schema object of
        // the same shape (built from the binlog's metadata); a table the
        // plugin leaves as it is then stays that very object.
        if let Some(s) = self.shapes.get_mut(&input.id) {
            if !Arc::ptr_eq(&s.input, input) && s.identity() && schema::same_shape(&s.input, input)
            {
                *s = Shape {
                    input: input.clone(),
                    outputs: vec![input.clone()],
                };
            }
        }
        let known = self
            .shapes
            .get(&input.id)
            .is_some_and(|s| Arc::ptr_eq(&s.input, input) || schema::same_shape(&s.input, input));
        if !known {
            let outputs = if self.selects(&input.id) {
                let name = self.instance.name().to_string();
                let declared = self
                    .instance
                    .schema(&schema::wit_table(input))
                    .map_err(|m| {
                        Error::precondition(
                            format!(
                                "plugin `{name}` could not describe what {} becomes: {m}",
                                input.id
                            ),
                            "fix the transform's `config:` (or the plugin's `schema`)",
                        )
                    })?;
                declared
                    .iter()
                    .map(|t| {
                        schema::derive(t, input, &self.reserved).map_err(|m| {
                            Error::precondition(
                                format!("plugin `{name}`, for {}: {m}", input.id),
                                "fix the transform's `config:` (or the plugin's `schema`)",
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            } else {
                vec![input.clone()]
            };
            self.shapes.insert(
                input.id.clone(),
                Shape {
                    input: input.clone(),
                    outputs,
                },
            );
        }
        self.shapes
            .get(&input.id)
            .ok_or_else(|| Error::Internal("plugin shape missing".into()))
    }

    /// Runs one batch through the plugin.
    pub fn apply(&mut self, batch: ChangeBatch) -> Result<Vec<ChangeBatch>> {
        if batch.is_empty() || !self.selects(&batch.table.id) {
            return Ok(vec![batch]);
        }
        let outputs = self.shape(&batch.table)?.outputs.clone();
        let stays = outputs.iter().any(|o| Arc::ptr_eq(o, &batch.table));
        let table = batch.table.clone();
        // A batch's events mostly share one position (a snapshot's, a rows
        // event's): it is written out once per position, not per event.
        let mut positions: Vec<(*const Position, String)> = Vec::new();
        let mut position_index: Vec<usize> = Vec::with_capacity(batch.events.len());
        for e in &batch.events {
            let p = Arc::as_ptr(&e.position);
            if positions.last().is_none_or(|(q, _)| !std::ptr::eq(*q, p)) {
                positions.push((p, e.position.to_string()));
            }
            position_index.push(positions.len() - 1);
        }
        let position_text: Vec<&str> = positions.iter().map(|(_, p)| p.as_str()).collect();
        self.data.clear();
        let befores = batch
            .before
            .as_ref()
            .map(|b| convert::encode_rows(b, &mut self.data));
        let afters = batch
            .after
            .as_ref()
            .map(|a| convert::encode_rows(a, &mut self.data));
        let image = |images: &Option<Vec<types::Image>>, row: usize| {
            images.as_ref().and_then(|i| i.get(row).copied())
        };
        let tables = [schema::wit_table(&table)];
        let wit_events: Vec<types::Event> = batch
            .events
            .iter()
            .enumerate()
            .map(|(row, e)| types::Event {
                op: wit_op(e.op),
                table: 0,
                before: image(&befores, row),
                after: image(&afters, row),
                position: position_index[row] as u32,
                commit_ts_us: e.commit_ts_us,
            })
            .collect();
        let input = wasm::BatchRef {
            tables: &tables,
            positions: &position_text,
            data: &self.data,
            events: &wit_events,
        };
        let name = self.instance.name().to_string();
        let at = format!("table {} at {}", table.id, batch.events[0].position);
        let output = self.instance.process(&input).map_err(|msg| {
            Error::Data(format!(
                "plugin `{name}` {msg} while processing {at}; the target keeps what was committed before this batch"
            ))
        })?;
        let events_in = input.events.len();
        if output.outcomes.len() != events_in {
            return Err(Error::Data(format!(
                "plugin `{name}` answered {} outcomes for {events_in} events ({at})",
                output.outcomes.len(),
            )));
        }

        // Only keeps and drops: the batch's own Arrow data, filtered.
        if stays
            && output
                .outcomes
                .iter()
                .all(|o| matches!(o, events::Outcome::Keep | events::Outcome::Drop))
        {
            let keep: Vec<u32> = output
                .outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o, events::Outcome::Keep))
                .map(|(i, _)| i as u32)
                .collect();
            return Ok(select_rows(batch, &keep)?.into_iter().collect());
        }

        // The other paths compare with, or pass on, the events as the plugin
        // saw them: owned copies, made only for them.
        let originals = owned_events(&batch, &positions, &position_index);

        // Rows changed in place (masking): only the changed columns are built
        // again; the others are the batch's own Arrow columns.
        if stays
            && output
                .outcomes
                .iter()
                .zip(&originals)
                .all(|(o, orig)| match o {
                    events::Outcome::Keep | events::Outcome::Drop => true,
                    events::Outcome::Replace(e) => {
                        e.table == 0
                            && e.op == orig.op
                            && e.before.is_some() == orig.before.is_some()
                            && e.after.is_some() == orig.after.is_some()
                    }
                    _ => false,
                })
        {
            return patch(batch, originals, output.outcomes)
                .map_err(|m| bad_output(&name, &format!("output for {at}: {m}")));
        }

        let new_tables: Vec<Arc<TableSchema>> = output
            .new_tables
            .iter()
            .map(|t| {
                outputs
                    .iter()
                    .find(|o| o.id.database == t.database && o.id.name == t.name)
                    .cloned()
                    .ok_or_else(|| {
                        Error::Data(format!(
                            "plugin `{name}` returned events for {}.{}, which its `schema` did not declare for {} ({at})",
                            t.database, t.name, table.id
                        ))
                    })
            })
            .collect::<Result<_>>()?;
        let resolve = |index: u32| -> Result<Arc<TableSchema>> {
            if index == 0 {
                if stays {
                    return Ok(table.clone());
                }
                return Err(Error::Data(format!(
                    "plugin `{name}` passed on an event of {} unchanged, but its `schema` said such events become {} ({at})",
                    table.id,
                    outputs.iter().map(|o| o.id.to_string()).collect::<Vec<_>>().join(", ")
                )));
            }
            new_tables.get(index as usize - 1).cloned().ok_or_else(|| {
                Error::Data(format!(
                    "plugin `{name}` named table #{index}, which does not exist ({at})"
                ))
            })
        };

        let mut out: Vec<Routed> = Vec::with_capacity(events_in);
        let mut dead = Vec::new();
        for ((outcome, original), info) in output
            .outcomes
            .into_iter()
            .zip(originals)
            .zip(&batch.events)
        {
            match outcome {
                events::Outcome::Keep => out.push((resolve(0)?, original, info.clone())),
                events::Outcome::Drop => {}
                events::Outcome::Replace(e) => out.push((resolve(e.table)?, e, info.clone())),
                events::Outcome::FanOut(es) => {
                    for e in es {
                        out.push((resolve(e.table)?, e, info.clone()));
                    }
                }
                events::Outcome::Error(msg) => match self.on_error {
                    OnError::Skip => {
                        self.skipped += 1;
                        tracing::warn!(plugin = %name, table = %table.id, position = %info.position, skipped = self.skipped, "event skipped: {msg}");
                    }
                    OnError::DeadLetter => {
                        self.skipped += 1;
                        tracing::warn!(plugin = %name, table = %table.id, position = %info.position, dead_lettered = self.skipped, "event sent to the dead-letter file: {msg}");
                        dead.push(dead_letter::record(&name, &table, &original, &msg));
                    }
                    OnError::Fail => {
                        return Err(Error::Data(format!(
                            "plugin `{name}` failed an event of {} at {}: {msg}",
                            table.id, info.position
                        )))
                    }
                },
            }
        }
        if let Some(d) = &self.dead_letter {
            d.write(&dead)?;
        }
        rebuild(out).map_err(|m| bad_output(&name, &format!("output for {at}: {m}")))
    }
}

/// The batch's events as owned plugin events (what the plugin was given).
fn owned_events(
    batch: &ChangeBatch,
    positions: &[(*const Position, String)],
    position_index: &[usize],
) -> Vec<events::Event> {
    let mut befores = batch.before.as_ref().map(|b| convert::rows(b).into_iter());
    let mut afters = batch.after.as_ref().map(|a| convert::rows(a).into_iter());
    batch
        .events
        .iter()
        .enumerate()
        .map(|(row, e)| events::Event {
            op: wit_op(e.op),
            table: 0,
            before: befores.as_mut().and_then(|r| r.next()),
            after: afters.as_mut().and_then(|r| r.next()),
            position: positions[position_index[row]].1.clone(),
            commit_ts_us: e.commit_ts_us,
        })
        .collect()
}

/// A plugin's output sluice refuses: no sink has seen any of it, so the
/// open source transaction is not applied anywhere.
fn bad_output(plugin: &str, message: &str) -> Error {
    Error::Data(format!(
        "plugin `{plugin}` {message}\n  hint: nothing of this source transaction was written; fix the plugin or its `config:` so that its values fit the target columns (or declare wider columns in its `schema`), then rerun"
    ))
}

/// A batch whose rows a plugin kept, dropped or changed in place: the kept
/// rows, with the columns any replacement changed built again.
fn patch(
    batch: ChangeBatch,
    originals: Vec<events::Event>,
    outcomes: Vec<events::Outcome>,
) -> std::result::Result<Vec<ChangeBatch>, String> {
    let mut kept = Vec::new();
    let mut replaced: Vec<Option<events::Event>> = Vec::new();
    for (row, o) in outcomes.into_iter().enumerate() {
        match o {
            events::Outcome::Keep => {
                kept.push(row as u32);
                replaced.push(None);
            }
            events::Outcome::Replace(e) => {
                kept.push(row as u32);
                replaced.push(Some(e));
            }
            _ => {}
        }
    }
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    let table = batch.table.clone();
    let checks = convert::Checks::of(&table.columns);
    let indices = arrow_array::UInt32Array::from(kept.clone());
    let rebuild = |image: &arrow_array::RecordBatch,
                   side: fn(&events::Event) -> &Option<Vec<types::Value>>|
     -> std::result::Result<arrow_array::RecordBatch, String> {
        let base = if kept.len() == image.num_rows() {
            image.clone()
        } else {
            arrow_select::take::take_record_batch(image, &indices).map_err(|e| e.to_string())?
        };
        let mut columns = base.columns().to_vec();
        for (j, c) in table.columns.iter().enumerate() {
            let value = |k: usize| -> Option<&types::Value> {
                let r = kept[k] as usize;
                match &replaced[k] {
                    Some(e) => side(e).as_ref().and_then(|v| v.get(j)),
                    None => side(&originals[r]).as_ref().and_then(|v| v.get(j)),
                }
            };
            let changed = (0..kept.len()).any(|k| {
                replaced[k].is_some()
                    && value(k)
                        != side(&originals[kept[k] as usize])
                            .as_ref()
                            .and_then(|v| v.get(j))
            });
            if !changed {
                continue;
            }
            let mut values = Vec::with_capacity(kept.len());
            for k in 0..kept.len() {
                let v = value(k).ok_or_else(|| {
                    format!("a replaced event lacks a value for column `{}`", c.name)
                })?;
                if replaced[k].is_some() {
                    checks.check(j, v).map_err(|m| {
                        format!("{m} (at {})", batch.events[kept[k] as usize].position)
                    })?;
                }
                values.push(v.clone());
            }
            columns[j] = convert::array(values, base.schema().field(j).data_type())
                .map_err(|m| format!("column `{}`: {m}", c.name))?;
        }
        arrow_array::RecordBatch::try_new(base.schema(), columns).map_err(|e| e.to_string())
    };
    for e in replaced.iter().flatten() {
        for image in [&e.before, &e.after].into_iter().flatten() {
            if image.len() != table.columns.len() {
                return Err(format!(
                    "{} values for {}, which has {} columns",
                    image.len(),
                    table.id,
                    table.columns.len()
                ));
            }
        }
    }
    let before = match &batch.before {
        Some(b) => Some(rebuild(b, |e| &e.before)?),
        None => None,
    };
    let after = match &batch.after {
        Some(a) => Some(rebuild(a, |e| &e.after)?),
        None => None,
    };
    Ok(vec![ChangeBatch {
        events: kept
            .iter()
            .map(|&r| batch.events[r as usize].clone())
            .collect(),
        table,
        before,
        after,
    }])
}

/// The rows `keep` of a batch (all of it when nothing was dropped).
fn select_rows(batch: ChangeBatch, keep: &[u32]) -> Result<Option<ChangeBatch>> {
    if keep.len() == batch.len() {
        return Ok(Some(batch));
    }
    if keep.is_empty() {
        return Ok(None);
    }
    let indices = arrow_array::UInt32Array::from(keep.to_vec());
    let take = |image: &Option<arrow_array::RecordBatch>| {
        image
            .as_ref()
            .map(|b| arrow_select::take::take_record_batch(b, &indices))
            .transpose()
            .map_err(|e| Error::Internal(format!("selecting kept rows: {e}")))
    };
    Ok(Some(ChangeBatch {
        before: take(&batch.before)?,
        after: take(&batch.after)?,
        events: keep
            .iter()
            .map(|&i| batch.events[i as usize].clone())
            .collect(),
        table: batch.table,
    }))
}

/// Output events back into batches, one per table and run of events with
/// the same images present (a batch's images cover all its rows). Events of
/// one table stay in order.
fn rebuild(events: Vec<Routed>) -> std::result::Result<Vec<ChangeBatch>, String> {
    struct Open {
        table: Arc<TableSchema>,
        checks: convert::Checks,
        shape: (bool, bool),
        before: Vec<Vec<types::Value>>,
        after: Vec<Vec<types::Value>>,
        infos: Vec<EventInfo>,
    }
    fn close(o: Open) -> std::result::Result<ChangeBatch, String> {
        let image = |rows: Vec<Vec<types::Value>>, present: bool| {
            if !present {
                return Ok(None);
            }
            convert::image(&o.table.arrow, rows)
                .map(Some)
                .map_err(|m| format!("{}: {m}", o.table.id))
        };
        Ok(ChangeBatch {
            before: image(o.before, o.shape.0)?,
            after: image(o.after, o.shape.1)?,
            table: o.table,
            events: o.infos,
        })
    }
    let mut done = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    for (table, e, info) in events {
        let shape = (e.before.is_some(), e.after.is_some());
        let slot = match open.iter().position(|o| o.table.id == table.id) {
            Some(i) if open[i].shape == shape => i,
            found => {
                if let Some(i) = found {
                    done.push(close(open.remove(i))?);
                }
                open.push(Open {
                    checks: convert::Checks::of(&table.columns),
                    table: table.clone(),
                    shape,
                    before: Vec::new(),
                    after: Vec::new(),
                    infos: Vec::new(),
                });
                open.len() - 1
            }
        };
        let o = &mut open[slot];
        for (image, rows) in [(e.before, &mut o.before), (e.after, &mut o.after)] {
            if let Some(values) = image {
                if values.len() != table.columns.len() {
                    return Err(format!(
                        "{} values for {}, which has {} columns",
                        values.len(),
                        table.id,
                        table.columns.len()
                    ));
                }
                for (j, v) in values.iter().enumerate() {
                    o.checks
                        .check(j, v)
                        .map_err(|m| format!("{} {m} (at {})", table.id, info.position))?;
                }
                rows.push(values);
            }
        }
        o.infos.push(EventInfo {
            op: op_of(e.op),
            ..info
        });
    }
    for o in open {
        done.push(close(o)?);
    }
    Ok(done)
}

fn wit_op(op: Op) -> types::Op {
    match op {
        Op::Insert => types::Op::Insert,
        Op::Update => types::Op::Update,
        Op::Delete => types::Op::Delete,
        Op::Read => types::Op::Read,
    }
}

fn op_of(op: types::Op) -> Op {
    match op {
        types::Op::Insert => Op::Insert,
        types::Op::Update => Op::Update,
        types::Op::Delete => Op::Delete,
        types::Op::Read => Op::Read,
    }
}

/// A pipeline's transforms, applied in order: one worker's instances.
#[derive(Default)]
pub struct Chain {
    transforms: Vec<WasmTransform>,
}

impl Chain {
    /// `workers` chains over the same compiled plugins, so batches can be
    /// transformed in parallel.
    pub fn pool(
        configs: &[TransformConfig],
        workers: usize,
        reserved: &[&str],
    ) -> Result<Vec<Chain>> {
        let reserved = Arc::new(reserved.iter().map(|s| s.to_string()).collect());
        let specs = configs
            .iter()
            .map(|c| Spec::load(c, &reserved))
            .collect::<Result<Vec<_>>>()?;
        (0..workers.max(1))
            .map(|_| {
                Ok(Chain {
                    transforms: specs.iter().map(Spec::instantiate).collect::<Result<_>>()?,
                })
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty()
    }

    /// The tables the sinks receive for these source tables: what each
    /// plugin's `schema` makes of them, in order. Tables merged into one
    /// (shard merge) must agree on their columns.
    pub fn tables(&mut self, inputs: &[Arc<TableSchema>]) -> Result<Vec<Arc<TableSchema>>> {
        let mut current = inputs.to_vec();
        for t in &mut self.transforms {
            let mut next = Vec::new();
            for input in &current {
                next.extend(t.shape(input)?.outputs.iter().cloned());
            }
            current = next;
        }
        let mut seen: HashMap<TableId, Arc<TableSchema>> = HashMap::new();
        let mut out = Vec::new();
        for t in current {
            match seen.get(&t.id) {
                Some(first) if !schema::same_shape(first, &t) => {
                    return Err(Error::precondition(
                        format!(
                            "the transforms turn two tables into {} with different columns ({} vs {})",
                            t.id,
                            columns_of(first),
                            columns_of(&t)
                        ),
                        "make the merged tables agree (drop or rename the columns that differ) or route them to different tables",
                    ))
                }
                Some(_) => {}
                None => {
                    seen.insert(t.id.clone(), t.clone());
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// Whether some plugin sees `table`'s events at all; when none does,
    /// they reach the sinks unchanged.
    pub fn touches(&self, table: &TableId) -> bool {
        self.transforms.iter().any(|t| t.selects(table))
    }

    /// Whether some plugin changes what `table`'s events look like (its
    /// name or columns), so the source's DDL for it cannot be replayed as is.
    pub fn reshapes(&self, table: &TableId) -> bool {
        let mut ids: HashSet<TableId> = HashSet::from([table.clone()]);
        for t in &self.transforms {
            let mut next = HashSet::new();
            for id in &ids {
                match t.shapes.get(id) {
                    Some(s) if !s.identity() => return true,
                    Some(s) => next.extend(s.outputs.iter().map(|o| o.id.clone())),
                    None => {
                        next.insert(id.clone());
                    }
                }
            }
            ids = next;
        }
        false
    }

    pub fn apply(&mut self, batch: ChangeBatch) -> Result<Vec<ChangeBatch>> {
        let mut batches = vec![batch];
        for t in &mut self.transforms {
            let mut next = Vec::new();
            for b in batches {
                next.extend(t.apply(b)?);
            }
            batches = next;
        }
        Ok(batches)
    }
}

fn columns_of(t: &TableSchema) -> String {
    t.columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.column_type))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Transform for Chain {
    fn tables(&mut self, inputs: &[Arc<TableSchema>]) -> Result<Vec<Arc<TableSchema>>> {
        Chain::tables(self, inputs)
    }

    fn apply(&mut self, batch: ChangeBatch) -> Result<Vec<ChangeBatch>> {
        Chain::apply(self, batch)
    }

    fn touches(&self, table: &TableId) -> bool {
        Chain::touches(self, table)
    }

    fn reshapes(&self, table: &TableId) -> bool {
        Chain::reshapes(self, table)
    }
}

/// The WebAssembly plugin host, as the core loads transforms.
pub struct WasmPlugins;

impl Plugins for WasmPlugins {
    fn chains(
        &self,
        configs: &[TransformConfig],
        workers: usize,
        reserved: &[&str],
    ) -> Result<Vec<Box<dyn Transform>>> {
        Ok(Chain::pool(configs, workers, reserved)?
            .into_iter()
            .map(|c| Box::new(c) as Box<dyn Transform>)
            .collect())
    }
}
