//! The sink's checkpoint: a row of `sluice.checkpoints` on the target per
//! pipeline and sink, written in the same PostgreSQL transaction as the
//! changes it covers. After a crash the data and the checkpoint agree, and
//! the source resumes right after it.

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
       phase text NOT NULL, \
       binlog_file text NOT NULL DEFAULT '', \
       binlog_offset bigint NOT NULL DEFAULT 0, \
       gtid text, \
       updated_at timestamptz NOT NULL DEFAULT now(), \
       PRIMARY KEY (pipeline, sink))",
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

    /// What earlier runs recorded.
    pub async fn read(&self, ep: &Endpoint, client: &Client) -> Result<SinkState> {
        let exists = client
            .query_one("SELECT to_regclass('sluice.checkpoints') IS NOT NULL", &[])
            .await
            .map_err(|e| ep.error("looking for sluice.checkpoints", e))?;
        if !exists.get::<_, bool>(0) {
            return Ok(SinkState::Fresh);
        }
        let rows = client
            .query(
                &format!(
                    "SELECT phase, binlog_file, binlog_offset, gtid FROM sluice.checkpoints WHERE {}",
                    self.key()
                ),
                &[],
            )
            .await
            .map_err(|e| ep.error("reading sluice.checkpoints", e))?;
        let Some(row) = rows.first() else {
            return Ok(SinkState::Fresh);
        };
        let phase: String = row.get(0);
        if phase == SNAPSHOT {
            return Ok(SinkState::SnapshotInterrupted);
        }
        let file: String = row.get(1);
        let offset: i64 = row.get(2);
        let gtid: Option<String> = row.get(3);
        Ok(SinkState::At(Position {
            file: file.into(),
            offset: offset.max(0) as u64,
            gtid: gtid.map(Into::into),
        }))
    }

    /// When the checkpoint was last written (Unix µs).
    pub async fn updated_at(&self, ep: &Endpoint, client: &Client) -> Result<Option<i64>> {
        let rows = client
            .query(
                &format!(
                    "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM sluice.checkpoints WHERE {}",
                    self.key()
                ),
                &[],
            )
            .await
            .map_err(|e| ep.error("reading sluice.checkpoints", e))?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// The statement that records `phase` at `p`.
    pub fn upsert(&self, phase: &str, p: &Position) -> String {
        format!(
            "INSERT INTO sluice.checkpoints (pipeline, sink, phase, binlog_file, binlog_offset, gtid) \
             VALUES ({}, {}, {}, {}, {}, {}) \
             ON CONFLICT (pipeline, sink) DO UPDATE SET phase = EXCLUDED.phase, \
             binlog_file = EXCLUDED.binlog_file, binlog_offset = EXCLUDED.binlog_offset, \
             gtid = EXCLUDED.gtid, updated_at = now()",
            quote_literal(&self.pipeline),
            quote_literal(&self.sink),
            quote_literal(phase),
            quote_literal(&p.file),
            p.offset as i64,
            p.gtid
                .as_deref()
                .map_or_else(|| "NULL".to_string(), quote_literal)
        )
    }
}
