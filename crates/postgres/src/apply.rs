//! Changes, exactly once: one connection applies them in source order,
//! whole source transactions at a time, and writes the checkpoint in the
//! same PostgreSQL transaction.
//!
//! Each row change is one prepared statement with binary parameters
//! (an upsert, an update by the old row's key, a delete), pipelined: the
//! statements of a target transaction are all sent before the first
//! answer is awaited, so a transaction costs four round trips (BEGIN,
//! the statements, the checkpoint, COMMIT), not one per row. They are
//! sent in order on one connection, and PostgreSQL runs them in that
//! order.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use sluice_core::event::{ChangeBatch, Op, Position, TableId};
use sluice_core::progress::Reporter;
use sluice_core::schema_change::{AlterAction, SchemaChange};
use sluice_core::stage::{ChangeWriter, Commit, DdlChange};
use sluice_core::{Error, Result};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use crate::checkpoint;
use crate::connect::quote_ident;
use crate::ddl;
use crate::table::{self, Target};
use crate::{OnSchemaChange, PostgresSink};

/// A target transaction is committed once it holds this many row changes
/// (at a source commit), or when [`FLUSH_EVERY`] has passed.
const GROUP_ROWS: usize = 5000;
const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Which statement a row change runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Upsert,
    Update,
    Delete,
    /// A row of the change table (`history: true`).
    History,
}

pub struct Apply {
    sink: Arc<PostgresSink>,
    client: Client,
    reporter: Reporter,
    /// Row changes of the open source transaction.
    open: Vec<ChangeBatch>,
    /// Committed source transactions not yet applied, and the last commit.
    ready: Vec<ChangeBatch>,
    ready_rows: usize,
    last: Option<Arc<Commit>>,
    last_flush: Instant,
    statements: HashMap<(TableId, Kind), (Arc<Target>, Statement)>,
    /// The definition each table was last brought in line with (a
    /// changed one is reconciled with the catalog before its rows).
    in_line: HashMap<TableId, Arc<Target>>,
    /// Rows in `open`.
    open_rows: usize,
    /// A target transaction is open: statements were sent, not committed.
    in_txn: bool,
    /// Whether it checks foreign keys at this point.
    checked: bool,
    /// Row changes sent in it, per table (reported when it commits).
    counts: Vec<(TableId, u64)>,
    rows: usize,
    /// This connection's lane, and its checkpoint row.
    part: usize,
    /// The lane's checkpoint at start: the source resumes after the oldest
    /// lane's, so a lane ahead skips what it applied in an earlier run.
    applied_until: Option<Position>,
    /// Whether it brings tables in line itself (it is the only lane).
    ensures: bool,
}

/// A source transaction this large is sent before it commits, on a target
/// transaction kept open, to bound memory.
const MAX_OPEN: usize = 50_000;

/// One step of a target transaction.
enum Call {
    Exec(Statement, Vec<Option<std::ops::Range<usize>>>),
    /// Foreign keys checked (and acted on) from here, or not.
    Checks(bool),
}

impl Apply {
    /// Lane `part`'s writer on `client`, which has applied what precedes
    /// `applied_until`; `ensures` when it is the only lane.
    pub fn new(
        sink: Arc<PostgresSink>,
        client: Client,
        reporter: Reporter,
        part: usize,
        applied_until: Option<Position>,
        ensures: bool,
    ) -> Apply {
        Apply {
            sink,
            client,
            reporter,
            open: Vec::new(),
            ready: Vec::new(),
            ready_rows: 0,
            last: None,
            last_flush: Instant::now(),
            statements: HashMap::new(),
            in_line: HashMap::new(),
            open_rows: 0,
            in_txn: false,
            checked: true,
            counts: Vec::new(),
            rows: 0,
            part,
            applied_until,
            ensures,
        }
    }

    /// Statements and definitions of before a schema change are stale.
    pub fn after_schema_change(&mut self) {
        self.statements.clear();
        self.in_line.clear();
    }

