//! Changes over several connections (`apply: {consistency: eventual}`).
//!
//! Each lane is an [`Apply`] on its own connection with its own checkpoint
//! row. [`Splitter`] gives each lane its rows: every change of one row (its
//! key under the key's collation) goes to one lane in source order, and the
//! tables whose changes can act on other rows (foreign keys, unique keys
//! besides the primary key, no key) go whole to one lane, so the end state
//! is the source's. A reader may see one lane ahead of another, and part of
//! a source transaction, until the lanes catch up.
//!
//! What is not a row change runs here on a connection of its own: a table
//! is brought in line with its definition before its first rows reach any
//! lane, and a schema change waits until every lane has committed what
//! precedes it, then moves every lane's checkpoint past it in its own
//! transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sluice_core::event::{ChangeBatch, TableId};
use sluice_core::partition::{lanes_to_use, Splitter};
use sluice_core::progress::Reporter;
use sluice_core::stage::{ChangeWriter, Commit, DdlChange};
use sluice_core::{Error, Result};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::apply::{Apply, Session};
use crate::checkpoint::{self, Parts};
use crate::table::Target;
use crate::PostgresSink;

/// A lane without rows of the newest transactions is told of their commit
/// this often, so its checkpoint keeps up.
const IDLE_TELL: Duration = Duration::from_millis(200);
/// Messages a lane may have queued before the router waits for it.
const QUEUE: usize = 256;

/// The writer for the sink's `apply:` settings: one [`Apply`] when one lane
/// applies, else [`Lanes`].
pub async fn open(sink: Arc<PostgresSink>, reporter: Reporter) -> Result<Box<dyn ChangeWriter>> {
    let client = sink.endpoint.connect().await?;
    let parts = match sink.checkpoint.parts(&sink.endpoint, &client).await? {
        Parts::At(parts) => parts,
        Parts::Fresh | Parts::SnapshotInterrupted => Vec::new(),
    };
    let (lanes, kept) = lanes_to_use(sink.lanes, &parts);
    if kept {
        tracing::warn!(
            sink = %sink.name,
            earlier = lanes,
            wanted = sink.lanes,
            "the last run stopped with its {lanes} apply lanes at different positions: applying with {lanes} lanes until they agree (stop the pipeline cleanly, then {} take over)",
            sink.lanes
        );
    }
    let agree = parts.windows(2).all(|w| w[0].1 == w[1].1);
    if let Some((_, at)) = parts.first().filter(|_| agree) {
        // Every lane at the one position they agree on (otherwise each
        // keeps its own, and skips what it covers).
        client
            .batch_execute(&sink.checkpoint.reset(checkpoint::CDC, lanes, at))
            .await
            .map_err(|e| sink.endpoint.error("writing sluice.checkpoints", e))?;
    }
    let done = |lane: usize| {
        parts
            .iter()
            .find(|(l, _)| *l == lane)
            .map(|(_, p)| p.clone())
    };
    if lanes == 1 {
        return Ok(Box::new(Apply::new(
            sink,
            client,
            reporter,
            0,
            done(0),
            true,
        )));
    }
    let mut senders = Vec::with_capacity(lanes);
    let mut tasks = Vec::with_capacity(lanes);
    for lane in 0..lanes {
        let conn = sink.endpoint.connect().await?;
        let apply = Apply::new(
            sink.clone(),
            conn,
            reporter.clone(),
            lane,
            done(lane),
            false,
        );
        let (tx, rx) = mpsc::channel(QUEUE);
        senders.push(tx);
        tasks.push(tokio::spawn(run(apply, rx)));
    }
    Ok(Box::new(Lanes {
        sink,
        control: client,
        reporter,
        senders,
        tasks,
        splitter: Splitter::default(),
        in_line: HashMap::new(),
        touched: vec![false; lanes],
        told: vec![None; lanes],
        told_at: vec![Instant::now(); lanes],
        last: None,
    }))
}

enum Msg {
    Write(ChangeBatch),
    Commit(Arc<Commit>),
    Rollback,
    /// Commit what is complete, then answer whether nothing is left open.
    Barrier(oneshot::Sender<bool>),
    /// A schema change ran: statements prepared before it are stale.
    Reset,
}

/// One lane: its writer, fed by the router, flushing on its own time.
async fn run(mut apply: Apply, mut rx: mpsc::Receiver<Msg>) -> Result<()> {
    let every = apply.tick_interval().unwrap_or(Duration::from_millis(20));
    loop {
        let msg = match tokio::time::timeout(every, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(_) => {
                apply.tick().await?;
                continue;
            }
        };
        match msg {
            Msg::Write(b) => apply.write(b).await?,
            Msg::Commit(c) => apply.commit(c).await?,
            Msg::Rollback => apply.rollback().await?,
            Msg::Barrier(ack) => {
                let idle = apply.heartbeat().await?;
                let _ = ack.send(idle);
            }
            Msg::Reset => apply.after_schema_change(),
        }
    }
    // The input ended: what whole transactions completed is committed.
    Box::new(apply).close().await
}

