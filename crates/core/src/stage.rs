//! The three stage traits, the messages between them, and the run plan.
//!
//! A source emits [`Message`]s into a bounded channel; transforms rewrite
//! batches; every sink receives every message and keeps its own progress
//! (its checkpoint), so one capture can feed several sinks.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::event::{ChangeBatch, Position, TableId, TableSchema};
use crate::progress::Reporter;
use crate::schema_change::SchemaChange;
use crate::Result;

/// A source transaction's end: everything sent before it is complete.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Reading again from here continues with the next transaction.
    pub position: Position,
    /// Microseconds since the epoch (UTC).
    pub commit_ts_us: i64,
}

/// A schema change of tables the pipeline selects.
#[derive(Debug, Clone)]
pub struct DdlChange {
    /// What it does, in words every sink reads.
    pub change: SchemaChange,
    /// The statement as the source ran it, for sinks of the source's
    /// family, which replay it under their own names.
    pub sql: String,
    /// The default database the statement ran in.
    pub database: String,
    /// After this statement.
    pub position: Position,
    pub commit_ts_us: i64,
    /// The followed tables it names, defined as the source read them when
    /// it met the statement: what a translating sink needs beyond the
    /// statement's words (foreign keys, indexes). The source reads them
    /// from its catalog, which may already be past later statements; each
    /// table's exact columns arrive with its next rows.
    pub tables: Vec<Arc<TableSchema>>,
}

/// What flows from a source to the sinks.
#[derive(Debug, Clone)]
pub enum Message {
    /// Row events of one table: snapshot reads, or changes of the open transaction.
    Batch(ChangeBatch),
    /// The snapshot finished; changes continue from this position.
    SnapshotDone(Arc<Position>),
    /// The open source transaction committed.
    Commit(Arc<Commit>),
    /// Forget the open transaction's changes: the source lost its connection
    /// mid-transaction and will send the transaction again.
    Rollback,
    /// A schema change; everything before it is complete.
    Ddl(Arc<DdlChange>),
    /// The source has nothing newer: whoever applied everything is caught up.
    Heartbeat,
    /// Changes in source order (never a snapshot's rows, never another
    /// group), sent as one: a source that reads faster than its sinks take
    /// groups its small messages, so each hop wakes its receiver once for
    /// many transactions instead of once per rows event.
    Group(Vec<Message>),
}

/// Where a source sends its messages. Bounded, so a slow sink slows the
/// source instead of growing memory.
pub type Emitter = mpsc::Sender<Message>;

/// Set to `true` to ask a source to stop (SIGTERM, caught up).
pub type Stop = watch::Receiver<bool>;

/// What a sink did in earlier runs, read back at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkState {
    /// Nothing: this sink starts from scratch.
    Fresh,
    /// A snapshot was being loaded and did not finish: it is redone.
    SnapshotInterrupted,
    /// Changes were applied up to here.
    At(Position),
}

/// What this run does, decided by the engine from the source mode and the
/// sinks' states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Copy every table; then follow changes from the snapshot's position if `then_cdc`.
    Snapshot { then_cdc: bool },
    /// Follow changes from `from`; `fresh` when no sink has a checkpoint yet.
    Cdc { from: Position, fresh: bool },
}

impl Plan {
    pub fn follows_changes(&self) -> bool {
        !matches!(self, Plan::Snapshot { then_cdc: false })
    }
}

/// Reads from an external system.
#[async_trait]
pub trait Source: Send {
    /// Connects and finds the tables to move. Reads only; writes nothing anywhere.
    async fn discover(&mut self) -> Result<Vec<Arc<TableSchema>>>;

    /// Whether this source follows changes, and whether it snapshots first.
    fn mode(&self) -> SourceMode;

    /// The server's own schemas (`mysql`, `information_schema`...): a
    /// plugin may not declare tables in them.
    fn system_schemas(&self) -> &'static [&'static str] {
        &[]
    }

    /// How `sluice verify` compares this source with its sinks, if it can.
    fn verifier(&self) -> Option<Box<dyn crate::verify::Verifier>> {
        None
    }

    /// What to do with a schema change of a table the transforms reshape.
    fn on_unsupported_ddl(&self) -> OnUnsupportedDdl {
        OnUnsupportedDdl::Fail
    }

    /// Where a change stream without any checkpoint starts (`cdc.start`).
    async fn cdc_start(&mut self) -> Result<Position>;

    /// The end of the source's change log now (for `sluice status`).
    async fn current_position(&mut self) -> Result<Position>;

    /// What the source needs from its server for `plan` (version,
    /// privileges, change log settings, keys), checked after `discover`
    /// and before anything is read; `sluice run` refuses to start on a
    /// failed finding.
    async fn precheck(
        &mut self,
        _tables: &[Arc<TableSchema>],
        _plan: &Plan,
    ) -> Result<Vec<crate::precheck::Finding>> {
        Ok(Vec::new())
    }

    /// Emits messages according to `plan` until done or `stop` turns true.
    async fn run(self: Box<Self>, out: Emitter, plan: Plan, stop: Stop) -> Result<()>;
}

/// What to do with a schema change sinks cannot replay as it is
/// (`on_unsupported_ddl`).
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OnUnsupportedDdl {
    /// Stop the pipeline, naming the statement and its position.
    #[default]
    Fail,
    /// Log it and go on.
    Skip,
}

