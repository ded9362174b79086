//! What the MySQL source needs from its server, checked before anything is
//! read: the version, privileges, binlog settings and retention, a free
//! server id, and a key on every table.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::SnapshotLock;
use crate::connect::Endpoint;
use crate::event::{KeyKind, TableSchema};
use crate::precheck::Finding;
use crate::privileges::Grants;
use crate::Result;

/// Rows per second a snapshot is assumed to read, for the retention check
/// (well below what it does, so the estimate errs long).
const ASSUMED_ROWS_PER_S: u64 = 50_000;

/// What [`findings`] needs to know of the pipeline.
pub struct Needs<'a> {
    pub tables: &'a [Arc<TableSchema>],
    /// Whether the plan follows changes (binlog settings matter).
    pub follows: bool,
    /// Whether a snapshot comes first (its duration must fit in the retention).
    pub snapshot: bool,
    pub lock: SnapshotLock,
    pub server_id: u32,
}

/// Every check of the source.
pub async fn findings(ep: &Endpoint, conn: &mut Conn, needs: &Needs<'_>) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| ep.error("reading the server version", e))?;
    out.push(Finding::pass(
        "source connection",
        format!("{} at {}", version.unwrap_or_default(), ep.masked()),
    ));

    let grants = Grants::load(ep, conn).await?;
    let mut missing = Vec::new();
    if needs.lock == SnapshotLock::FlushTables
        && needs.snapshot
        && !grants.has("RELOAD", None, None)
    {
        missing.push("RELOAD (for the snapshot lock)");
    }
    if needs.follows {
        if !grants.has("REPLICATION SLAVE", None, None) {
            missing.push("REPLICATION SLAVE (to read the binlog)");
        }
        if !["REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"]
            .iter()
            .any(|p| grants.has(p, None, None))
        {
            missing.push("REPLICATION CLIENT or BINLOG MONITOR (to read the binlog position)");
        }
    }
    out.push(if missing.is_empty() {
        Finding::pass("source privileges", "SELECT on the selected tables and what the plan needs")
    } else {
        Finding::fail(
            "source privileges",
            format!("the source user lacks {}", missing.join(", ")),
            "GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the source user (MariaDB 10.5+: BINLOG MONITOR instead of REPLICATION CLIENT)",
        )
    });

    if needs.follows {
        out.extend(binlog_settings(ep, conn).await?);
        out.push(retention(ep, conn, needs).await?);
        out.extend(server_id(ep, conn, needs.server_id).await?);
    }

    let keyless: Vec<String> = needs
        .tables
        .iter()
        .filter(|t| t.key_kind == KeyKind::None)
        .map(|t| t.id.to_string())
        .collect();
    out.push(if keyless.is_empty() {
        Finding::pass("table keys", format!("all {} table(s) have a primary or non-null unique key", needs.tables.len()))
    } else {
        Finding::warn(
            "table keys",
            format!(
                "{} table(s) without a primary or non-null unique key: {}{}",
                keyless.len(),
                keyless.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if keyless.len() > 5 { ", ..." } else { "" }
            ),
            "add a primary key: without one a table is read in one stream, changes match whole rows, and verify compares it as a multiset",
        )
    });
    Ok(out)
}

/// `log_bin`, `binlog_format`, `binlog_row_image` (failures) and
/// `binlog_row_metadata` (a warning).
pub async fn binlog_settings(ep: &Endpoint, conn: &mut Conn) -> Result<Vec<Finding>> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .query_first("SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image")
        .await
        .map_err(|e| ep.error("reading the binlog settings", e))?;
    let (log_bin, format, image) = row.unwrap_or_default();
    let mut out = Vec::new();
    if !matches!(log_bin.as_deref(), Some("1") | Some("ON")) {
        out.push(Finding::fail(
            "source log_bin",
            format!("binary logging is off at {}", ep.masked()),
            "start the source with log_bin=ON (log-bin in the server's config file; needs a restart), binlog_format=ROW, binlog_row_image=FULL",
        ));
        return Ok(out);
    }
    out.push(Finding::pass("source log_bin", "ON"));
    let format = format.unwrap_or_default();
    out.push(if format == "ROW" {
        Finding::pass("source binlog_format", "ROW")
    } else {
        Finding::fail(
            "source binlog_format",
            format!("binlog_format={format}: changes are not logged as rows"),
            "SET GLOBAL binlog_format = 'ROW' and set it in the server's config file",
        )
    });
    let image = image.unwrap_or_default();
    out.push(if image == "FULL" {
        Finding::pass("source binlog_row_image", "FULL")
    } else {
        Finding::fail(
            "source binlog_row_image",
            format!("binlog_row_image={image}: updates and deletes do not carry whole rows"),
            "SET GLOBAL binlog_row_image = 'FULL' and set it in the server's config file",
        )
    });
    if let Ok(Some(Some(meta))) = conn
        .query_first::<Option<String>, _>("SELECT @@GLOBAL.binlog_row_metadata")
        .await
    {
        out.push(if meta == "FULL" {
            Finding::pass("source binlog_row_metadata", "FULL")
        } else {
            Finding::warn(
                "source binlog_row_metadata",
                format!("binlog_row_metadata={meta}: row columns are matched by position, which breaks on tables with generated columns"),
                "SET GLOBAL binlog_row_metadata = 'FULL' and set it in the server's config file",
            )
        });
    }
    Ok(out)
}

