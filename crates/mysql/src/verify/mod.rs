//! `sluice verify`: proves a pipeline's sinks hold what its source holds,
//! after the pipeline's own transforms, and optionally repairs MySQL targets.
//!
//! How (pt-table-checksum's idea, without writing to either server):
//! 1. every source table is split into key ranges ([`crate::ranges`]);
//! 2. for each range, in parallel: tables no transform touches are
//!    checksummed by both servers ([`rows::checksum`]); a range whose
//!    checksums differ is narrowed down by per-row hashes and only its
//!    differing rows are read; every range of a transformed table is read
//!    from both sides, the source's rows passed through the same plugins;
//!    rows are compared value by value ([`rows::diff`]);
//! 3. while the pipeline follows changes, a difference may be a change not
//!    yet applied: the differing ranges are compared again once the sink's
//!    checkpoint has passed the source's position, and only rows that still
//!    differ are reported;
//! 4. `--repair` rewrites the differing rows on the target ([`repair`]) and
//!    compares their ranges once more.
//!
//! A Parquet archive is compared table by table: its committed files
//! replayed ([`archive`]) against all of the source's rows.

pub mod archive;
pub mod repair;
pub mod rows;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use mysql_async::Pool;

use crate::connect::Endpoint;
use crate::event::{ChangeBatch, EventInfo, Op, Position, TableSchema};
use crate::ranges::{self, Chunk, Split};
use crate::stage::Transform;
use crate::stage::{Sink, SinkState, SourceMode};
use crate::view::{ChangeLog, View};
use crate::{Error, Result};
use rows::Rows;
use sluice_core::setup::Setup;
use sluice_core::verify::Difference;
use sluice_core::verify::{Report, SinkReport, TableReport, Verifier, VerifyOptions};

/// A source table and where it lands on one sink.
struct Pair {
    source: Arc<TableSchema>,
    /// The target's shape: the transforms' output, under the sink's name for it.
    target: Arc<TableSchema>,
    /// Whether rows pass through plugins (else both servers checksum them).
    transformed: bool,
    source_key: Vec<String>,
    target_key: Vec<String>,
}

/// Verifies the sinks of a MySQL source.
pub struct MysqlVerifier {
    pub source_ep: Endpoint,
    /// Connections at once unless `--parallelism` says.
    pub parallelism: usize,
}

#[async_trait::async_trait]
impl Verifier for MysqlVerifier {
    async fn verify(&mut self, setup: &mut Setup, options: &VerifyOptions) -> Result<Report> {
        let parallelism = options.parallelism.unwrap_or(self.parallelism).max(1);
        verify(&self.source_ep, setup, options, parallelism).await
    }
}

