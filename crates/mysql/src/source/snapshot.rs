//! The consistent snapshot: every selected table read at one point in time,
//! by several connections at once, in key-range chunks.
//!
//! How the readers share one point (documented in docs/pipeline-yaml.md):
//! 1. open N reader connections;
//! 2. `FLUSH TABLES WITH READ LOCK` on a control connection (writes wait);
//! 3. each reader runs `START TRANSACTION WITH CONSISTENT SNAPSHOT`;
//! 4. the binlog position is read (`SHOW MASTER STATUS`, GTID position);
//! 5. `UNLOCK TABLES`. Writes were blocked from 2 to 5 only: milliseconds.
//!
//! Chunks: a table whose key starts with an integer column is split into
//! ranges of that column, each read by one connection; others are read in
//! one stream. Memory stays bounded because rows become batches of at most
//! `batch_size` rows (or 32 MiB) and the channel to the sinks is bounded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use super::SnapshotLock;
use crate::connect::Endpoint;
use crate::decode::RowDecoder;
use crate::event::{quote_ident, ChangeBatch, EventInfo, Op, Position, TableSchema};
use crate::ranges::{self, Chunk, Split};
use crate::stage::{Emitter, Message, Stop};
use crate::throttle::Throttle;
use crate::{Error, Result};

/// A batch is cut at this many bytes of variable-length data even if it has
/// fewer than `batch_size` rows, so wide rows cannot exhaust memory.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// Settings long reads need: a slow sink must not make the server drop us.
const READER_SESSION: &[&str] = &[
    "SET SESSION net_write_timeout = 3600",
    "SET SESSION net_read_timeout = 3600",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
];

pub struct SnapshotReader {
    pub endpoint: Endpoint,
    pub tables: Vec<Arc<TableSchema>>,
    pub batch_size: usize,
    pub parallelism: usize,
    pub chunk_rows: u64,
    pub lock: SnapshotLock,
    pub throttle: Option<Arc<Throttle>>,
}

/// One unit of reading work: a key range of a table.
#[derive(Debug)]
struct Work {
    table: Arc<TableSchema>,
    range: Chunk,
    estimated_rows: u64,
}

