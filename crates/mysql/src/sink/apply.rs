//! Applying changes to a MySQL target, in parallel and exactly once.
//!
//! Operations are routed to one of N partitions, each with its own
//! connection, by [`crate::partition`]: changes that can touch the same row
//! (under the key's collation), collide on a unique key or act through a
//! foreign key stay in one partition, in source order, while the rest apply
//! in parallel. A partition commits only at source transaction boundaries,
//! grouping several source transactions into one target transaction, and
//! writes its checkpoint row in that same transaction.
//!
//! Most tables are **merged**: every row change becomes an idempotent
//! operation, an insert or an update that keeps its key becomes `REPLACE`
//! of the after image, a delete becomes `DELETE` by key, an update that
//! changes the key becomes both, and a partition keeps only the last
//! operation per key of a window. Tables a foreign key joins, and tables
//! without a key, are **ordered**: each change becomes the statement the
//! source ran (INSERT, UPDATE or DELETE of one row; rows of tables without
//! a key matched byte for byte), in source order, with the source's
//! `foreign_key_checks`, so cascades happen on the target as on the source
//! (a REPLACE of a parent row would delete its children).
//!
//! With `consistency: transactional` there is one partition, so the target
//! never shows part of a source transaction.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::checkpoint::{self, Checkpoints};
use crate::binlog::ddl;
use crate::connect::Endpoint;
use crate::encode::{
    column_encoder, column_list, push_exact_match, row_encoders, write_image_row, Chunked,
    ColumnEncoder,
};
use crate::event::{quote_ident, ChangeBatch, KeyKind, Position, TableId, TableSchema};
use crate::partition::{Kind, Router, RowOp};
use crate::progress::Reporter;
use crate::rename::Renames;
use crate::stage::{ChangeWriter, Commit, DdlChange};
use crate::{Error, Result};

/// A target transaction is committed once it holds this many row changes
/// (at the next source commit), or when the partition has nothing queued
/// and [`GROUP_WAIT`] has passed since its last commit.
const GROUP_ROWS: usize = 5000;
/// A partition without rows of the newest transactions is told of their
/// commit this often, so its checkpoint keeps up.
const IDLE_FLUSH: Duration = Duration::from_millis(500);
/// A partition commits at most this often while work keeps coming (at
/// once after a pause): each target commit is a log flush, and partitions
/// that each committed every small source transaction at once made four
/// partitions slower than one.
const GROUP_WAIT: Duration = Duration::from_millis(10);

/// Server errors that mean a replayed DDL statement was already applied.
const ALREADY_APPLIED: &[u16] = &[1007, 1008, 1050, 1051, 1054, 1060, 1061, 1091, 1146];

enum PartMsg {
    /// Row operations; `ops[..committed]` and everything sent before them
    /// are covered by `commit` (when there is one), the rest belong to a
    /// source transaction still open.
    Work {
        ops: Vec<RowOp>,
        committed: usize,
        commit: Option<Arc<Commit>>,
    },
    Rollback,
    /// Commit what is complete, then answer.
    Barrier(oneshot::Sender<()>),
}

/// What every partition shares.
pub struct ApplyCtx {
    pub endpoint: Endpoint,
    pub session: Vec<&'static str>,
    pub renames: Renames,
    pub checkpoints: Checkpoints,
    pub reporter: Reporter,
    pub max_statement_bytes: usize,
    warned_keyless: Mutex<HashSet<TableId>>,
}

impl ApplyCtx {
    pub fn new(
        endpoint: Endpoint,
        session: Vec<&'static str>,
        renames: Renames,
        checkpoints: Checkpoints,
        reporter: Reporter,
        max_statement_bytes: usize,
    ) -> Self {
        ApplyCtx {
            endpoint,
            session,
            renames,
            checkpoints,
            reporter,
            max_statement_bytes,
            warned_keyless: Mutex::new(HashSet::new()),
        }
    }
}

/// Routes changes to the partitions and handles what needs all of them.
///
/// A partition hears only of source transactions it has operations for,
/// and a busy one at most every [`DELIVER_EVERY`]: the transactions that
/// commit in between (or while its queue is full) wait in its outbox and go
/// as one message, since most of a partition's cost is being woken up. One
/// that had nothing to do for a while is told the newest commit, so its
/// checkpoint keeps up.
pub struct Applier {
    ctx: Arc<ApplyCtx>,
    parts: Vec<mpsc::Sender<PartMsg>>,
    outboxes: Vec<Outbox>,
    /// The newest source commit seen.
    last_commit: Option<Arc<Commit>>,
    tasks: JoinSet<Result<()>>,
    control: Conn,
    router: Router,
}

