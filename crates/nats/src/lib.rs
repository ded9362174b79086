//! The NATS JetStream sink: every snapshot row and change as one message
//! in Debezium's MySQL event format, for any number of subscribers
//! reading at their own pace.
//!
//! Exactly once into the stream: each message carries `Nats-Msg-Id`, the
//! end position of its source transaction and its index in it (a snapshot
//! row: the snapshot attempt and a counter), and is published with
//! acknowledgement. The checkpoint (a key of the `sluice_checkpoints`
//! key-value bucket) moves only past acknowledged messages; after a crash
//! sluice resumes after it and publishes the later transactions again with
//! the same ids, which the stream refuses as duplicates inside its
//! `duplicate_window`.
//!
//! - this file: settings, the stream, the snapshot and change writers;
//! - [`envelope`]: a change as Debezium's JSON value;
//! - [`checkpoint`]: the key-value checkpoint;
//! - [`limits`]: what the server's max_payload and sync settings mean for
//!   the tables (`sluice check`);
//! - [`replay`]: a stream read back for `sluice verify`;
//! - [`tail`]: `sluice tail`, a stream's messages as JSON lines.

pub mod checkpoint;
pub mod envelope;
pub mod limits;
pub mod replay;
pub mod tail;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use async_trait::async_trait;
use serde::Deserialize;
use serde_saphyr::Spanned;

use checkpoint::{Checkpoint, Phase, Store};
use sluice_core::config::located;
use sluice_core::connectors::{Build, SinkSpec};
use sluice_core::error::ConfigError;
use sluice_core::event::{ChangeBatch, Op, Position, TableSchema};
use sluice_core::partition::key_bytes;
use sluice_core::progress::Reporter;
use sluice_core::stage::{
    ChangeWriter, Commit, DdlChange, Plan, Sink, SinkContext, SinkState, SnapshotLoad,
};
use sluice_core::text::mask_url;
use sluice_core::view::View;
use sluice_core::{Error, Result};

/// `sinks: - nats: {...}` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// `nats://[user:password@]host:4222`.
    pub url: Spanned<String>,
    /// The JetStream stream, created if missing.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Each change's subject; `{database}` and `{table}` are filled in.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Where schema changes go; `{database}` is filled in.
    #[serde(default = "default_schema_subject")]
    pub schema_subject: String,
    /// Transaction boundaries (`BEGIN` and `END` messages, as Debezium's
    /// transaction metadata) on `transaction_subject`.
    #[serde(default)]
    pub transactions: bool,
    #[serde(default = "default_transaction_subject")]
    pub transaction_subject: String,
    #[serde(default)]
    pub format: Format,
    /// How long the stream remembers message ids: a restart within it
    /// publishes no duplicate.
    #[serde(default = "default_window")]
    pub duplicate_window_s: u64,
    /// How long messages are kept (0: until the stream's limits).
    #[serde(default)]
    pub max_age_s: u64,
    /// The stream's replicas (a clustered server).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// The server's HTTP monitoring endpoint (`http://host:8222`): `sluice
    /// check` reads whether messages reach the disk before they are
    /// acknowledged.
    #[serde(default)]
    pub monitor_url: Option<String>,
}

fn default_name() -> String {
    "nats".into()
}
fn default_stream() -> String {
    "SLUICE".into()
}
fn default_subject() -> String {
    "sluice.{database}.{table}".into()
}
fn default_schema_subject() -> String {
    "sluice._schema.{database}".into()
}
fn default_transaction_subject() -> String {
    "sluice._transaction".into()
}
fn default_window() -> u64 {
    2 * 3600
}
fn default_replicas() -> usize {
    1
}

/// The messages' format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Debezium's MySQL change event value, as its JSON converter writes it
    /// without schemas.
    #[default]
    DebeziumJson,
}

