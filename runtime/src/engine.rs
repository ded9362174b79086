//! Runs a pipeline: builds the stages from the config, checks every
//! precondition before anything is written, then streams batches from the
//! source to every sink, each sink writing with its own parallelism.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use crate::config::{PipelineConfig, SinkConfig, SourceConfig};
use crate::event::{Position, TableId, TableSchema};
use crate::progress::{Progress, ProgressMode};
use crate::sinks::mysql::MysqlSink;
use crate::sources::mysql::MysqlSource;
use crate::stage::{Message, Sink, Source};
use crate::{Error, Result};

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub rows: BTreeMap<TableId, u64>,
    pub elapsed: Duration,
    /// Where the snapshot was taken; CDC continues from here.
    pub snapshot_position: Option<Position>,
}

impl RunSummary {
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// Builds the stages a config describes, without connecting.
pub fn build(config: &PipelineConfig) -> Result<(Box<dyn Source>, Vec<Arc<dyn Sink>>)> {
    if let Some(t) = config.transforms.first() {
        return Err(Error::precondition(
            format!(
                "transform `{}` cannot run: this version of sluice does not run WebAssembly transforms yet",
                t.plugin.value
            ),
            "remove the `transforms:` entries to run the pipeline without them",
        ));
    }
    let s = &config.settings;
    let source: Box<dyn Source> = match &config.source {
        SourceConfig::Mysql(c) => {
            Box::new(MysqlSource::new(c.clone(), s.batch_size, s.parallelism)?)
        }
    };
    let sinks = config
        .sinks
        .value
        .iter()
        .map(|c| -> Result<Arc<dyn Sink>> {
            match c {
                SinkConfig::Mysql(c) => Ok(Arc::new(MysqlSink::new(c.clone(), s.parallelism)?)),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((source, sinks))
}

/// Runs a pipeline to completion.
pub async fn run(config: &PipelineConfig, mode: ProgressMode) -> Result<RunSummary> {
    let started = Instant::now();
    let (mut source, sinks) = build(config)?;

    // Preconditions first: nothing is written anywhere unless all pass.
    let tables = source.discover().await?;
    for sink in &sinks {
        sink.check(&tables).await?;
    }
    for sink in &sinks {
        sink.prepare(&tables).await?;
    }
    tracing::info!(
        pipeline = %config.name.value,
        tables = tables.len(),
        estimated_rows = tables.iter().map(|t| t.estimated_rows).sum::<u64>(),
        "preconditions passed; copying"
    );

    let progress = Arc::new(Progress::new(&tables, &mode));
    progress.start_reporting(&mode);
    let capacity = config.settings.parallelism * 2;
    let (tx, mut rx) = mpsc::channel::<Message>(capacity);
    let source_task = tokio::spawn(source.run(tx));

    let mut sink_txs = Vec::new();
    let mut sink_tasks = Vec::new();
    for (i, sink) in sinks.iter().enumerate() {
        let (stx, srx) = mpsc::channel::<Message>(sink.parallelism() * 2);
        sink_txs.push(stx);
        let progress = (i == 0).then(|| progress.clone());
        sink_tasks.push(tokio::spawn(drive_sink(
            sink.clone(),
            srx,
            tables.clone(),
            progress,
        )));
    }

    // Fan out: every sink sees every message.
    let mut snapshot_position = None;
    'fan: while let Some(msg) = rx.recv().await {
        if let Message::SnapshotDone(p) = &msg {
            snapshot_position = Some((**p).clone());
        }
        for stx in &sink_txs {
            if stx.send(msg.clone()).await.is_err() {
                break 'fan; // that sink failed; its task holds the error
            }
        }
    }
    drop(rx);
    drop(sink_txs);

    let mut first_error = None;
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
    progress.finish(first_error.is_none());
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(RunSummary {
        rows: progress.rows(),
        elapsed: started.elapsed(),
        snapshot_position,
    })
}

/// Feeds one sink: up to `parallelism` writes in flight, then `finish`.
async fn drive_sink(
    sink: Arc<dyn Sink>,
    mut rx: mpsc::Receiver<Message>,
    tables: Vec<Arc<TableSchema>>,
    progress: Option<Arc<Progress>>,
) -> Result<()> {
    let limit = sink.parallelism().max(1);
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let (table, rows): (TableId, usize) = done?;
                if let Some(p) = &progress { p.add(&table, rows as u64); }
            }
            msg = rx.recv(), if in_flight.len() < limit => {
                match msg {
                    Some(Message::Batch(batch)) => {
                        let sink = sink.clone();
                        in_flight.push(async move {
                            let table = batch.table.id.clone();
                            let rows = batch.len();
                            sink.write(batch).await.map(|_| (table, rows))
                        });
                    }
                    Some(Message::SnapshotDone(_)) => {}
                    None => break,
                }
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        let (table, rows) = done?;
        if let Some(p) = &progress {
            p.add(&table, rows as u64);
        }
    }
    sink.finish(&tables).await
}