/// What a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMode {
    Snapshot,
    Cdc,
    SnapshotThenCdc,
}

/// One chain of the pipeline's transforms (WebAssembly plugins), applied
/// in order between the source and the sinks. The engine keeps one chain
/// per worker, so batches are transformed in parallel.
pub trait Transform: Send {
    /// What the chain makes of `inputs`: the tables the sinks receive
    /// (renamed, merged, reshaped, new).
    fn tables(&mut self, inputs: &[Arc<TableSchema>]) -> Result<Vec<Arc<TableSchema>>>;

    /// Rewrites one batch into the batches the sinks receive.
    fn apply(&mut self, batch: ChangeBatch) -> Result<Vec<ChangeBatch>>;

    /// Whether a transform changes the rows of `table`.
    fn touches(&self, table: &TableId) -> bool;

    /// Whether the chain renames or reshapes `table`, so that the source's
    /// schema changes of it cannot be replayed as they are.
    fn reshapes(&self, table: &TableId) -> bool;
}

/// What a sink's writers get for one run.
#[derive(Clone)]
pub struct SinkContext {
    /// The tables it receives (the source's, as the transforms reshape them).
    pub tables: Vec<Arc<TableSchema>>,
    pub plan: Plan,
    pub reporter: Reporter,
}

/// Writes to an external system.
///
/// A sink checks and prepares its target, then gives the driver
/// ([`crate::driver`]) a writer for each phase of the run: a
/// [`SnapshotLoad`] for the rows of a snapshot, a [`ChangeWriter`] for the
/// changes after it. The driver owns the message loop, tells snapshot rows
/// from changes, skips what the sink's checkpoint already covers and
/// reports progress; a sink only writes.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// The sink's name in the pipeline file.
    fn name(&self) -> &str;

    /// Reads back what earlier runs did (only asked when the plan follows changes).
    async fn state(&self) -> Result<SinkState>;

    /// When the sink last wrote its checkpoint (Unix microseconds), if known.
    async fn checkpoint_time(&self) -> Result<Option<i64>> {
        Ok(None)
    }

    /// A line of the sink's own about where it is, for `sluice status`
    /// (a stream's sequence numbers, say).
    async fn status_detail(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Checks every precondition for these tables without writing anything.
    async fn check(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        state: &SinkState,
    ) -> Result<()>;

    /// What this sink cannot reproduce of these tables: warnings that do
    /// not stop a run (`sluice check` lists them, `sluice run` logs them).
    fn warnings(&self, _tables: &[Arc<TableSchema>]) -> Vec<crate::precheck::Finding> {
        Vec::new()
    }

    /// Creates what the tables need. Called after every sink's `check` passed.
    async fn prepare(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        state: &SinkState,
    ) -> Result<()>;

    /// Starts loading a snapshot (a [`Plan::Snapshot`] run, after `prepare`).
    async fn load(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn SnapshotLoad>>;

    /// Starts applying changes (at the first change of a run that follows them).
    async fn apply(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn ChangeWriter>>;

    /// The target's own schemas, where a plugin may not declare tables.
    fn system_schemas(&self) -> &'static [&'static str] {
        &[]
    }

    /// The run is over: release connections.
    async fn release(&self) {}

    /// What `sluice verify` reads of this sink.
    fn view(&self) -> crate::view::View;
}

/// Writes the rows of a snapshot.
#[async_trait]
pub trait SnapshotLoad: Send + Sync {
    /// How many `write`s may run at once.
    fn parallelism(&self) -> usize {
        1
    }

    /// Writes one batch of snapshot rows (`Op::Read`) of one table.
    async fn write(&self, batch: ChangeBatch) -> Result<()>;

    /// Every row is written: finish the tables, and when the plan follows
    /// changes, record that they continue from `position`.
    async fn finish(self: Box<Self>, position: &Position) -> Result<()>;

    /// The run stopped before the snapshot finished (the next run starts it
    /// over): clean up what can be cleaned.
    async fn abandon(self: Box<Self>) {}
}

/// Applies changes, exactly once: whole source transactions, each made
/// durable together with the sink's checkpoint.
#[async_trait]
pub trait ChangeWriter: Send {
    /// Row changes of one table in the open source transaction.
    async fn write(&mut self, batch: ChangeBatch) -> Result<()>;

    /// The open source transaction committed: everything written since the
    /// last commit is one transaction, to be made durable (now or grouped
    /// with later ones) with a checkpoint at `commit.position`.
    async fn commit(&mut self, commit: Arc<Commit>) -> Result<()>;

    /// Forget the open source transaction's changes.
    async fn rollback(&mut self) -> Result<()>;

    /// A schema change, after everything before it.
    async fn schema_change(&mut self, change: Arc<DdlChange>) -> Result<()>;

    /// The source has nothing newer. Returns whether everything received
    /// is applied (the sink's lag is then zero).
    async fn heartbeat(&mut self) -> Result<bool>;

    /// How often [`tick`](Self::tick) runs, if at all.
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Time passed: write what is due.
    async fn tick(&mut self) -> Result<()> {
        Ok(())
    }

    /// The input ended: make durable what whole transactions completed,
    /// never part of an open one.
    async fn close(self: Box<Self>) -> Result<()>;
}
