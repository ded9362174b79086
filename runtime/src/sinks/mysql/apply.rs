//! Applying changes to a MySQL target, in parallel and exactly once.
//!
//! Every row change becomes an idempotent operation: an insert or an update
//! that keeps its key becomes `REPLACE` of the after image; a delete becomes
//! `DELETE` by key; an update that changes the key becomes both. Operations
//! are routed by a hash of (table, key) to one of N partitions, each with its
//! own connection, so changes to one row stay in order while different rows
//! apply in parallel. A partition commits only at source transaction
//! boundaries, grouping several source transactions into one target
//! transaction, and writes its checkpoint row in that same transaction.
//!
//! With `consistency: transactional` there is one partition, so the target
//! never shows part of a source transaction.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::checkpoint::{self, Checkpoints};
use super::rename::Renames;
use crate::binlog::ddl;
use crate::event::{quote_ident, ChangeBatch, KeyKind, Op, Position, TableId};
use crate::mysql::connect::Endpoint;
use crate::mysql::encode::{column_list, row_encoders, write_row, Chunked, ColumnEncoder};
use crate::progress::Progress;
use crate::stage::{Commit, DdlChange};
use crate::{Error, Result};

/// A target transaction is committed once it holds this many row changes
/// (at the next source commit), or when the partition has nothing queued.
const GROUP_ROWS: usize = 5000;
/// An idle partition still advances its checkpoint this often.
const IDLE_FLUSH: Duration = Duration::from_millis(500);

/// Server errors that mean a replayed DDL statement was already applied.
const ALREADY_APPLIED: &[u16] = &[1007, 1008, 1050, 1051, 1054, 1060, 1061, 1091, 1146];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Make the row equal to the after image.
    Upsert,
    /// Remove the row with the before image's key.
    Delete,
}

/// One row change, routed to a partition.
struct RowOp {
    batch: Arc<ChangeBatch>,
    row: usize,
    kind: Kind,
    /// The row's key as text (empty for tables without a key).
    key: String,
}

enum PartMsg {
    Ops(Vec<RowOp>),
    Commit(Arc<Commit>),
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
    pub progress: Arc<Progress>,
    pub sink_index: usize,
    pub max_statement_bytes: usize,
    warned_keyless: Mutex<HashSet<TableId>>,
}

impl ApplyCtx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        endpoint: Endpoint,
        session: Vec<&'static str>,
        renames: Renames,
        checkpoints: Checkpoints,
        progress: Arc<Progress>,
        sink_index: usize,
        max_statement_bytes: usize,
    ) -> Self {
        ApplyCtx {
            endpoint,
            session,
            renames,
            checkpoints,
            progress,
            sink_index,
            max_statement_bytes,
            warned_keyless: Mutex::new(HashSet::new()),
        }
    }
}

/// Routes changes to the partitions and handles what needs all of them.
pub struct Applier {
    ctx: Arc<ApplyCtx>,
    parts: Vec<mpsc::Sender<PartMsg>>,
    tasks: JoinSet<Result<()>>,
    control: Conn,
}

