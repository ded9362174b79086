//! Progress display: a bar per table when stderr is a terminal, periodic
//! structured log lines otherwise.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

use crate::event::{TableId, TableSchema};

/// How progress is shown.
#[derive(Debug, Clone)]
pub enum ProgressMode {
    /// Bars on stderr (interactive use). Log lines must go through
    /// [`BarsWriter`] so they print above the bars instead of through them.
    Bars(MultiProgress),
    /// A log line per table in progress every `LOG_EVERY`.
    Log,
    Off,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

struct Table {
    estimated: u64,
    /// Rows the first sink wrote (what the bars and progress logs show).
    done: AtomicU64,
    /// Rows each sink wrote: snapshot rows and applied changes.
    written: Vec<AtomicU64>,
    /// Rows and bytes of row images the source read.
    read_rows: AtomicU64,
    read_bytes: AtomicU64,
    bar: Option<ProgressBar>,
}

/// Transient errors (lost connections, deadlocks, lock wait timeouts)
/// retried since the process started, for the metrics endpoint.
static TRANSIENT_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counts one transient error that is being retried.
pub fn transient_error() {
    TRANSIENT_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// Transient errors retried so far.
pub fn transient_errors() -> u64 {
    TRANSIENT_ERRORS.load(Ordering::Relaxed)
}

/// Counters plugins keep through the host's `counter` import, by plugin
/// and counter name, for the metrics endpoint.
static PLUGIN_COUNTERS: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());

/// Distinct counter names one plugin may keep: a plugin is untrusted code,
/// and every name becomes a metrics series.
pub const PLUGIN_COUNTER_NAMES: usize = 64;

/// Adds `delta` to a plugin's counter `name`; `false` when the plugin
/// already has [`PLUGIN_COUNTER_NAMES`] others and this one is not kept.
pub fn plugin_counter(plugin: &str, name: &str, delta: u64) -> bool {
    let Ok(mut counters) = PLUGIN_COUNTERS.lock() else {
        return false;
    };
    let key = (plugin.to_string(), name.to_string());
    if let Some(v) = counters.get_mut(&key) {
        *v = v.saturating_add(delta);
        return true;
    }
    if counters.keys().filter(|(p, _)| p == plugin).count() >= PLUGIN_COUNTER_NAMES {
        return false;
    }
    counters.insert(key, delta);
    true
}

/// Every plugin counter: `((plugin, name), value)`.
pub fn plugin_counters() -> Vec<((String, String), u64)> {
    PLUGIN_COUNTERS
        .lock()
        .map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default()
}

/// One table's counters, for the metrics endpoint.
#[derive(Debug, Clone)]
pub struct TableCounts {
    pub table: TableId,
    pub read_rows: u64,
    pub read_bytes: u64,
    /// Per sink, in pipeline order.
    pub written: Vec<u64>,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// How far one sink has applied changes.
#[derive(Default)]
pub struct SinkStatus {
    /// Commit time (µs since the epoch) of the last applied source transaction.
    applied_commit_us: AtomicI64,
    /// Set when the sink applied everything the source had (a heartbeat came
    /// in with nothing pending); cleared by new changes.
    caught_up: AtomicBool,
    /// Row changes applied.
    changes: AtomicU64,
    /// When (µs since the epoch) the sink last committed a checkpoint.
    checkpoint_us: AtomicI64,
}

/// Rows written per table (as seen by the first sink), and each sink's lag.
pub struct Progress {
    tables: BTreeMap<TableId, Table>,
    sinks: Vec<SinkStatus>,
    started: Instant,
    multi: Option<MultiProgress>,
    reporter: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Time spent in transform plugins, µs.
    plugin_us: AtomicU64,
}

impl Progress {
    pub fn new(tables: &[Arc<TableSchema>], sinks: usize, mode: &ProgressMode) -> Self {
        let multi = match mode {
            ProgressMode::Bars(m) => Some(m.clone()),
            _ => None,
        };
        let style = ProgressStyle::with_template(
            "{prefix:>32} [{bar:30}] {human_pos:>10}/{human_len:<10} {rate:>14} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} rows/s", s.per_sec());
            },
        )
        .progress_chars("=> ");
        let tables = tables
            .iter()
            .map(|t| {
                let bar = multi.as_ref().map(|m| {
                    let b = m.add(ProgressBar::new(t.estimated_rows.max(1)));
                    b.set_style(style.clone());
                    b.set_prefix(t.id.to_string());
                    b
                });
                (
                    t.id.clone(),
                    Table {
                        estimated: t.estimated_rows,
                        done: AtomicU64::new(0),
                        written: (0..sinks.max(1)).map(|_| AtomicU64::new(0)).collect(),
                        read_rows: AtomicU64::new(0),
                        read_bytes: AtomicU64::new(0),
                        bar,
                    },
                )
            })
            .collect();
        Progress {
            tables,
            sinks: (0..sinks.max(1)).map(|_| SinkStatus::default()).collect(),
            started: Instant::now(),
            multi,
            reporter: Mutex::new(None),
            plugin_us: AtomicU64::new(0),
        }
    }

