//! The loop every sink runs, so that a sink only writes.
//!
//! A run that takes a snapshot first hands its rows to the sink's
//! [`SnapshotLoad`] (several writes at once, as the sink allows) until the
//! source says the snapshot is done; then changes go to the sink's
//! [`ChangeWriter`], opened at the first of them. On the way the driver
//! skips what the sink's checkpoint already covers (another sink may make
//! the source resume from an older position), reports progress, and says
//! whether the sink is caught up.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow_array::{BooleanArray, RecordBatch};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::event::{ChangeBatch, Op, Position, TableId};
use crate::stage::{ChangeWriter, Message, Plan, Sink, SinkContext, SinkState, SnapshotLoad};
use crate::{Error, Result};

/// Runs `sink` over every message of `input` until the channel closes.
pub async fn drive(
    sink: Arc<dyn Sink>,
    mut input: mpsc::Receiver<Message>,
    ctx: SinkContext,
    state: SinkState,
) -> Result<()> {
    let name = sink.name().to_string();
    let result = run(sink.clone(), &mut input, ctx, state).await;
    sink.release().await;
    match result {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(sink = %name, "stopped before the snapshot finished; the next run starts it over");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `Ok(false)` when the input ended before the snapshot did.
async fn run(
    sink: Arc<dyn Sink>,
    input: &mut mpsc::Receiver<Message>,
    ctx: SinkContext,
    state: SinkState,
) -> Result<bool> {
    if let Plan::Snapshot { .. } = ctx.plan {
        let load = sink.clone().load(ctx.clone()).await?;
        match snapshot(&*load, input, &ctx).await {
            Ok(Some(position)) => load.finish(&position).await?,
            Ok(None) => {
                load.abandon().await;
                return Ok(false);
            }
            Err(e) => {
                load.abandon().await;
                return Err(e);
            }
        }
    }
    let mut changes = Changes {
        resume: Resume::new(&ctx.plan, &state),
        writer: None,
        tick: None,
    };
    loop {
        let msg = tokio::select! {
            m = input.recv() => m,
            _ = next_tick(&mut changes.tick) => {
                if let Some(w) = changes.writer.as_mut() {
                    w.tick().await?;
                }
                continue;
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            Message::Group(msgs) => {
                for m in msgs {
                    changes.handle(&sink, &ctx, m).await?;
                }
            }
            m => changes.handle(&sink, &ctx, m).await?,
        }
    }
    if let Some(w) = changes.writer {
        w.close().await?;
    }
    Ok(true)
}

/// The changes phase: the sink's writer (opened at the first message) and
/// what the checkpoint covers.
struct Changes {
    resume: Resume,
    writer: Option<Box<dyn ChangeWriter>>,
    tick: Option<tokio::time::Interval>,
}

impl Changes {
    async fn handle(
        &mut self,
        sink: &Arc<dyn Sink>,
        ctx: &SinkContext,
        msg: Message,
    ) -> Result<()> {
        if self.writer.is_none() {
            let w = sink.clone().apply(ctx.clone()).await?;
            self.tick = w.tick_interval().map(|d| {
                let mut t = tokio::time::interval(d);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            self.writer = Some(w);
        }
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        match msg {
            Message::Batch(b) if b.is_empty() => {}
            Message::Batch(b) if b.events[0].op == Op::Read => {
                return Err(Error::Internal(format!(
                    "snapshot rows of {} arrived after the snapshot finished",
                    b.table.id
                )));
            }
            Message::Batch(b) => {
                if let Some(b) = self.resume.batch(b)? {
                    ctx.reporter.caught_up(false);
                    w.write(b).await?;
                }
            }
            Message::Commit(c) => {
                if !self.resume.covers(&c.position) {
                    w.commit(c).await?;
                }
            }
            Message::Rollback => w.rollback().await?,
            Message::Ddl(d) => {
                if !self.resume.covers(&d.position) {
                    w.schema_change(d).await?;
                }
            }
            Message::Heartbeat => {
                if w.heartbeat().await? {
                    ctx.reporter.caught_up(true);
                }
            }
            Message::SnapshotDone(_) => {
                return Err(Error::Internal(
                    "the source finished a snapshot the run did not take".into(),
                ))
            }
            Message::Group(_) => {
                return Err(Error::Internal("a group of messages inside a group".into()))
            }
        }
        Ok(())
    }
}

/// The next tick of `tick`; never without one.
async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Loads snapshot rows until the source says the snapshot is done (its
/// position), or the input ends (`None`).
async fn snapshot(
    load: &dyn SnapshotLoad,
    input: &mut mpsc::Receiver<Message>,
    ctx: &SinkContext,
) -> Result<Option<Arc<Position>>> {
    let limit = load.parallelism().max(1);
    let mut writes = FuturesUnordered::new();
    let written = |done: Result<(TableId, usize)>| -> Result<()> {
        let (table, rows) = done?;
        ctx.reporter.loaded(&table, rows as u64);
        Ok(())
    };
    let position = loop {
        tokio::select! {
            Some(done) = writes.next(), if !writes.is_empty() => written(done)?,
            msg = input.recv(), if writes.len() < limit => match msg {
                None => break None,
                Some(Message::Batch(b)) if b.is_empty() => {}
                Some(Message::Batch(b)) if b.events[0].op == Op::Read => {
                    writes.push(async move {
                        let table = b.table.id.clone();
                        let rows = b.len();
                        load.write(b).await.map(|()| (table, rows))
                    });
                }
                Some(Message::SnapshotDone(p)) => break Some(p),
                Some(Message::Heartbeat) => {}
                Some(other) => {
                    return Err(Error::Internal(format!(
                        "a change ({}) arrived before the snapshot finished",
                        kind(&other)
                    )))
                }
            },
        }
    };
    while let Some(done) = writes.next().await {
        written(done)?;
    }
    Ok(position)
}

fn kind(m: &Message) -> &'static str {
    match m {
        Message::Batch(_) => "rows",
        Message::SnapshotDone(_) => "snapshot done",
        Message::Commit(_) => "commit",
        Message::Rollback => "rollback",
        Message::Ddl(_) => "schema change",
        Message::Heartbeat => "heartbeat",
        Message::Group(_) => "changes",
    }
}

/// What the sink's checkpoint covers when the source resumes from an older
/// position (another sink's): changes up to it were applied by an earlier
/// run and are skipped, once.
struct Resume {
    until: Option<Position>,
}

impl Resume {
    fn new(plan: &Plan, state: &SinkState) -> Resume {
        let until = match (plan, state) {
            (Plan::Cdc { fresh: false, .. }, SinkState::At(p)) => Some(p.clone()),
            _ => None,
        };
        Resume { until }
    }

    /// Whether a transaction end (or schema change) at `p` was applied.
    fn covers(&mut self, p: &Position) -> bool {
        match &self.until {
            Some(done) if p.binlog_cmp(done) != Ordering::Greater => true,
            Some(_) => {
                self.until = None;
                false
            }
            None => false,
        }
    }

    /// The rows of `b` an earlier run did not apply. A row change lies
    /// inside its transaction, so it precedes the checkpoint (a transaction
    /// end) exactly when its transaction was applied.
    fn batch(&mut self, b: ChangeBatch) -> Result<Option<ChangeBatch>> {
        let Some(done) = &self.until else {
            return Ok(Some(b));
        };
        let keep: Vec<bool> = b
            .events
            .iter()
            .map(|e| e.position.binlog_cmp(done) != Ordering::Less)
            .collect();
        if keep.iter().all(|k| !k) {
            return Ok(None);
        }
        self.until = None;
        if keep.iter().all(|k| *k) {
            return Ok(Some(b));
        }
        let mask = BooleanArray::from(keep.clone());
        let filter = |img: &Option<RecordBatch>| -> Result<Option<RecordBatch>> {
            img.as_ref()
                .map(|i| {
                    arrow_select::filter::filter_record_batch(i, &mask)
                        .map_err(|e| Error::Internal(format!("{}: skipping rows: {e}", b.table.id)))
                })
                .transpose()
        };
        Ok(Some(ChangeBatch {
            table: b.table.clone(),
            events: b
                .events
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(e, _)| e.clone())
                .collect(),
            before: filter(&b.before)?,
            after: filter(&b.after)?,
        }))
    }
}