/// What the applier holds for one partition until it can be delivered.
#[derive(Default)]
struct Outbox {
    ops: Vec<RowOp>,
    /// `ops[..committed]` are covered by `commit`.
    committed: usize,
    commit: Option<Arc<Commit>>,
    /// Operations of the open source transaction were delivered ahead of
    /// its commit (a large transaction): the partition must hear of its end.
    open_delivered: bool,
    /// Since when the partition's checkpoint lags behind `last_commit`.
    stale_since: Option<Instant>,
    /// When the partition was last sent a message.
    delivered_at: Option<Instant>,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.commit.is_none()
    }

    fn take(&mut self) -> PartMsg {
        if self.ops.len() > self.committed {
            self.open_delivered = true;
        }
        self.delivered_at = Some(Instant::now());
        PartMsg::Work {
            ops: std::mem::take(&mut self.ops),
            committed: std::mem::take(&mut self.committed),
            commit: self.commit.take(),
        }
    }

    /// Whether committed work should go to the partition now: it has heard
    /// nothing for [`DELIVER_EVERY`], or enough is waiting. Waking a
    /// partition costs more than the rows of a small transaction; one
    /// message per interval keeps four partitions as cheap as one.
    fn due(&self, now: Instant) -> bool {
        self.ops.len() >= DELIVER_ROWS
            || self
                .delivered_at
                .is_none_or(|at| now.duration_since(at) >= DELIVER_EVERY)
    }

    /// Tells a partition with nothing to do the `newest` commit once its
    /// checkpoint has lagged `after` (zero: at once).
    fn catch_up(&mut self, newest: Option<&Arc<Commit>>, now: Instant, after: Duration) {
        if self.commit.is_none()
            && self
                .stale_since
                .is_some_and(|since| now.duration_since(since) >= after)
        {
            self.commit = newest.cloned();
            self.stale_since = None;
        }
    }
}

/// Operations of one open source transaction an outbox holds before it
/// delivers them anyway (memory stays bounded).
const OUTBOX_OPEN: usize = 4096;
/// Operations an outbox of a busy partition gathers before the applier
/// waits for the partition to take them.
const OUTBOX_MAX: usize = 20_000;
/// How often held outboxes are delivered and lagging checkpoints advanced.
const OUTBOX_TICK: Duration = Duration::from_millis(10);
/// A busy partition is sent committed work at most this often ...
const DELIVER_EVERY: Duration = Duration::from_millis(5);
/// ... unless this many operations wait for it.
const DELIVER_ROWS: usize = 1024;

impl Applier {
    pub async fn start(ctx: Arc<ApplyCtx>, parts: usize) -> Result<Applier> {
        let mut control = ctx.endpoint.connect(&ctx.session).await?;
        // Where each partition got to: changes it already applied are not
        // applied again (which matters for tables without a key).
        let done = ctx
            .checkpoints
            .read_parts(&ctx.endpoint, &mut control)
            .await?;
        let parts = partitions(&ctx, parts, &done);
        if done.iter().any(|(p, _)| *p >= parts) {
            // Rows of partitions this run does not have, all at the same
            // position as the others: they would hold the resume point back.
            let sql = ctx.checkpoints.trim(parts);
            control
                .query_drop(sql)
                .await
                .map_err(|e| ctx.endpoint.error("removing unused checkpoint rows", e))?;
        }
        let mut senders = Vec::new();
        let mut tasks = JoinSet::new();
        for part in 0..parts.max(1) {
            let (tx, rx) = mpsc::channel(64);
            let conn = ctx.endpoint.connect(&ctx.session).await?;
            senders.push(tx);
            let applied = done
                .iter()
                .find(|(p, _)| *p == part)
                .map(|(_, pos)| pos.clone());
            tasks.spawn(Partition::new(ctx.clone(), part, conn, applied).run(rx));
        }
        Ok(Applier {
            ctx,
            outboxes: (0..senders.len()).map(|_| Outbox::default()).collect(),
            parts: senders,
            last_commit: None,
            tasks,
            control,
            router: Router::default(),
        })
    }

    async fn send(&mut self, part: usize, msg: PartMsg) -> Result<()> {
        if self.parts[part].send(msg).await.is_err() {
            return Err(self.partition_failure().await);
        }
        Ok(())
    }

    /// The error of a partition that stopped.
    async fn partition_failure(&mut self) -> Error {
        while let Some(r) = self.tasks.join_next().await {
            match r {
                Ok(Err(e)) => return e,
                Err(e) => return Error::Internal(format!("apply partition: {e}")),
                Ok(Ok(())) => {}
            }
        }
        Error::Internal("an apply partition stopped".into())
    }