    /// Whether the source transaction of a change at `p` was applied by
    /// this lane in an earlier run. A row change lies inside its
    /// transaction, so it precedes the checkpoint (a transaction's end)
    /// exactly when its transaction committed before it.
    fn already_applied(&mut self, p: &Position) -> bool {
        match &self.applied_until {
            Some(done) if p.binlog_cmp(done) != std::cmp::Ordering::Greater => true,
            Some(_) => {
                self.applied_until = None;
                false
            }
            None => false,
        }
    }

    fn session(&self) -> Session<'_> {
        Session {
            sink: &self.sink,
            client: &self.client,
        }
    }

    /// Brings `target`'s table in line with its definition the first time
    /// this run meets the definition (see [`crate::ddl`]); a lane of
    /// several leaves it to [`crate::lanes`].
    async fn ensure(&mut self, target: &Arc<Target>) -> Result<()> {
        let id = &target.source.id;
        if !self.ensures || self.in_line.get(id).is_some_and(|t| Arc::ptr_eq(t, target)) {
            return Ok(());
        }
        self.session().bring_in_line(target, self.in_txn).await?;
        self.in_line.insert(id.clone(), target.clone());
        Ok(())
    }

    async fn statement(&mut self, target: &Arc<Target>, kind: Kind) -> Result<Statement> {
        let key = (target.source.id.clone(), kind);
        if let Some((t, s)) = self.statements.get(&key) {
            if Arc::ptr_eq(t, target) {
                return Ok(s.clone());
            }
        }
        let sql = match kind {
            Kind::Upsert => target.upsert_sql(),
            Kind::Update => target.update_sql(),
            Kind::Delete => target.delete_sql(),
            Kind::History => target.history_insert_sql(),
        };
        let s = self.client.prepare(&sql).await.map_err(|e| {
            self.sink
                .endpoint
                .error(format!("preparing the changes of {}", target.display()), e)
        })?;
        self.statements.insert(key, (target.clone(), s.clone()));
        Ok(s)
    }

    /// The statement of `kind` for `target`, from a batch's own cache.
    async fn cached(
        &mut self,
        cache: &mut [Option<Statement>; 4],
        target: &Arc<Target>,
        kind: Kind,
    ) -> Result<Statement> {
        if let Some(s) = &cache[kind as usize] {
            return Ok(s.clone());
        }
        let s = self.statement(target, kind).await?;
        cache[kind as usize] = Some(s.clone());
        Ok(s)
    }

    /// Applies every committed transaction held, with the checkpoint of the
    /// last, in one target transaction.
    async fn flush(&mut self) -> Result<()> {
        let Some(commit) = self.last.take() else {
            return Ok(());
        };
        let batches = std::mem::take(&mut self.ready);
        self.ready_rows = 0;
        self.execute(batches).await?;
        self.finish(commit).await
    }

    /// Sends the statements of `batches` on the open target transaction
    /// (begun if there is none), in order; an error rolls it back.
    async fn execute(&mut self, batches: Vec<ChangeBatch>) -> Result<()> {
        let result = self.send(&batches).await;
        if result.is_err() {
            self.abandon().await;
        }
        result
    }

    async fn send(&mut self, batches: &[ChangeBatch]) -> Result<()> {
        // Every statement and its parameters first: a value PostgreSQL
        // cannot hold stops the run before anything is sent.
        let mut values = BytesMut::new();
        let mut calls: Vec<Call> = Vec::new();
        // Tables whose identity may have to move past inserted numbers.
        let mut identities: Vec<String> = Vec::new();
        // Whether foreign keys are checked at this point of the transaction.
        let mut checked = !self.in_txn || self.checked;
        for b in batches {
            let target = self.sink.target(&b.table)?;
            self.ensure(&target).await?;
            if b.after.is_some() {
                if let Some(sql) = target.sync_identity(0) {
                    if !identities.contains(&sql) {
                        identities.push(sql);
                    }
                }
            }
            match self.counts.last_mut() {
                Some((t, n)) if *t == b.table.id => *n += b.len() as u64,
                _ => self.counts.push((b.table.id.clone(), b.len() as u64)),
            }
            self.rows += b.len();
            // Looked up once per batch and kind, not per row.
            let mut stmts: [Option<Statement>; 4] = Default::default();
            let match_columns = target.match_columns();
            for (row, ev) in b.events.iter().enumerate() {
                // MySQL neither checks nor acts on (cascades) the foreign
                // keys of a change made with foreign_key_checks = 0: nor
                // does PostgreSQL with its foreign key triggers off.
                if ev.foreign_key_checks != checked {
                    checked = ev.foreign_key_checks;
                    calls.push(Call::Checks(checked));
                }
                let (kind, images) = match ev.op {
                    Op::Insert | Op::Read => (Kind::Upsert, (None, b.after.as_ref())),
                    Op::Update => (Kind::Update, (b.before.as_ref(), b.after.as_ref())),
                    Op::Delete => (Kind::Delete, (b.before.as_ref(), None)),
                };
                let stmt = self.cached(&mut stmts, &target, kind).await?;
                let mut params = Vec::with_capacity(target.columns.len() * 2);
                if let Some(after) = images.1 {
                    for col in 0..target.columns.len() {
                        params.push(target.encode(after, row, col, &mut values)?);
                    }
                }
                if let Some(before) = images.0 {
                    for &col in &match_columns {
                        params.push(target.encode(before, row, col, &mut values)?);
                    }
                }
                if (kind != Kind::Delete && images.1.is_none())
                    || (kind != Kind::Upsert && images.0.is_none())
                {
                    return Err(Error::Internal(format!(
                        "{}: a {kind:?} change without its row image",
                        b.table.id
                    )));
                }
                calls.push(Call::Exec(stmt, params));
                if self.sink.history {
                    let hist = self.cached(&mut stmts, &target, Kind::History).await?;
                    // (op, image) rows of the change table; a key change
                    // is the old key's delete and the new key's insert.
                    let rows: Vec<(u8, &arrow_array::RecordBatch)> = match (ev.op, images) {
                        (Op::Update, (Some(b), Some(a))) if target.key_changed(b, a, row) => {
                            vec![(b'd', b), (b'c', a)]
                        }
                        (Op::Update, (_, Some(a))) => vec![(b'u', a)],
                        (Op::Delete, (Some(b), _)) => vec![(b'd', b)],
                        (_, (_, Some(a))) => vec![(b'c', a)],
                        _ => Vec::new(),
                    };
                    for (op, image) in rows {
                        let mut params = table::put_history_meta(op, ev, &mut values);
                        for col in 0..target.columns.len() {
                            params.push(target.encode_nullable(image, row, col, &mut values)?);
                        }
                        calls.push(Call::Exec(hist.clone(), params));
                    }
                }
            }
        }
        let values = values.freeze();
        let ep = &self.sink.endpoint;
        if !self.in_txn {
            self.client
                .batch_execute("BEGIN")
                .await
                .map_err(|e| ep.error("starting a transaction", e))?;
            self.in_txn = true;
            self.checked = true;
        }
        // Each call is polled once as it is made, which sends it: the
        // statements leave in order, then the answers are awaited.
        let mut pending = Vec::with_capacity(calls.len());
        for call in &calls {
            match call {
                Call::Exec(stmt, params) => {
                    let raw: Vec<Raw<'_>> = params
                        .iter()
                        .map(|p| Raw(p.as_ref().map(|r| &values[r.clone()])))
                        .collect();
                    let mut fut = Box::pin(self.client.execute_raw(stmt, raw));
                    if let Poll::Ready(r) = futures::poll!(fut.as_mut()) {
                        r.map_err(|e| ep.error("applying changes", e))?;
                        continue;
                    }
                    pending.push(fut);
                }
                Call::Checks(on) => {
                    for fut in pending.drain(..) {
                        fut.await.map_err(|e| ep.error("applying changes", e))?;
                    }
                    let role = if *on { "origin" } else { "replica" };
                    self.client
                        .batch_execute(&format!("SET LOCAL session_replication_role = {role}"))
                        .await
                        .map_err(|e| unchecked_error(ep, e))?;
                }
            }
        }
        for fut in pending {
            fut.await.map_err(|e| ep.error("applying changes", e))?;
        }
        self.checked = checked;
        for sql in &identities {
            self.client
                .batch_execute(sql)
                .await
                .map_err(|e| ep.error("moving an identity past inserted rows", e))?;
        }
        Ok(())
    }

    /// Commits the target transaction (begun if none) with the checkpoint
    /// at `commit`.
    async fn finish(&mut self, commit: Arc<Commit>) -> Result<()> {
        let ep = self.sink.endpoint.clone();
        let checkpoint = self.sink.checkpoint.upsert(
            checkpoint::CDC,
            self.part..self.part + 1,
            &commit.position,
        );
        let sql = if self.in_txn {
            format!("{checkpoint}; COMMIT")
        } else {
            format!("BEGIN; {checkpoint}; COMMIT")
        };
        if let Err(e) = self.client.batch_execute(&sql).await {
            let e = ep.error("committing changes with the checkpoint", e);
            self.abandon().await;
            return Err(e);
        }
        self.in_txn = false;
        for (t, n) in std::mem::take(&mut self.counts) {
            self.reporter.changed(&t, n);
        }
        let rows = std::mem::replace(&mut self.rows, 0);
        self.reporter.applied(commit.commit_ts_us, rows as u64);
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Rolls the open target transaction back (the source sends it again).
    async fn abandon(&mut self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
        self.in_txn = false;
        self.counts.clear();
        self.rows = 0;
    }
}

