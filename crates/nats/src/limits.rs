//! What the server's limits and durability mean for a pipeline's tables,
//! found before the first message: rows whose declared columns can
//! outgrow the server's `max_payload`, and a server that acknowledges
//! messages before they are on disk.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::event::{ColumnDef, TableSchema};
use sluice_core::precheck::Finding;
use sluice_core::text::mask_url;
use sluice_core::types::LogicalType;

/// What `check` learnt of the server.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// The largest message the server takes (its `max_payload`).
    pub max_payload: usize,
    pub durability: Durability,
}

/// When JetStream writes acknowledged messages to disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Durability {
    /// `sync_interval: always`: on disk before the acknowledgement.
    Always,
    /// Flushed every interval: a power failure loses what came since.
    Every(Duration),
    /// Not known (why).
    Unknown(String),
}

/// The server's durability, read from its HTTP monitoring endpoint
/// (`/varz`); the client protocol does not tell.
pub async fn durability(monitor_url: Option<&str>) -> Durability {
    let Some(base) = monitor_url else {
        return Durability::Unknown("no `monitor_url` is set to read it from".into());
    };
    let url = format!("{}/varz", base.trim_end_matches('/'));
    // The HTTP client's TLS (an https endpoint) uses ring, as the archive's
    // does; a provider installed before is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let body = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| e.to_string())
    };
    let varz = match read.await {
        Ok(v) => v,
        Err(e) => return Durability::Unknown(format!("{} did not answer: {e}", mask_url(&url))),
    };
    let config = &varz["jetstream"]["config"];
    if config["sync_always"].as_bool() == Some(true) {
        return Durability::Always;
    }
    match config["sync_interval"].as_u64() {
        Some(ns) => Durability::Every(Duration::from_nanos(ns)),
        None => Durability::Unknown(format!(
            "{} shows no JetStream sync settings",
            mask_url(&url)
        )),
    }
}

/// The most bytes a value of `c` can take in a message, from its declared
/// type (text as UTF-8, bytes in base64).
fn column_max_bytes(c: &ColumnDef) -> u64 {
    let ty = c.column_type.to_ascii_lowercase();
    let declared = || {
        ty.split_once('(')
            .and_then(|(_, r)| r.split(|ch: char| !ch.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(255)
    };
    let base = ty.split(['(', ' ']).next().unwrap_or("");
    let base64 = |n: u64| n.div_ceil(3) * 4;
    match base {
        "tinytext" => 255 * 4,
        "text" => 65_535,
        "mediumtext" => 16_777_215,
        "longtext" | "json" => u32::MAX as u64,
        "tinyblob" => base64(255),
        "blob" => base64(65_535),
        "mediumblob" => base64(16_777_215),
        "longblob" => base64(u32::MAX as u64),
        "char" | "varchar" => declared() * 4,
        "binary" | "varbinary" => base64(declared()),
        _ => match c.logical {
            LogicalType::Geometry => base64(u32::MAX as u64),
            // ENUM and SET members, numbers, dates: small.
            _ => 1024,
        },
    }
}

/// Prints a byte count the way limits are written.
fn size(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    if n >= 1 << 30 {
        format!("{:.0} GiB", n as f64 / (1u64 << 30) as f64)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else {
        format!("{} KiB", n.div_ceil(1024))
    }
}

/// Warnings for `tables` on a server with `facts`: tables whose rows can
/// be larger than a message may be (an update carries both images), and
/// a server that can lose acknowledged messages.
pub fn warnings(check: &str, facts: &ServerFacts, tables: &[Arc<TableSchema>]) -> Vec<Finding> {
    let mut out = Vec::new();
    match &facts.durability {
        Durability::Always => {}
        Durability::Every(every) => out.push(Finding::warn(
            check,
            format!(
                "the server writes JetStream messages to disk every {} s (sync_interval), after acknowledging them: a power failure or a crash of the machine can lose acknowledged changes, which sluice will not publish again",
                every.as_secs()
            ),
            "set `jetstream { sync_interval: always }` in the nats-server configuration, or run the stream with `replicas: 3` on a cluster",
        )),
        Durability::Unknown(why) => out.push(Finding::warn(
            check,
            format!("cannot tell whether the server writes messages to disk before acknowledging them: {why}"),
            "set `monitor_url` (the server's http_port, e.g. http://127.0.0.1:8222) so that check can read sync_interval; it must be `always` for no acknowledged change to be lost on power failure",
        )),
    }
    let limit = facts.max_payload as u64;
    if limit == 0 {
        return out;
    }
    for t in tables {
        let mut columns: Vec<(u64, &ColumnDef)> =
            t.columns.iter().map(|c| (column_max_bytes(c), c)).collect();
        // Both images of an update, and the envelope around them.
        let most: u64 = 2 * columns.iter().map(|(n, _)| n).sum::<u64>() + 1024;
        if most <= limit {
            continue;
        }
        columns.sort_by(|a, b| b.0.cmp(&a.0));
        let large: Vec<String> = columns
            .iter()
            .take(3)
            .filter(|(n, _)| *n * 4 > limit)
            .map(|(n, c)| format!("`{}` {} (up to {})", c.name, c.column_type, size(*n)))
            .collect();
        let which = if large.is_empty() {
            "its many columns together".to_string()
        } else {
            large.join(", ")
        };
        out.push(Finding::warn(
            check,
            format!(
                "rows of {} can be larger than the server's max_payload of {}: {which}; a change message over it stops the pipeline, naming the row",
                t.id,
                size(limit)
            ),
            "raise max_payload in the nats-server configuration (up to 64 MB) if rows can be that large, or leave the column out with a transform",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, logical: LogicalType) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            logical,
            column_type: ty.into(),
            nullable: true,
            charset: None,
            collation: None,
        }
    }

    #[test]
    fn declared_sizes_bound_a_row() {
        assert_eq!(
            column_max_bytes(&col("v", "varchar(100)", LogicalType::Text)),
            400
        );
        assert_eq!(
            column_max_bytes(&col("b", "varbinary(30)", LogicalType::Bytes)),
            40
        );
        assert!(column_max_bytes(&col("t", "longtext", LogicalType::Text)) > 1 << 30);
        assert!(column_max_bytes(&col("g", "point", LogicalType::Geometry)) > 1 << 30);
        assert_eq!(
            column_max_bytes(&col(
                "i",
                "int(11)",
                LogicalType::Int {
                    bytes: 4,
                    unsigned: false
                }
            )),
            1024
        );
    }
}