    async fn changes(&mut self, batch: ChangeBatch) -> Result<()> {
        let table = &batch.table;
        if table.key_kind == KeyKind::None {
            if let Ok(mut w) = self.ctx.warned_keyless.lock() {
                if w.insert(table.id.clone()) {
                    tracing::warn!(table = %table.id, "no primary or unique key: changes are applied by whole-row match, one partition, one row at a time");
                }
            }
        }
        let outboxes = &mut self.outboxes;
        self.router.route(batch, self.parts.len(), |part, op| {
            outboxes[part].ops.push(op)
        })?;
        for part in 0..self.outboxes.len() {
            let outbox = &self.outboxes[part];
            if outbox.ops.len() - outbox.committed >= OUTBOX_OPEN {
                self.deliver(part).await?;
            }
        }
        Ok(())
    }

    /// Delivers what partition `part`'s outbox holds, waiting for room.
    async fn deliver(&mut self, part: usize) -> Result<()> {
        if self.outboxes[part].is_empty() {
            return Ok(());
        }
        let msg = self.outboxes[part].take();
        self.send(part, msg).await
    }

    /// Delivers partition `part`'s outbox if its queue has room now.
    fn try_deliver(&mut self, part: usize) -> std::result::Result<(), ()> {
        let outbox = &mut self.outboxes[part];
        if outbox.is_empty() {
            return Ok(());
        }
        let permit = match self.parts[part].try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(()),
        };
        permit.send(outbox.take());
        Ok(())
    }

    async fn commit_all(&mut self, c: Arc<Commit>) -> Result<()> {
        let now = Instant::now();
        for part in 0..self.parts.len() {
            let outbox = &mut self.outboxes[part];
            if outbox.ops.len() > outbox.committed || outbox.open_delivered {
                outbox.committed = outbox.ops.len();
                outbox.commit = Some(c.clone());
                outbox.open_delivered = false;
                outbox.stale_since = None;
            } else if outbox.commit.is_some() {
                // Held back (the queue was full): the newer commit covers
                // the same operations.
                outbox.commit = Some(c.clone());
            } else {
                outbox.stale_since.get_or_insert(now);
                outbox.catch_up(Some(&c), now, IDLE_FLUSH);
            }
            // What is not due yet goes with the next commit, or the tick.
            if self.outboxes[part].ops.len() >= OUTBOX_MAX {
                self.deliver(part).await?;
            } else if self.outboxes[part].due(now) && self.try_deliver(part).is_err() {
                return Err(self.partition_failure().await);
            }
        }
        self.last_commit = Some(c);
        Ok(())
    }

    /// Delivers every outbox, and the newest commit to partitions that
    /// had nothing since it.
    async fn deliver_all(&mut self) -> Result<()> {
        for part in 0..self.parts.len() {
            self.outboxes[part].catch_up(self.last_commit.as_ref(), Instant::now(), Duration::ZERO);
            self.deliver(part).await?;
        }
        Ok(())
    }

    async fn rollback_all(&mut self) -> Result<()> {
        for part in 0..self.parts.len() {
            // Only the open source transaction is forgotten.
            let outbox = &mut self.outboxes[part];
            outbox.ops.truncate(outbox.committed);
            if std::mem::take(&mut outbox.open_delivered) {
                self.deliver(part).await?;
                self.send(part, PartMsg::Rollback).await?;
            }
        }
        Ok(())
    }

    /// Waits until every partition committed what it has.
    pub async fn barrier(&mut self) -> Result<()> {
        self.deliver_all().await?;
        let mut acks = Vec::new();
        for part in 0..self.parts.len() {
            let (tx, rx) = oneshot::channel();
            self.send(part, PartMsg::Barrier(tx)).await?;
            acks.push(rx);
        }
        for rx in acks {
            if rx.await.is_err() {
                return Err(self.partition_failure().await);
            }
        }
        Ok(())
    }

    /// Applies a schema change once everything before it is committed, then
    /// moves every partition's checkpoint past it.
    async fn ddl(&mut self, d: Arc<DdlChange>) -> Result<()> {
        self.barrier().await?;
        let ctx = &self.ctx;
        // The source's own statement, replayed under the target's names.
        let statement = ddl::parse(&d.database, &d.sql);
        let sql = ddl::rewrite(
            &d.sql,
            &statement,
            |t| ctx.renames.target(t),
            |db| ctx.renames.target_database(db),
        );
        let mut stmts = Vec::new();
        if !d.database.is_empty() {
            stmts.push(format!(
                "CREATE DATABASE IF NOT EXISTS {}",
                quote_ident(&ctx.renames.target_database(&d.database))
            ));
            stmts.push(format!(
                "USE {}",
                quote_ident(&ctx.renames.target_database(&d.database))
            ));
        }
        for s in &stmts {
            self.control.query_drop(s).await.map_err(|e| {
                ctx.endpoint
                    .error(format!("preparing for `{}`", abbreviate(&sql)), e)
            })?;
        }
        match self.control.query_drop(&sql).await {
            Ok(()) => tracing::info!(sink = %ctx.checkpoints_sink(), statement = %abbreviate(&sql), position = %d.position, "applied schema change"),
            Err(mysql_async::Error::Server(s)) if ALREADY_APPLIED.contains(&s.code) => {
                tracing::warn!(statement = %abbreviate(&sql), error = %s.message, "schema change already applied (replayed after a restart); continuing")
            }
            Err(e) => {
                return Err(Error::Server {
                    role: ctx.endpoint.role.clone(),
                    url: ctx.endpoint.masked(),
                    context: format!("applying `{}` from the source's binlog at {}", abbreviate(&sql), d.position),
                    detail: e.to_string(),
                    hint: Some("fix the target by hand so the statement can run, then rerun sluice; or set `source.mysql.cdc.on_unsupported_ddl: skip`".into()),
                })
            }
        }
        for s in ctx
            .checkpoints
            .reset(self.parts.len(), checkpoint::CDC, &d.position)
        {
            self.control.query_drop(s).await.map_err(|e| {
                ctx.endpoint
                    .error("writing the checkpoint after a schema change", e)
            })?;
        }
        ctx.reporter.applied(d.commit_ts_us, 0);
        Ok(())
    }

    /// Commits what is complete and stops the partitions.
    async fn stop(mut self) -> Result<()> {
        self.barrier().await?;
        self.parts.clear();
        while let Some(r) = self.tasks.join_next().await {
            match r {
                Ok(r) => r?,
                Err(e) => return Err(Error::Internal(format!("apply partition: {e}"))),
            }
        }
        let _ = self.control.disconnect().await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ChangeWriter for Applier {
    async fn write(&mut self, batch: ChangeBatch) -> Result<()> {
        self.changes(batch).await
    }

    async fn commit(&mut self, commit: Arc<Commit>) -> Result<()> {
        self.commit_all(commit).await
    }

    async fn rollback(&mut self) -> Result<()> {
        self.rollback_all().await
    }

    async fn schema_change(&mut self, change: Arc<DdlChange>) -> Result<()> {
        self.ddl(change).await
    }

    /// Once every partition committed what it has, nothing is behind.
    async fn heartbeat(&mut self) -> Result<bool> {
        self.barrier().await?;
        Ok(true)
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(OUTBOX_TICK)
    }

    async fn tick(&mut self) -> Result<()> {
        let now = Instant::now();
        for part in 0..self.parts.len() {
            self.outboxes[part].catch_up(self.last_commit.as_ref(), now, IDLE_FLUSH);
            // Only what is committed: an open transaction's operations
            // wait for its commit (or for the outbox to fill).
            if self.outboxes[part].commit.is_some() {
                self.deliver(part).await?;
            }
        }
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<()> {
        self.stop().await
    }
}

/// How many partitions to apply with (see [`crate::partition::lanes_to_use`]).
fn partitions(ctx: &ApplyCtx, wanted: usize, done: &[(usize, Position)]) -> usize {
    let (parts, kept) = crate::partition::lanes_to_use(wanted, done);
    if kept {
        tracing::warn!(
            sink = %ctx.endpoint.role,
            earlier = parts,
            wanted,
            "the last run stopped with its {parts} apply partitions at different positions: applying with {parts} partitions until they agree (stop the pipeline cleanly, then {wanted} take over)"
        );
    }
    parts
}

impl ApplyCtx {
    fn checkpoints_sink(&self) -> String {
        self.endpoint.role.clone()
    }
}

fn abbreviate(sql: &str) -> String {
    crate::text::abbreviate(sql)
}

/// One apply connection and its share of the rows.
///
/// Operations are gathered into a window and executed when the window
/// commits (or grows large): within one target transaction only the last
/// operation on each key matters (every operation sets the whole row or
/// removes it), and operations on different keys commute, so a window
/// becomes one DELETE and one REPLACE statement per table instead of a
/// statement per row. Readers never see the window half applied.
struct Partition {
    ctx: Arc<ApplyCtx>,
    part: usize,
    conn: Conn,
    in_txn: bool,
    rows_in_txn: usize,
    window: Vec<RowOp>,
    /// The last source commit received, not yet committed on the target.
    pending: Option<Arc<Commit>>,
    /// How many operations at the front of the window `pending` covers; the
    /// rest belong to a source transaction that has not committed yet.
    committed_len: usize,
    /// The open target transaction holds operations of a source transaction
    /// that has not committed yet (a window grew too large). Never true
    /// while `pending` is set: the commit is flushed first.
    executed_uncommitted: bool,
    last_flush: Instant,
    /// This partition's checkpoint at start: changes before it were applied
    /// in an earlier run (the source restarts from the oldest partition).
    applied_until: Option<Position>,
}

/// A window this large is executed (not committed) before its source
/// transaction ends, to bound memory.
const MAX_WINDOW: usize = 50_000;

impl Partition {
    fn new(ctx: Arc<ApplyCtx>, part: usize, conn: Conn, applied_until: Option<Position>) -> Self {
        Partition {
            ctx,
            part,
            conn,
            in_txn: false,
            rows_in_txn: 0,
            window: Vec::new(),
            pending: None,
            committed_len: 0,
            executed_uncommitted: false,
            last_flush: Instant::now(),
            applied_until,
        }
    }

    /// Whether a change at `p` was applied by an earlier run. A rows event
    /// lies inside its transaction, so it precedes the checkpoint (a
    /// transaction end) exactly when its transaction was committed.
    fn already_applied(&mut self, p: &Position) -> bool {
        match &self.applied_until {
            Some(done) if p.binlog_cmp(done) == std::cmp::Ordering::Less => true,
            Some(_) => {
                self.applied_until = None;
                false
            }
            None => false,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<PartMsg>) -> Result<()> {
        loop {
            // Committed work waits at most GROUP_WAIT after the last commit.
            let due = self
                .pending
                .as_ref()
                .map(|_| tokio::time::Instant::from_std(self.last_flush + GROUP_WAIT));
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    self.flush().await?;
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            match msg {
                PartMsg::Work {
                    mut ops,
                    mut committed,
                    commit,
                } => {
                    if self.applied_until.is_some() {
                        let mut open = ops.split_off(committed);
                        ops.retain(|op| !self.already_applied(&op.batch.events[op.row].position));
                        committed = ops.len();
                        open.retain(|op| !self.already_applied(&op.batch.events[op.row].position));
                        ops.append(&mut open);
                    }
                    self.rows_in_txn += ops.len();
                    let base = self.window.len();
                    self.window.extend(ops);
                    let covered = |c: &Commit, done: &Option<Position>| {
                        done.as_ref().is_some_and(|done| {
                            c.position.binlog_cmp(done) != std::cmp::Ordering::Greater
                        })
                    };
                    if let Some(c) = commit.filter(|c| !covered(c, &self.applied_until)) {
                        // A commit ends the open transaction, even the part
                        // of it executed earlier.
                        self.pending = Some(c);
                        self.committed_len = base + committed;
                        self.executed_uncommitted = false;
                    }
                    if self.window.len() >= MAX_WINDOW {
                        // Commit what is complete first, so the target
                        // transaction never mixes committed and open work.
                        self.flush().await?;
                    }
                    if self.window.len() >= MAX_WINDOW {
                        self.execute_window(usize::MAX).await?;
                        self.executed_uncommitted = true;
                    }
                    if self.pending.is_some()
                        && (self.rows_in_txn >= GROUP_ROWS
                            || (rx.is_empty() && self.last_flush.elapsed() >= GROUP_WAIT))
                    {
                        self.flush().await?;
                    }
                }
                PartMsg::Rollback => {
                    // Only the open source transaction is forgotten; what
                    // committed before it stays in the window.
                    self.window.truncate(self.committed_len);
                    if self.executed_uncommitted {
                        self.exec("ROLLBACK").await?;
                        self.in_txn = false;
                        self.executed_uncommitted = false;
                    }
                    self.rows_in_txn = self.window.len();
                }
                PartMsg::Barrier(ack) => {
                    self.flush().await?;
                    let _ = ack.send(());
                }
            }
        }
        // The input ended (stop, or a failure upstream): commit what
        // completed, never part of an open source transaction.
        if self.executed_uncommitted {
            self.exec("ROLLBACK").await?;
            self.in_txn = false;
        }
        self.flush().await?;
        let _ = self.conn.disconnect().await;
        Ok(())
    }

    async fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn.query_drop(sql).await.map_err(|e| {
            self.ctx
                .endpoint
                .error(format!("applying changes (partition {})", self.part), e)
        })
    }

    /// Commits the window up to the last source commit, with the checkpoint.
    /// A deadlock or lock wait timeout (partitions touch neighbouring keys)
    /// rolls back and retries the whole transaction with backoff, and a lost
    /// connection reconnects and retries it (unless its checkpoint shows it
    /// committed), unless part of it was executed earlier (a window grown
    /// too large).
    async fn flush(&mut self) -> Result<()> {
        let Some(c) = self.pending.take() else {
            return Ok(());
        };
        let ops: Vec<RowOp> = self
            .window
            .drain(..self.committed_len.min(self.window.len()))
            .collect();
        self.committed_len = 0;
        let sqls = window_statements(&self.ctx, &ops)?;
        let table = first_table(&self.ctx, &ops);
        let retryable_txn = !self.in_txn;
        let mut attempt = 0u32;
        loop {
            match self.commit_statements(&sqls, &table, &c).await {
                Ok(()) => break,
                Err((what, e)) => {
                    if retryable_txn && attempt < LOCK_RETRIES && is_connection_loss(&e) {
                        attempt += 1;
                        crate::progress::transient_error();
                        let wait = Duration::from_millis((250u64 << attempt).min(8000));
                        tracing::warn!(partition = self.part, attempt, error = %e, retry_in_ms = wait.as_millis() as u64, "lost the connection to the target; reconnecting");
                        tokio::time::sleep(wait).await;
                        self.in_txn = false;
                        if let Ok(conn) = self.ctx.endpoint.connect(&self.ctx.session).await {
                            self.conn = conn;
                            // The COMMIT may have gone through before the
                            // connection dropped: the checkpoint says.
                            if self.committed(&c.position).await {
                                break;
                            }
                        }
                        continue;
                    }
                    if retryable_txn && attempt < LOCK_RETRIES && is_lock_conflict(&e) {
                        attempt += 1;
                        crate::progress::transient_error();
                        tracing::debug!(partition = self.part, attempt, error = %e, "lock conflict; retrying the transaction");
                        let _ = self.conn.query_drop("ROLLBACK").await;
                        self.in_txn = false;
                        tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                        continue;
                    }
                    return Err(self.ctx.endpoint.error(what, e));
                }
            }
        }
        // Counted per table definition, keyed by its address (hashing the
        // names of every operation's table cost more than its statement's
        // text), reported per table.
        let mut per_table: foldhash::HashMap<usize, (&TableId, u64)> = Default::default();
        for op in &ops {
            let t = &op.batch.table;
            per_table
                .entry(Arc::as_ptr(t) as usize)
                .or_insert((&t.id, 0))
                .1 += 1;
        }
        for (table, n) in per_table.into_values() {
            self.ctx.reporter.changed(table, n);
        }
        self.ctx
            .reporter
            .applied(c.commit_ts_us, self.rows_in_txn as u64);
        self.rows_in_txn = 0;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Whether this partition's checkpoint already holds `position` (its
    /// transaction committed before the connection was lost).
    async fn committed(&mut self, position: &Position) -> bool {
        match self
            .ctx
            .checkpoints
            .read_parts(&self.ctx.endpoint, &mut self.conn)
            .await
        {
            Ok(parts) => parts.iter().any(|(p, at)| {
                *p == self.part && at.binlog_cmp(position) != std::cmp::Ordering::Less
            }),
            Err(_) => false,
        }
    }

    /// Executes the statements and the checkpoint, and commits.
    async fn commit_statements(
        &mut self,
        sqls: &[String],
        table: &str,
        c: &Commit,
    ) -> std::result::Result<(), (String, mysql_async::Error)> {
        let checkpoint = self
            .ctx
            .checkpoints
            .upsert(self.part, checkpoint::CDC, &c.position);
        let begin = (!self.in_txn).then_some("START TRANSACTION");
        // Marked open before anything is sent: a failure part way leaves a
        // transaction to roll back.
        self.in_txn = true;
        let mut all: Vec<&str> = Vec::with_capacity(sqls.len() + 3);
        all.extend(begin);
        all.extend(sqls.iter().map(|s| s.as_str()));
        all.extend([checkpoint.as_str(), "COMMIT"]);
        self.send(&all, table).await?;
        self.in_txn = false;
        Ok(())
    }

    /// Executes the first `len` operations of the window inside the open
    /// target transaction; the rest stay in the window.
    async fn execute_window(&mut self, len: usize) -> Result<()> {
        let rest = self.window.split_off(len.min(self.window.len()));
        let window = std::mem::replace(&mut self.window, rest);
        if window.is_empty() {
            return Ok(());
        }
        let sqls = window_statements(&self.ctx, &window)?;
        let table = first_table(&self.ctx, &window);
        let begin = (!self.in_txn).then_some("START TRANSACTION");
        self.in_txn = true;
        let mut all: Vec<&str> = begin.into_iter().collect();
        all.extend(sqls.iter().map(|s| s.as_str()));
        self.send(&all, &table)
            .await
            .map_err(|(what, e)| self.ctx.endpoint.error(what, e))
    }

    /// Sends statements in as few round trips as `max_statement_bytes`
    /// allows: several statements to a packet, which the server runs in
    /// order and stops at the first that fails.
    async fn send(
        &mut self,
        sqls: &[&str],
        table: &str,
    ) -> std::result::Result<(), (String, mysql_async::Error)> {
        let (limit, part) = (self.ctx.max_statement_bytes, self.part);
        let mut packet = String::new();
        let what = || format!("applying changes (first table {table}, partition {part})");
        for sql in sqls.iter().copied() {
            if !packet.is_empty() && packet.len() + sql.len() + 1 > limit {
                self.conn
                    .query_drop(packet.as_str())
                    .await
                    .map_err(|e| (what(), e))?;
                packet.clear();
            }
            if !packet.is_empty() {
                packet.push(';');
            }
            packet.push_str(sql);
        }
        if !packet.is_empty() {
            self.conn
                .query_drop(packet.as_str())
                .await
                .map_err(|e| (what(), e))?;
        }
        Ok(())
    }
}

/// The target table of the first operation, for messages.
fn first_table(ctx: &ApplyCtx, ops: &[RowOp]) -> String {
    ops.first()
        .map(|op| ctx.renames.target(&op.batch.table.id).to_string())
        .unwrap_or_default()
}

/// How often a transaction that lost a lock conflict, or its connection,
/// is retried.
const LOCK_RETRIES: u32 = 6;

/// The connection dropped (network, server restart, KILL: error 1927): a new one can
/// retry a transaction that had not committed.
fn is_connection_loss(e: &mysql_async::Error) -> bool {
    matches!(
        e,
        mysql_async::Error::Io(_)
            | mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed)
    ) || matches!(e, mysql_async::Error::Server(s) if s.code == 1927)
}

/// Deadlock (1213) or lock wait timeout (1205): the transaction can be
/// retried as a whole.
fn is_lock_conflict(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1213 || s.code == 1205)
}

/// The statements for a window: per merged table definition, in order of
/// first appearance, its deletes then its upserts, only the last operation
/// on each key kept; then the ordered operations, one by one in order.
fn window_statements(ctx: &ApplyCtx, window: &[RowOp]) -> Result<Vec<String>> {
    // Sized once: grown insert by insert, it rehashed nearly every time.
    let mut last: foldhash::HashMap<(&TableId, &[u8]), usize> =
        foldhash::HashMap::with_capacity_and_hasher(window.len(), Default::default());
    for (i, op) in window.iter().enumerate() {
        if !op.ordered {
            last.insert((&op.batch.table.id, op.key.as_slice()), i);
        }
    }
    type Group<'a> = (usize, Vec<&'a RowOp>, Vec<&'a RowOp>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut ordered: Vec<&RowOp> = Vec::new();
    for (i, op) in window.iter().enumerate() {
        if op.ordered {
            ordered.push(op);
            continue;
        }
        if last.get(&(&op.batch.table.id, op.key.as_slice())) != Some(&i) {
            continue;
        }
        let id = Arc::as_ptr(&op.batch.table) as usize;
        let g = match groups.iter().position(|g| g.0 == id) {
            Some(p) => &mut groups[p],
            None => {
                groups.push((id, Vec::new(), Vec::new()));
                let n = groups.len() - 1;
                &mut groups[n]
            }
        };
        match op.kind {
            Kind::Delete => g.1.push(op),
            Kind::Upsert | Kind::Update => g.2.push(op),
        }
    }
    let mut sqls = Vec::new();
    for (_, deletes, upserts) in &groups {
        if !deletes.is_empty() {
            sqls.extend(merged_statements(ctx, Kind::Delete, deletes)?);
        }
        if !upserts.is_empty() {
            sqls.extend(merged_statements(ctx, Kind::Upsert, upserts)?);
        }
    }
    ordered_statements(ctx, &ordered, &mut sqls)?;
    Ok(sqls)
}

/// Encoders for one row image of an operation: the before image of
/// deletes and updates (which row), else the after image.
fn image_encoders(op: &RowOp, after: bool) -> Result<Vec<ColumnEncoder<'_>>> {
    row_encoders(&op.batch.table, op.image(after)?)
}