impl SinkSpec for NatsSinkConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
        let bad = |what: String, hint: &str| {
            located(
                file,
                &self.url,
                format!("sink `{}`: {what}", self.name),
                Some(hint.into()),
            )
        };
        if !self.url.value.starts_with("nats://") && !self.url.value.starts_with("tls://") {
            return Err(bad(
                format!("`url` {} is not a NATS URL", mask_url(&self.url.value)),
                "write nats://host:4222 (or nats://user:${NATS_PASSWORD}@host:4222)",
            ));
        }
        let valid = |s: &str| !s.is_empty() && !s.contains([' ', '\t', '*', '>']);
        if !valid(&self.stream) || self.stream.contains('.') {
            return Err(bad(
                format!("`stream` {:?} is not a stream name", self.stream),
                "use letters, digits, `-` and `_`, e.g. SLUICE_SHOP",
            ));
        }
        for (what, s) in [
            ("subject", &self.subject),
            ("schema_subject", &self.schema_subject),
            ("transaction_subject", &self.transaction_subject),
        ] {
            if !valid(s) || s.split('.').any(str::is_empty) {
                return Err(bad(
                    format!("`{what}` {s:?} is not a subject"),
                    "write dot-separated tokens, e.g. sluice.{database}.{table}",
                ));
            }
        }
        if !self.subject.contains("{table}") {
            return Err(bad(
                format!("`subject` {:?} does not name the table", self.subject),
                "include {table} (and {database}), e.g. sluice.{database}.{table}",
            ));
        }
        if self.replicas == 0 || self.duplicate_window_s == 0 {
            return Err(bad(
                "`replicas` and `duplicate_window_s` must be at least 1".into(),
                "the duplicate window must cover the longest restart",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: &Build<'_>) -> Result<Arc<dyn Sink>> {
        Ok(Arc::new(NatsSink {
            role: format!("sink `{}`", self.name),
            pipeline: ctx.pipeline.to_string(),
            key: checkpoint::key(ctx.pipeline, &self.name),
            config: self.clone(),
            facts: Default::default(),
        }))
    }
}

pub struct NatsSink {
    role: String,
    pipeline: String,
    key: String,
    config: NatsSinkConfig,
    /// What `check` learnt of the server, for its warnings.
    facts: std::sync::Mutex<Option<limits::ServerFacts>>,
}

/// Checkpoints are written at least this often while changes flow.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Messages awaiting their acknowledgement before the change writer waits.
const MAX_IN_FLIGHT: usize = 20_000;
/// The same for each snapshot writer (several run at once).
const LOAD_IN_FLIGHT: usize = 1_024;
/// Acknowledgements the client lets be pending on one connection, past
/// which a publish waits for one: above what the writers keep, since an
/// acknowledgement not yet awaited holds its place (the client's default,
/// 5,000, stopped a catch-up of a larger backlog for good).
const CLIENT_ACKS_PENDING: usize = MAX_IN_FLIGHT + 32 * LOAD_IN_FLIGHT;

impl NatsSink {
    async fn connect(&self) -> Result<jetstream::Context> {
        connect(&self.config.url.value, &self.role).await
    }

    /// The server's URL, its password masked.
    fn url(&self) -> String {
        mask_url(&self.config.url.value)
    }

    fn server_error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Data(format!("{}: {what} on {}: {e}", self.role, self.url()))
    }

    /// The stream's subjects: the templates with wildcards.
    fn stream_subjects(&self) -> Vec<String> {
        let wild = |s: &str| s.replace("{database}", "*").replace("{table}", "*");
        let mut all = vec![
            wild(&self.config.subject),
            wild(&self.config.schema_subject),
        ];
        if self.config.transactions {
            all.push(wild(&self.config.transaction_subject));
        }
        // The server refuses overlapping subjects: the schema subject is
        // often among the changes' already (`sluice.*.*`).
        let covers = |wide: &str, narrow: &str| {
            let (w, n): (Vec<&str>, Vec<&str>) =
                (wide.split('.').collect(), narrow.split('.').collect());
            w.len() == n.len() && w.iter().zip(&n).all(|(w, n)| *w == "*" || w == n)
        };
        let mut out: Vec<String> = Vec::new();
        for s in all {
            if !out.iter().any(|o| covers(o, &s)) {
                out.push(s);
            }
        }
        out
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.config.stream.clone(),
            subjects: self.stream_subjects(),
            duplicate_window: Duration::from_secs(self.config.duplicate_window_s),
            max_age: Duration::from_secs(self.config.max_age_s),
            num_replicas: self.config.replicas,
            storage: stream::StorageType::File,
            ..Default::default()
        }
    }

    async fn store(&self, js: &jetstream::Context, create: bool) -> Result<Option<Store>> {
        Store::open(js, self.key.clone(), create, &self.role).await
    }

    /// A subject token for a name (subjects cannot hold `.`, spaces or
    /// wildcards).
    fn subject(&self, table: &TableSchema) -> String {
        table_subject(&self.config.subject, table)
    }
}