/// A parameter already in PostgreSQL's binary format (see `types.rs`),
/// whatever type the server gives the placeholder: the codec chose the
/// bytes for the column's own type.
#[derive(Debug)]
pub(crate) struct Raw<'a>(pub Option<&'a [u8]>);

impl ToSql for Raw<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(b) => {
                out.put_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[async_trait]
impl ChangeWriter for Apply {
    async fn write(&mut self, batch: ChangeBatch) -> Result<()> {
        if batch
            .events
            .first()
            .is_some_and(|e| self.already_applied(&e.position))
        {
            return Ok(());
        }
        self.open_rows += batch.len();
        self.open.push(batch);
        if self.open_rows >= MAX_OPEN {
            // A large source transaction: what it has so far is sent on a
            // target transaction kept open until its commit, to bound
            // memory (the committed ones held go first, on their own).
            if !self.in_txn {
                self.flush().await?;
            }
            let open = std::mem::take(&mut self.open);
            self.open_rows = 0;
            self.execute(open).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, commit: Arc<Commit>) -> Result<()> {
        if self.already_applied(&commit.position) {
            self.open.clear();
            self.open_rows = 0;
            return Ok(());
        }
        if self.in_txn {
            // The rest of a large transaction, then its commit.
            let open = std::mem::take(&mut self.open);
            self.open_rows = 0;
            self.execute(open).await?;
            return self.finish(commit).await;
        }
        self.open_rows = 0;
        for b in self.open.drain(..) {
            self.ready_rows += b.len();
            self.ready.push(b);
        }
        self.last = Some(commit);
        if self.ready_rows >= GROUP_ROWS || self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        self.open.clear();
        self.open_rows = 0;
        if self.in_txn {
            self.abandon().await;
        }
        Ok(())
    }

    async fn schema_change(&mut self, change: Arc<DdlChange>) -> Result<()> {
        self.flush().await?;
        if self.in_txn {
            return Err(Error::Internal(
                "a schema change inside an open source transaction".into(),
            ));
        }
        self.session().schema_change(&change, self.part + 1).await?;
        self.after_schema_change();
        self.reporter.applied(change.commit_ts_us, 0);
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<bool> {
        self.flush().await?;
        Ok(self.open.is_empty() && !self.in_txn)
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(FLUSH_EVERY)
    }

    async fn tick(&mut self) -> Result<()> {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        self.flush().await?;
        if self.in_txn {
            // Part of a source transaction: the source sends it again.
            self.abandon().await;
        }
        Ok(())
    }
}

/// One connection of the sink, for what is not a row change: schema
/// changes, and tables brought in line with their definitions.
pub(crate) struct Session<'a> {
    pub sink: &'a PostgresSink,
    pub client: &'a Client,
}

impl Session<'_> {
    /// Runs one statement of a schema change, logged.
    async fn run(&self, what: &str, sql: &str) -> Result<()> {
        tracing::info!(sink = %self.sink.name, statement = %sql, "{what}");
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| self.sink.endpoint.error(format!("{what}: `{sql}`"), e))
    }

