//! `sluice verify`: what it compares and reports, whatever the source.
//! The comparison itself is the source's ([`Verifier`]): it reads its own
//! rows and each sink's [`View`](crate::view::View) of them.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::PipelineConfig;
use crate::connectors::{Plugins, SinkSpec, SourceSpec};
use crate::setup::Setup;
use crate::{Error, Result};

/// Compares a source with its pipeline's sinks.
#[async_trait]
pub trait Verifier: Send {
    /// Verifies every sink of `setup` (discovered, with its transforms
    /// loaded) that `options` selects.
    async fn verify(&mut self, setup: &mut Setup, options: &VerifyOptions) -> Result<Report>;
}

/// Verifies the sinks of `config` (or `options.sink`).
pub async fn run<S: SourceSpec, K: SinkSpec>(
    config: &PipelineConfig<S, K>,
    plugins: &dyn Plugins,
    options: &VerifyOptions,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let workers = options
        .parallelism
        .unwrap_or(config.settings.parallelism)
        .max(1);
    let mut setup = Setup::build(config)?;
    setup.load_plugins(&config.transforms, plugins, workers)?;
    setup.discover().await?;
    let mut verifier = setup.source.verifier().ok_or_else(|| {
        Error::precondition(
            "this pipeline's source cannot be verified",
            "compare the copies with the tools of the source's database",
        )
    })?;
    let mut report = verifier.verify(&mut setup, options).await?;
    report.pipeline = config.name.value.clone();
    if let Some(name) = &options.sink {
        if report.sinks.is_empty() {
            return Err(Error::precondition(
                format!("the pipeline has no sink named `{name}`"),
                "use one of the names under `sinks:` in the pipeline file",
            ));
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Only this sink (by name); all MySQL sinks when `None`.
    pub sink: Option<String>,
    /// Percentage of key ranges to compare (100: all).
    pub sample_percent: f64,
    /// Rows per key range.
    pub chunk_rows: u64,
    /// Ranges compared at once; defaults to `settings.parallelism`.
    pub parallelism: Option<usize>,
    /// Rewrite differing rows on the target.
    pub repair: bool,
    /// How long to wait for a sink that follows changes to catch up before
    /// comparing differing ranges again.
    pub recheck_timeout: Duration,
    /// How the servers checksum key ranges.
    pub checksum: Checksum,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            sink: None,
            sample_percent: 100.0,
            chunk_rows: 10_000,
            parallelism: None,
            repair: false,
            recheck_timeout: Duration::from_secs(30),
            checksum: Checksum::default(),
        }
    }
}

/// What verification found (and, as JSON, the `--report` file).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub pipeline: String,
    pub sinks: Vec<SinkReport>,
    /// Differing rows left (after any repair).
    pub differences: usize,
    /// Rows rewritten by `--repair`.
    pub repaired: usize,
    pub elapsed_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SinkReport {
    pub sink: String,
    pub tables: Vec<TableReport>,
    /// Why the sink was not (fully) verified, or how the recheck went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub source: String,
    pub target: String,
    pub chunks: usize,
    pub chunks_compared: usize,
    /// Source rows compared (after the transforms).
    pub rows: u64,
    pub differences: Vec<Difference>,
    pub repaired: usize,
    /// Why this table was not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// What of this table could not be compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
}

/// How the servers checksum a key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checksum {
    /// The sum of each row's CRC32: about three times cheaper for the
    /// servers than MD5. Unlike pt-table-checksum's XOR of CRC32s (which is
    /// linear, so two rows that swap values cancel out), a sum catches
    /// swapped values; a changed row goes unseen with odds of 1 in 2^32.
    #[default]
    Crc32,
    /// An XOR of 64 bits of each row's MD5.
    Md5,
}

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// On the source, not on the target.
    Missing,
    /// On the target, not on the source.
    Extra,
    /// On both, with other values.
    Different,
}

/// One differing row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub kind: DiffKind,
    /// The key columns' values (the whole row for tables without a key), as SQL literals.
    pub key: BTreeMap<String, String>,
    /// The columns that differ, with the source's and the target's value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, [String; 2]>,
    /// The source's row, for repairing a missing or different row.
    #[serde(skip)]
    pub source: Option<Vec<String>>,
    /// Row identity for the repair's DELETE of an extra row.
    #[serde(skip)]
    pub target: Option<Vec<String>>,
}

/// The report as a table, with the first differences of each table.
pub fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for s in &report.sinks {
        let _ = writeln!(out, "sink `{}`:", s.sink);
        if let Some(note) = &s.note {
            let _ = writeln!(out, "  note: {note}");
        }
        for t in &s.tables {
            if let Some(why) = &t.skipped {
                let _ = writeln!(out, "  {:<32} skipped: {why}", t.source);
                continue;
            }
            let verdict = if t.differences.is_empty() {
                "equal".to_string()
            } else {
                format!("{} DIFFERENT ROW(S)", t.differences.len())
            };
            let repaired = if t.repaired > 0 {
                format!(", {} repaired", t.repaired)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {:<32} -> {:<32} {:>9} rows, {}/{} ranges: {verdict}{repaired}",
                t.source, t.target, t.rows, t.chunks_compared, t.chunks
            );
            if let Some(partial) = &t.partial {
                let _ = writeln!(out, "      note: {partial}");
            }
            for d in t.differences.iter().take(10) {
                let key = d
                    .key
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let cols = d
                    .columns
                    .iter()
                    .map(|(c, [a, b])| format!("{c}: source {a}, target {b}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let kind = serde_json::to_value(d.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let _ = writeln!(out, "      {kind:<9} {key}  {cols}");
            }
            if t.differences.len() > 10 {
                let _ = writeln!(
                    out,
                    "      ... {} more (see --report)",
                    t.differences.len() - 10
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "{}: {} differing row(s){} in {:.2} s",
        if report.differences == 0 {
            "verified"
        } else {
            "NOT EQUAL"
        },
        report.differences,
        if report.repaired > 0 {
            format!(", {} repaired", report.repaired)
        } else {
            String::new()
        },
        report.elapsed_s
    );
    out
}