/// `template`'s subject for `table`.
fn table_subject(template: &str, table: &TableSchema) -> String {
    template
        .replace("{database}", &token(&table.id.database))
        .replace("{table}", &token(&table.id.name))
}

/// A JetStream context on `url` (its user and password given apart).
async fn connect(url: &str, role: &str) -> Result<jetstream::Context> {
    let (server, credentials) = split_credentials(url);
    let options = match credentials {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        None => async_nats::ConnectOptions::new(),
    };
    let client = options
        .connection_timeout(Duration::from_secs(5))
        .connect(server.as_str())
        .await
        .map_err(|e| {
            Error::precondition(
                format!("{}: cannot connect to {}: {e}", role, mask_url(url)),
                "check that nats-server runs there with JetStream (-js), and the user and password",
            )
        })?;
    Ok(jetstream::ContextBuilder::new()
        .max_ack_inflight(CLIENT_ACKS_PENDING)
        .build(client))
}

/// `nats://user:password@host:port` as the URL without its user and
/// password, and them (the client takes them apart).
fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (
        format!("{scheme}://{host}"),
        Some((user.to_string(), password.to_string())),
    )
}

fn token(s: &str) -> String {
    s.chars()
        .map(|c| if " \t.*>".contains(c) { '_' } else { c })
        .collect()
}

