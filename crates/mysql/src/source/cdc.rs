//! Following the binlog: row events of the selected tables become change
//! batches, transaction ends become commits, schema changes are tracked and
//! passed on, and a dropped connection is resumed from the last commit.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::CdcConfig;
use crate::binlog::ddl::{self, DdlKind};
use crate::binlog::reader::{BinlogEvent, BinlogReader, RawRows, StartAt};
use crate::binlog::schema::{self, Collations, MappedTable};
use crate::catalog;
use crate::connect::Endpoint;
use crate::decode::RowDecoder;
use crate::event::{
    ChangeBatch, Constraints, EventInfo, KeyKind, Op, Position, TableId, TableSchema,
};
use crate::filter::TableFilter;
use crate::stage::{Commit, DdlChange, Emitter, Message, OnUnsupportedDdl, Stop};
use crate::throttle::Throttle;
use crate::types::arrow_schema;
use crate::{Error, Result};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct CdcReader {
    endpoint: Endpoint,
    server_id: u32,
    filter: TableFilter,
    tables: known::Tables,
    batch_size: usize,
    heartbeat: Duration,
    on_unsupported: OnUnsupportedDdl,
    /// Reconnection attempts in a row without progress before giving up.
    reconnect_attempts: u32,
    /// For reading table definitions the binlog cannot describe.
    meta: Option<Conn>,
    collations: Collations,
    throttle: Option<Arc<Throttle>>,
    /// Every foreign key's (child, parent) on the source, kept current
    /// through schema changes: which tables are joined decides how sinks
    /// order their changes.
    foreign_keys: Vec<(TableId, TableId)>,
    /// What each table's last TABLE_MAP resolved to, while both the map
    /// and the table's known definition are the same `Arc`s.
    resolved: foldhash::HashMap<TableId, Resolved>,
    /// The last tables' resolutions by the reader's `Arc`s, checked by
    /// pointer and by the tables' generation: found without hashing the
    /// table's name three times for every rows event.
    fast: Vec<Fast>,
    spare: Spare,
}

struct Fast {
    table: Arc<TableId>,
    mapped: Arc<MappedTable>,
    generation: u64,
    schema: Arc<TableSchema>,
    keep: Option<Vec<usize>>,
}

/// Resolutions [`CdcReader::fast`] keeps.
const FAST_KEPT: usize = 16;

mod known {
    use std::sync::Arc;

    use crate::event::{TableId, TableSchema};

    /// The selected tables' definitions. Every change goes through a
    /// method that counts it, so that what was derived from a definition
    /// can tell it is still current.
    pub struct Tables {
        map: foldhash::HashMap<TableId, Arc<TableSchema>>,
        generation: u64,
    }

    impl Tables {
        pub fn new(tables: impl IntoIterator<Item = Arc<TableSchema>>) -> Self {
            Tables {
                map: tables.into_iter().map(|t| (t.id.clone(), t)).collect(),
                generation: 0,
            }
        }

        /// Changes with every insert, removal or replacement.
        pub fn generation(&self) -> u64 {
            self.generation
        }

        pub fn get(&self, id: &TableId) -> Option<&Arc<TableSchema>> {
            self.map.get(id)
        }

        pub fn contains_key(&self, id: &TableId) -> bool {
            self.map.contains_key(id)
        }

        pub fn values(&self) -> impl Iterator<Item = &Arc<TableSchema>> {
            self.map.values()
        }

        pub fn keys(&self) -> impl Iterator<Item = &TableId> {
            self.map.keys()
        }

        pub fn insert(&mut self, id: TableId, t: Arc<TableSchema>) {
            self.generation += 1;
            self.map.insert(id, t);
        }

        pub fn remove(&mut self, id: &TableId) -> Option<Arc<TableSchema>> {
            self.generation += 1;
            self.map.remove(id)
        }

        pub fn retain(&mut self, keep: impl FnMut(&TableId, &mut Arc<TableSchema>) -> bool) {
            self.generation += 1;
            self.map.retain(keep)
        }

        /// Every definition replaced by `tables`.
        pub fn replace(&mut self, tables: impl IntoIterator<Item = Arc<TableSchema>>) {
            self.generation += 1;
            self.map = tables.into_iter().map(|t| (t.id.clone(), t)).collect();
        }
    }
}

struct Resolved {
    mapped: Arc<MappedTable>,
    schema: Arc<TableSchema>,
    keep: Option<Vec<usize>>,
}

/// Messages read but not handed on yet: while the sinks' queue is full,
/// the next transactions join them and go as one [`Message::Group`].
#[derive(Default)]
struct Held {
    msgs: Vec<Message>,
    rows: usize,
}