/// Multi-row REPLACE, or DELETE ... IN, for merged operations of one kind
/// on one table definition.
fn merged_statements(ctx: &ApplyCtx, kind: Kind, ops: &[&RowOp]) -> Result<Vec<String>> {
    let table = &ops[0].batch.table;
    let target = ctx.renames.target(&table.id);
    if kind != Kind::Delete {
        let head = format!(
            "REPLACE INTO {} ({}) VALUES ",
            target.quoted(),
            column_list(table)
        );
        let mut out = Chunked::new(head, "", ctx.max_statement_bytes);
        for op in ops {
            let image = op.image(true)?;
            out.push_with(|sql| write_image_row(table, image, op.row, sql))?;
        }
        return Ok(out.finish());
    }
    let mut out = Chunked::new(key_in_head(table, &target), ")", ctx.max_statement_bytes);
    for op in ops {
        let image = op.image(false)?;
        out.push_with(|sql| write_key(table, image, op.row, sql))?;
    }
    Ok(out.finish())
}

/// `DELETE FROM t WHERE k IN (` (or `(k1, k2) IN (` for a composite key).
fn key_in_head(table: &TableSchema, target: &TableId) -> String {
    let cols: Vec<String> = table
        .key
        .iter()
        .map(|&k| quote_ident(&table.columns[k].name))
        .collect();
    if cols.len() > 1 {
        format!(
            "DELETE FROM {} WHERE ({}) IN (",
            target.quoted(),
            cols.join(", ")
        )
    } else {
        format!(
            "DELETE FROM {} WHERE {} IN (",
            target.quoted(),
            cols.join(", ")
        )
    }
}