async fn verify(
    source_ep: &Endpoint,
    setup: &mut Setup,
    options: &VerifyOptions,
    parallelism: usize,
) -> Result<Report> {
    let started = Instant::now();
    let tables = setup.source_tables.clone();
    let sinks = setup.sinks.clone();
    let source = &mut setup.source;
    let follows = source.mode() != SourceMode::Snapshot;
    let mut chains = std::mem::take(&mut setup.chains);
    // What each source table becomes; a table merged with others (or split)
    // cannot be compared range by range.
    let mut outputs: Vec<std::result::Result<(Arc<TableSchema>, bool), String>> = Vec::new();
    match chains.first_mut() {
        None => outputs.extend(tables.iter().map(|t| Ok((t.clone(), false)))),
        Some(chain) => {
            let mut per_table = Vec::new();
            for t in &tables {
                per_table.push(chain.tables(std::slice::from_ref(t))?);
            }
            let mut sources_of: HashMap<_, usize> = HashMap::new();
            for outs in &per_table {
                for o in outs {
                    *sources_of.entry(o.id.clone()).or_default() += 1;
                }
            }
            for (t, outs) in tables.iter().zip(per_table) {
                outputs.push(match outs.as_slice() {
                    [] => Err("the transforms drop this table".into()),
                    [o] if sources_of[&o.id] > 1 => Err(format!(
                        "the transforms merge it with other tables into {}",
                        o.id
                    )),
                    [o] => Ok((o.clone(), chain.touches(&t.id))),
                    _ => Err("the transforms split it into several tables".into()),
                });
            }
        }
    }

    // Key ranges, from the source, once for every sink; tables in parallel.
    let source_pool = source_ep.pool(&[], parallelism);
    let chunk_rows = options.chunk_rows;
    let chunk_plans: Vec<Vec<Chunk>> = futures::stream::iter(tables.iter().cloned())
        .map(|t| {
            let (pool, ep) = (source_pool.clone(), source_ep.clone());
            async move {
                let mut conn = pool
                    .get_conn()
                    .await
                    .map_err(|e| ep.error("connecting to plan the key ranges", e))?;
                ranges::plan(&ep, &mut conn, &t, chunk_rows, Split::ByIndex).await
            }
        })
        .buffered(parallelism)
        .try_collect()
        .await?;
    let mut report = Report {
        pipeline: String::new(),
        sinks: Vec::new(),
        differences: 0,
        repaired: 0,
        elapsed_s: 0.0,
    };
    let mut seed = started.elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for sink in &sinks {
        if options.sink.as_deref().is_some_and(|n| n != sink.name()) {
            continue;
        }
        let mut note = None;
        let view = sink.view();
        let (pairs, mut tables_out) = match &view {
            View::Database(db) => pairs_for(&tables, &outputs, |id| (db.target)(id)),
            _ => pairs_for(&tables, &outputs, |id| id.clone()),
        };
        match view {
            View::Database(db) => {
                let target_ep = Endpoint::new(format!("sink `{}`", sink.name()), &db.url)
                    .map_err(Error::Data)?;
                let session: Vec<&str> = db.session.iter().map(String::as_str).collect();
                let target_pool = target_ep.pool(&session, parallelism);
                let ctx = Arc::new(Ctx {
                    source_ep: source_ep.clone(),
                    target_ep,
                    source_pool: source_pool.clone(),
                    target_pool: target_pool.clone(),
                    pairs: Arc::new(pairs),
                    checksum: options.checksum,
                });
                let mut work = Vec::new();
                for (ti, plan) in chunk_plans.iter().enumerate() {
                    if ctx.pairs[ti].is_none() {
                        continue;
                    }
                    tables_out[ti].chunks = plan.len();
                    for chunk in plan {
                        if sampled(&mut seed, options.sample_percent) {
                            work.push((ti, chunk.clone()));
                            tables_out[ti].chunks_compared += 1;
                        }
                    }
                }
                // Only awaited (run) when some range differs.
                let wait = caught_up(source.as_mut(), sink.as_ref(), options.recheck_timeout);
                let checked = verify_mysql(
                    &ctx,
                    work,
                    chains,
                    parallelism,
                    &mut tables_out,
                    options,
                    follows,
                    wait,
                )
                .await;
                let _ = target_pool.disconnect().await;
                let (returned, recheck_note) = checked?;
                chains = returned;
                note = recheck_note;
            }
            View::ChangeLog(archive) => {
                let check = ArchiveCheck {
                    source_ep: &source_ep,
                    archive: archive.as_ref(),
                    pairs: &pairs,
                    chunk_plans: &chunk_plans,
                };
                let mut found = check
                    .compare(chains.first_mut(), &mut tables_out, None)
                    .await?;
                let differing: Vec<usize> =
                    (0..found.len()).filter(|&i| !found[i].is_empty()).collect();
                if !differing.is_empty() && follows {
                    note =
                        caught_up(source.as_mut(), sink.as_ref(), options.recheck_timeout).await?;
                    let again = check
                        .compare(chains.first_mut(), &mut tables_out, Some(&differing))
                        .await?;
                    for &ti in &differing {
                        let before = std::mem::take(&mut found[ti]);
                        found[ti] = still_different(before, again[ti].clone());
                    }
                }
                let differing: Vec<usize> =
                    (0..found.len()).filter(|&i| !found[i].is_empty()).collect();
                if options.repair && !differing.is_empty() && archive.repairable() {
                    for (ti, n) in check.repair(chains.first_mut(), &differing).await? {
                        tables_out[ti].repaired += n;
                    }
                    // What is left, read again.
                    let after = check
                        .compare(chains.first_mut(), &mut tables_out, Some(&differing))
                        .await?;
                    for &ti in &differing {
                        found[ti] = after[ti].clone();
                    }
                } else if options.repair && !differing.is_empty() {
                    let why = "not repaired: --repair rewrites database targets only; reload the differing tables of this sink";
                    note = Some(match note {
                        Some(n) => format!("{n}; {why}"),
                        None => why.to_string(),
                    });
                }
                for (t, diffs) in tables_out.iter_mut().zip(found) {
                    t.differences = diffs;
                }
            }
            View::Unreadable(why) => note = Some(format!("not verified: {why}")),
        }
        for t in &tables_out {
            report.differences += t.differences.len();
            report.repaired += t.repaired;
        }
        report.sinks.push(SinkReport {
            sink: sink.name().to_string(),
            tables: tables_out,
            note,
        });
    }
    let _ = source_pool.disconnect().await;
    setup.chains = chains;
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Each source table and where it lands on a sink (`target` names it),
/// with the report rows to fill.
fn pairs_for(
    tables: &[Arc<TableSchema>],
    outputs: &[std::result::Result<(Arc<TableSchema>, bool), String>],
    target: impl Fn(&crate::event::TableId) -> crate::event::TableId,
) -> (Vec<Option<Pair>>, Vec<TableReport>) {
    let mut pairs = Vec::new();
    let mut reports = Vec::new();
    for (t, out) in tables.iter().zip(outputs) {
        let mut report = TableReport {
            source: t.id.to_string(),
            target: String::new(),
            chunks: 0,
            chunks_compared: 0,
            rows: 0,
            differences: Vec::new(),
            repaired: 0,
            skipped: None,
            partial: None,
        };
        match out {
            Ok((o, transformed)) => {
                let mut shape = (**o).clone();
                shape.id = target(&o.id);
                report.target = shape.id.to_string();
                pairs.push(Some(Pair {
                    source: t.clone(),
                    source_key: ranges::key_names(t),
                    target_key: ranges::key_names(&shape),
                    target: Arc::new(shape),
                    transformed: *transformed,
                }));
            }
            Err(why) => {
                report.skipped = Some(why.clone());
                pairs.push(None);
            }
        }
        reports.push(report);
    }
    (pairs, reports)
}

/// Differences of a second comparison that the first one found too: the
/// others are changes still on their way.
fn still_different(before: Vec<Difference>, after: Vec<Difference>) -> Vec<Difference> {
    after
        .into_iter()
        .filter(|d| before.iter().any(|b| b.kind == d.kind && b.key == d.key))
        .collect()
}

/// Compares `work` on a MySQL target; while the pipeline `follows`
/// changes, compares differing ranges again once `wait_caught_up` is done
/// (it is not run when nothing differs); then repairs what still differs
/// if asked. Returns the plugin chains and a
/// note on the recheck.
async fn verify_mysql<Fut>(
    ctx: &Arc<Ctx>,
    work: Vec<(usize, Chunk)>,
    chains: Vec<Box<dyn Transform>>,
    parallelism: usize,
    tables_out: &mut [TableReport],
    options: &VerifyOptions,
    follows: bool,
    wait_caught_up: Fut,
) -> Result<(Vec<Box<dyn Transform>>, Option<String>)>
where
    Fut: std::future::Future<Output = Result<Option<String>>>,
{
    let (found, mut chains) = compare_all(ctx.clone(), work, chains, parallelism).await?;
    let mut differing: Vec<(usize, Chunk, Vec<Difference>)> = Vec::new();
    for (ti, chunk, rows, diffs) in found {
        tables_out[ti].rows += rows;
        if !diffs.is_empty() {
            differing.push((ti, chunk, diffs));
        }
    }
    let mut note = None;
    if !differing.is_empty() && follows {
        note = wait_caught_up.await?;
        let work: Vec<(usize, Chunk)> = differing
            .iter()
            .map(|(ti, c, _)| (*ti, c.clone()))
            .collect();
        let (again, returned) = compare_all(ctx.clone(), work, chains, parallelism).await?;
        chains = returned;
        differing = differing
            .into_iter()
            .zip(again)
            .map(|((ti, chunk, before), (_, _, _, after))| {
                (ti, chunk, still_different(before, after))
            })
            .filter(|(_, _, d)| !d.is_empty())
            .collect();
    }
    if options.repair && !differing.is_empty() {
        let mut conn = ctx
            .target_pool
            .get_conn()
            .await
            .map_err(|e| ctx.target_ep.error("connecting to repair", e))?;
        let mut repaired = Vec::new();
        for (ti, chunk, diffs) in &differing {
            let Some(pair) = &ctx.pairs[*ti] else {
                continue;
            };
            repair::apply(&ctx.target_ep, &mut conn, &pair.target, diffs).await?;
            tables_out[*ti].repaired += diffs.len();
            repaired.push((*ti, chunk.clone()));
        }
        drop(conn);
        let (after, returned) = compare_all(ctx.clone(), repaired, chains, parallelism).await?;
        chains = returned;
        differing = after
            .into_iter()
            .filter(|(_, _, _, d)| !d.is_empty())
            .map(|(ti, c, _, d)| (ti, c, d))
            .collect();
    }
    for (ti, _, diffs) in differing {
        tables_out[ti].differences.extend(diffs);
    }
    Ok((chains, note))
}

/// Whether to compare the next range, for `--sample`.
fn sampled(seed: &mut u64, percent: f64) -> bool {
    if percent >= 100.0 {
        return true;
    }
    // splitmix64: a fresh choice of ranges on every run.
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z % 10_000) as f64) < percent * 100.0
}