/// The longest a held message waits for room.
const HOLD: Duration = Duration::from_millis(10);
/// Messages held at most before the source waits for room.
const HOLD_MESSAGES: usize = 1024;

impl Held {
    fn push(&mut self, m: Message) {
        if let Message::Batch(b) = &m {
            self.rows += b.len();
        }
        self.msgs.push(m);
    }

    fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Holds as many rows as a batch, or many messages: wait for room.
    fn full(&self, batch_rows: usize) -> bool {
        self.rows >= batch_rows || self.msgs.len() >= HOLD_MESSAGES
    }

    fn take(&mut self) -> Option<Message> {
        self.rows = 0;
        match self.msgs.len() {
            0 => None,
            1 => self.msgs.pop(),
            _ => Some(Message::Group(std::mem::take(&mut self.msgs))),
        }
    }

    /// Hands on what is held, waiting for room; `false` if the sinks are gone.
    async fn flush(&mut self, out: &Emitter) -> bool {
        match self.take() {
            Some(m) => out.send(m).await.is_ok(),
            None => true,
        }
    }

    /// Hands on what is held if there is room now; `Err` if the sinks are gone.
    fn try_flush(&mut self, out: &Emitter) -> std::result::Result<(), ()> {
        if self.msgs.is_empty() {
            return Ok(());
        }
        match out.try_reserve() {
            Ok(permit) => {
                if let Some(m) = self.take() {
                    permit.send(m);
                }
                Ok(())
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(())) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => Err(()),
        }
    }
}

/// Why following stopped without an error.
enum Flow {
    Stopped,
    /// The sinks are gone (they failed; the engine reports why).
    Closed,
    /// The server ended the stream (it is shutting down): reconnect.
    Ended,
}

impl CdcReader {
    pub fn new(
        endpoint: Endpoint,
        server_id: u32,
        filter: TableFilter,
        tables: Vec<Arc<TableSchema>>,
        batch_size: usize,
        config: &CdcConfig,
        throttle: Option<Arc<Throttle>>,
    ) -> Self {
        CdcReader {
            endpoint,
            server_id,
            filter,
            tables: known::Tables::new(tables),
            batch_size: batch_size.max(1),
            heartbeat: Duration::from_millis(config.heartbeat_ms.max(100)),
            on_unsupported: config.on_unsupported_ddl,
            reconnect_attempts: config.reconnect_attempts,
            meta: None,
            collations: Collations::new(),
            throttle,
            foreign_keys: Vec::new(),
            resolved: Default::default(),
            fast: Vec::new(),
            spare: Spare::default(),
        }
    }