/// The key of one row: `v` or `(v1,v2)`. Text of a column in another
/// character set than the connection's is converted to it first: MariaDB
/// 10.11 compares a row constructor against a list of several utf8mb4
/// tuples wrongly for a latin1 column (`(k, s) IN ((1, 'é'), (2, 'y'))`
/// misses the first row).
fn write_key(table: &TableSchema, image: &RecordBatch, row: usize, out: &mut String) -> Result<()> {
    let composite = table.key.len() > 1;
    if composite {
        out.push('(');
    }
    for (i, &k) in table.key.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (Some(def), Some(array)) = (table.columns.get(k), image.columns().get(k)) else {
            return Err(Error::Internal(format!(
                "{}: key column {k} is not in the row image",
                table.id
            )));
        };
        let encoder = column_encoder(table, def, array)?;
        match def.charset.as_deref() {
            Some(cs)
                if def.logical.is_text()
                    && !matches!(cs, "utf8mb4" | "utf8mb3" | "utf8")
                    && cs.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                out.push_str("CONVERT(");
                encoder.write(row, out);
                out.push_str(" USING ");
                out.push_str(cs);
                out.push(')');
            }
            _ => encoder.write(row, out),
        }
    }
    if composite {
        out.push(')');
    }
    Ok(())
}

