//! The sink's checkpoints: rows of `sluice.checkpoints` on the target, one
//! per pipeline, sink and apply lane, each written in the same PostgreSQL
//! transaction as the changes it covers. After a crash the data and the
//! checkpoints agree: the source resumes after the oldest lane's, and each
//! lane skips what its own covers.

use sluice_core::event::Position;
use sluice_core::stage::SinkState;
use sluice_core::Result;
use tokio_postgres::Client;

use crate::connect::{quote_literal, Endpoint};

pub const CREATE: &[&str] = &[
    "CREATE SCHEMA IF NOT EXISTS sluice",
    "CREATE TABLE IF NOT EXISTS sluice.checkpoints (\
       pipeline text NOT NULL, \
       sink text NOT NULL, \
       part int NOT NULL DEFAULT 0, \
       phase text NOT NULL, \
       binlog_file text NOT NULL DEFAULT '', \
       binlog_offset bigint NOT NULL DEFAULT 0, \
       gtid text, \
       updated_at timestamptz NOT NULL DEFAULT now(), \
       PRIMARY KEY (pipeline, sink, part))",
    // A table of an earlier version had one row per sink: its row is lane 0.
    "DO $$ BEGIN \
       IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'sluice.checkpoints'::regclass AND attname = 'part') THEN \
         ALTER TABLE sluice.checkpoints ADD COLUMN part int NOT NULL DEFAULT 0, \
           DROP CONSTRAINT checkpoints_pkey, ADD PRIMARY KEY (pipeline, sink, part); \
       END IF; END $$",
];

/// A snapshot is being loaded (a restart loads it again).
pub const SNAPSHOT: &str = "snapshot";
/// Changes are applied up to the row's position.
pub const CDC: &str = "cdc";

#[derive(Debug, Clone)]
pub struct Checkpoint {
    pipeline: String,
    sink: String,
}

/// What the rows of one sink say.
pub enum Parts {
    Fresh,
    SnapshotInterrupted,
    /// Each lane's position, by lane.
    At(Vec<(usize, Position)>),
}

impl Checkpoint {
    pub fn new(pipeline: &str, sink: &str) -> Self {
        Checkpoint {
            pipeline: pipeline.into(),
            sink: sink.into(),
        }
    }

    fn key(&self) -> String {
        format!(
            "pipeline = {} AND sink = {}",
            quote_literal(&self.pipeline),
            quote_literal(&self.sink)
        )
    }

    /// What earlier runs recorded: the oldest lane's position.
    pub async fn read(&self, ep: &Endpoint, client: &Client) -> Result<SinkState> {
        Ok(match self.parts(ep, client).await? {
            Parts::Fresh => SinkState::Fresh,
            Parts::SnapshotInterrupted => SinkState::SnapshotInterrupted,
            Parts::At(parts) => parts
                .into_iter()
                .map(|(_, p)| p)
                .min_by(|a, b| a.binlog_cmp(b))
                .map_or(SinkState::Fresh, SinkState::At),
        })
    }

    /// Every lane's row.
    pub async fn parts(&self, ep: &Endpoint, client: &Client) -> Result<Parts> {
        let exists = client
            .query_one("SELECT to_regclass('sluice.checkpoints') IS NOT NULL", &[])
            .await
            .map_err(|e| ep.error("looking for sluice.checkpoints", e))?;
        if !exists.get::<_, bool>(0) {
            return Ok(Parts::Fresh);
        }
        let rows = client
            .query(
                &format!(
                    "SELECT part, phase, binlog_file, binlog_offset, gtid FROM sluice.checkpoints WHERE {} ORDER BY part",
                    self.key()
                ),
                &[],
            )
            .await
            .map_err(|e| ep.error("reading sluice.checkpoints", e))?;
        if rows.is_empty() {
            return Ok(Parts::Fresh);
        }
        let mut parts = Vec::with_capacity(rows.len());
        for row in rows {
            let phase: String = row.get(1);
            if phase == SNAPSHOT {
                return Ok(Parts::SnapshotInterrupted);
            }
            let gtid: Option<String> = row.get(4);
            parts.push((
                row.get::<_, i32>(0).max(0) as usize,
                Position {
                    file: row.get::<_, String>(2).into(),
                    offset: row.get::<_, i64>(3).max(0) as u64,
                    gtid: gtid.map(Into::into),
                },
            ));
        }
        Ok(Parts::At(parts))
    }

    /// When the oldest lane's checkpoint was written (Unix µs).
    pub async fn updated_at(&self, ep: &Endpoint, client: &Client) -> Result<Option<i64>> {
        let row = client
            .query_one(
                &format!(
                    "SELECT (extract(epoch FROM min(updated_at)) * 1000000)::bigint FROM sluice.checkpoints WHERE {}",
                    self.key()
                ),
                &[],
            )
            .await
            .map_err(|e| ep.error("reading sluice.checkpoints", e))?;
        Ok(row.get(0))
    }

    /// The statement that records `phase` at `p` for lanes `0..lanes`.
    pub fn upsert(&self, phase: &str, lanes: std::ops::Range<usize>, p: &Position) -> String {
        let gtid = p
            .gtid
            .as_deref()
            .map_or_else(|| "NULL".to_string(), quote_literal);
        let values: Vec<String> = lanes
            .map(|part| {
                format!(
                    "({}, {}, {part}, {}, {}, {}, {gtid})",
                    quote_literal(&self.pipeline),
                    quote_literal(&self.sink),
                    quote_literal(phase),
                    quote_literal(&p.file),
                    p.offset as i64,
                )
            })
            .collect();
        format!(
            "INSERT INTO sluice.checkpoints (pipeline, sink, part, phase, binlog_file, binlog_offset, gtid) \
             VALUES {} \
             ON CONFLICT (pipeline, sink, part) DO UPDATE SET phase = EXCLUDED.phase, \
             binlog_file = EXCLUDED.binlog_file, binlog_offset = EXCLUDED.binlog_offset, \
             gtid = EXCLUDED.gtid, updated_at = now()",
            values.join(", ")
        )
    }

    /// The statements that leave `lanes` rows, all recording `phase` at `p`.
    pub fn reset(&self, phase: &str, lanes: usize, p: &Position) -> String {
        format!(
            "DELETE FROM sluice.checkpoints WHERE {} AND part >= {lanes}; {}",
            self.key(),
            self.upsert(phase, 0..lanes.max(1), p)
        )
    }
}