    /// Follows changes from `from` until stopped. Reconnects with backoff
    /// after a lost connection, from the last complete transaction; gives up
    /// after `cdc.reconnect_attempts` attempts in a row that made no progress.
    pub async fn run(mut self, from: Position, out: Emitter, mut stop: Stop) -> Result<()> {
        tracing::info!(position = %from, server_id = self.server_id, "following the binlog");
        let mut resume = from;
        let mut backoff = Duration::from_millis(250);
        let mut failures = 0u32;
        let mut checked = false;
        loop {
            let before = resume.clone();
            // The precheck's connection can be lost too (the source went
            // away just after the snapshot): it is retried like the stream.
            let result = match checked {
                true => self.follow(&mut resume, &out, &mut stop).await,
                false => match self.precheck().await {
                    Ok(()) => {
                        checked = true;
                        self.follow(&mut resume, &out, &mut stop).await
                    }
                    Err(e) => Err(e),
                },
            };
            let err = match result {
                Ok(Flow::Stopped) | Ok(Flow::Closed) => return Ok(()),
                Ok(Flow::Ended) => Error::Data("the source closed the binlog stream".into()),
                Err(
                    e @ (Error::Precondition { .. }
                    | Error::Data(_)
                    | Error::Config(_)
                    | Error::Internal(_)),
                ) => return Err(e),
                Err(e) => e,
            };
            if resume != before {
                failures = 0;
                backoff = Duration::from_millis(250);
            }
            failures += 1;
            if failures > self.reconnect_attempts {
                return Err(Error::precondition(
                    format!(
                        "lost the binlog connection to the source at {} {failures} times in a row without progress, at {resume}; last error: {err}",
                        self.endpoint.masked()
                    ),
                    "check that the source is up and reachable, then rerun the pipeline: it resumes from its checkpoint",
                ));
            }
            crate::progress::transient_error();
            tracing::warn!(error = %err, position = %resume, attempt = failures, retry_in_ms = backoff.as_millis() as u64, "binlog connection lost; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The source must log full row images for sluice to apply changes
    /// exactly (checked again here: settings can change after `sluice run`'s
    /// precheck, and a resumed pipeline may start straight here).
    async fn precheck(&mut self) -> Result<()> {
        let mut conn = self.endpoint.connect(&[]).await?;
        crate::precheck::enforce(
            &super::precheck::binlog_settings(&self.endpoint, &mut conn).await?,
        )?;
        // Some collations (MariaDB's UCA 14) have no id; they never appear in a binlog.
        let collations: Vec<(Option<u16>, Option<String>, String)> = conn
            .query(
                "SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS",
            )
            .await
            .map_err(|e| self.endpoint.error("reading the collations", e))?;
        self.collations = collations
            .into_iter()
            .filter_map(|(id, cs, name)| Some((id?, (cs?, name))))
            .collect();
        self.foreign_keys = catalog::foreign_key_edges(&self.endpoint, &mut conn).await?;
        self.meta = Some(conn);
        Ok(())
    }

    async fn follow(
        &mut self,
        resume: &mut Position,
        out: &Emitter,
        stop: &mut Stop,
    ) -> Result<Flow> {
        let start = if !resume.file.is_empty() {
            StartAt::File {
                file: resume.file.to_string(),
                offset: resume.offset.max(4),
            }
        } else if let Some(g) = &resume.gtid {
            StartAt::MariaDbGtid(g.to_string())
        } else {
            return Err(Error::Internal("no binlog position to start from".into()));
        };
        let mut reader = BinlogReader::open(
            &self.endpoint,
            self.server_id,
            &start,
            resume.gtid.as_deref().unwrap_or(""),
            self.heartbeat,
            self.collations.clone(),
        )
        .await?;
        // Changes of the open transaction already sent on: a reconnect must retract them.
        let mut partial = false;
        let mut held = Held::default();
        let flow = self
            .events(&mut reader, resume, out, stop, &mut held, &mut partial)
            .await;
        // Whatever ended the loop, what was read goes on: `resume` is past it.
        let closed = !held.flush(out).await || matches!(flow, Ok(Flow::Closed));
        if partial && !closed {
            // Stopped, ended or failed mid-transaction: the sinks must not
            // commit half of it.
            let _ = out.send(Message::Rollback).await;
        }
        reader.close().await;
        flow
    }

    /// Reads events and hands them on until the stream ends, the run
    /// stops, or the sinks are gone.
    async fn events(
        &mut self,
        reader: &mut BinlogReader,
        resume: &mut Position,
        out: &Emitter,
        stop: &mut Stop,
        held: &mut Held,
        partial: &mut bool,
    ) -> Result<Flow> {
        let mut standalone = false;
        // Held messages wait at most HOLD for the sinks to make room.
        let hold = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(hold);
        let mut armed = false;
        // Rows of consecutive rows events of one table and kind, decoded
        // into one batch: the cost of a batch is mostly per batch, not per
        // row, and transactions often change a table in several events.
        let mut pending: Option<Pending> = None;
        loop {
            // `None`: the hold ran out (nothing awaits inside select!: the
            // stop future holds a lock guard). While catching up the next
            // event is already read: it is taken without the select
            // (`next` is cancel-safe), which cost more than small events.
            if *stop.borrow() {
                return Ok(Flow::Stopped);
            }
            let ready = if armed && hold.is_elapsed() {
                Some(None)
            } else {
                futures::FutureExt::now_or_never(reader.next()).map(Some)
            };
            let next = match ready {
                Some(next) => next,
                None => tokio::select! {
                    n = reader.next() => Some(n),
                    () = &mut hold, if armed => None,
                    _ = stop.wait_for(|s| *s) => return Ok(Flow::Stopped),
                },
            };
            let Some(next) = next else {
                armed = false;
                if !self.seal(&mut pending, held, out).await? || !held.flush(out).await {
                    return Ok(Flow::Closed);
                }
                continue;
            };
            let ev = match next? {
                Some(ev) => ev,
                None => return Ok(Flow::Ended),
            };
            let ts_us = reader.last_timestamp as i64 * 1_000_000;
            if !matches!(ev, BinlogEvent::Rows { .. })
                && !self.seal(&mut pending, held, out).await?
            {
                return Ok(Flow::Closed);
            }
            let sent = match ev {
                BinlogEvent::Begin { .. } => true,
                BinlogEvent::Standalone { .. } => {
                    standalone = true;
                    true
                }
                BinlogEvent::Rows {
                    table,
                    op,
                    rows,
                    mapped,
                    foreign_key_checks,
                } => {
                    let position;
                    let (schema, keep) = match self.fast_resolve(&table, mapped.as_ref()) {
                        Some(hit) => {
                            position = Arc::new(reader.position());
                            hit
                        }
                        None => {
                            if !self.selected(&table) {
                                continue;
                            }
                            position = Arc::new(reader.position());
                            let (schema, keep) =
                                self.resolve(&table, mapped.clone(), &position).await?;
                            self.remember(&table, mapped, &schema, &keep);
                            (schema, keep)
                        }
                    };
                    check_shape(&schema, keep.as_deref(), &rows, &position)?;
                    let mut ok = true;
                    if pending
                        .as_ref()
                        .is_some_and(|p| !p.joins(&schema, keep.as_deref(), op))
                    {
                        ok = self.seal(&mut pending, held, out).await?;
                    }
                    let mut info = EventInfo::new(op, position.clone(), ts_us);
                    info.foreign_key_checks = foreign_key_checks;
                    let mut rows = rows;
                    while ok && !rows.is_empty() {
                        *partial = true;
                        let p = pending.get_or_insert_with(|| {
                            Pending::new(
                                schema.clone(),
                                keep.clone(),
                                op,
                                rows.images(),
                                &mut self.spare,
                            )
                        });
                        p.take(&mut rows, self.batch_size, &info)?;
                        if p.events.len() >= self.batch_size {
                            ok = self.seal(&mut pending, held, out).await?;
                        }
                    }
                    ok
                }
                BinlogEvent::Commit => {
                    let position = reader.position();
                    *resume = position.clone();
                    *partial = false;
                    let c = Commit {
                        position,
                        commit_ts_us: ts_us,
                    };
                    held.push(Message::Commit(Arc::new(c)));
                    // On at once if the sinks have room; else more
                    // transactions join it.
                    match held.try_flush(out) {
                        Err(()) => false,
                        Ok(()) if held.full(self.batch_size) => held.flush(out).await,
                        Ok(()) => true,
                    }
                }
                BinlogEvent::Query { schema, sql } => {
                    if !held.flush(out).await {
                        return Ok(Flow::Closed);
                    }
                    let ok = self
                        .statement(&schema, &sql, reader.position(), ts_us, out)
                        .await?;
                    if standalone {
                        *resume = reader.position();
                        standalone = false;
                    }
                    ok
                }
                BinlogEvent::Heartbeat => {
                    if *partial {
                        true
                    } else {
                        held.push(Message::Heartbeat);
                        held.flush(out).await
                    }
                }
            };
            if !sent {
                return Ok(Flow::Closed);
            }
            if held.is_empty() && pending.is_none() {
                armed = false;
            } else if !armed {
                hold.as_mut().reset(tokio::time::Instant::now() + HOLD);
                armed = true;
            }
        }
    }

    /// The definition to decode a rows event of `table` with: the binlog's
    /// own description of the table at that point (TABLE_MAP metadata), with
    /// what information_schema adds; the cached one while they agree.
    async fn resolve(
        &mut self,
        table: &TableId,
        mapped: Option<Arc<MappedTable>>,
        position: &Position,
    ) -> Result<(Arc<TableSchema>, Option<Vec<usize>>)> {
        let Some(mapped) = mapped else {
            return self.resolve_map(table, None, position).await;
        };
        if let Some(r) = self.resolved.get(table) {
            let current = self.tables.get(table);
            if Arc::ptr_eq(&r.mapped, &mapped) && current.is_some_and(|t| Arc::ptr_eq(t, &r.schema))
            {
                return Ok((r.schema.clone(), r.keep.clone()));
            }
        }
        let (schema, keep) = self
            .resolve_map(table, Some((*mapped).clone()), position)
            .await?;
        if self
            .tables
            .get(table)
            .is_some_and(|t| Arc::ptr_eq(t, &schema))
        {
            self.resolved.insert(
                table.clone(),
                Resolved {
                    mapped,
                    schema: schema.clone(),
                    keep: keep.clone(),
                },
            );
        }
        Ok((schema, keep))
    }

    /// What [`Self::resolve`] gave for the same `Arc`s of the reader, while
    /// no definition changed since.
    fn fast_resolve(
        &self,
        table: &Arc<TableId>,
        mapped: Option<&Arc<MappedTable>>,
    ) -> Option<(Arc<TableSchema>, Option<Vec<usize>>)> {
        let mapped = mapped?;
        let generation = self.tables.generation();
        self.fast
            .iter()
            .find(|f| {
                Arc::ptr_eq(&f.table, table)
                    && Arc::ptr_eq(&f.mapped, mapped)
                    && f.generation == generation
            })
            .map(|f| (f.schema.clone(), f.keep.clone()))
    }

    /// Keeps a resolution for [`Self::fast_resolve`] when it is the known
    /// definition of a selected table (what [`Self::resolve`] caches too).
    fn remember(
        &mut self,
        table: &Arc<TableId>,
        mapped: Option<Arc<MappedTable>>,
        schema: &Arc<TableSchema>,
        keep: &Option<Vec<usize>>,
    ) {
        let Some(mapped) = mapped else { return };
        let generation = self.tables.generation();
        if !self
            .tables
            .get(table)
            .is_some_and(|t| Arc::ptr_eq(t, schema))
        {
            return;
        }
        self.fast.retain(|f| f.generation == generation);
        if self.fast.len() >= FAST_KEPT {
            self.fast.remove(0);
        }
        self.fast.push(Fast {
            table: table.clone(),
            mapped,
            generation,
            schema: schema.clone(),
            keep: keep.clone(),
        });
    }

    /// [`Self::resolve`] without its cache.
    async fn resolve_map(
        &mut self,
        table: &TableId,
        mapped: Option<MappedTable>,
        position: &Position,
    ) -> Result<(Arc<TableSchema>, Option<Vec<usize>>)> {
        let cached = self.tables.get(table).cloned();
        let Some(mut mapped) = mapped else {
            // No FULL metadata: fall back to information_schema (racy under fast DDL).
            let schema = match cached {
                Some(c) => c,
                None => self.reload(table).await?.ok_or_else(|| {
                    Error::Data(format!(
                        "{table} at {position}: the table no longer exists and the binlog does not describe it; set binlog_row_metadata=FULL on the source"
                    ))
                })?,
            };
            let keep = (!schema.ddl.generated.is_empty()).then(|| {
                (0..schema.columns.len() + schema.ddl.generated.len())
                    .filter(|i| !schema.ddl.generated.iter().any(|(g, _)| g == i))
                    .collect()
            });
            return Ok((schema, keep));
        };
        // Generated columns travel in the binlog's rows; the target computes them.
        let generated: Vec<String> = match &cached {
            Some(c) => c.ddl.generated.iter().map(|(_, n)| n.clone()).collect(),
            None => match self.reload(table).await? {
                Some(k) => k.ddl.generated.iter().map(|(_, n)| n.clone()).collect(),
                None => Vec::new(),
            },
        };
        let keep = without_generated(&mut mapped, &generated);
        let cached = self.tables.get(table).cloned();
        if let Some(c) = &cached {
            if schema::same_shape(&c.columns, &mapped.columns) {
                return Ok((c.clone(), keep));
            }
        }
        let known = match &cached {
            Some(c) => Some(c.clone()),
            // A table new to sluice: information_schema may know its special types.
            None => self.reload(table).await?,
        };
        let names = |k: &TableSchema, idx: &[usize]| -> Vec<String> {
            idx.iter().map(|&i| k.columns[i].name.clone()).collect()
        };
        let (known_columns, known_key, known_kind, known_ddl, known_unique, foreign_key) =
            match &known {
                Some(k) => (
                    k.columns.clone(),
                    names(k, &k.key),
                    k.key_kind,
                    k.ddl.clone(),
                    k.constraints
                        .unique_keys
                        .iter()
                        .map(|u| names(k, u))
                        .collect::<Vec<_>>(),
                    k.constraints.foreign_key,
                ),
                None => (
                    Vec::new(),
                    Vec::new(),
                    KeyKind::None,
                    Default::default(),
                    Vec::new(),
                    false,
                ),
            };
        schema::merge_known(&mut mapped.columns, &known_columns);
        let (key, key_kind) = match mapped.primary_key {
            Some(pk) if !pk.is_empty() => (pk, KeyKind::Primary),
            _ => {
                // The binlog names primary keys only: keep a unique key by column names.
                let idx: Option<Vec<usize>> = known_key
                    .iter()
                    .map(|n| mapped.columns.iter().position(|c| &c.name == n))
                    .collect();
                match idx {
                    Some(i) if !i.is_empty() => (i, known_kind),
                    _ => (Vec::new(), KeyKind::None),
                }
            }
        };
        // Unique keys by column names; one whose columns are gone is gone.
        let position_of = |n: &String| mapped.columns.iter().position(|c| &c.name == n);
        let mut unique_keys: Vec<Vec<usize>> = known_unique
            .iter()
            .filter_map(|u| u.iter().map(position_of).collect::<Option<Vec<usize>>>())
            .collect();
        if !key.is_empty() && !unique_keys.contains(&key) {
            unique_keys.push(key.clone());
        }
        let schema = Arc::new(TableSchema {
            id: table.clone(),
            arrow: arrow_schema(&mapped.columns),
            columns: mapped.columns,
            key,
            key_kind,
            ddl: known_ddl,
            estimated_rows: 0,
            constraints: Constraints {
                unique_keys,
                foreign_key,
            },
        });
        tracing::debug!(table = %table, %position, "table definition taken from the binlog");
        self.tables.insert(table.clone(), schema.clone());
        Ok((schema, keep))
    }

    /// Hands the pending rows on as a batch; `false` if the sinks are gone.
    async fn seal(
        &mut self,
        pending: &mut Option<Pending>,
        held: &mut Held,
        out: &Emitter,
    ) -> Result<bool> {
        let Some(p) = pending.take() else {
            return Ok(true);
        };
        let batch = p.finish(&mut self.spare)?;
        crate::throttle::while_paused().await;
        if let Some(throttle) = &self.throttle {
            throttle
                .take(batch.len() as u64, batch.byte_size() as u64)
                .await;
        }
        held.push(Message::Batch(batch));
        Ok(!held.full(self.batch_size) || held.flush(out).await)
    }

    /// Reads a table's definition from the source; `None` if it no longer exists.
    async fn reload(&mut self, id: &TableId) -> Result<Option<Arc<TableSchema>>> {
        if self.meta.is_none() {
            self.meta = Some(self.endpoint.connect(&[]).await?);
        }
        let Some(conn) = self.meta.as_mut() else {
            return Ok(None);
        };
        // The source runs ahead of the binlog being read: the table may be
        // renamed or dropped between the two lookups, which leaves it with
        // no columns. Gone then is gone, not a missing privilege.
        let loaded = if table_exists(&self.endpoint, conn, id).await? {
            match catalog::load_schema(&self.endpoint, conn, id, 0).await {
                Ok(schema) => Some(schema),
                Err(_) if !table_exists(&self.endpoint, conn, id).await? => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let Some(schema) = loaded else {
            self.tables.remove(id);
            return Ok(None);
        };
        self.tables.insert(id.clone(), Arc::new(schema));
        self.mark_foreign_keys();
        Ok(self.tables.get(id).cloned())
    }

    /// Reads again the keys and foreign keys of the tables a schema change
    /// names: they decide how the sinks may reorder changes. What the
    /// binlog cannot say is read from information_schema now, which may
    /// already be past later statements: a statement that adds a unique or
    /// foreign key counts as having added it even if it is gone again.
    async fn refresh_constraints(&mut self, st: &ddl::Statement, sql: &str) -> Result<()> {
        let upper = sql.to_ascii_uppercase();
        for t in &st.tables {
            if !self.selected(&t.table) {
                continue;
            }
            let Some(fresh) = self.reload(&t.table).await? else {
                continue;
            };
            if upper.contains("UNIQUE") && !fresh.has_other_unique_keys() {
                // Conservative: a whole-row "unique key" makes the sinks
                // order every change of the table.
                let mut s = (*fresh).clone();
                s.constraints
                    .unique_keys
                    .push((0..s.columns.len()).collect());
                self.tables.insert(t.table.clone(), Arc::new(s));
            }
        }
        if upper.contains("FOREIGN") || upper.contains("REFERENCES") {
            if let Some(conn) = self.meta.as_mut() {
                self.foreign_keys = catalog::foreign_key_edges(&self.endpoint, conn).await?;
            }
            self.mark_foreign_keys();
        }
        Ok(())
    }

    /// Marks the known tables a foreign key joins (a table read again from
    /// information_schema comes without its mark).
    fn mark_foreign_keys(&mut self) {
        let mut all: Vec<Arc<TableSchema>> = self.tables.values().cloned().collect();
        if catalog::mark_foreign_keys(&mut all, &self.foreign_keys) {
            self.tables.replace(all);
        }
    }

    fn selected(&self, t: &TableId) -> bool {
        self.tables.contains_key(t) || self.filter.matches(t)
    }

    /// A statement from the binlog: schema changes of selected tables are
    /// tracked and passed on; others are skipped. `false` if the sinks are gone.
    async fn statement(
        &mut self,
        schema: &str,
        sql: &str,
        position: Position,
        ts_us: i64,
        out: &Emitter,
    ) -> Result<bool> {
        let st = ddl::parse(schema, sql);
        let concerns = match &st.kind {
            DdlKind::Other => false,
            DdlKind::CreateDatabase | DdlKind::AlterDatabase => st
                .database
                .as_ref()
                .is_some_and(|(db, _)| self.filter.may_select_database(db)),
            DdlKind::DropDatabase => st
                .database
                .as_ref()
                .is_some_and(|(db, _)| self.tables.keys().any(|t| &t.database == db)),
            DdlKind::Unsupported(_) | DdlKind::Unrecognized => {
                let what = match &st.kind {
                    DdlKind::Unsupported(what) => what.clone(),
                    _ => "a schema change sluice does not understand".to_string(),
                };
                // Which tables it changes is unknown when none could be read:
                // it may concern this pipeline if it ran in a database the
                // pipeline selects from, or names one.
                let named = st.tables.iter();
                let selected = if st.tables.is_empty() {
                    let text = sql.to_ascii_lowercase();
                    self.filter.may_select_database(schema)
                        || self
                            .tables
                            .keys()
                            .any(|t| text.contains(&t.database.to_ascii_lowercase()))
                } else {
                    named.clone().any(|t| self.selected(&t.table))
                };
                if !selected {
                    return Ok(true);
                }
                let on = if st.tables.is_empty() {
                    "a table sluice cannot tell".to_string()
                } else {
                    named
                        .map(|t| t.table.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                match self.on_unsupported {
                    OnUnsupportedDdl::Skip => {
                        tracing::warn!(statement = %crate::text::abbreviate(sql), %position, tables = %on, "skipping {what} on a selected table (on_unsupported_ddl: skip); change the target to match by hand");
                        return Ok(true);
                    }
                    OnUnsupportedDdl::Fail => {
                        return Err(Error::precondition(
                            format!(
                                "the source's binlog at {position} has `{}` ({what}, on {on}), which sluice cannot apply",
                                crate::text::abbreviate(sql)
                            ),
                            "apply it to the target by hand, then set `source.mysql.cdc.on_unsupported_ddl: skip` and rerun",
                        ))
                    }
                }
            }
            _ => st.tables.iter().any(|t| self.selected(&t.table)),
        };
        if !concerns {
            return Ok(true);
        }
        // Track the new definitions before any later row arrives.
        match &st.kind {
            DdlKind::DropDatabase => {
                if let Some((db, _)) = &st.database {
                    self.tables.retain(|t, _| &t.database != db);
                }
            }
            DdlKind::CreateDatabase | DdlKind::AlterDatabase => {}
            DdlKind::DropTable => {
                for t in &st.tables {
                    self.tables.remove(&t.table);
                }
            }
            DdlKind::RenameTable | DdlKind::AlterTable => {
                // RENAME a TO b, c TO d (and ALTER TABLE a ... RENAME TO b): carry
                // what sluice knows about a over to b.
                let pairs: Vec<(TableId, TableId)> = if st.kind == DdlKind::RenameTable {
                    st.tables
                        .chunks(2)
                        .filter(|p| p.len() == 2)
                        .map(|p| (p[0].table.clone(), p[1].table.clone()))
                        .collect()
                } else if st.tables.len() == 2 {
                    vec![(st.tables[0].table.clone(), st.tables[1].table.clone())]
                } else {
                    Vec::new()
                };
                for (from, to) in pairs {
                    if let Some(old) = self.tables.remove(&from) {
                        let mut moved = (*old).clone();
                        moved.id = to.clone();
                        self.tables.insert(to, Arc::new(moved));
                    }
                }
            }
            // New tables and changed columns are described by the binlog's
            // TABLE_MAP events from the next row on.
            _ => {}
        }
        if matches!(
            st.kind,
            DdlKind::CreateTable | DdlKind::AlterTable | DdlKind::CreateIndex | DdlKind::DropIndex
        ) {
            self.refresh_constraints(&st, sql).await?;
        }
        let described = ddl::schema_change(schema, sql, &st).ok_or_else(|| {
            Error::Internal(format!(
                "a {:?} statement at {position} reached the sinks undescribed: `{}`",
                st.kind,
                crate::text::abbreviate(sql)
            ))
        })?;
        let tables = st
            .tables
            .iter()
            .filter_map(|t| self.tables.get(&t.table).cloned())
            .collect();
        let change = DdlChange {
            change: described,
            sql: sql.to_string(),
            database: schema.to_string(),
            position,
            commit_ts_us: ts_us,
            tables,
        };
        Ok(out.send(Message::Ddl(Arc::new(change))).await.is_ok())
    }
}

/// Rows of one table and kind on their way into a batch.
struct Pending {
    schema: Arc<TableSchema>,
    keep: Option<Vec<usize>>,
    op: Op,
    before: Option<RowDecoder>,
    after: Option<RowDecoder>,
    events: Vec<EventInfo>,
}

/// Decoders kept for the next batches of their tables: building one costs
/// more than the row it decodes.
#[derive(Default)]
struct Spare(Vec<RowDecoder>);

/// Spare decoders kept at most.
const SPARE_DECODERS: usize = 32;

impl Spare {
    fn take(&mut self, schema: &Arc<TableSchema>) -> RowDecoder {
        match self.0.iter().position(|d| Arc::ptr_eq(d.table(), schema)) {
            Some(i) => self.0.swap_remove(i),
            None => RowDecoder::with_capacity(schema.clone(), 1),
        }
    }

    fn put(&mut self, d: RowDecoder) {
        if self.0.len() >= SPARE_DECODERS {
            self.0.remove(0);
        }
        self.0.push(d);
    }
}

impl Pending {
    fn new(
        schema: Arc<TableSchema>,
        keep: Option<Vec<usize>>,
        op: Op,
        images: (bool, bool),
        spare: &mut Spare,
    ) -> Self {
        // Decoders only for the images this kind of event has.
        let mut decoder = |has: bool| has.then(|| spare.take(&schema));
        Pending {
            before: decoder(images.0),
            after: decoder(images.1),
            schema,
            keep,
            op,
            events: Vec::new(),
        }
    }

    /// Whether rows of `schema` and `op` can join these.
    fn joins(&self, schema: &Arc<TableSchema>, keep: Option<&[usize]>, op: Op) -> bool {
        Arc::ptr_eq(&self.schema, schema) && self.keep.as_deref() == keep && self.op == op
    }

    /// Decodes rows of a rows event until the batch holds `limit` rows or
    /// the event has no more.
    fn take(&mut self, rows: &mut RawRows, limit: usize, info: &EventInfo) -> Result<()> {
        while self.events.len() < limit && !rows.is_empty() {
            rows.next_into(
                &self.schema.columns,
                self.keep.as_deref(),
                self.before.as_mut(),
                self.after.as_mut(),
            )
            .map_err(|e| match e {
                Error::Data(m) => Error::Data(format!("{m} (at {})", info.position)),
                e => e,
            })?;
            self.events.push(info.clone());
        }
        Ok(())
    }

    fn finish(self, spare: &mut Spare) -> Result<ChangeBatch> {
        let mut image = |d: Option<RowDecoder>| -> Result<Option<RecordBatch>> {
            let Some(mut d) = d else {
                return Ok(None);
            };
            let batch = (!d.is_empty()).then(|| d.take_batch()).transpose()?;
            spare.put(d);
            Ok(batch)
        };
        Ok(ChangeBatch {
            events: self.events,
            before: image(self.before)?,
            after: image(self.after)?,
            table: self.schema,
        })
    }
}

/// A rows event's columns must be the table's (generated ones aside).
fn check_shape(
    schema: &TableSchema,
    keep: Option<&[usize]>,
    rows: &RawRows,
    position: &Position,
) -> Result<()> {
    let expected = keep.map_or(rows.columns(), |k| k.len());
    if expected != schema.columns.len()
        || keep.is_some_and(|k| k.iter().any(|&i| i >= rows.columns()))
    {
        return Err(Error::Data(format!(
            "{} at {position}: the row has {} values, the table {} columns",
            schema.id,
            rows.columns(),
            schema.columns.len()
        )));
    }
    Ok(())
}

/// Removes the generated columns (by name) from a table map's columns;
/// the positions of the others, when any was removed.
fn without_generated(mapped: &mut MappedTable, generated: &[String]) -> Option<Vec<usize>> {
    if generated.is_empty() || !mapped.columns.iter().any(|c| generated.contains(&c.name)) {
        return None;
    }
    let keep: Vec<usize> = (0..mapped.columns.len())
        .filter(|&i| !generated.contains(&mapped.columns[i].name))
        .collect();
    let columns = std::mem::take(&mut mapped.columns);
    mapped.columns = keep.iter().map(|&i| columns[i].clone()).collect();
    mapped.primary_key = mapped.primary_key.take().map(|pk| {
        pk.iter()
            .filter_map(|old| keep.iter().position(|k| k == old))
            .collect()
    });
    Some(keep)
}

async fn table_exists(endpoint: &Endpoint, conn: &mut Conn, id: &TableId) -> Result<bool> {
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&id.database, &id.name),
        )
        .await
        .map_err(|e| endpoint.error(format!("looking up {id}"), e))?;
    Ok(n.unwrap_or(0) > 0)
}