#[async_trait]
impl Sink for NatsSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn state(&self) -> Result<SinkState> {
        let js = self.connect().await?;
        match self.store(&js, false).await? {
            None => Ok(SinkState::Fresh),
            Some(s) => Ok(s
                .read(&self.role)
                .await?
                .map_or(SinkState::Fresh, |c| c.state())),
        }
    }

    async fn checkpoint_time(&self) -> Result<Option<i64>> {
        let js = self.connect().await?;
        Ok(match self.store(&js, false).await? {
            Some(s) => s.read(&self.role).await?.and_then(|c| c.written_us),
            None => None,
        })
    }

    async fn status_detail(&self) -> Result<Option<String>> {
        let js = self.connect().await?;
        let covered = match self.store(&js, false).await? {
            Some(s) => s.read(&self.role).await?.and_then(|c| c.stream_seq),
            None => None,
        };
        let Ok(mut stream) = js.get_stream(&self.config.stream).await else {
            return Ok(Some(format!(
                "stream {}: not created yet",
                self.config.stream
            )));
        };
        let info = stream
            .info()
            .await
            .map_err(|e| self.server_error("reading the stream", e))?;
        let st = &info.state;
        let covered =
            covered.map_or_else(|| "an unknown message".into(), |s| format!("message {s}"));
        Ok(Some(format!(
            "stream {}: the checkpoint covers {covered}; the stream holds messages {} to {} ({} messages, {} bytes)",
            self.config.stream, st.first_sequence, st.last_sequence, st.messages, st.bytes
        )))
    }

    async fn check(
        &self,
        _tables: &[Arc<TableSchema>],
        _plan: &Plan,
        _state: &SinkState,
    ) -> Result<()> {
        let js = self.connect().await?;
        let durability = limits::durability(self.config.monitor_url.as_deref()).await;
        if let Ok(mut f) = self.facts.lock() {
            *f = Some(limits::ServerFacts {
                max_payload: js.client().server_info().max_payload,
                durability,
            });
        }
        let version = js.client().server_info().version;
        let parts: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        if parts.len() >= 2 && (parts[0], parts[1]) < (2, 10) {
            return Err(Error::precondition(
                format!(
                    "{}: {} runs nats-server {version}; the JetStream API sluice speaks is 2.10's or newer",
                    self.role,
                    self.url()
                ),
                "upgrade nats-server to 2.10 or newer",
            ));
        }
        // The account's JetStream information, read as plain JSON: its
        // fields vary between server versions.
        let reply = js
            .client()
            .request("$JS.API.INFO", bytes::Bytes::new())
            .await
            .map_err(|e| e.to_string())
            .and_then(|m| {
                serde_json::from_slice::<serde_json::Value>(&m.payload).map_err(|e| e.to_string())
            })
            .and_then(|v| match v.get("error") {
                Some(e) => Err(e["description"].as_str().unwrap_or("an error").to_string()),
                None => Ok(()),
            });
        if let Err(e) = reply {
            return Err(Error::precondition(
                format!(
                    "{}: JetStream is not available on {}: {e}",
                    self.role,
                    self.url()
                ),
                "start nats-server with JetStream (-js), or enable it for this account",
            ));
        }
        if let Ok(mut s) = js.get_stream(&self.config.stream).await {
            let info = s
                .info()
                .await
                .map_err(|e| self.server_error("reading the stream", e))?;
            let have = &info.config.subjects;
            let missing: Vec<String> = self
                .stream_subjects()
                .into_iter()
                .filter(|s| !have.contains(s))
                .collect();
            if !missing.is_empty() {
                return Err(Error::precondition(
                    format!(
                        "{}: stream {} exists with subjects {have:?}, not {:?}",
                        self.role,
                        self.config.stream,
                        self.stream_subjects()
                    ),
                    "name another `stream`, or add the subjects to it",
                ));
            }
        }
        Ok(())
    }

    fn warnings(&self, tables: &[Arc<TableSchema>]) -> Vec<sluice_core::precheck::Finding> {
        match self.facts.lock().ok().and_then(|f| f.clone()) {
            Some(facts) => limits::warnings(&self.role, &facts, tables),
            None => Vec::new(),
        }
    }

    async fn prepare(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        state: &SinkState,
    ) -> Result<()> {
        let js = self.connect().await?;
        let stream = js
            .get_or_create_stream(self.stream_config())
            .await
            .map_err(|e| self.server_error("creating the stream", e))?;
        if matches!(plan, Plan::Snapshot { .. }) && *state == SinkState::SnapshotInterrupted {
            // The interrupted snapshot's rows go: the new one is read at
            // another moment, and a row deleted in between would otherwise
            // stay in the stream with nothing to say it is gone. Nothing
            // after them was published (changes follow the snapshot).
            for t in tables {
                let subject = self.subject(t);
                stream
                    .purge()
                    .filter(subject.clone())
                    .await
                    .map_err(|e| self.server_error(&format!("purging {subject}"), e))?;
            }
            tracing::warn!(sink = %self.config.name, "the interrupted snapshot's messages were purged from the stream; consumers that read them read the tables again");
        }
        let Some(store) = self.store(&js, true).await? else {
            return Err(Error::Internal("the checkpoint bucket vanished".into()));
        };
        let c = match plan {
            Plan::Snapshot { .. } => Checkpoint::at(Phase::Snapshot, &Position::default()),
            Plan::Cdc { from, fresh: true } => Checkpoint::at(Phase::Cdc, from),
            Plan::Cdc { fresh: false, .. } => return Ok(()),
        };
        store.write(&c, &self.role).await
    }

    async fn load(self: Arc<Self>, _ctx: SinkContext) -> Result<Box<dyn SnapshotLoad>> {
        let js = self.connect().await?;
        let store = self
            .store(&js, true)
            .await?
            .ok_or_else(|| Error::Internal("the checkpoint bucket vanished".into()))?;
        // Ids of this attempt only: a snapshot started again is published
        // again (its rows may have changed in between).
        let attempt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        Ok(Box::new(Load {
            sink: self,
            max_payload: js.client().server_info().max_payload,
            js,
            store,
            attempt,
            next: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
        }))
    }

    async fn apply(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn ChangeWriter>> {
        let js = self.connect().await?;
        let store = self
            .store(&js, true)
            .await?
            .ok_or_else(|| Error::Internal("the checkpoint bucket vanished".into()))?;
        // Kept across restarts, so that a commit of no message keeps it.
        let last_seq = store.read(&self.role).await?.and_then(|c| c.stream_seq);
        Ok(Box::new(Changes {
            sink: self,
            max_payload: js.client().server_info().max_payload,
            js,
            store,
            open: Vec::new(),
            in_flight: VecDeque::new(),
            pending: None,
            last_seq,
            last_flush: Instant::now(),
            reporter: ctx.reporter,
        }))
    }

    fn view(&self) -> View {
        View::ChangeLog(Arc::new(replay::StreamLog {
            config: self.config.clone(),
            role: self.role.clone(),
        }))
    }
}