impl Applier {
    pub async fn start(ctx: Arc<ApplyCtx>, parts: usize) -> Result<Applier> {
        let mut control = ctx.endpoint.connect(&ctx.session).await?;
        // Where each partition got to: changes it already applied are not
        // applied again (which matters for tables without a key).
        let done = ctx
            .checkpoints
            .read_parts(&ctx.endpoint, &mut control)
            .await?;
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
            parts: senders,
            tasks,
            control,
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

    pub async fn changes(&mut self, batch: ChangeBatch) -> Result<()> {
        self.ctx.progress.set_caught_up(self.ctx.sink_index, false);
        let n = self.parts.len();
        let batch = Arc::new(batch);
        let mut routed: Vec<Vec<RowOp>> = (0..n).map(|_| Vec::new()).collect();
        let table = &batch.table;
        let keyed = table.key_kind != KeyKind::None;
        if !keyed {
            if let Ok(mut w) = self.ctx.warned_keyless.lock() {
                if w.insert(table.id.clone()) {
                    tracing::warn!(table = %table.id, "no primary or unique key: changes are applied by full-row match, one partition, one row at a time");
                }
            }
        }
        let key_of = |img: &RecordBatch, row: usize| -> String {
            let mut s = String::new();
            for &k in &table.key {
                if let Ok(e) = ColumnEncoder::new(img.column(k), table.columns[k].source_type) {
                    e.write(row, &mut s);
                }
                s.push('\u{1}');
            }
            s
        };
        let part_of = |key: &str| -> usize {
            let mut h = DefaultHasher::new();
            table.id.hash(&mut h);
            if keyed {
                key.hash(&mut h);
            }
            (h.finish() % n as u64) as usize
        };
        for (row, ev) in batch.events.iter().enumerate() {
            let before_key = batch.before.as_ref().map(|b| key_of(b, row));
            let after_key = batch.after.as_ref().map(|a| key_of(a, row));
            let mut push = |kind: Kind, key: &str| {
                routed[part_of(key)].push(RowOp {
                    batch: batch.clone(),
                    row,
                    kind,
                    key: if keyed {
                        key.to_string()
                    } else {
                        String::new()
                    },
                })
            };
            match (ev.op, before_key, after_key) {
                (Op::Insert | Op::Read, _, Some(a)) => push(Kind::Upsert, &a),
                (Op::Delete, Some(b), _) => push(Kind::Delete, &b),
                (Op::Update, Some(b), Some(a)) if keyed && a == b => push(Kind::Upsert, &a),
                (Op::Update, Some(b), Some(a)) => {
                    push(Kind::Delete, &b);
                    push(Kind::Upsert, &a);
                }
                _ => {
                    return Err(Error::Internal(format!(
                        "{}: a {:?} event without its row image",
                        table.id, ev.op
                    )))
                }
            }
        }
        for (part, ops) in routed.into_iter().enumerate() {
            if !ops.is_empty() {
                self.send(part, PartMsg::Ops(ops)).await?;
            }
        }
        Ok(())
    }

    pub async fn commit(&mut self, c: Arc<Commit>) -> Result<()> {
        for part in 0..self.parts.len() {
            self.send(part, PartMsg::Commit(c.clone())).await?;
        }
        Ok(())
    }

    pub async fn rollback(&mut self) -> Result<()> {
        for part in 0..self.parts.len() {
            self.send(part, PartMsg::Rollback).await?;
        }
        Ok(())
    }

    /// Waits until every partition committed what it has.
    pub async fn barrier(&mut self) -> Result<()> {
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

    /// The source has nothing newer: once everything is committed, lag is zero.
    pub async fn heartbeat(&mut self) -> Result<()> {
        self.barrier().await?;
        self.ctx.progress.set_caught_up(self.ctx.sink_index, true);
        Ok(())
    }

    /// Applies a schema change once everything before it is committed, then
    /// moves every partition's checkpoint past it.
    pub async fn ddl(&mut self, d: Arc<DdlChange>) -> Result<()> {
        self.barrier().await?;
        let ctx = &self.ctx;
        let sql = ddl::rewrite(
            &d.sql,
            &d.statement,
            |t| ctx.renames.target(t),
            |db| ctx.renames.target_database(db),
        );
        let mut stmts = Vec::new();
        if !d.schema.is_empty() {
            stmts.push(format!(
                "CREATE DATABASE IF NOT EXISTS {}",
                quote_ident(&ctx.renames.target_database(&d.schema))
            ));
            stmts.push(format!(
                "USE {}",
                quote_ident(&ctx.renames.target_database(&d.schema))
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
        ctx.progress.applied(ctx.sink_index, d.commit_ts_us, 0);
        Ok(())
    }

    /// Commits what is complete and stops the partitions.
    pub async fn close(mut self) -> Result<()> {
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

impl ApplyCtx {
    fn checkpoints_sink(&self) -> String {
        self.endpoint.role.clone()
    }
}

fn abbreviate(sql: &str) -> String {
    crate::mysql::connect::abbreviate(sql)
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
        let mut tick = tokio::time::interval(IDLE_FLUSH);
        loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = tick.tick() => {
                    if self.pending.is_some() && self.last_flush.elapsed() >= IDLE_FLUSH {
                        self.flush().await?;
                    }
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            match msg {
                PartMsg::Ops(mut ops) => {
                    if self.applied_until.is_some() {
                        ops.retain(|op| {
                            let p = op.batch.events[op.row].position.clone();
                            !self.already_applied(&p)
                        });
                    }
                    self.rows_in_txn += ops.len();
                    self.window.extend(ops);
                    if self.window.len() >= MAX_WINDOW {
                        // Commit what is complete first, so the target
                        // transaction never mixes committed and open work.
                        self.flush().await?;
                    }
                    if self.window.len() >= MAX_WINDOW {
                        self.execute_window(usize::MAX).await?;
                        self.executed_uncommitted = true;
                    }
                }
                PartMsg::Commit(c) => {
                    if self.applied_until.as_ref().is_some_and(|done| {
                        c.position.binlog_cmp(done) != std::cmp::Ordering::Greater
                    }) {
                        continue;
                    }
                    self.pending = Some(c);
                    self.committed_len = self.window.len();
                    self.executed_uncommitted = false;
                    if self.rows_in_txn >= GROUP_ROWS || (rx.is_empty() && self.rows_in_txn > 0) {
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
        // Counted per table, not per row: this runs for every commit.
        let mut per_table: HashMap<&TableId, u64> = HashMap::new();
        for op in &ops {
            *per_table.entry(&op.batch.table.id).or_default() += 1;
        }
        for (table, n) in per_table {
            self.ctx.progress.changed(self.ctx.sink_index, table, n);
        }
        self.ctx
            .progress
            .applied(self.ctx.sink_index, c.commit_ts_us, self.rows_in_txn as u64);
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
        let what = format!("applying changes (partition {})", self.part);
        if !self.in_txn {
            self.conn
                .query_drop("START TRANSACTION")
                .await
                .map_err(|e| (what.clone(), e))?;
            self.in_txn = true;
        }
        self.run_statements(sqls, table).await?;
        let sql = self
            .ctx
            .checkpoints
            .upsert(self.part, checkpoint::CDC, &c.position);
        self.conn
            .query_drop(sql)
            .await
            .map_err(|e| (what.clone(), e))?;
        self.conn
            .query_drop("COMMIT")
            .await
            .map_err(|e| (what, e))?;
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
        if !self.in_txn {
            self.exec("START TRANSACTION").await?;
            self.in_txn = true;
        }
        let sqls = window_statements(&self.ctx, &window)?;
        let table = first_table(&self.ctx, &window);
        self.run_statements(&sqls, &table)
            .await
            .map_err(|(what, e)| self.ctx.endpoint.error(what, e))
    }

    /// Executes statements inside the open target transaction.
    async fn run_statements(
        &mut self,
        sqls: &[String],
        table: &str,
    ) -> std::result::Result<(), (String, mysql_async::Error)> {
        for sql in sqls {
            self.conn.query_drop(sql).await.map_err(|e| {
                (
                    format!(
                        "applying changes (first table {table}, partition {})",
                        self.part
                    ),
                    e,
                )
            })?;
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

/// The statements for a window: per table definition, in order of first
/// appearance, its deletes, its upserts, and (tables without a key) every
/// operation in order. Only the last operation on each key is kept.
fn window_statements(ctx: &ApplyCtx, window: &[RowOp]) -> Result<Vec<String>> {
    let mut last: HashMap<(&TableId, &str), usize> = HashMap::new();
    for (i, op) in window.iter().enumerate() {
        if !op.key.is_empty() {
            last.insert((&op.batch.table.id, op.key.as_str()), i);
        }
    }
    type Group<'a> = (usize, Vec<&'a RowOp>, Vec<&'a RowOp>, Vec<&'a RowOp>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (i, op) in window.iter().enumerate() {
        if !op.key.is_empty() && last.get(&(&op.batch.table.id, op.key.as_str())) != Some(&i) {
            continue;
        }
        let id = Arc::as_ptr(&op.batch.table) as usize;
        let g = match groups.iter().position(|g| g.0 == id) {
            Some(p) => &mut groups[p],
            None => {
                groups.push((id, Vec::new(), Vec::new(), Vec::new()));
                let n = groups.len() - 1;
                &mut groups[n]
            }
        };
        match (op.key.is_empty(), op.kind) {
            (true, _) => g.3.push(op),
            (false, Kind::Delete) => g.1.push(op),
            (false, Kind::Upsert) => g.2.push(op),
        }
    }
    let mut sqls = Vec::new();
    for (_, deletes, upserts, keyless) in &groups {
        if !deletes.is_empty() {
            sqls.extend(statements(ctx, Kind::Delete, true, deletes)?);
        }
        if !upserts.is_empty() {
            sqls.extend(statements(ctx, Kind::Upsert, true, upserts)?);
        }
        for op in keyless {
            sqls.extend(statements(ctx, op.kind, false, &[op])?);
        }
    }
    Ok(sqls)
}

/// Encoders for one row image of an operation.
fn image_encoders(op: &RowOp) -> Result<Vec<ColumnEncoder<'_>>> {
    let image = match op.kind {
        Kind::Upsert => op.batch.after.as_ref(),
        Kind::Delete => op.batch.before.as_ref(),
    }
    .ok_or_else(|| Error::Internal(format!("{}: missing row image", op.batch.table.id)))?;
    row_encoders(&op.batch.table, image)
}

/// SQL for operations of one kind on one table definition: multi-row
/// REPLACE / DELETE ... IN for keyed tables, one statement per row otherwise.
fn statements(ctx: &ApplyCtx, kind: Kind, keyed: bool, ops: &[&RowOp]) -> Result<Vec<String>> {
    let table = &ops[0].batch.table;
    let target = ctx.renames.target(&table.id);
    let mut item = String::new();
    match (kind, keyed) {
        (Kind::Upsert, _) => {
            let verb = if keyed { "REPLACE" } else { "INSERT" };
            let head = format!(
                "{verb} INTO {} ({}) VALUES ",
                target.quoted(),
                column_list(table)
            );
            let mut out = Chunked::new(head, "", ctx.max_statement_bytes);
            for op in ops {
                item.clear();
                write_row(&image_encoders(op)?, op.row, &mut item);
                out.push(&item);
            }
            Ok(out.finish())
        }
        (Kind::Delete, true) => {
            let cols: Vec<String> = table
                .key
                .iter()
                .map(|&k| quote_ident(&table.columns[k].name))
                .collect();
            let composite = cols.len() > 1;
            let head = if composite {
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
            };
            let mut out = Chunked::new(head, ")", ctx.max_statement_bytes);
            for op in ops {
                let encoders = image_encoders(op)?;
                item.clear();
                if composite {
                    item.push('(');
                }
                for (i, &k) in table.key.iter().enumerate() {
                    if i > 0 {
                        item.push(',');
                    }
                    encoders[k].write(op.row, &mut item);
                }
                if composite {
                    item.push(')');
                }
                out.push(&item);
            }
            Ok(out.finish())
        }
        (Kind::Delete, false) => ops
            .iter()
            .map(|op| {
                let encoders = image_encoders(op)?;
                let mut sql = format!("DELETE FROM {} WHERE ", target.quoted());
                for (i, (c, e)) in table.columns.iter().zip(&encoders).enumerate() {
                    if i > 0 {
                        sql.push_str(" AND ");
                    }
                    sql.push_str(&quote_ident(&c.name));
                    sql.push_str(" <=> ");
                    e.write(op.row, &mut sql);
                }
                sql.push_str(" LIMIT 1");
                Ok(sql)
            })
            .collect(),
    }
}