/// Whether binlogs live long enough for the snapshot (and a restart) to
/// finish before the changes it continues from are purged.
async fn retention(ep: &Endpoint, conn: &mut Conn, needs: &Needs<'_>) -> Result<Finding> {
    let seconds: Option<u64> = match conn
        .query_first::<Option<u64>, _>("SELECT @@GLOBAL.binlog_expire_logs_seconds")
        .await
    {
        Ok(Some(s)) => s,
        _ => {
            let days: Option<Option<f64>> = conn
                .query_first("SELECT @@GLOBAL.expire_logs_days")
                .await
                .map_err(|e| ep.error("reading expire_logs_days", e))?;
            days.flatten().map(|d| (d * 86_400.0) as u64)
        }
    };
    let Some(seconds) = seconds.filter(|s| *s > 0) else {
        return Ok(Finding::pass(
            "source binlog retention",
            "binlogs are kept until purged",
        ));
    };
    let rows: u64 = needs.tables.iter().map(|t| t.estimated_rows).sum();
    let snapshot_s = if needs.snapshot {
        rows / ASSUMED_ROWS_PER_S
    } else {
        0
    };
    // Room for the snapshot three times over, and an hour for a restart.
    let need = snapshot_s * 3 + 3600;
    Ok(if seconds >= need {
        Finding::pass(
            "source binlog retention",
            format!("binlogs are kept {}", duration(seconds)),
        )
    } else {
        Finding::warn(
            "source binlog retention",
            format!(
                "binlogs are kept {}; a pipeline stopped longer (or a snapshot of ~{rows} rows taking ~{}) cannot resume",
                duration(seconds),
                duration(snapshot_s)
            ),
            format!("SET GLOBAL binlog_expire_logs_seconds = {} or more", need.max(86_400)),
        )
    })
}

/// The pipeline's server id must not be the source's own, and should not
/// be another connected replica's.
async fn server_id(ep: &Endpoint, conn: &mut Conn, ours: u32) -> Result<Vec<Finding>> {
    let own: Option<u32> = conn
        .query_first("SELECT @@GLOBAL.server_id")
        .await
        .map_err(|e| ep.error("reading server_id", e))?;
    if own == Some(ours) {
        return Ok(vec![Finding::fail(
            "source server_id",
            format!("the pipeline's server id {ours} is the source's own server_id"),
            "set `source.mysql.cdc.server_id` to an id no server or replica uses",
        )]);
    }
    let hosts: Vec<mysql_async::Row> = conn.query("SHOW SLAVE HOSTS").await.unwrap_or_default();
    let taken = hosts
        .iter()
        .any(|r| r.get::<Option<u32>, _>(0).flatten() == Some(ours));
    Ok(vec![if taken {
        Finding::warn(
            "source server_id",
            format!("a replica with the pipeline's server id {ours} is connected to the source"),
            "if it is another run of this pipeline, stop it first; otherwise set `source.mysql.cdc.server_id` to a free id",
        )
    } else {
        Finding::pass("source server_id", format!("{ours} is free"))
    }])
}

fn duration(s: u64) -> String {
    match s {
        s if s >= 86_400 => format!("{:.1} days", s as f64 / 86_400.0),
        s if s >= 3600 => format!("{:.1} h", s as f64 / 3600.0),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
