//! Runs a pipeline: builds the stages, decides the plan from the source mode
//! and the sinks' checkpoints, checks every precondition before anything is
//! written, then streams messages from the source to every sink.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::config::PipelineConfig;
use crate::connectors::{Plugins, SinkSpec, SourceSpec};
use crate::event::ChangeBatch;
use crate::event::{Position, TableId};
use crate::progress::{Progress, ProgressMode, Reporter};
use crate::setup::Setup;
use crate::stage::Transform;
use crate::stage::{DdlChange, Message, OnUnsupportedDdl, Plan, SinkContext};
use crate::{Error, Result};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub progress: ProgressMode,
    /// Stop (successfully) once every sink's lag stays below this for a few seconds.
    pub until_caught_up: Option<Duration>,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub rows: BTreeMap<TableId, u64>,
    pub elapsed: Duration,
    /// Where the snapshot was taken; changes continue from here.
    pub snapshot_position: Option<Position>,
    pub plan: Plan,
    /// Why a change-following run ended.
    pub stopped_because: Option<&'static str>,
    /// Row changes the first sink applied.
    pub changes: u64,
}

impl RunSummary {
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// How often a run starts over when a table changes while the snapshot starts.
const SCHEMA_RETRIES: usize = 3;

/// Runs a pipeline to completion (or, when it follows changes, until stopped).
pub async fn run<S: SourceSpec, K: SinkSpec>(
    config: &PipelineConfig<S, K>,
    plugins: &dyn Plugins,
    options: RunOptions,
) -> Result<RunSummary> {
    let mut attempt = 1;
    loop {
        match run_once(config, plugins, &options).await {
            Err(Error::SchemaChanged { table }) if attempt < SCHEMA_RETRIES => {
                tracing::warn!(%table, attempt, "a table changed while the snapshot was starting; starting over");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn run_once<S: SourceSpec, K: SinkSpec>(
    config: &PipelineConfig<S, K>,
    plugins: &dyn Plugins,
    options: &RunOptions,
) -> Result<RunSummary> {
    let started = Instant::now();
    let mut setup = Setup::build(config)?;
    // Plugins load (and accept their config) before anything connects: one
    // chain of instances per worker, so batches are transformed in parallel.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = config.settings.parallelism.min(cores).max(1);
    setup.load_plugins(&config.transforms, plugins, workers)?;
    let on_reshaped_ddl = setup.source.on_unsupported_ddl();

    // Preconditions first: nothing is written anywhere unless all pass.
    setup.discover().await?;
    let (plan, states) = setup.plan().await?;
    crate::precheck::enforce(&setup.source_findings(&plan).await?)?;
    for (i, state) in states.iter().enumerate() {
        crate::precheck::enforce(&setup.sink_findings(i, &plan, state).await?)?;
    }
    let Setup {
        source,
        sinks,
        chains,
        tables,
        ..
    } = setup;
    let metrics_listener = match &config.metrics {
        Some(m) => Some(crate::metrics::bind(&m.listen.value).await?),
        None => None,
    };
    for (sink, state) in sinks.iter().zip(&states) {
        sink.prepare(&tables, &plan, state).await?;
    }
    tracing::info!(
        pipeline = %config.name.value,
        tables = tables.len(),
        estimated_rows = tables.iter().map(|t| t.estimated_rows).sum::<u64>(),
        plan = ?plan,
        "preconditions passed"
    );

    let progress = Arc::new(Progress::new(&tables, sinks.len(), &options.progress));
    progress.start_reporting(&options.progress);
    let metrics = metrics_listener.map(|l| {
        crate::metrics::serve(
            l,
            crate::metrics::Exposed {
                pipeline: config.name.value.clone(),
                sinks: sinks.iter().map(|s| s.name().to_string()).collect(),
                progress: progress.clone(),
            },
        )
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let stopped_because: Arc<std::sync::Mutex<Option<&'static str>>> = Default::default();
    let signals = tokio::spawn(stop_on_signal(stop_tx.clone(), stopped_because.clone()));
    let pauses = tokio::spawn(pause_on_signal(progress.clone()));
    let caught_up = options.until_caught_up.map(|threshold| {
        tokio::spawn(stop_when_caught_up(
            progress.clone(),
            threshold,
            stop_tx.clone(),
            stopped_because.clone(),
        ))
    });

    let capacity = config.settings.parallelism * 2;
    let (tx, mut rx) = mpsc::channel::<Message>(capacity);
    let source_task = tokio::spawn(source.run(tx, plan.clone(), stop_rx));

    let mut sink_txs = Vec::new();
    let mut sink_tasks = Vec::new();
    for (i, sink) in sinks.iter().enumerate() {
        let (stx, srx) = mpsc::channel::<Message>(capacity);
        sink_txs.push(stx);
        let ctx = SinkContext {
            tables: tables.clone(),
            plan: plan.clone(),
            reporter: Reporter::new(progress.clone(), i),
        };
        sink_tasks.push(tokio::spawn(crate::driver::drive(
            sink.clone(),
            srx,
            ctx,
            states[i].clone(),
        )));
    }

    // Fan out: every sink sees every message, in source order. Batches are
    // transformed by the chain pool in parallel, and their results are
    // passed on in the order the batches came in.
    let transform_workers = chains.len();
    let pool = Arc::new(std::sync::Mutex::new(chains));
    let mut pending: FuturesOrdered<BoxFuture<'static, Result<Vec<Message>>>> =
        FuturesOrdered::new();
    let mut snapshot_position = None;
    let mut transform_error = None;
    let mut input_open = true;
    // A group's messages, one by one, when transforms must see each batch.
    let mut backlog: VecDeque<Message> = VecDeque::new();
    'fan: loop {
        tokio::select! {
            biased;
            Some(done) = pending.next(), if !pending.is_empty() => {
                let msgs = match done {
                    Ok(m) => m,
                    Err(e) => {
                        transform_error = Some(e);
                        break 'fan;
                    }
                };
                for msg in msgs {
                    if !fan_out(msg, &sink_txs).await {
                        break 'fan; // that sink failed; its task holds the error
                    }
                }
            }
            msg = next_input(&mut rx, &mut backlog), if (input_open || !backlog.is_empty()) && pending.len() < transform_workers.max(1) => {
                let Some(msg) = msg else {
                    input_open = false;
                    continue;
                };
                let read = |m: &Message| {
                    if let Message::Batch(b) = m {
                        progress.read(&b.table.id, b.len() as u64, b.byte_size() as u64);
                    }
                };
                match &msg {
                    Message::SnapshotDone(p) => snapshot_position = Some((**p).clone()),
                    // A group split for the transforms is counted message by message.
                    Message::Group(msgs) if transform_workers == 0 => msgs.iter().for_each(read),
                    m => read(m),
                }
                match msg {
                    Message::Group(msgs) if transform_workers > 0 => {
                        backlog.extend(msgs);
                    }
                    Message::Batch(b) if transform_workers > 0 => {
                        let pool = pool.clone();
                        let progress = progress.clone();
                        // Started now, not when the queue is next polled:
                        // while a sink's queue is full this loop waits in
                        // `fan_out`, and the batches behind must be
                        // transformed meanwhile. At most one per worker is
                        // in flight (`pending` holds at most that many).
                        let task =
                            tokio::task::spawn_blocking(move || transform(&pool, b, &progress));
                        pending.push_back(Box::pin(async move {
                            task.await
                                .map_err(|e| Error::Internal(format!("transform task: {e}")))?
                        }));
                    }
                    Message::Ddl(d) if transform_workers > 0 && reshaped(&pool, &d) => {
                        let table = d.change.tables().first().map(|t| t.to_string()).unwrap_or_default();
                        match on_reshaped_ddl {
                            OnUnsupportedDdl::Skip => {
                                tracing::warn!(%table, position = %d.position, statement = %crate::text::abbreviate(&d.sql), "skipping a schema change of a table the transforms reshape (on_unsupported_ddl: skip); change the target table to match by hand");
                            }
                            OnUnsupportedDdl::Fail => {
                                transform_error = Some(Error::precondition(
                                    format!(
                                        "schema change of {table} at {}, a table the transforms rename or reshape: `{}` cannot be replayed on the target as it is",
                                        d.position,
                                        crate::text::abbreviate(&d.sql)
                                    ),
                                    "change the target table to match by hand, then set `source.mysql.cdc.on_unsupported_ddl: skip` and rerun",
                                ));
                                break 'fan;
                            }
                        }
                    }
                    // Nothing in front of it: straight on, without a future.
                    other if pending.is_empty() => {
                        if !fan_out(other, &sink_txs).await {
                            break 'fan;
                        }
                    }
                    other => pending.push_back(Box::pin(futures::future::ready(Ok(vec![other])))),
                }
            }
            else => break 'fan,
        }
    }
    drop(rx);
    drop(sink_txs);

    let mut first_error = transform_error;
    for task in sink_tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Internal(format!("sink task: {e}")));
            }
        }
    }
    match source_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            first_error.get_or_insert(e);
        }
        Err(e) => {
            first_error.get_or_insert(Error::Internal(format!("source task: {e}")));
        }
    }
    signals.abort();
    pauses.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    if let Some(c) = caught_up {
        c.abort();
    }
    progress.finish(first_error.is_none());
    if let Some(e) = first_error {
        return Err(e);
    }
    let stopped_because = stopped_because.lock().ok().and_then(|s| *s);
    Ok(RunSummary {
        rows: progress.rows(),
        elapsed: started.elapsed(),
        snapshot_position,
        plan,
        stopped_because,
        changes: progress.changes(0),
    })
}

