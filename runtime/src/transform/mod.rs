//! WebAssembly transforms: plugins that rewrite change batches between the
//! source and the sinks.
//!
//! - this file: a pipeline's chain of plugins, applied to every batch;
//! - [`wasm`]: the sandbox (wasmtime) a plugin runs in;
//! - [`convert`]: Arrow rows to plugin values and back;
//! - [`build`]: `sluice plugin build`, a plugin folder to a component;
//! - [`scaffold`]: `sluice plugin new`, a plugin project to start from.

pub mod build;
pub mod convert;
pub mod scaffold;
pub mod wasm;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{OnError, TransformConfig};
use crate::event::{ChangeBatch, EventInfo, Op, TableSchema};
use crate::mysql::catalog::TableFilter;
use crate::mysql::decode::RowDecoder;
use crate::{Error, Result};
use wasm::types;

/// One configured plugin.
pub struct WasmTransform {
    instance: wasm::Instance,
    filter: Option<TableFilter>,
    on_error: OnError,
    skipped: u64,
}

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

impl WasmTransform {
    pub fn load(config: &TransformConfig) -> Result<Self> {
        let spec = &config.plugin.value;
        let path = resolve_plugin(spec)?;
        let json = config
            .config
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "{}".into());
        let limits = wasm::Limits {
            deadline: Duration::from_millis(config.deadline_ms),
            memory_bytes: (config.memory_mb as usize) << 20,
        };
        let name = Path::new(spec)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.clone());
        let instance = wasm::Instance::load(&name, &path, &json, limits)?;
        let filter = if config.tables.is_empty() {
            None
        } else {
            Some(TableFilter::new(&config.tables, &[]).map_err(Error::Data)?)
        };
        Ok(WasmTransform {
            instance,
            filter,
            on_error: config.on_error,
            skipped: 0,
        })
    }

    /// Runs one batch through the plugin.
    pub fn apply(&mut self, batch: ChangeBatch) -> Result<Vec<ChangeBatch>> {
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !f.matches(&batch.table.id))
            || batch.is_empty()
        {
            return Ok(vec![batch]);
        }
        let table = &batch.table;
        let input = types::Batch {
            tables: vec![wit_table(table)],
            events: batch
                .events
                .iter()
                .enumerate()
                .map(|(row, e)| types::Event {
                    op: wit_op(e.op),
                    table: 0,
                    before: batch.before.as_ref().map(|b| convert::row_values(b, row)),
                    after: batch.after.as_ref().map(|a| convert::row_values(a, row)),
                    position: e.position.to_string(),
                    commit_ts_us: e.commit_ts_us,
                })
                .collect(),
        };
        let at = format!("table {} at {}", table.id, batch.events[0].position);
        let output = self.instance.process(&input).map_err(|msg| {
            Error::Data(format!(
                "plugin `{}` {msg} while processing {at}; the target keeps what was committed before this batch",
                self.instance.name()
            ))
        })?;
        if output.outcomes.len() != input.events.len() {
            return Err(Error::Data(format!(
                "plugin `{}` answered {} outcomes for {} events ({at})",
                self.instance.name(),
                output.outcomes.len(),
                input.events.len()
            )));
        }
        if !output.new_tables.is_empty() {
            return Err(Error::Data(format!(
                "plugin `{}` routed events to other tables, which this version cannot apply yet ({at})",
                self.instance.name()
            )));
        }
        let mut out: Vec<(types::Event, EventInfo)> = Vec::new();
        for ((outcome, original), info) in output
            .outcomes
            .into_iter()
            .zip(input.events)
            .zip(&batch.events)
        {
            match outcome {
                types::Outcome::Keep => out.push((original, info.clone())),
                types::Outcome::Drop => {}
                types::Outcome::Replace(e) => out.push((e, info.clone())),
                types::Outcome::FanOut(es) => out.extend(es.into_iter().map(|e| (e, info.clone()))),
                types::Outcome::Error(msg) => match self.on_error {
                    OnError::Skip => {
                        self.skipped += 1;
                        tracing::warn!(plugin = self.instance.name(), table = %table.id, position = %info.position, skipped = self.skipped, "event skipped: {msg}");
                    }
                    _ => {
                        return Err(Error::Data(format!(
                            "plugin `{}` failed an event of {} at {}: {msg}",
                            self.instance.name(),
                            table.id,
                            info.position
                        )))
                    }
                },
            }
        }
        rebuild(table, out)
    }
}

/// Output events back into batches: one per run of events with the same
/// images present (a batch's images cover all its rows).
fn rebuild(
    table: &Arc<TableSchema>,
    events: Vec<(types::Event, EventInfo)>,
) -> Result<Vec<ChangeBatch>> {
    let mut batches = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let shape = (events[i].0.before.is_some(), events[i].0.after.is_some());
        let mut before = RowDecoder::new(table.clone());
        let mut after = RowDecoder::new(table.clone());
        let mut infos = Vec::new();
        while i < events.len()
            && (events[i].0.before.is_some(), events[i].0.after.is_some()) == shape
        {
            let (e, info) = &events[i];
            if e.table != 0 {
                return Err(Error::Data(format!(
                    "a plugin named table #{} that does not exist",
                    e.table
                )));
            }
            for (image, decoder) in [(&e.before, &mut before), (&e.after, &mut after)] {
                if let Some(values) = image {
                    if values.len() != table.columns.len() {
                        return Err(Error::Data(format!(
                            "a plugin returned {} values for {}, which has {} columns",
                            values.len(),
                            table.id,
                            table.columns.len()
                        )));
                    }
                    let row = values
                        .iter()
                        .zip(&table.columns)
                        .map(|(v, c)| {
                            convert::to_mysql(v, c.source_type).map_err(|m| {
                                Error::Data(format!("{} column `{}`: {m}", table.id, c.name))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    decoder.push(row)?;
                }
            }
            infos.push(EventInfo {
                op: op_of(e.op),
                ..info.clone()
            });
            i += 1;
        }
        batches.push(ChangeBatch {
            table: table.clone(),
            events: infos,
            before: if shape.0 {
                Some(before.finish()?)
            } else {
                None
            },
            after: if shape.1 { Some(after.finish()?) } else { None },
        });
    }
    Ok(batches)
}

fn wit_table(t: &TableSchema) -> types::Table {
    types::Table {
        database: t.id.database.clone(),
        name: t.id.name.clone(),
        columns: t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| types::Column {
                name: c.name.clone(),
                mysql_type: c.column_type.clone(),
                key: t.key.contains(&i),
            })
            .collect(),
    }
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

/// A pipeline's transforms, applied in order.
#[derive(Default)]
pub struct Chain {
    transforms: Vec<WasmTransform>,
}

impl Chain {
    pub fn load(configs: &[TransformConfig]) -> Result<Chain> {
        Ok(Chain {
            transforms: configs
                .iter()
                .map(WasmTransform::load)
                .collect::<Result<_>>()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty()
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