    /// Runs `body` between BEGIN and COMMIT, rolled back if it fails.
    async fn transaction(&self, body: impl AsyncFnOnce() -> Result<()>) -> Result<()> {
        let ep = &self.sink.endpoint;
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| ep.error("starting a transaction", e))?;
        let result = match body().await {
            Ok(()) => self
                .client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| ep.error("committing", e)),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
        result
    }

    /// Brings `target`'s table in line with its definition (see
    /// [`crate::ddl`]): inside the open transaction when `in_txn`, else
    /// in one of its own.
    pub async fn bring_in_line(&self, target: &Target, in_txn: bool) -> Result<()> {
        if self.sink.on_schema_change != OnSchemaChange::Translate {
            return Ok(());
        }
        let sql = self.sink.bring_in_line(self.client, target).await?;
        let what = format!("bringing {} in line with the source", target.display());
        if in_txn {
            // Inside a large source transaction's target transaction:
            // part of it, and as atomic.
            for s in &sql {
                self.run(&what, s).await?;
            }
        } else if !sql.is_empty() {
            // Its own transaction: what it does is found from the
            // catalog again after a crash, so it never runs twice.
            self.transaction(async || {
                for s in &sql {
                    self.run(&what, s).await?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Replays a schema change (everything before it is committed), and
    /// moves the checkpoints of lanes `0..lanes` past it in the same
    /// transaction.
    pub async fn schema_change(&self, change: &DdlChange, lanes: usize) -> Result<()> {
        let sink = self.sink;
        let statement = sluice_core::text::abbreviate(&change.sql);
        let past = sink
            .checkpoint
            .upsert(checkpoint::CDC, 0..lanes.max(1), &change.position);
        match sink.on_schema_change {
            OnSchemaChange::Skip => {
                tracing::warn!(
                    sink = %sink.name,
                    position = %change.position,
                    %statement,
                    "schema change not replayed on PostgreSQL (on_schema_change: skip)"
                );
                // Checkpointed past it, so a restart does not meet it again.
                return self.run("writing the checkpoint", &past).await;
            }
            OnSchemaChange::Fail => {
                return Err(Error::precondition(
                    format!(
                        "{}: a schema change at {} (on_schema_change: fail): {statement}",
                        sink.endpoint.role, change.position,
                    ),
                    "every change before it is applied and checkpointed: make the same change to the PostgreSQL table by hand, set `on_schema_change: skip` on the sink, and run again",
                ))
            }
            OnSchemaChange::Translate => {}
        }
        let known = sink.known_tables();
        // An added column needs values for the rows already there.
        let empty = match &change.change {
            SchemaChange::AlterTable { table, actions, .. }
                if actions
                    .iter()
                    .any(|a| matches!(a, AlterAction::AddColumn { .. })) =>
            {
                let t = sink.renames.target(table);
                let q = format!("{}.{}", quote_ident(&t.database), quote_ident(&t.name));
                sink.is_empty(self.client, &q).await?
            }
            _ => true,
        };
        let ctx = ddl::Context {
            renames: &sink.renames,
            history: sink.history,
            known: &known,
            types: sink.types,
            empty,
        };
        let sql = ddl::explicit(&change.change, &ctx)?;
        // A unique key or foreign key PostgreSQL has and the source no
        // longer does is dropped only after a statement that drops one.
        let drops = |what: &dyn Fn(&AlterAction) -> bool| {
            matches!(&change.change, SchemaChange::AlterTable { actions, .. }
                if actions.iter().any(what))
        };
        let dropped = crate::Dropped {
            foreign_key: drops(&|a| {
                matches!(a, AlterAction::Other(w)
                    if w.starts_with("DROP FOREIGN") || w.starts_with("DROP CONSTRAINT"))
            }),
            unique_key: matches!(change.change, SchemaChange::DropIndex { .. })
                || drops(&|a| {
                    matches!(a, AlterAction::DropIndex { .. })
                        || matches!(a, AlterAction::Other(w) if w.starts_with("DROP CONSTRAINT"))
                }),
        };
        // The definitions the source read with the statement bring the
        // table's indexes and foreign keys in line at once (a foreign key's
        // actions must be there before the parent's next change) when they
        // describe it right after the statement: their columns are what
        // PostgreSQL now has. Otherwise the source was already past a
        // later change, and the table is brought in line with its next
        // rows, as the binlog describes them.
        let what = format!("replaying the schema change at {}", change.position);
        // One transaction with the checkpoint: replayed after a crash, a
        // swap of two names (RENAME a TO tmp, b TO a, tmp TO b) would
        // otherwise swap them back.
        let ep = &sink.endpoint;
        self.transaction(async || {
            for s in &sql {
                self.run(&what, s).await?;
            }
            for schema in &change.tables {
                let target = sink.target(schema)?;
                let Some(have) = ddl::columns(ep, self.client, &target.qualified).await? else {
                    let listed = match &change.change {
                        SchemaChange::CreateTable {
                            columns: Some(c), ..
                        } => Some(c),
                        _ => None,
                    };
                    let described: Vec<&String> = target.columns.iter().map(|c| &c.name).collect();
                    if listed.is_some_and(|l| l.iter().eq(described.iter().copied())) {
                        // Created now, not with its first row: an empty
                        // table is a table too. Only when the definition
                        // has the statement's columns: after a restart the
                        // catalog may describe a later table of the name,
                        // which its first rows' definitions then do not.
                        for s in sink.bring_in_line(self.client, &target).await? {
                            self.run(&what, &s).await?;
                        }
                    }
                    continue;
                };
                let now: BTreeSet<&str> = have.iter().map(|c| c.name.as_str()).collect();
                let described: BTreeSet<&str> =
                    target.columns.iter().map(|c| c.name.as_str()).collect();
                if described == now {
                    for s in sink.keys_in_line(self.client, &target, dropped).await? {
                        self.run(&what, &s).await?;
                    }
                }
            }
            self.run("writing the checkpoint", &past).await
        })
        .await
        .map_err(|e| schema_change_error(e, &statement))
    }
}

/// A translated schema change PostgreSQL refused: what to do about it.
fn schema_change_error(e: Error, statement: &str) -> Error {
    match e {
        Error::Server { role, url, context, detail, .. } => Error::Server {
            role,
            url,
            context: format!("{context} (translating `{statement}`)"),
            detail,
            hint: Some("every change before it is applied and checkpointed: make the change to the PostgreSQL table by hand, set `on_schema_change: skip` on the sink, run until it is past the statement, then set it back".into()),
        },
        other => other,
    }
}

/// The user may not turn foreign key triggers off.
pub(crate) fn unchecked_error(ep: &crate::connect::Endpoint, e: tokio_postgres::Error) -> Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
        return Error::precondition(
            format!(
                "{}: the source changed rows with foreign_key_checks = 0, which MySQL neither checks nor cascades; applying them the same way needs `SET session_replication_role`, which this user may not: {}",
                ep.role,
                crate::connect::detail(&e)
            ),
            "as a superuser: GRANT SET ON PARAMETER session_replication_role TO the sink's user (PostgreSQL 15+), or make the user a superuser; everything before the transaction is applied",
        );
    }
    ep.error("turning foreign key checks off for a transaction", e)
}