    /// Starts periodic log lines (Log mode); call once the runtime is running.
    pub fn start_reporting(self: &Arc<Self>, mode: &ProgressMode) {
        if let ProgressMode::Bars(multi) = mode {
            self.start_replication_line(multi.clone());
            return;
        }
        if !matches!(mode, ProgressMode::Log) {
            return;
        }
        let me = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let mut last: BTreeMap<TableId, u64> = BTreeMap::new();
            let mut last_changes: Vec<u64> = vec![0; me.sinks.len()];
            let mut tick = tokio::time::interval(LOG_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                for (id, t) in &me.tables {
                    let done = t.done.load(Ordering::Relaxed);
                    let prev = last.insert(id.clone(), done).unwrap_or(0);
                    if done == prev {
                        continue;
                    }
                    let rate = (done - prev) as f64 / LOG_EVERY.as_secs_f64();
                    let eta_s = if rate > 0.0 && t.estimated > done {
                        ((t.estimated - done) as f64 / rate) as u64
                    } else {
                        0
                    };
                    tracing::info!(table = %id, rows = done, estimated_rows = t.estimated, rows_per_sec = rate as u64, eta_s, "progress");
                }
                for (i, prev) in last_changes.iter_mut().enumerate() {
                    let now = me.changes(i);
                    let lag = me.lag(i);
                    if now == *prev && lag == Duration::MAX {
                        continue;
                    }
                    let rate = (now - *prev) as f64 / LOG_EVERY.as_secs_f64();
                    *prev = now;
                    let lag_ms = if lag == Duration::MAX {
                        -1
                    } else {
                        lag.as_millis() as i64
                    };
                    tracing::info!(
                        sink = i,
                        changes = now,
                        changes_per_sec = rate as u64,
                        lag_ms,
                        "replication"
                    );
                }
            }
        });
        if let Ok(mut r) = self.reporter.lock() {
            *r = Some(handle);
        }
    }

    /// Rows of the snapshot written by sink `sink`.
    /// A status line under the bars: each sink's lag and change rate, once
    /// changes flow.
    fn start_replication_line(self: &Arc<Self>, multi: MultiProgress) {
        let me = Arc::clone(self);
        let line = multi.add(ProgressBar::new_spinner());
        line.set_style(
            ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let handle = tokio::spawn(async move {
            let mut last: Vec<u64> = vec![0; me.sinks.len()];
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let parts: Vec<String> = (0..me.sinks.len())
                    .filter_map(|i| {
                        let lag = me.lag(i);
                        let now = me.changes(i);
                        let rate = now - last[i];
                        last[i] = now;
                        (lag != Duration::MAX).then(|| {
                            format!(
                                "sink {i}: lag {} ms, {rate} changes/s, {now} applied",
                                lag.as_millis()
                            )
                        })
                    })
                    .collect();
                if !parts.is_empty() {
                    line.set_message(format!("{:>32}  {}", "changes", parts.join("; ")));
                }
            }
        });
        if let Ok(mut r) = self.reporter.lock() {
            *r = Some(handle);
        }
    }

    pub fn add(&self, sink: usize, table: &TableId, rows: u64) {
        if let Some(w) = self.tables.get(table).and_then(|t| t.written.get(sink)) {
            w.fetch_add(rows, Ordering::Relaxed);
        }
        if sink != 0 {
            return;
        }
        if let Some(t) = self.tables.get(table) {
            let done = t.done.fetch_add(rows, Ordering::Relaxed) + rows;
            if let Some(b) = &t.bar {
                if done > b.length().unwrap_or(0) {
                    b.set_length(done);
                }
                b.set_position(done);
            }
        }
    }

    /// Sink `sink` committed changes up to a source commit at `commit_ts_us`
    /// (and its checkpoint with them).
    pub fn applied(&self, sink: usize, commit_ts_us: i64, changes: u64) {
        if let Some(s) = self.sinks.get(sink) {
            s.applied_commit_us
                .fetch_max(commit_ts_us, Ordering::Relaxed);
            s.changes.fetch_add(changes, Ordering::Relaxed);
            s.checkpoint_us.store(now_us(), Ordering::Relaxed);
        }
    }

    /// Sink `sink` applied `rows` row changes to `table` (counted apart from
    /// the snapshot's progress).
    pub fn changed(&self, sink: usize, table: &TableId, rows: u64) {
        if let Some(w) = self.tables.get(table).and_then(|t| t.written.get(sink)) {
            w.fetch_add(rows, Ordering::Relaxed);
        }
    }

    /// The source read `rows` rows (`bytes` of row images) of `table`.
    pub fn read(&self, table: &TableId, rows: u64, bytes: u64) {
        if let Some(t) = self.tables.get(table) {
            t.read_rows.fetch_add(rows, Ordering::Relaxed);
            t.read_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Time a batch spent in the transform plugins.
    pub fn plugin_time(&self, d: Duration) {
        self.plugin_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Seconds spent in transform plugins so far.
    pub fn plugin_seconds(&self) -> f64 {
        self.plugin_us.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// How many sinks there are.
    pub fn sink_count(&self) -> usize {
        self.sinks.len()
    }

    /// How long ago sink `sink` last committed a checkpoint; `None` before its first.
    pub fn checkpoint_age(&self, sink: usize) -> Option<Duration> {
        let at = self.sinks.get(sink)?.checkpoint_us.load(Ordering::Relaxed);
        (at > 0).then(|| Duration::from_micros(now_us().saturating_sub(at).max(0) as u64))
    }

    /// Every table's counters.
    pub fn table_counts(&self) -> Vec<TableCounts> {
        self.tables
            .iter()
            .map(|(id, t)| TableCounts {
                table: id.clone(),
                read_rows: t.read_rows.load(Ordering::Relaxed),
                read_bytes: t.read_bytes.load(Ordering::Relaxed),
                written: t
                    .written
                    .iter()
                    .map(|w| w.load(Ordering::Relaxed))
                    .collect(),
            })
            .collect()
    }

    pub fn set_caught_up(&self, sink: usize, caught_up: bool) {
        if let Some(s) = self.sinks.get(sink) {
            s.caught_up.store(caught_up, Ordering::Relaxed);
        }
    }

    /// Now minus the commit time of the last applied change; zero when the
    /// sink has applied everything the source had (heartbeat-corrected, so an
    /// idle source does not look like a lagging one).
    pub fn lag(&self, sink: usize) -> Duration {
        let Some(s) = self.sinks.get(sink) else {
            return Duration::ZERO;
        };
        if s.caught_up.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let applied = s.applied_commit_us.load(Ordering::Relaxed);
        if applied == 0 {
            return Duration::MAX;
        }
        Duration::from_micros(now_us().saturating_sub(applied).max(0) as u64)
    }

    /// The largest lag over all sinks.
    pub fn max_lag(&self) -> Duration {
        (0..self.sinks.len())
            .map(|i| self.lag(i))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Row changes applied by sink `sink`.
    pub fn changes(&self, sink: usize) -> u64 {
        self.sinks
            .get(sink)
            .map_or(0, |s| s.changes.load(Ordering::Relaxed))
    }

    pub fn rows(&self) -> BTreeMap<TableId, u64> {
        self.tables
            .iter()
            .map(|(id, t)| (id.clone(), t.done.load(Ordering::Relaxed)))
            .collect()
    }

    /// Stops the display and logs a summary.
    pub fn finish(&self, ok: bool) {
        if let Ok(mut r) = self.reporter.lock() {
            if let Some(h) = r.take() {
                h.abort();
            }
        }
        for t in self.tables.values() {
            if let Some(b) = &t.bar {
                if ok {
                    b.set_length(t.done.load(Ordering::Relaxed).max(1));
                    b.finish();
                } else {
                    b.abandon();
                }
            }
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
        let total: u64 = self
            .tables
            .values()
            .map(|t| t.done.load(Ordering::Relaxed))
            .sum();
        let secs = self.started.elapsed().as_secs_f64();
        tracing::info!(
            rows = total,
            tables = self.tables.len(),
            seconds = format!("{secs:.2}"),
            rows_per_sec = (total as f64 / secs.max(1e-9)) as u64,
            "copy finished"
        );
    }
}

/// What one sink tells the run's progress: a sink's writers hold one and
/// need not know where they sit among the pipeline's sinks.
#[derive(Clone)]
pub struct Reporter {
    progress: Arc<Progress>,
    sink: usize,
}

impl Reporter {
    pub fn new(progress: Arc<Progress>, sink: usize) -> Reporter {
        Reporter { progress, sink }
    }

    /// `rows` snapshot rows of `table` are written.
    pub fn loaded(&self, table: &TableId, rows: u64) {
        self.progress.add(self.sink, table, rows);
    }

    /// `rows` row changes of `table` are applied.
    pub fn changed(&self, table: &TableId, rows: u64) {
        self.progress.changed(self.sink, table, rows);
    }

    /// Changes up to a source commit at `commit_ts_us` are applied, with the
    /// checkpoint.
    pub fn applied(&self, commit_ts_us: i64, changes: u64) {
        self.progress.applied(self.sink, commit_ts_us, changes);
    }

    /// Whether everything the source sent is applied (lag is then zero).
    pub fn caught_up(&self, caught_up: bool) {
        self.progress.set_caught_up(self.sink, caught_up);
    }
}

/// The bars, drawn on stderr.
pub fn bars() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
}

/// A `tracing` writer that prints log lines above the progress bars.
#[derive(Clone)]
pub struct BarsWriter(pub MultiProgress);

impl std::io::Write for BarsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for BarsWriter {
    type Writer = BarsWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