/// Row `.1` of batch `.0`.
type Image<'a> = (&'a arrow_array::RecordBatch, usize);

/// One message, ready to publish.
struct Message {
    subject: String,
    id: String,
    key: String,
    /// `db.table` of a row change (empty for others).
    table: String,
    payload: Vec<u8>,
}

impl NatsSink {
    /// The messages of `batch`: one per row change; an update that changes
    /// the key is the old key's delete and the new key's insert, as
    /// Debezium publishes it. `id` names each message by its index.
    fn messages(
        &self,
        batch: &ChangeBatch,
        position: &Position,
        commit_ts_us: i64,
        snapshot: &'static str,
        mut id: impl FnMut() -> (String, u64),
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let t = &batch.table;
        let subject = self.subject(t);
        let missing = || Error::Internal(format!("{}: a change without its row image", t.id));
        for (row, ev) in batch.events.iter().enumerate() {
            let before = batch.before.as_ref().map(|b| (b, row));
            let after = batch.after.as_ref().map(|a| (a, row));
            let mut parts: Vec<(Op, Option<Image<'_>>, Option<Image<'_>>)> = Vec::with_capacity(2);
            match ev.op {
                Op::Read | Op::Insert => {
                    parts.push((ev.op, None, Some(after.ok_or_else(missing)?)))
                }
                Op::Delete => parts.push((Op::Delete, Some(before.ok_or_else(missing)?), None)),
                Op::Update => {
                    let (b, a) = (before.ok_or_else(missing)?, after.ok_or_else(missing)?);
                    if !t.key.is_empty() && key_bytes(t, b.0, row) != key_bytes(t, a.0, row) {
                        parts.push((Op::Delete, Some(b), None));
                        parts.push((Op::Insert, None, Some(a)));
                    } else {
                        parts.push((Op::Update, Some(b), Some(a)));
                    }
                }
            }
            for (op, b, a) in parts {
                let (id, index) = id();
                let image = a.or(b).ok_or_else(missing)?;
                let source = envelope::Source {
                    name: &self.pipeline,
                    position,
                    commit_ts_us,
                    snapshot,
                    row: index,
                };
                let value = envelope::change(t, op, b, a, &source);
                out.push(Message {
                    subject: subject.clone(),
                    table: format!("{}.{}", t.id.database, t.id.name),
                    id,
                    key: envelope::key(t, image.0, image.1),
                    payload: value,
                });
            }
        }
        Ok(())
    }