/// `WHERE` for the row of an ordered operation's before image: its key, or
/// for a table without a key every column, text compared byte for byte
/// (under a case-insensitive collation `'a'` would match `'A'`).
fn write_row_match(
    table: &TableSchema,
    encoders: &[ColumnEncoder<'_>],
    row: usize,
    out: &mut String,
) {
    let columns: Vec<usize> = if table.key.is_empty() {
        (0..table.columns.len()).collect()
    } else {
        table.key.clone()
    };
    let mut literal = String::new();
    for (i, &c) in columns.iter().enumerate() {
        if i > 0 {
            out.push_str(" AND ");
        }
        literal.clear();
        encoders[c].write(row, &mut literal);
        push_exact_match(out, &table.columns[c], &literal, table.key.is_empty());
    }
    if table.key.is_empty() {
        out.push_str(" LIMIT 1");
    }
}

/// The ordered operations, one statement each (consecutive inserts into one
/// table share one), with the session's `foreign_key_checks` set as the
/// source had it for tables a foreign key joins, and off again after.
fn ordered_statements(ctx: &ApplyCtx, ops: &[&RowOp], sqls: &mut Vec<String>) -> Result<()> {
    let mut checks = false;
    let mut inserts: Option<(usize, Chunked)> = None;
    for op in ops {
        let table = &op.batch.table;
        let target = ctx.renames.target(&table.id);
        let want = table.constraints.foreign_key && op.batch.events[op.row].foreign_key_checks;
        let id = Arc::as_ptr(table) as usize;
        let continues = op.kind == Kind::Upsert
            && want == checks
            && inserts.as_ref().is_some_and(|(t, _)| *t == id);
        if !continues {
            if let Some((_, c)) = inserts.take() {
                sqls.extend(c.finish());
            }
        }
        if want != checks {
            sqls.push(format!("SET SESSION foreign_key_checks = {}", want as u8));
            checks = want;
        }
        match op.kind {
            Kind::Upsert => {
                let (_, chunked) = inserts.get_or_insert_with(|| {
                    let head = format!(
                        "INSERT INTO {} ({}) VALUES ",
                        target.quoted(),
                        column_list(table)
                    );
                    (id, Chunked::new(head, "", ctx.max_statement_bytes))
                });
                let image = op.image(true)?;
                chunked.push_with(|sql| write_image_row(table, image, op.row, sql))?;
            }
            Kind::Delete => {
                let mut sql = format!("DELETE FROM {} WHERE ", target.quoted());
                write_row_match(table, &image_encoders(op, false)?, op.row, &mut sql);
                sqls.push(sql);
            }
            Kind::Update => {
                let after = image_encoders(op, true)?;
                let mut sql = format!("UPDATE {} SET ", target.quoted());
                for (i, (c, e)) in table.columns.iter().zip(&after).enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&quote_ident(&c.name));
                    sql.push_str(" = ");
                    e.write(op.row, &mut sql);
                }
                sql.push_str(" WHERE ");
                write_row_match(table, &image_encoders(op, false)?, op.row, &mut sql);
                sqls.push(sql);
            }
        }
    }
    if let Some((_, c)) = inserts.take() {
        sqls.extend(c.finish());
    }
    if checks {
        sqls.push("SET SESSION foreign_key_checks = 0".into());
    }
    Ok(())
}