/// The next message: a group's remaining one first, then the source's.
async fn next_input(
    rx: &mut mpsc::Receiver<Message>,
    backlog: &mut VecDeque<Message>,
) -> Option<Message> {
    match backlog.pop_front() {
        Some(m) => Some(m),
        None => rx.recv().await,
    }
}

/// Hands `msg` to every sink, in order (the last one gets it without a
/// copy); `false` if a sink is gone.
async fn fan_out(msg: Message, sinks: &[mpsc::Sender<Message>]) -> bool {
    let Some((last, others)) = sinks.split_last() else {
        return true;
    };
    for stx in others {
        if stx.send(msg.clone()).await.is_err() {
            return false;
        }
    }
    last.send(msg).await.is_ok()
}

/// Runs one batch through a free chain of the pool.
fn transform(
    pool: &std::sync::Mutex<Vec<Box<dyn Transform>>>,
    batch: ChangeBatch,
    progress: &Progress,
) -> Result<Vec<Message>> {
    let lock = || {
        pool.lock()
            .map_err(|_| Error::Internal("transform pool poisoned".into()))
    };
    let mut chain = lock()?
        .pop()
        .ok_or_else(|| Error::Internal("no free transform worker".into()))?;
    let started = Instant::now();
    let result = chain.apply(batch);
    progress.plugin_time(started.elapsed());
    lock()?.push(chain);
    Ok(result?.into_iter().map(Message::Batch).collect())
}

