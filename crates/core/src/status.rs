//! `sluice status`: where each sink of a pipeline is, read from the
//! checkpoints the sinks keep (the target's `sluice.checkpoints`, an
//! archive's commit log), against the end of the source's change log now.
//! Reads only; works whether or not the pipeline is running.

use std::fmt::Write as _;

use crate::config::PipelineConfig;
use crate::connectors::{SinkSpec, SourceSpec};
use crate::event::Position;
use crate::setup::Setup;
use crate::stage::SinkState;
use crate::Result;

/// One sink's standing.
#[derive(Debug, Clone)]
pub struct SinkStatus {
    pub name: String,
    pub state: SinkState,
    /// When the sink last wrote its checkpoint (Unix µs).
    pub checkpoint_us: Option<i64>,
    /// The sink's own line about where it is, printed under its row.
    pub detail: Option<String>,
}

/// The source's end and every sink's standing.
#[derive(Debug, Clone)]
pub struct Status {
    pub pipeline: String,
    pub source_end: Position,
    pub sinks: Vec<SinkStatus>,
}

/// How far a checkpoint is from the end of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behind {
    Bytes(u64),
    Files(u64),
    Unknown,
}

/// Distance from `at` to `end`, in bytes within one binlog file, else in
/// files (binlog sizes are not known without asking for each).
pub fn behind(at: &Position, end: &Position) -> Behind {
    if at.file.is_empty() || end.file.is_empty() {
        return Behind::Unknown;
    }
    if at.file == end.file {
        return Behind::Bytes(end.offset.saturating_sub(at.offset));
    }
    let seq = |f: &str| f.rsplit_once('.').and_then(|(_, n)| n.parse::<u64>().ok());
    match (seq(&at.file), seq(&end.file)) {
        (Some(a), Some(b)) if b >= a => Behind::Files(b - a),
        _ => Behind::Unknown,
    }
}

/// Reads the status of a pipeline's sinks.
pub async fn read<S: SourceSpec, K: SinkSpec>(config: &PipelineConfig<S, K>) -> Result<Status> {
    let Setup {
        mut source, sinks, ..
    } = Setup::build(config)?;
    let source_end = source.current_position().await?;
    let mut out = Vec::with_capacity(sinks.len());
    for sink in &sinks {
        out.push(SinkStatus {
            name: sink.name().to_string(),
            state: sink.state().await?,
            checkpoint_us: sink.checkpoint_time().await?,
            detail: sink.status_detail().await?,
        });
    }
    Ok(Status {
        pipeline: config.name.value.clone(),
        source_end,
        sinks: out,
    })
}

/// The status as a table; `now_us` is the current time (Unix µs).
pub fn render(status: &Status, now_us: i64) -> String {
    let mut rows = vec![[
        "SINK".to_string(),
        "PHASE".into(),
        "POSITION".into(),
        "BEHIND".into(),
        "CHECKPOINT AGE".into(),
    ]];
    for s in &status.sinks {
        let (phase, position, distance) = match &s.state {
            SinkState::Fresh => ("none".to_string(), "-".to_string(), "-".to_string()),
            SinkState::SnapshotInterrupted => (
                "snapshot".into(),
                "-".into(),
                "snapshot loading or interrupted".into(),
            ),
            SinkState::At(p) => (
                "cdc".into(),
                p.to_string(),
                match behind(p, &status.source_end) {
                    Behind::Bytes(0) => "caught up".into(),
                    Behind::Bytes(n) => format!("{n} bytes"),
                    Behind::Files(n) => format!("{n} binlog file(s)"),
                    Behind::Unknown => "unknown".into(),
                },
            ),
        };
        let age = s
            .checkpoint_us
            .map(|t| format!("{:.1} s", (now_us - t).max(0) as f64 / 1e6))
            .unwrap_or_else(|| "-".into());
        rows.push([s.name.clone(), phase, position, distance, age]);
    }
    let details: Vec<Option<&String>> = std::iter::once(None)
        .chain(status.sinks.iter().map(|s| s.detail.as_ref()))
        .collect();
    let mut widths = [0usize; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!(
        "pipeline `{}`: source at {}\n",
        status.pipeline, status.source_end
    );
    for (r, detail) in rows.iter().zip(details) {
        let mut line = String::new();
        for (i, (w, c)) in widths.iter().zip(r).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if let Some(d) = detail {
            out.push_str("  ");
            out.push_str(d);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(file: &str, offset: u64) -> Position {
        Position {
            file: file.into(),
            offset,
            gtid: None,
        }
    }

    #[test]
    fn distance_in_bytes_or_files() {
        assert_eq!(
            behind(&pos("b.000002", 10), &pos("b.000002", 25)),
            Behind::Bytes(15)
        );
        assert_eq!(
            behind(&pos("b.000002", 10), &pos("b.000005", 4)),
            Behind::Files(3)
        );
        assert_eq!(behind(&pos("", 0), &pos("b.000005", 4)), Behind::Unknown);
    }

    #[test]
    fn renders_a_row_per_sink() {
        let status = Status {
            pipeline: "p".into(),
            source_end: pos("b.000002", 500),
            sinks: vec![
                SinkStatus {
                    name: "replica".into(),
                    state: SinkState::At(pos("b.000002", 500)),
                    checkpoint_us: Some(1_000_000),
                    detail: Some("stream S: message 7 of 9".into()),
                },
                SinkStatus {
                    name: "archive".into(),
                    state: SinkState::At(pos("b.000002", 380)),
                    checkpoint_us: Some(0),
                    detail: None,
                },
                SinkStatus {
                    name: "new".into(),
                    state: SinkState::Fresh,
                    checkpoint_us: None,
                    detail: None,
                },
            ],
        };
        let text = render(&status, 3_500_000);
        assert!(text.contains("replica  cdc"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("replica"))
            .expect("a replica row");
        assert_eq!(lines[at + 1], "  stream S: message 7 of 9", "{text}");
        assert!(
            text.contains("caught up") && text.contains("2.5 s"),
            "{text}"
        );
        assert!(
            text.contains("120 bytes") && text.contains("3.5 s"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("new") && l.contains("none")),
            "{text}"
        );
    }
}