/// Waits until `sink`'s checkpoint has reached the source's current
/// position; `Some(note)` when it did not within `timeout`.
async fn caught_up(
    source: &mut dyn crate::stage::Source,
    sink: &dyn Sink,
    timeout: Duration,
) -> Result<Option<String>> {
    let target: Position = source.current_position().await?;
    let deadline = Instant::now() + timeout;
    loop {
        if let SinkState::At(at) = sink.state().await? {
            if at.binlog_cmp(&target) != std::cmp::Ordering::Less {
                return Ok(None);
            }
        }
        if Instant::now() >= deadline {
            return Ok(Some(format!(
                "the sink did not reach the source's position {target} within {} s; differences were compared again anyway and may include changes not yet applied",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the workers share.
struct Ctx {
    source_ep: Endpoint,
    target_ep: Endpoint,
    source_pool: Pool,
    target_pool: Pool,
    pairs: Arc<Vec<Option<Pair>>>,
    checksum: sluice_core::verify::Checksum,
}

/// `(table, range, source rows compared, differences)`.
type Compared = (usize, Chunk, u64, Vec<Difference>);

/// Compares every range of `work`, `parallelism` at a time; returns the
/// results in `work`'s order and the plugin chains for reuse.
async fn compare_all(
    ctx: Arc<Ctx>,
    work: Vec<(usize, Chunk)>,
    mut chains: Vec<Box<dyn Transform>>,
    parallelism: usize,
) -> Result<(Vec<Compared>, Vec<Box<dyn Transform>>)> {
    let n = work.len();
    let queue = Arc::new(Mutex::new(
        work.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let results: Arc<Mutex<BTreeMap<usize, Compared>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallelism.min(n.max(1)) {
        let chain = chains.pop();
        let (ctx, queue, results) = (ctx.clone(), queue.clone(), results.clone());
        tasks.spawn(async move {
            let mut chain = chain;
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some((i, (ti, chunk))) = next else { break };
                let out = compare(&ctx, ti, &chunk, chain.as_mut()).await;
                let out = match out {
                    Ok(o) => o,
                    Err(e) => return Err((e, chain)),
                };
                if let Ok(mut r) = results.lock() {
                    r.insert(i, (ti, chunk, out.0, out.1));
                }
            }
            Ok(chain)
        });
    }
    let mut failure = None;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(chain)) => chains.extend(chain),
            Ok(Err((e, chain))) => {
                chains.extend(chain);
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::Internal(format!("verify task: {e}")));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let results = Arc::try_unwrap(results)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .ok_or_else(|| Error::Internal("verify results still shared".into()))?;
    Ok((results.into_values().collect(), chains))
}

/// Compares one range of one table: `(source rows, differences)`.
async fn compare(
    ctx: &Ctx,
    ti: usize,
    chunk: &Chunk,
    chain: Option<&mut Box<dyn Transform>>,
) -> Result<(u64, Vec<Difference>)> {
    let Some(pair) = &ctx.pairs[ti] else {
        return Ok((0, Vec::new()));
    };
    let mut src = ctx
        .source_pool
        .get_conn()
        .await
        .map_err(|e| ctx.source_ep.error("connecting to verify", e))?;
    let mut dst = ctx
        .target_pool
        .get_conn()
        .await
        .map_err(|e| ctx.target_ep.error("connecting to verify", e))?;
    if !pair.transformed {
        let (a, b) = tokio::join!(
            rows::checksum(
                &ctx.source_ep,
                &mut src,
                &pair.source,
                &pair.source_key,
                chunk,
                ctx.checksum,
            ),
            rows::checksum(
                &ctx.target_ep,
                &mut dst,
                &pair.target,
                &pair.target_key,
                chunk,
                ctx.checksum,
            ),
        );
        let (a, b) = (a?, b?);
        if a == b {
            return Ok((a.0, Vec::new()));
        }
        if !pair.source_key.is_empty() {
            // Narrow the range down to its differing rows by their hashes,
            // and read only those.
            let (ha, hb) = tokio::join!(
                rows::row_hashes(
                    &ctx.source_ep,
                    &mut src,
                    &pair.source,
                    &pair.source_key,
                    chunk
                ),
                rows::row_hashes(
                    &ctx.target_ep,
                    &mut dst,
                    &pair.target,
                    &pair.target_key,
                    chunk
                ),
            );
            let keys = rows::differing_keys(&ha?, &hb?);
            let (fa, fb) = tokio::join!(
                rows::fetch_keys(
                    &ctx.source_ep,
                    &mut src,
                    &pair.source,
                    &pair.source_key,
                    &keys
                ),
                rows::fetch_keys(
                    &ctx.target_ep,
                    &mut dst,
                    &pair.target,
                    &pair.target_key,
                    &keys
                ),
            );
            let (mut source_rows, mut target_rows) = (Rows::new(), Rows::new());
            rows::keyed(&pair.target, &fa?, &mut source_rows)?;
            rows::keyed(&pair.target, &fb?, &mut target_rows)?;
            return Ok((a.0, rows::diff(&pair.target, &source_rows, &target_rows)));
        }
    }
    let (a, b) = tokio::join!(
        rows::fetch(
            &ctx.source_ep,
            &mut src,
            &pair.source,
            &pair.source_key,
            chunk
        ),
        rows::fetch(
            &ctx.target_ep,
            &mut dst,
            &pair.target,
            &pair.target_key,
            chunk
        ),
    );
    let (source_batch, target_batch) = (a?, b?);
    let mut source_rows = Rows::new();
    let compared = as_target(pair, source_batch, chain, &mut source_rows, None)?;
    let mut target_rows = Rows::new();
    rows::keyed(&pair.target, &target_batch, &mut target_rows)?;
    Ok((
        compared,
        rows::diff(&pair.target, &source_rows, &target_rows),
    ))
}

/// Adds a batch of source rows to `rows` as the target should hold them:
/// through the plugins when they touch the table. Returns how many rows.
fn as_target(
    pair: &Pair,
    source_batch: arrow_array::RecordBatch,
    chain: Option<&mut Box<dyn Transform>>,
    rows: &mut Rows,
    stored: Option<&dyn ChangeLog>,
) -> Result<u64> {
    let keep = |batch: &arrow_array::RecordBatch, rows: &mut Rows| -> Result<()> {
        match stored {
            Some(s) => rows::keyed(
                &pair.target,
                &s.as_stored(&pair.target, batch.clone())?,
                rows,
            ),
            None => rows::keyed(&pair.target, batch, rows),
        }
    };
    let mut n = 0;
    for after in transformed(pair, source_batch, chain)? {
        n += after.num_rows() as u64;
        keep(&after, rows)?;
    }
    Ok(n)
}

/// An archive and what it is compared with.
struct ArchiveCheck<'a> {
    source_ep: &'a Endpoint,
    archive: &'a dyn ChangeLog,
    pairs: &'a [Option<Pair>],
    chunk_plans: &'a [Vec<Chunk>],
}

impl ArchiveCheck<'_> {
    /// Compares the archive's tables (those in `only`, if given), each
    /// whole: the source's rows (through the plugins) against the committed
    /// files replayed.
    async fn compare(
        &self,
        mut chain: Option<&mut Box<dyn Transform>>,
        tables_out: &mut [TableReport],
        only: Option<&[usize]>,
    ) -> Result<Vec<Vec<Difference>>> {
        let (source_ep, archive, pairs, chunk_plans) =
            (self.source_ep, self.archive, self.pairs, self.chunk_plans);
        let mut conn = source_ep.connect(&[]).await?;
        let mut found = vec![Vec::new(); pairs.len()];
        for (ti, pair) in pairs.iter().enumerate() {
            let Some(pair) = pair else { continue };
            if only.is_some_and(|o| !o.contains(&ti)) {
                continue;
            }
            let mut source_rows = Rows::new();
            let mut n = 0;
            for chunk in &chunk_plans[ti] {
                let batch =
                    rows::fetch(source_ep, &mut conn, &pair.source, &pair.source_key, chunk)
                        .await?;
                n += as_target(
                    pair,
                    batch,
                    chain.as_deref_mut(),
                    &mut source_rows,
                    Some(archive),
                )?;
            }
            let replayed = archive::replay(&pair.target, &archive.read(&pair.target).await?)?;
            tables_out[ti].rows = n;
            tables_out[ti].chunks = chunk_plans[ti].len();
            match replayed {
                Ok(state) => {
                    tables_out[ti].chunks_compared = chunk_plans[ti].len();
                    found[ti] = rows::diff(&pair.target, &source_rows, &state.rows);
                    if state.partial_rows > 0 {
                        tables_out[ti].partial = Some(format!(
                            "{} row(s) were archived before a schema change added columns; the values the server gave them are not in the archive and were not compared",
                            state.partial_rows
                        ));
                    }
                }
                Err(why) => tables_out[ti].skipped = Some(why),
            }
        }
        let _ = conn.disconnect().await;
        Ok(found)
    }
}

impl ArchiveCheck<'_> {
    /// `--repair` on a copy that can be rewritten: each table of
    /// `differing` is read again on both sides, and every row that differs
    /// is written from the source's (a key the source lacks removed, a
    /// table without a key brought to the source's count of each row).
    /// Returns the rows written and removed per table.
    async fn repair(
        &self,
        mut chain: Option<&mut Box<dyn Transform>>,
        differing: &[usize],
    ) -> Result<Vec<(usize, usize)>> {
        let mut conn = self.source_ep.connect(&[]).await?;
        let mut out = Vec::new();
        for &ti in differing {
            let Some(pair) = &self.pairs[ti] else {
                continue;
            };
            // The source's rows as the sink gets them, each with its key
            // and literals as compared (as stored).
            let mut source: Vec<arrow_array::RecordBatch> = Vec::new();
            for chunk in &self.chunk_plans[ti] {
                let batch = rows::fetch(
                    self.source_ep,
                    &mut conn,
                    &pair.source,
                    &pair.source_key,
                    chunk,
                )
                .await?;
                source.extend(transformed(pair, batch, chain.as_deref_mut())?);
            }
            let mut wanted: BTreeMap<String, Vec<(usize, usize, Vec<String>)>> = BTreeMap::new();
            for (bi, b) in source.iter().enumerate() {
                let stored = self.archive.as_stored(&pair.target, b.clone())?;
                for (r, (key, values)) in rows::literals(&pair.target, &stored)?
                    .into_iter()
                    .enumerate()
                {
                    wanted.entry(key).or_default().push((bi, r, values));
                }
            }
            let target: Vec<arrow_array::RecordBatch> = self
                .archive
                .read(&pair.target)
                .await?
                .into_iter()
                .map(|b| b.image)
                .collect();
            let mut have: BTreeMap<String, Vec<(usize, usize, Vec<String>)>> = BTreeMap::new();
            for (bi, b) in target.iter().enumerate() {
                for (r, (key, values)) in rows::literals(&pair.target, b)?.into_iter().enumerate() {
                    have.entry(key).or_default().push((bi, r, values));
                }
            }
            let mut upserts: Vec<Vec<u32>> = vec![Vec::new(); source.len()];
            let mut deletes: Vec<Vec<u32>> = vec![Vec::new(); target.len()];
            let none = Vec::new();
            for key in wanted
                .keys()
                .chain(have.keys().filter(|k| !wanted.contains_key(*k)))
            {
                let (s, t) = (
                    wanted.get(key).unwrap_or(&none),
                    have.get(key).unwrap_or(&none),
                );
                if pair.target.key.is_empty() {
                    // A row of a table without a key is its own key: only
                    // how many of it there are can differ.
                    for (bi, r, _) in s.iter().skip(t.len()) {
                        upserts[*bi].push(*r as u32);
                    }
                    for (bi, r, _) in t.iter().skip(s.len()) {
                        deletes[*bi].push(*r as u32);
                    }
                    continue;
                }
                match (s.first(), t.first()) {
                    (Some((bi, r, sv)), Some((_, _, tv))) if !rows::same_row(sv, tv) => {
                        upserts[*bi].push(*r as u32)
                    }
                    (Some((bi, r, _)), None) => upserts[*bi].push(*r as u32),
                    (None, Some((bi, r, _))) => deletes[*bi].push(*r as u32),
                    _ => {}
                }
            }
            let pick = |batches: &[arrow_array::RecordBatch],
                        rows: Vec<Vec<u32>>|
             -> Result<Vec<arrow_array::RecordBatch>> {
                batches
                    .iter()
                    .zip(rows)
                    .filter(|(_, r)| !r.is_empty())
                    .map(|(b, r)| {
                        arrow_select::take::take_record_batch(b, &arrow_array::UInt32Array::from(r))
                            .map_err(|e| {
                                Error::Internal(format!(
                                    "{}: picking rows to repair: {e}",
                                    pair.target.id
                                ))
                            })
                    })
                    .collect()
            };
            let (upserts, deletes) = (pick(&source, upserts)?, pick(&target, deletes)?);
            if upserts.is_empty() && deletes.is_empty() {
                continue;
            }
            let n = self
                .archive
                .repair(&pair.target, &upserts, &deletes)
                .await?;
            out.push((ti, n));
        }
        let _ = conn.disconnect().await;
        Ok(out)
    }
}

/// A batch of source rows through the pipeline's transforms, as the sink
/// receives them.
fn transformed(
    pair: &Pair,
    source_batch: arrow_array::RecordBatch,
    chain: Option<&mut Box<dyn Transform>>,
) -> Result<Vec<arrow_array::RecordBatch>> {
    let Some(chain) = chain.filter(|_| pair.transformed) else {
        return Ok(vec![source_batch]);
    };
    let info = EventInfo::new(Op::Read, Arc::new(Position::default()), 0);
    let batch = ChangeBatch {
        table: pair.source.clone(),
        events: vec![info; source_batch.num_rows()],
        before: None,
        after: Some(source_batch),
    };
    Ok(tokio::task::block_in_place(|| chain.apply(batch))?
        .into_iter()
        .filter_map(|out| out.after)
        .collect())
}