    /// Publishes `m`; `limit` is the server's max_payload (read once per
    /// writer, not per message).
    async fn publish(
        &self,
        js: &jetstream::Context,
        limit: usize,
        m: Message,
    ) -> Result<PublishAckFuture> {
        // The server closes the connection on a message over its limit:
        // refused here, naming the row, before anything of it is sent.
        let size = m.payload.len() + m.key.len() + m.id.len() + 40;
        if limit > 0 && size > limit {
            return Err(Error::precondition(
                format!(
                    "{}: the message of row {} on {} is {size} bytes, over the server's max_payload of {limit}",
                    self.role, m.key, m.subject
                ),
                "raise max_payload in the nats-server configuration (up to 64 MB), or leave the large column out with a transform; everything before the row is checkpointed",
            ));
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", m.id.as_str());
        headers.insert("Sluice-Key", m.key.as_str());
        js.publish_with_headers(m.subject, headers, m.payload.into())
            .await
            .map_err(|e| self.server_error("publishing", e))
    }

    /// Debezium's transaction metadata: a `BEGIN` and an `END` message
    /// around the transaction's messages, the end with the count of
    /// changes per table.
    fn boundaries(&self, c: &Commit, messages: &[Message]) -> (Message, Message) {
        let p = &c.position;
        let id = p
            .gtid
            .as_deref()
            .filter(|g| !g.is_empty())
            .map_or_else(|| format!("{}:{}", p.file, p.offset), str::to_string);
        let mut per_table: Vec<(String, u64)> = Vec::new();
        for m in messages {
            match per_table.iter_mut().find(|(t, _)| *t == m.table) {
                Some((_, n)) => *n += 1,
                None => per_table.push((m.table.clone(), 1)),
            }
        }
        let ts_ms = c.commit_ts_us / 1000;
        let message = |status: &str, extra: serde_json::Value| {
            let mut v = serde_json::json!({"status": status, "id": id, "ts_ms": ts_ms});
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            Message {
                subject: self.config.transaction_subject.clone(),
                id: format!("tx:{}:{}:{status}", p.file, p.offset),
                key: serde_json::json!({"id": id}).to_string(),
                table: String::new(),
                payload: serde_json::to_vec(&v).unwrap_or_default(),
            }
        };
        let collections: Vec<serde_json::Value> = per_table
            .iter()
            .map(|(t, n)| serde_json::json!({"data_collection": t, "event_count": n}))
            .collect();
        (
            message("BEGIN", serde_json::json!({})),
            message(
                "END",
                serde_json::json!({"event_count": messages.len(), "data_collections": collections}),
            ),
        )
    }

    /// Waits for a message's acknowledgement; its stream sequence.
    async fn acked(&self, ack: PublishAckFuture) -> Result<u64> {
        ack.await.map(|a| a.sequence).map_err(|e| {
            Error::precondition(
                format!(
                    "{}: stream {} did not take a message: {e}",
                    self.role, self.config.stream
                ),
                "check the stream's limits (max_bytes, max_msgs, max_msg_size) and the server's disk; everything before it is checkpointed",
            )
        })
    }
}

/// Snapshot rows, published as they come; the checkpoint moves to the
/// snapshot's position once every row is acknowledged.
struct Load {
    sink: Arc<NatsSink>,
    js: jetstream::Context,
    max_payload: usize,
    store: Store,
    attempt: u128,
    next: AtomicU64,
    /// The highest stream sequence acknowledged.
    last_seq: AtomicU64,
}

#[async_trait]
impl SnapshotLoad for Load {
    async fn write(&self, batch: ChangeBatch) -> Result<()> {
        let Some(first) = batch.events.first() else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(batch.len());
        let attempt = self.attempt;
        self.sink.messages(
            &batch,
            &first.position,
            first.commit_ts_us,
            "true",
            || {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                (format!("r:{attempt}:{n}"), n)
            },
            &mut out,
        )?;
        let mut acks = VecDeque::with_capacity(out.len().min(LOAD_IN_FLIGHT));
        for m in out {
            if acks.len() >= LOAD_IN_FLIGHT {
                if let Some(a) = acks.pop_front() {
                    let seq = self.sink.acked(a).await?;
                    self.last_seq.fetch_max(seq, Ordering::Relaxed);
                }
            }
            acks.push_back(self.sink.publish(&self.js, self.max_payload, m).await?);
        }
        for a in acks {
            let seq = self.sink.acked(a).await?;
            self.last_seq.fetch_max(seq, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn finish(self: Box<Self>, position: &Position) -> Result<()> {
        let seq = Some(self.last_seq.load(Ordering::Relaxed)).filter(|&s| s > 0);
        self.store
            .write(
                &Checkpoint::at(Phase::Cdc, position).through(seq),
                &self.sink.role,
            )
            .await
    }
}

/// Changes: a transaction's messages are published at its commit; acks
/// are awaited before the checkpoint moves past them.
struct Changes {
    sink: Arc<NatsSink>,
    js: jetstream::Context,
    max_payload: usize,
    store: Store,
    open: Vec<ChangeBatch>,
    in_flight: VecDeque<PublishAckFuture>,
    /// The last commit published, not yet checkpointed, and its row count.
    pending: Option<(Arc<Commit>, u64)>,
    /// The highest stream sequence acknowledged.
    last_seq: Option<u64>,
    last_flush: Instant,
    reporter: Reporter,
}

impl Changes {
    /// Waits for every acknowledgement, then checkpoints the last commit.
    async fn flush(&mut self) -> Result<()> {
        while let Some(a) = self.in_flight.pop_front() {
            let seq = self.sink.acked(a).await?;
            self.last_seq = self.last_seq.max(Some(seq));
        }
        self.last_flush = Instant::now();
        let Some((c, rows)) = self.pending.take() else {
            return Ok(());
        };
        self.store
            .write(
                &Checkpoint::at(Phase::Cdc, &c.position).through(self.last_seq),
                &self.sink.role,
            )
            .await?;
        self.reporter.applied(c.commit_ts_us, rows);
        Ok(())
    }

    async fn send(&mut self, messages: Vec<Message>) -> Result<()> {
        for m in messages {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                if let Some(a) = self.in_flight.pop_front() {
                    let seq = self.sink.acked(a).await?;
                    self.last_seq = self.last_seq.max(Some(seq));
                }
            }
            let ack = self.sink.publish(&self.js, self.max_payload, m).await?;
            self.in_flight.push_back(ack);
        }
        Ok(())
    }
}

#[async_trait]
impl ChangeWriter for Changes {
    async fn write(&mut self, batch: ChangeBatch) -> Result<()> {
        self.open.push(batch);
        Ok(())
    }

    async fn commit(&mut self, c: Arc<Commit>) -> Result<()> {
        let mut out = Vec::new();
        let mut index = 0u64;
        let mut rows = 0u64;
        let p = &c.position;
        for b in std::mem::take(&mut self.open) {
            self.sink.messages(
                &b,
                p,
                c.commit_ts_us,
                "false",
                || {
                    let i = index;
                    index += 1;
                    (format!("{}:{}:{i}", p.file, p.offset), i)
                },
                &mut out,
            )?;
            rows += b.len() as u64;
            self.reporter.changed(&b.table.id, b.len() as u64);
        }
        if self.sink.config.transactions && !out.is_empty() {
            let (begin, end) = self.sink.boundaries(&c, &out);
            out.insert(0, begin);
            out.push(end);
        }
        self.send(out).await?;
        let before = self.pending.take().map_or(0, |(_, n)| n);
        self.pending = Some((c, before + rows));
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        self.open.clear();
        Ok(())
    }

    async fn schema_change(&mut self, d: Arc<DdlChange>) -> Result<()> {
        let tables: Vec<serde_json::Value> = d
            .tables
            .iter()
            .map(|t| {
                serde_json::json!({
                    "db": t.id.database,
                    "table": t.id.name,
                    "columns": t.columns.iter().map(|c| serde_json::json!({
                        "name": c.name,
                        "type": c.column_type,
                        "nullable": c.nullable,
                    })).collect::<Vec<_>>(),
                    "key": t.key.iter().map(|&k| t.columns[k].name.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let value = serde_json::json!({
            "source": {"connector": "mysql", "name": self.sink.pipeline, "db": d.database,
                       "file": d.position.file.to_string(), "pos": d.position.offset,
                       "gtid": d.position.gtid.as_deref(), "ts_ms": d.commit_ts_us / 1000},
            "databaseName": d.database,
            "ddl": d.sql,
            "ts_ms": d.commit_ts_us / 1000,
            "tableChanges": tables,
        });
        let subject = self
            .sink
            .config
            .schema_subject
            .replace("{database}", &token(&d.database));
        let m = Message {
            subject,
            id: format!("ddl:{}:{}", d.position.file, d.position.offset),
            table: String::new(),
            key: serde_json::json!({"databaseName": d.database}).to_string(),
            payload: serde_json::to_vec(&value).map_err(|e| Error::Internal(e.to_string()))?,
        };
        self.send(vec![m]).await?;
        let rows = self.pending.take().map_or(0, |(_, n)| n);
        self.pending = Some((
            Arc::new(Commit {
                position: d.position.clone(),
                commit_ts_us: d.commit_ts_us,
            }),
            rows,
        ));
        self.flush().await
    }

    async fn heartbeat(&mut self) -> Result<bool> {
        self.flush().await?;
        Ok(self.open.is_empty())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(FLUSH_EVERY)
    }

    async fn tick(&mut self) -> Result<()> {
        self.flush().await
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        self.flush().await
    }
}