/// Whether a schema change touches a table the transforms reshape.
fn reshaped(pool: &std::sync::Mutex<Vec<Box<dyn Transform>>>, d: &DdlChange) -> bool {
    let Ok(chains) = pool.lock() else {
        return true;
    };
    chains
        .first()
        .is_some_and(|c| d.change.tables().into_iter().any(|t| c.reshapes(t)))
}

/// SIGTERM or SIGINT: stop reading, let the sinks commit, exit cleanly.
async fn stop_on_signal(
    stop: Arc<watch::Sender<bool>>,
    why: Arc<std::sync::Mutex<Option<&'static str>>>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = name,
        "stopping: committing what was applied, then exiting"
    );
    if let Ok(mut w) = why.lock() {
        w.get_or_insert(if name == "SIGTERM" {
            "SIGTERM"
        } else {
            "SIGINT"
        });
    }
    let _ = stop.send(true);
}

/// SIGUSR1 pauses reading from the source, SIGUSR2 resumes: to give a
/// production server a rest without losing the pipeline's place.
async fn pause_on_signal(progress: Arc<Progress>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut pause), Ok(mut resume)) = (
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            _ = pause.recv() => {
                if crate::throttle::set_paused(true) {
                    // Lag grows from here: nothing new is applied.
                    for i in 0..progress.sink_count() {
                        progress.set_caught_up(i, false);
                    }
                    tracing::info!("paused (SIGUSR1): reading nothing more from the source until SIGUSR2");
                }
            }
            _ = resume.recv() => {
                if crate::throttle::set_paused(false) {
                    tracing::info!("resumed (SIGUSR2)");
                }
            }
        }
    }
}

/// How long the lag must stay under the threshold before cutover.
const CAUGHT_UP_FOR: Duration = Duration::from_secs(2);

async fn stop_when_caught_up(
    progress: Arc<Progress>,
    threshold: Duration,
    stop: Arc<watch::Sender<bool>>,
    why: Arc<std::sync::Mutex<Option<&'static str>>>,
) {
    let mut since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        if progress.max_lag() <= threshold {
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() >= CAUGHT_UP_FOR {
                tracing::info!(
                    threshold_ms = threshold.as_millis() as u64,
                    "caught up: stopping"
                );
                if let Ok(mut w) = why.lock() {
                    w.get_or_insert("caught up");
                }
                let _ = stop.send(true);
                return;
            }
        } else {
            since = None;
        }
    }
}