impl SnapshotReader {
    /// Reads every table; returns the snapshot's position, or `None` when
    /// `stop` ended it early.
    pub async fn run(self, out: Emitter, mut stop: Stop) -> Result<Option<Position>> {
        let n = self.parallelism.max(1);
        let mut readers = Vec::with_capacity(n);
        for _ in 0..n {
            readers.push(self.endpoint.connect(READER_SESSION).await?);
        }
        let position = Arc::new(self.consistent_point(&mut readers).await?);
        let taken_at_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        tracing::info!(position = %position, tables = self.tables.len(), readers = n, "snapshot started");

        let chunks = self.plan(&mut readers[0]).await?;
        tracing::debug!(chunks = chunks.len(), "snapshot planned");
        let queue = Arc::new(Mutex::new(chunks));

        let mut tasks = tokio::task::JoinSet::new();
        for conn in readers {
            let worker = Worker {
                endpoint: self.endpoint.clone(),
                queue: queue.clone(),
                out: out.clone(),
                batch_size: self.batch_size,
                position: position.clone(),
                taken_at_us,
                throttle: self.throttle.clone(),
            };
            tasks.spawn(worker.run(conn));
        }
        loop {
            let res = tokio::select! {
                r = tasks.join_next() => r,
                _ = stop.wait_for(|s| *s) => {
                    tasks.abort_all();
                    tracing::info!("snapshot stopped before it finished");
                    return Ok(None);
                }
            };
            match res {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    tasks.abort_all();
                    return Err(e);
                }
                Some(Err(e)) => return Err(Error::Internal(format!("snapshot reader task: {e}"))),
            }
        }
        let _ = out.send(Message::SnapshotDone(position.clone())).await;
        Ok(Some((*position).clone()))
    }

    /// Puts every reader in a transaction at the same point and returns the
    /// binlog position of that point.
    async fn consistent_point(&self, readers: &mut [Conn]) -> Result<Position> {
        let ep = &self.endpoint;
        let mut control = None;
        let started = Instant::now();
        if self.lock == SnapshotLock::FlushTables {
            let mut c = ep.connect(&[]).await?;
            c.query_drop("FLUSH TABLES WITH READ LOCK").await.map_err(|e| match &e {
                mysql_async::Error::Server(s) if s.code == 1227 || s.code == 1045 => {
                    Error::precondition(
                        format!(
                            "the source user at {} may not run FLUSH TABLES WITH READ LOCK ({})",
                            ep.masked(),
                            s.message
                        ),
                        "GRANT RELOAD ON *.* TO the source user, or set `source.mysql.snapshot.lock: none` with `parallelism: 1` to read without a lock",
                    )
                }
                _ => ep.error("taking the snapshot lock (FLUSH TABLES WITH READ LOCK)", e),
            })?;
            control = Some(c);
        }
        for r in readers.iter_mut() {
            r.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await
                .map_err(|e| ep.error("starting the snapshot transaction", e))?;
        }
        self.verify_schema(&mut readers[0]).await?;
        let mut position = binlog_position(ep, &mut readers[0]).await?;
        if control.is_none() {
            // Without the lock, the binlog may have moved on since the
            // transactions started. MariaDB reports the exact position of the
            // first reader's snapshot; with one reader that is the snapshot's.
            if let Some(p) = mariadb_snapshot_position(&mut readers[0]).await {
                position = p;
            } else {
                tracing::warn!(
                    "snapshot.lock is none: the recorded binlog position is approximate"
                );
            }
        }
        if let Some(mut c) = control {
            c.query_drop("UNLOCK TABLES")
                .await
                .map_err(|e| ep.error("releasing the snapshot lock", e))?;
            let _ = c.disconnect().await;
            tracing::info!(
                held_ms = started.elapsed().as_millis() as u64,
                "snapshot lock released"
            );
        }
        Ok(position)
    }

    /// The columns at the consistent point must be those discovered (and
    /// created on the sinks): a DDL statement in between would otherwise put
    /// rows of one shape into tables of another.
    async fn verify_schema(&self, conn: &mut Conn) -> Result<()> {
        let rows: Vec<(String, String, String, String)> = conn
            .query(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE IFNULL(GENERATION_EXPRESSION, '') = '' ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
            )
            .await
            .map_err(|e| self.endpoint.error("re-reading the table definitions", e))?;
        for t in &self.tables {
            let now: Vec<(&str, &str)> = rows
                .iter()
                .filter(|r| r.0 == t.id.database && r.1 == t.id.name)
                .map(|r| (r.2.as_str(), r.3.as_str()))
                .collect();
            // MariaDB's JSON columns were read as LONGTEXT and marked `json`.
            let then: Vec<(&str, &str)> = t
                .columns
                .iter()
                .map(|c| match c.column_type.as_str() {
                    "json" if now.iter().any(|n| n.0 == c.name && n.1 == "longtext") => {
                        (c.name.as_str(), "longtext")
                    }
                    ty => (c.name.as_str(), ty),
                })
                .collect();
            if now != then {
                return Err(Error::SchemaChanged {
                    table: t.id.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Splits tables into key ranges (by the value of an integer first key
    /// column, within the snapshot), in the order [`interleave`] gives.
    async fn plan(&self, conn: &mut Conn) -> Result<VecDeque<Work>> {
        let mut work = Vec::new();
        for t in &self.tables {
            let ranges = if t.estimated_rows > self.chunk_rows {
                ranges::plan(&self.endpoint, conn, t, self.chunk_rows, Split::ByValue).await?
            } else {
                vec![Chunk::all()]
            };
            let estimated_rows = t.estimated_rows / ranges.len().max(1) as u64;
            work.extend(ranges.into_iter().map(|range| Work {
                table: t.clone(),
                range,
                estimated_rows,
            }));
        }
        Ok(interleave(work))
    }
}

/// Orders chunks so that the readers work on different tables at once
/// (concurrent loads into one table contend for the same index pages on the
/// target), biggest tables first so the long ones start early.
fn interleave(chunks: Vec<Work>) -> VecDeque<Work> {
    let mut by_table: Vec<VecDeque<Work>> = Vec::new();
    for c in chunks {
        match by_table
            .iter_mut()
            .find(|q| q.front().is_some_and(|f| Arc::ptr_eq(&f.table, &c.table)))
        {
            Some(q) => q.push_back(c),
            None => by_table.push(VecDeque::from([c])),
        }
    }
    by_table.sort_by_key(|q| std::cmp::Reverse(q.iter().map(|c| c.estimated_rows).sum::<u64>()));
    let mut out = VecDeque::new();
    while by_table.iter().any(|q| !q.is_empty()) {
        for q in by_table.iter_mut() {
            out.extend(q.pop_front());
        }
    }
    out
}

/// The binlog file/offset and GTID position; empty when binlog is off or
/// the user may not see it (a snapshot alone does not need it).
pub async fn binlog_position(ep: &Endpoint, conn: &mut Conn) -> Result<Position> {
    let status: std::result::Result<Option<Row>, _> = conn.query_first("SHOW MASTER STATUS").await;
    let mut pos = match status {
        Ok(Some(row)) => Position {
            file: row
                .get::<Option<String>, _>(0)
                .flatten()
                .unwrap_or_default()
                .into(),
            offset: row.get::<Option<u64>, _>(1).flatten().unwrap_or(0),
            gtid: None,
        },
        Ok(None) => {
            tracing::warn!("the source has binary logging off: no position is recorded for CDC");
            Position::default()
        }
        Err(e) => {
            tracing::warn!(error = %ep.error("reading the binlog position", e), "no position is recorded for CDC");
            Position::default()
        }
    };
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| ep.error("reading the server version", e))?;
    let gtid_sql = if version.unwrap_or_default().contains("MariaDB") {
        "SELECT @@GLOBAL.gtid_binlog_pos"
    } else {
        "SELECT @@GLOBAL.gtid_executed"
    };
    if let Ok(Some(g)) = conn.query_first::<Option<String>, _>(gtid_sql).await {
        pos.gtid = g.filter(|g| !g.is_empty()).map(Into::into);
    }
    Ok(pos)
}

/// MariaDB's `binlog_snapshot_file/position`: the binlog position matching
/// this connection's `START TRANSACTION WITH CONSISTENT SNAPSHOT`, and its
/// GTID position. `None` on MySQL.
async fn mariadb_snapshot_position(conn: &mut Conn) -> Option<Position> {
    let rows: Vec<(String, String)> = conn
        .query("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        .await
        .ok()?;
    let get = |k: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let file = get("Binlog_snapshot_file").filter(|f| !f.is_empty())?;
    let offset: u64 = get("Binlog_snapshot_position")?.parse().ok()?;
    let gtid: Option<String> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, offset))
        .await
        .ok()
        .flatten();
    Some(Position {
        file: file.into(),
        offset,
        gtid: gtid.filter(|g| !g.is_empty()).map(Into::into),
    })
}

struct Worker {
    endpoint: Endpoint,
    queue: Arc<Mutex<VecDeque<Work>>>,
    out: Emitter,
    batch_size: usize,
    position: Arc<Position>,
    taken_at_us: i64,
    throttle: Option<Arc<Throttle>>,
}

impl Worker {
    async fn run(self, mut conn: Conn) -> Result<()> {
        loop {
            let next = self.queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
            let Some(chunk) = next else { break };
            if !self.read_chunk(&mut conn, &chunk).await? {
                break; // the sinks are gone; the engine reports why
            }
        }
        let _ = conn.query_drop("COMMIT").await;
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// Reads one chunk; `false` when the receiving side has closed.
    async fn read_chunk(&self, conn: &mut Conn, chunk: &Work) -> Result<bool> {
        let t = &chunk.table;
        let cols = t
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let (filter, params) = chunk.range.filter(&ranges::key_names(t));
        let sql = format!("SELECT {cols} FROM {}{filter}", t.id.quoted());
        let what = match (&chunk.range.lower, &chunk.range.upper) {
            (None, None) => format!("reading {}", t.id),
            _ => format!("reading {} (key range {})", t.id, chunk.range),
        };
        // Binary protocol (a prepared statement): exact FLOAT/DOUBLE and temporal values.
        let mut result = conn
            .exec_iter(sql.as_str(), params)
            .await
            .map_err(|e| self.endpoint.error(what.clone(), e))?;
        let mut decoder = RowDecoder::new(t.clone());
        while let Some(row) = result
            .next()
            .await
            .map_err(|e| self.endpoint.error(what.clone(), e))?
        {
            decoder.push(row.unwrap())?;
            let full = decoder.len() >= self.batch_size || decoder.bytes() >= MAX_BATCH_BYTES;
            if full && !self.emit(t, &mut decoder).await? {
                return Ok(false);
            }
        }
        if !decoder.is_empty() && !self.emit(t, &mut decoder).await? {
            return Ok(false);
        }
        Ok(true)
    }

    async fn emit(&self, t: &Arc<TableSchema>, decoder: &mut RowDecoder) -> Result<bool> {
        let after = decoder.finish()?;
        let info = EventInfo::new(Op::Read, self.position.clone(), self.taken_at_us);
        crate::throttle::while_paused().await;
        if let Some(throttle) = &self.throttle {
            throttle
                .take(
                    after.num_rows() as u64,
                    after.get_array_memory_size() as u64,
                )
                .await;
        }
        let batch = ChangeBatch {
            table: t.clone(),
            events: vec![info; after.num_rows()],
            before: None,
            after: Some(after),
        };
        Ok(self.out.send(Message::Batch(batch)).await.is_ok())
    }
}
