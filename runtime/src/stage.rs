//! The three stage traits. A source emits [`Message`]s; transforms rewrite
//! batches; each sink consumes every message and keeps its own progress.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::event::{ChangeBatch, Position, TableSchema};
use crate::Result;

/// What flows from a source to the sinks.
#[derive(Debug, Clone)]
pub enum Message {
    /// Row events of one table.
    Batch(ChangeBatch),
    /// The snapshot finished; CDC continues from this position.
    SnapshotDone(Arc<Position>),
}

/// Where a source sends its messages. Bounded, so a slow sink slows the
/// source instead of growing memory.
pub type Emitter = mpsc::Sender<Message>;

/// Reads from an external system.
#[async_trait]
pub trait Source: Send {
    /// Connects and finds the tables to move. Reads only; writes nothing anywhere.
    async fn discover(&mut self) -> Result<Vec<Arc<TableSchema>>>;

    /// Emits every message, then returns. Called once, after every sink is prepared.
    async fn run(self: Box<Self>, out: Emitter) -> Result<()>;
}

/// Rewrites batches between the source and the sinks (WebAssembly plugins).
pub trait Transform: Send {
    fn process(&mut self, batch: ChangeBatch) -> Result<Vec<ChangeBatch>>;
}

/// Writes to an external system.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The sink's name in the pipeline file.
    fn name(&self) -> &str;

    /// Checks every precondition for these tables without writing anything.
    async fn check(&self, tables: &[Arc<TableSchema>]) -> Result<()>;

    /// Creates what the tables need (databases, tables). Called after every
    /// sink's `check` passed.
    async fn prepare(&self, tables: &[Arc<TableSchema>]) -> Result<()>;

    /// Writes one batch. May be called concurrently, up to [`Sink::parallelism`].
    async fn write(&self, batch: ChangeBatch) -> Result<()>;

    /// How many `write` calls may run at once.
    fn parallelism(&self) -> usize;

    /// Called once after the last batch: finishing touches (triggers).
    async fn finish(&self, tables: &[Arc<TableSchema>]) -> Result<()>;
}
