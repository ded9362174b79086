//! The run's steps before any data moves, in one place for `sluice run`,
//! `sluice check`, `sluice verify` and `sluice status`:
//! 0. build the stages from the pipeline file (nothing connects) and load
//!    the transforms;
//! 1. discover the source's tables, and what the transforms make of them;
//! 2. plan from the source's mode and the sinks' checkpoints;
//! 3. check every precondition of the source and the sinks.
//!
//! Each step returns its error; `sluice run` stops at the first, `sluice
//! check` turns each into a finding and goes on where it can.

use std::sync::Arc;

use crate::config::{PipelineConfig, TransformConfig};
use crate::connectors::{Build, Plugins, SinkSpec, SourceSpec};
use crate::event::{Position, TableSchema};
use crate::precheck::Finding;
use crate::stage::{Plan, Sink, SinkState, Source, SourceMode, Transform};
use crate::{Error, Result};

/// sluice's own schema on targets (`sluice.checkpoints`): no plugin may
/// declare tables in it.
pub const SLUICE_SCHEMA: &str = "sluice";

/// A pipeline's stages and what the steps found.
pub struct Setup {
    pub source: Box<dyn Source>,
    pub sinks: Vec<Arc<dyn Sink>>,
    /// One chain of the transforms per worker; empty without transforms.
    pub chains: Vec<Box<dyn Transform>>,
    /// The source's tables (step 1).
    pub source_tables: Vec<Arc<TableSchema>>,
    /// What the sinks receive: the source's tables as the transforms
    /// reshape them (step 1).
    pub tables: Vec<Arc<TableSchema>>,
}

impl Setup {
    /// Step 0: the stages `config` describes, without connecting.
    pub fn build<S: SourceSpec, K: SinkSpec>(config: &PipelineConfig<S, K>) -> Result<Setup> {
        let ctx = Build {
            pipeline: &config.name.value,
            settings: &config.settings,
        };
        let source = config.source.build(&ctx)?;
        let sinks = config
            .sinks
            .value
            .iter()
            .map(|s| s.build(&ctx))
            .collect::<Result<Vec<_>>>()?;
        Ok(Setup {
            source,
            sinks,
            chains: Vec::new(),
            source_tables: Vec::new(),
            tables: Vec::new(),
        })
    }

    /// Step 0: `workers` chains of the transforms, each plugin loaded and
    /// initialized with its config (before anything connects). Tables they
    /// declare in the servers' own schemas, or sluice's, are refused.
    pub fn load_plugins(
        &mut self,
        configs: &[TransformConfig],
        plugins: &dyn Plugins,
        workers: usize,
    ) -> Result<()> {
        if configs.is_empty() {
            return Ok(());
        }
        let mut reserved: Vec<&str> = vec![SLUICE_SCHEMA];
        reserved.extend(self.source.system_schemas());
        for s in &self.sinks {
            reserved.extend(s.system_schemas());
        }
        reserved.sort_unstable();
        reserved.dedup();
        self.chains = tokio::task::block_in_place(|| plugins.chains(configs, workers, &reserved))?;
        Ok(())
    }

    /// Step 1: the source's tables, and what every chain makes of them.
    pub async fn discover(&mut self) -> Result<()> {
        self.discover_source().await?;
        self.describe()
    }

    /// Step 1, the source's part: its tables (reads only).
    pub async fn discover_source(&mut self) -> Result<()> {
        self.source_tables = self.source.discover().await?;
        self.tables = self.source_tables.clone();
        Ok(())
    }

    /// Step 1, the transforms' part: what every chain makes of the source's
    /// tables.
    pub fn describe(&mut self) -> Result<()> {
        for chain in &mut self.chains {
            self.tables = tokio::task::block_in_place(|| chain.tables(&self.source_tables))?;
        }
        Ok(())
    }

    /// Step 2: what this run does, from the source's mode and what the
    /// sinks did before, with each sink's state.
    pub async fn plan(&mut self) -> Result<(Plan, Vec<SinkState>)> {
        plan(self.source.as_mut(), &self.sinks).await
    }

    /// Step 3, the source's part: what it needs from its server for `plan`.
    pub async fn source_findings(&mut self, plan: &Plan) -> Result<Vec<Finding>> {
        self.source.precheck(&self.source_tables, plan).await
    }

    /// Step 3, a sink's part: its check (an error when it fails), then what
    /// it cannot reproduce of the tables (warnings).
    pub async fn sink_findings(
        &self,
        sink: usize,
        plan: &Plan,
        state: &SinkState,
    ) -> Result<Vec<Finding>> {
        let s = &self.sinks[sink];
        s.check(&self.tables, plan, state).await?;
        Ok(s.warnings(&self.tables))
    }
}

/// Decides what to do from the source's mode and what the sinks did before.
pub async fn plan(
    source: &mut dyn Source,
    sinks: &[Arc<dyn Sink>],
) -> Result<(Plan, Vec<SinkState>)> {
    let mode = source.mode();
    if mode == SourceMode::Snapshot {
        return Ok((
            Plan::Snapshot { then_cdc: false },
            vec![SinkState::Fresh; sinks.len()],
        ));
    }
    let mut states = Vec::new();
    for s in sinks {
        states.push(s.state().await?);
    }
    let positions: Vec<&Position> = states
        .iter()
        .filter_map(|s| match s {
            SinkState::At(p) => Some(p),
            _ => None,
        })
        .collect();
    let plan = if positions.len() == sinks.len() {
        // Every sink resumes; the source reads from the oldest checkpoint.
        let from = positions
            .iter()
            .min_by(|a, b| a.binlog_cmp(b))
            .map(|p| (*p).clone())
            .unwrap_or_default();
        Plan::Cdc { from, fresh: false }
    } else if mode == SourceMode::SnapshotThenCdc
        && !states.iter().any(|s| matches!(s, SinkState::Fresh))
    {
        // A sink stopped during its snapshot while others finished theirs:
        // one capture cannot feed a snapshot to one sink and changes to
        // another, so every sink takes a new snapshot (each replaces what
        // it had).
        let interrupted: Vec<&str> = sinks
            .iter()
            .zip(&states)
            .filter(|(_, s)| matches!(s, SinkState::SnapshotInterrupted))
            .map(|(k, _)| k.name())
            .collect();
        tracing::warn!(
            sinks = %interrupted.join(", "),
            "stopped during the snapshot while other sinks finished theirs; every sink starts over with a new snapshot"
        );
        Plan::Snapshot { then_cdc: true }
    } else if positions.is_empty() {
        match mode {
            SourceMode::SnapshotThenCdc => Plan::Snapshot { then_cdc: true },
            _ => Plan::Cdc {
                from: source.cdc_start().await?,
                fresh: true,
            },
        }
    } else {
        let fresh: Vec<&str> = sinks
            .iter()
            .zip(&states)
            .filter(|(_, s)| !matches!(s, SinkState::At(_)))
            .map(|(k, _)| k.name())
            .collect();
        return Err(Error::precondition(
            format!(
                "sink(s) {} have no checkpoint while the others resume from theirs",
                fresh.join(", ")
            ),
            "run a new sink in its own pipeline until it has caught up, or clear every sink's checkpoint to start over (docs/pipeline-yaml.md, \"Checkpoints\")",
        ));
    };
    Ok((plan, states))
}