pub struct Lanes {
    sink: Arc<PostgresSink>,
    /// For tables brought in line and schema changes.
    control: Client,
    reporter: Reporter,
    senders: Vec<mpsc::Sender<Msg>>,
    tasks: Vec<JoinHandle<Result<()>>>,
    splitter: Splitter,
    /// The definition each table was last brought in line with.
    in_line: HashMap<TableId, Arc<Target>>,
    /// Lanes with rows of the open source transaction.
    touched: Vec<bool>,
    /// The last commit each lane was told of, and when.
    told: Vec<Option<Arc<Commit>>>,
    told_at: Vec<Instant>,
    /// The newest source commit.
    last: Option<Arc<Commit>>,
}

impl Lanes {
    async fn send(&mut self, lane: usize, msg: Msg) -> Result<()> {
        if self.senders[lane].send(msg).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// A lane stopped: its error (every lane is awaited, so none is left
    /// running).
    async fn failure(&mut self) -> Error {
        self.senders.clear();
        let mut first = None;
        for task in self.tasks.drain(..) {
            let e = match task.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(e) => Error::Internal(format!("postgres apply lane: {e}")),
            };
            first.get_or_insert(e);
        }
        first.unwrap_or_else(|| Error::Internal("a postgres apply lane stopped".into()))
    }

    /// Tells `lane` of the newest commit, unless it knows it.
    async fn tell(&mut self, lane: usize) -> Result<()> {
        let Some(c) = self.last.clone() else {
            return Ok(());
        };
        if self.told[lane].as_ref().is_some_and(|t| Arc::ptr_eq(t, &c)) {
            return Ok(());
        }
        self.told[lane] = Some(c.clone());
        self.told_at[lane] = Instant::now();
        self.send(lane, Msg::Commit(c)).await
    }

    /// Waits until every lane committed what it has; whether none holds
    /// part of an open transaction.
    async fn barrier(&mut self) -> Result<bool> {
        let mut acks = Vec::with_capacity(self.senders.len());
        for lane in 0..self.senders.len() {
            if !self.touched[lane] {
                self.tell(lane).await?;
            }
            let (tx, rx) = oneshot::channel();
            self.send(lane, Msg::Barrier(tx)).await?;
            acks.push(rx);
        }
        let mut idle = true;
        for rx in acks {
            match rx.await {
                Ok(i) => idle &= i,
                Err(_) => return Err(self.failure().await),
            }
        }
        Ok(idle)
    }
}

#[async_trait]
impl ChangeWriter for Lanes {
    async fn write(&mut self, batch: ChangeBatch) -> Result<()> {
        let target = self.sink.target(&batch.table)?;
        let id = &target.source.id;
        if !self
            .in_line
            .get(id)
            .is_some_and(|t| Arc::ptr_eq(t, &target))
        {
            // Before any lane writes its rows; in its own transaction, as
            // a lane's open one may not see the table yet.
            let session = Session {
                sink: &self.sink,
                client: &self.control,
            };
            session.bring_in_line(&target, false).await?;
            self.in_line.insert(id.clone(), target.clone());
        }
        let lanes = self.senders.len();
        for (lane, part) in self.splitter.split(batch, lanes)? {
            self.touched[lane] = true;
            self.send(lane, Msg::Write(part)).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, commit: Arc<Commit>) -> Result<()> {
        self.last = Some(commit);
        for lane in 0..self.senders.len() {
            if std::mem::take(&mut self.touched[lane]) || self.told_at[lane].elapsed() >= IDLE_TELL
            {
                self.tell(lane).await?;
            }
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        for lane in 0..self.senders.len() {
            if std::mem::take(&mut self.touched[lane]) {
                self.send(lane, Msg::Rollback).await?;
            }
        }
        Ok(())
    }

    async fn schema_change(&mut self, change: Arc<DdlChange>) -> Result<()> {
        if !self.barrier().await? {
            return Err(Error::Internal(
                "a schema change inside an open source transaction".into(),
            ));
        }
        let session = Session {
            sink: &self.sink,
            client: &self.control,
        };
        session.schema_change(&change, self.senders.len()).await?;
        self.in_line.clear();
        for lane in 0..self.senders.len() {
            self.send(lane, Msg::Reset).await?;
        }
        self.reporter.applied(change.commit_ts_us, 0);
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<bool> {
        self.barrier().await
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(IDLE_TELL)
    }

    async fn tick(&mut self) -> Result<()> {
        for lane in 0..self.senders.len() {
            if !self.touched[lane] && self.told_at[lane].elapsed() >= IDLE_TELL {
                self.tell(lane).await?;
            }
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        // Lanes without part of an open transaction learn the last commit
        // (so a clean stop leaves every lane at one position, and a new
        // `apply.parallelism` takes over); then each commits what
        // completed and stops.
        for lane in 0..self.senders.len() {
            if !self.touched[lane] && self.tell(lane).await.is_err() {
                break;
            }
        }
        self.senders.clear();
        let mut first = None;
        for task in self.tasks.drain(..) {
            let r = match task.await {
                Ok(r) => r,
                Err(e) => Err(Error::Internal(format!("postgres apply lane: {e}"))),
            };
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
