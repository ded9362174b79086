//! The MySQL sink's checkpoints: a small table on the target,
//! `sluice.checkpoints`, one row per pipeline, sink and apply partition.
//!
//! Each row is written in the same target transaction as the changes it
//! covers, so after a crash the target's data and its checkpoint agree:
//! sluice resumes from the oldest partition's position, and replaying the
//! changes after it is harmless because every change is applied as
//! "make this row equal to this image" or "delete the row with this key".

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::connect::Endpoint;
use crate::encode::push_str;
use crate::event::Position;
use crate::stage::SinkState;
use crate::Result;

pub const CREATE: &[&str] = &[
    "CREATE DATABASE IF NOT EXISTS `sluice`",
    "CREATE TABLE IF NOT EXISTS `sluice`.`checkpoints` (\
       `pipeline` VARCHAR(190) NOT NULL, \
       `sink` VARCHAR(190) NOT NULL, \
       `part` INT NOT NULL, \
       `phase` VARCHAR(16) NOT NULL, \
       `binlog_file` VARCHAR(255) NOT NULL DEFAULT '', \
       `binlog_offset` BIGINT UNSIGNED NOT NULL DEFAULT 0, \
       `gtid` TEXT NULL, \
       `updated_at` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), \
       PRIMARY KEY (`pipeline`, `sink`, `part`)\
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

/// Phases a checkpoint row records.
pub const SNAPSHOT: &str = "snapshot";
pub const CDC: &str = "cdc";

/// The rows of one pipeline's sink.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pipeline: String,
    sink: String,
}

impl Checkpoints {
    pub fn new(pipeline: &str, sink: &str) -> Self {
        Checkpoints {
            pipeline: pipeline.to_string(),
            sink: sink.to_string(),
        }
    }

    fn key(&self) -> String {
        let mut s = String::new();
        s.push_str("`pipeline` = ");
        push_str(&mut s, &self.pipeline);
        s.push_str(" AND `sink` = ");
        push_str(&mut s, &self.sink);
        s
    }

    /// What earlier runs recorded: the oldest partition's position, or that a
    /// snapshot was interrupted.
    pub async fn read(&self, ep: &Endpoint, conn: &mut Conn) -> Result<SinkState> {
        let exists: Option<u64> = conn
            .query_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice' AND TABLE_NAME = 'checkpoints'",
            )
            .await
            .map_err(|e| ep.error("looking for sluice.checkpoints", e))?;
        if exists.unwrap_or(0) == 0 {
            return Ok(SinkState::Fresh);
        }
        let rows: Vec<(String, String, u64, Option<String>)> = conn
            .query(format!(
                "SELECT `phase`, `binlog_file`, `binlog_offset`, `gtid` FROM `sluice`.`checkpoints` WHERE {}",
                self.key()
            ))
            .await
            .map_err(|e| ep.error("reading sluice.checkpoints", e))?;
        if rows.is_empty() {
            return Ok(SinkState::Fresh);
        }
        if rows.iter().any(|r| r.0 == SNAPSHOT) {
            return Ok(SinkState::SnapshotInterrupted);
        }
        let oldest = rows
            .into_iter()
            .map(|(_, file, offset, gtid)| position(file, offset, gtid))
            .min_by(|a, b| a.binlog_cmp(b))
            .unwrap_or_default();
        Ok(SinkState::At(oldest))
    }

    /// When the oldest partition last recorded its position (Unix µs).
    pub async fn oldest_update(&self, ep: &Endpoint, conn: &mut Conn) -> Result<Option<i64>> {
        let t: Option<Option<i64>> = conn
            .query_first(format!(
                "SELECT CAST(UNIX_TIMESTAMP(MIN(`updated_at`)) * 1000000 AS SIGNED) FROM `sluice`.`checkpoints` WHERE {}",
                self.key()
            ))
            .await
            .map_err(|e| ep.error("reading sluice.checkpoints", e))?;
        Ok(t.flatten())
    }

    /// Each partition's position (phase `cdc` rows only).
    pub async fn read_parts(
        &self,
        ep: &Endpoint,
        conn: &mut Conn,
    ) -> Result<Vec<(usize, Position)>> {
        let rows: Vec<(i64, String, u64, Option<String>)> = conn
            .query(format!(
                "SELECT `part`, `binlog_file`, `binlog_offset`, `gtid` FROM `sluice`.`checkpoints` WHERE {} AND `phase` = 'cdc'",
                self.key()
            ))
            .await
            .map_err(|e| ep.error("reading sluice.checkpoints", e))?;
        Ok(rows
            .into_iter()
            .map(|(part, file, offset, gtid)| (part.max(0) as usize, position(file, offset, gtid)))
            .collect())
    }

    /// Statements that leave exactly `parts` rows, at `position`: each row
    /// written over, then the rows of further partitions removed. The sink
    /// always has a checkpoint, whenever a crash comes (removing every row
    /// first would leave none for a moment; doing it in one transaction
    /// would deadlock with the partitions' own checkpoint writes).
    pub fn reset(&self, parts: usize, phase: &str, position: &Position) -> Vec<String> {
        let parts = parts.max(1);
        let mut out: Vec<String> = (0..parts)
            .map(|part| self.upsert(part, phase, position))
            .collect();
        out.push(self.trim(parts));
        out
    }

    /// Removes the rows of partitions `parts` and above.
    pub fn trim(&self, parts: usize) -> String {
        format!(
            "DELETE FROM `sluice`.`checkpoints` WHERE {} AND `part` >= {parts}",
            self.key()
        )
    }

    /// Records `position` for one partition.
    pub fn upsert(&self, part: usize, phase: &str, p: &Position) -> String {
        let mut s = String::from(
            "INSERT INTO `sluice`.`checkpoints` (`pipeline`, `sink`, `part`, `phase`, `binlog_file`, `binlog_offset`, `gtid`) VALUES (",
        );
        push_str(&mut s, &self.pipeline);
        s.push(',');
        push_str(&mut s, &self.sink);
        s.push_str(&format!(",{part},"));
        push_str(&mut s, phase);
        s.push(',');
        push_str(&mut s, &p.file);
        s.push_str(&format!(",{},", p.offset));
        match &p.gtid {
            Some(g) => push_str(&mut s, g),
            None => s.push_str("NULL"),
        }
        s.push_str(
            ") ON DUPLICATE KEY UPDATE `phase` = VALUES(`phase`), `binlog_file` = VALUES(`binlog_file`), \
             `binlog_offset` = VALUES(`binlog_offset`), `gtid` = VALUES(`gtid`)",
        );
        s
    }
}

/// A position as a checkpoint row holds it.
fn position(file: String, offset: u64, gtid: Option<String>) -> Position {
    Position {
        file: file.into(),
        offset,
        gtid: gtid.map(Into::into),
    }
}
