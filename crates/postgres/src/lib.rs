//! The PostgreSQL sink: MySQL and MariaDB tables copied into PostgreSQL
//! (the warehouse target, and the common heterogeneous migration), then
//! their changes applied exactly once.
//!
//! - this file: settings, checks, and creating the tables;
//! - [`types`]: MySQL types as PostgreSQL types, values in binary format;
//! - [`table`]: one target table: its DDL and change statements;
//! - [`ddl`]: schema changes from the binlog, translated;
//! - [`indexes`]: secondary indexes and foreign keys from the source's DDL;
//! - [`read`]: the tables read back for `sluice verify`;
//! - [`repair`]: `sluice verify --repair`, the differing rows rewritten;
//! - [`load`]: the snapshot, with `COPY ... (FORMAT binary)`;
//! - [`apply`]: one connection's changes, in source order, with its checkpoint;
//! - [`lanes`]: changes split by key over several connections (`apply:`);
//! - [`checkpoint`]: `sluice.checkpoints` on the target;
//! - [`connect`]: connections, and errors that name the server.
//!
//! Each source database becomes a PostgreSQL schema of the same name in
//! the URL's database (`rename:` changes the names).

pub mod apply;
pub mod checkpoint;
pub mod connect;
pub mod ddl;
pub mod indexes;
pub mod lanes;
pub mod load;
pub mod read;
pub mod repair;
pub mod table;
pub mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use serde_saphyr::Spanned;
use sluice_core::config::located;
pub use sluice_core::config::{ApplyConfig, Consistency, ExistingTables};
use sluice_core::connectors::{Build, SinkSpec};
use sluice_core::error::ConfigError;
use sluice_core::event::{TableId, TableSchema};
use sluice_core::rename::Renames;
use sluice_core::stage::{ChangeWriter, Plan, Sink, SinkContext, SinkState, SnapshotLoad};
use sluice_core::view::View;
use sluice_core::{Error, Result};
use tokio_postgres::Client;

use checkpoint::Checkpoint;
use connect::{quote_literal, Endpoint};
use table::{Target, TypeOptions};
use types::{JsonType, ZeroDates};

/// `sinks: - postgres: {...}` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// `postgres://user:password@host:5432/database`.
    pub url: Spanned<String>,
    /// What to do when a target table already exists.
    #[serde(default)]
    pub existing_tables: ExistingTables,
    /// `source_db.table` → `schema.table` rules; `db.*: other.*` renames a
    /// database's schema.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Load connections; defaults to `settings.parallelism`.
    pub parallelism: Option<usize>,
    #[serde(default)]
    pub zero_dates: ZeroDates,
    #[serde(default)]
    pub json: JsonType,
    /// What a schema change of a followed table does.
    #[serde(default)]
    pub on_schema_change: OnSchemaChange,
    /// Beside each table, an append-only change table `NAME__history`:
    /// every snapshot row and change with its operation, commit time and
    /// position.
    #[serde(default)]
    pub history: bool,
    /// How changes are applied (when the source follows changes).
    #[serde(default)]
    pub apply: ApplyConfig,
}

fn default_name() -> String {
    "postgres".into()
}

/// What a schema change of a followed table does on PostgreSQL.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OnSchemaChange {
    /// Translated and applied (see [`ddl`]).
    #[default]
    Translate,
    /// Stop at the statement (everything before it applied), naming it.
    Fail,
    /// Log it and go on: the PostgreSQL table was changed by hand.
    Skip,
}

impl SinkSpec for PostgresSinkConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, file: &str) -> std::result::Result<(), ConfigError> {
        Endpoint::new(&self.url.value, &self.name).map_err(|e| {
            located(
                file,
                &self.url,
                format!("sink `{}`: {e}", self.name),
                Some("write postgres://user:${PG_PASSWORD}@host:5432/database".into()),
            )
        })?;
        Renames::new(&self.rename)
            .map_err(|e| located(file, &self.url, format!("sink `{}`: {e}", self.name), None))?;
        for (what, n) in [
            ("parallelism", self.parallelism),
            ("apply.parallelism", self.apply.parallelism),
        ] {
            if n == Some(0) {
                return Err(located(
                    file,
                    &self.url,
                    format!("sink `{}`: `{what}` must be at least 1", self.name),
                    None,
                ));
            }
        }
        Ok(())
    }

    fn build(&self, ctx: &Build<'_>) -> Result<Arc<dyn Sink>> {
        let endpoint = Endpoint::new(&self.url.value, &self.name)
            .map_err(|e| Error::precondition(format!("sink `{}`: {e}", self.name), "fix `url`"))?;
        let renames = Renames::new(&self.rename).map_err(|e| {
            Error::precondition(format!("sink `{}`: {e}", self.name), "fix `rename`")
        })?;
        let parallelism = self.parallelism.unwrap_or(ctx.settings.parallelism).max(1);
        Ok(Arc::new(PostgresSink {
            name: self.name.clone(),
            endpoint,
            renames,
            checkpoint: Checkpoint::new(ctx.pipeline, &self.name),
            parallelism,
            lanes: match self.apply.consistency {
                Consistency::Transactional => 1,
                Consistency::Eventual => self.apply.parallelism.unwrap_or(parallelism).max(1),
            },
            existing_tables: self.existing_tables,
            on_schema_change: self.on_schema_change,
            history: self.history,
            types: TypeOptions {
                zero_dates: self.zero_dates,
                json: self.json,
            },
            targets: Mutex::new(HashMap::new()),
        }))
    }
}

/// What a schema change dropped: only then is a unique key or foreign
/// key the source lacks dropped on PostgreSQL.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Dropped {
    pub unique_key: bool,
    pub foreign_key: bool,
}

pub struct PostgresSink {
    name: String,
    endpoint: Endpoint,
    renames: Renames,
    checkpoint: Checkpoint,
    parallelism: usize,
    /// Apply connections (`apply:`): 1 under `consistency: transactional`.
    lanes: usize,
    existing_tables: ExistingTables,
    on_schema_change: OnSchemaChange,
    history: bool,
    types: TypeOptions,
    /// Each source table's target, for the table definition it was made
    /// from; `true` when this run created it (its keys come after the load).
    targets: Mutex<HashMap<TableId, (Arc<Target>, bool)>>,
}

impl PostgresSink {
    /// The target of `table` as this definition describes it.
    fn target(&self, table: &Arc<TableSchema>) -> Result<Arc<Target>> {
        let mut map = self
            .targets
            .lock()
            .map_err(|_| Error::Internal("postgres sink: target lock poisoned".into()))?;
        if let Some((t, _)) = map.get(&table.id) {
            if Arc::ptr_eq(&t.source, table) {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(Target::new(table, &self.renames, self.types));
        let created = map.get(&table.id).is_some_and(|(_, c)| *c);
        map.insert(table.id.clone(), (t.clone(), created));
        Ok(t)
    }

    /// Every source table this run has a target for.
    fn known_tables(&self) -> Vec<TableId> {
        self.targets
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The tables this run created (they get their keys after the load).
    fn targets(&self) -> Vec<Arc<Target>> {
        self.targets
            .lock()
            .map(|m| {
                m.values()
                    .filter(|(_, created)| *created)
                    .map(|(t, _)| t.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn exec(&self, client: &Client, what: &str, sql: &str) -> Result<()> {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| self.endpoint.error(what.to_string(), e))
    }

    /// Which of `targets` (and their change tables, with `history`) exist
    /// on the server.
    async fn existing(&self, client: &Client, targets: &[Arc<Target>]) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for t in targets {
            let mut names = vec![t.qualified.clone()];
            if self.history {
                names.push(t.history_qualified());
            }
            for name in names {
                let row = client
                    .query_one(
                        &format!("SELECT to_regclass({}) IS NOT NULL", quote_literal(&name)),
                        &[],
                    )
                    .await
                    .map_err(|e| self.endpoint.error("looking for the target tables", e))?;
                if row.get::<_, bool>(0) {
                    out.insert(name);
                }
            }
        }
        Ok(out)
    }

    /// Adds every foreign key of `t` that [`Self::foreign_keys_to_add`] allows.
    async fn add_foreign_keys(&self, client: &Client, t: &Target) -> Result<()> {
        for sql in self
            .foreign_keys_to_add(client, t, &Default::default())
            .await?
        {
            self.exec(
                client,
                &format!("adding the foreign keys of {}", t.display()),
                &sql,
            )
            .await?;
        }
        Ok(())
    }

    /// `t`'s foreign keys not in `have` whose referenced table is on the
    /// target (a table the pipeline does not copy has no rows there to act on).
    async fn foreign_keys_to_add(
        &self,
        client: &Client,
        t: &Target,
        have: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (name, referenced, sql) in t.foreign_keys(&self.renames) {
            if have.contains(&name) {
                continue;
            }
            let row = client
                .query_one(
                    &format!(
                        "SELECT to_regclass({}) IS NOT NULL",
                        quote_literal(&referenced)
                    ),
                    &[],
                )
                .await
                .map_err(|e| self.endpoint.error("looking for a referenced table", e))?;
            if !row.get::<_, bool>(0) {
                tracing::warn!(sink = %self.name, table = %t.display(), references = %referenced, "foreign key not created: the referenced table is not on the target");
                continue;
            }
            out.push(sql);
        }
        Ok(out)
    }

    /// What makes PostgreSQL's table hold `t` as its rows describe it (a
    /// schema change, translated; see [`ddl`]): the table and its change
    /// table created if missing, else its columns reconciled with the
    /// catalog, then its indexes and foreign keys.
    async fn bring_in_line(&self, client: &Client, t: &Target) -> Result<Vec<String>> {
        let ep = &self.endpoint;
        let mut out = Vec::new();
        let Some(have) = ddl::columns(ep, client, &t.qualified).await? else {
            out.extend(t.create(true, self.types.zero_dates));
            out.extend(t.sync_identity(t.auto_increment_floor()));
            if self.history {
                out.push(t.create_history());
            }
            out.extend(t.indexes());
            out.extend(
                self.foreign_keys_to_add(client, t, &Default::default())
                    .await?,
            );
            return Ok(out);
        };
        let history = if self.history {
            match ddl::columns(ep, client, &t.history_qualified()).await? {
                Some(h) => Some(h),
                None => {
                    out.push(t.create_history());
                    None
                }
            }
        } else {
            None
        };
        let adds = t
            .columns
            .iter()
            .any(|c| !have.iter().any(|h| h.name == c.name));
        let empty = adds && self.is_empty(client, &t.qualified).await?;
        out.extend(ddl::reconcile(t, &have, history.as_deref(), empty)?);
        out.extend(self.keys_in_line(client, t, Dropped::default()).await?);
        Ok(out)
    }

    /// `t`'s indexes, unique keys and foreign keys as the source defines
    /// them. Unique keys and foreign keys the source lacks are dropped only
    /// after a statement that drops one (`dropped`): others may be the
    /// user's own.
    async fn keys_in_line(
        &self,
        client: &Client,
        t: &Target,
        dropped: Dropped,
    ) -> Result<Vec<String>> {
        let mut out = t.indexes();
        let uniques = ddl::unique_keys(&self.endpoint, client, &t.qualified).await?;
        let wanted = t.unique_keys();
        for k in wanted
            .iter()
            .filter(|k| !uniques.iter().any(|(_, u)| u == *k))
        {
            let cols: Vec<String> = k.iter().map(|c| connect::quote_ident(c)).collect();
            out.push(format!(
                "ALTER TABLE {} ADD UNIQUE ({})",
                t.qualified,
                cols.join(", ")
            ));
        }
        for (name, _) in uniques
            .iter()
            .filter(|(_, u)| dropped.unique_key && !wanted.contains(u))
        {
            out.push(format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                t.qualified,
                connect::quote_ident(name)
            ));
        }
        let fks = ddl::foreign_key_names(&self.endpoint, client, &t.qualified).await?;
        let wanted: BTreeSet<String> = t
            .foreign_keys(&self.renames)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        for gone in fks.difference(&wanted).filter(|_| dropped.foreign_key) {
            out.push(format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                t.qualified,
                connect::quote_ident(gone)
            ));
        }
        out.extend(self.foreign_keys_to_add(client, t, &fks).await?);
        Ok(out)
    }

    /// Whether `qualified` has no rows (or does not exist).
    async fn is_empty(&self, client: &Client, qualified: &str) -> Result<bool> {
        let row = client
            .query_one(
                &format!(
                    "SELECT to_regclass({q}) IS NULL OR NOT EXISTS (SELECT 1 FROM {qualified})",
                    q = quote_literal(qualified)
                ),
                &[],
            )
            .await;
        match row {
            Ok(r) => Ok(r.get::<_, bool>(0)),
            // The table is not there: nothing to fill.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                Ok(true)
            }
            Err(e) => Err(self.endpoint.error(format!("reading {qualified}"), e)),
        }
    }

    async fn check_server(&self, client: &Client, targets: &[Arc<Target>]) -> Result<()> {
        let role = &self.endpoint.role;
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int, current_setting('server_encoding'), current_user::text",
                &[],
            )
            .await
            .map_err(|e| self.endpoint.error("reading the server's version", e))?;
        let version: i32 = row.get(0);
        let encoding: String = row.get(1);
        let user: String = row.get(2);
        if version < 120_000 {
            return Err(Error::precondition(
                format!(
                    "{role}: the server is PostgreSQL {}, older than 12",
                    version / 10_000
                ),
                "use PostgreSQL 12 or newer",
            ));
        }
        if !encoding.eq_ignore_ascii_case("UTF8") {
            return Err(Error::precondition(
                format!(
                    "{role}: database {} is encoded in {encoding}, which cannot hold every MySQL text",
                    self.endpoint.database()
                ),
                "create the database with ENCODING 'UTF8' (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)",
            ));
        }
        // CREATE on each schema sluice writes to, or on the database
        // where a schema is still to be created.
        let mut schemas: BTreeSet<String> = targets.iter().map(|t| t.schema.clone()).collect();
        schemas.insert("sluice".into());
        let mut missing = Vec::new();
        for s in &schemas {
            let row = client
                .query_one(
                    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) \
                     THEN has_schema_privilege($1, 'CREATE,USAGE') \
                     ELSE has_database_privilege(current_database(), 'CREATE') END",
                    &[s],
                )
                .await
                .map_err(|e| self.endpoint.error("reading the user's privileges", e))?;
            if !row.get::<_, bool>(0) {
                missing.push(s.clone());
            }
        }
        if !missing.is_empty() {
            return Err(Error::precondition(
                format!(
                    "{role}: user {user} may not create tables in schema(s) {} of database {}",
                    missing.join(", "),
                    self.endpoint.database()
                ),
                format!(
                    "as an owner: GRANT CREATE ON DATABASE {} TO {user}; or create the schemas and GRANT CREATE, USAGE ON SCHEMA ... TO {user}",
                    self.endpoint.database()
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for PostgresSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn state(&self) -> Result<SinkState> {
        let client = self.endpoint.connect().await?;
        self.checkpoint.read(&self.endpoint, &client).await
    }

    async fn checkpoint_time(&self) -> Result<Option<i64>> {
        let client = self.endpoint.connect().await?;
        if matches!(
            self.checkpoint.read(&self.endpoint, &client).await?,
            SinkState::Fresh
        ) {
            return Ok(None);
        }
        self.checkpoint.updated_at(&self.endpoint, &client).await
    }

    async fn check(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        state: &SinkState,
    ) -> Result<()> {
        let client = self.endpoint.connect().await?;
        let targets: Vec<Arc<Target>> = tables
            .iter()
            .map(|t| self.target(t))
            .collect::<Result<_>>()?;
        self.check_server(&client, &targets).await?;
        let existing = self.existing(&client, &targets).await?;
        let snapshot = matches!(plan, Plan::Snapshot { .. });
        let fresh_cdc = matches!(plan, Plan::Cdc { fresh: true, .. });
        let listed = existing.iter().cloned().collect::<Vec<_>>().join(", ");
        if (snapshot && *state == SinkState::Fresh || fresh_cdc)
            && self.existing_tables == ExistingTables::Fail
            && !existing.is_empty()
        {
            return Err(Error::precondition(
                format!("{}: target tables exist already: {listed}", self.endpoint.role),
                "drop them, or set `existing_tables: truncate` (empty them first) or `append` on the sink; nothing was written",
            ));
        }
        if snapshot
            && *state == SinkState::SnapshotInterrupted
            && self.existing_tables == ExistingTables::Append
            && !existing.is_empty()
        {
            return Err(Error::precondition(
                format!(
                    "{}: an interrupted snapshot left rows in tables it appends to: {listed}",
                    self.endpoint.role
                ),
                "remove the rows the interrupted run added (or restore the tables), then run again",
            ));
        }
        Ok(())
    }

    async fn prepare(
        &self,
        tables: &[Arc<TableSchema>],
        plan: &Plan,
        state: &SinkState,
    ) -> Result<()> {
        let client = self.endpoint.connect().await?;
        for sql in checkpoint::CREATE {
            self.exec(&client, "creating sluice.checkpoints", sql)
                .await?;
        }
        let targets: Vec<Arc<Target>> = tables
            .iter()
            .map(|t| self.target(t))
            .collect::<Result<_>>()?;
        let existing = self.existing(&client, &targets).await?;
        let from = match plan {
            Plan::Snapshot { .. } => {
                self.exec(
                    &client,
                    "writing sluice.checkpoints",
                    &self
                        .checkpoint
                        .reset(checkpoint::SNAPSHOT, 1, &Default::default()),
                )
                .await?;
                None
            }
            Plan::Cdc { from, fresh: true } => Some(from.clone()),
            Plan::Cdc { fresh: false, .. } => return Ok(()),
        };
        let snapshot = from.is_none();
        for t in &targets {
            let what = format!("creating {}", t.display());
            let interrupted = snapshot
                && *state == SinkState::SnapshotInterrupted
                && self.existing_tables == ExistingTables::Fail;
            let mut tables = vec![(t.qualified.clone(), false)];
            if self.history {
                tables.push((t.history_qualified(), true));
            }
            for (name, history) in tables {
                let create = if !existing.contains(&name) {
                    true
                } else if interrupted {
                    // This pipeline's own table from the interrupted run.
                    self.exec(&client, &what, &format!("DROP TABLE {name} CASCADE"))
                        .await?;
                    true
                } else {
                    if snapshot && self.existing_tables == ExistingTables::Truncate {
                        self.exec(&client, &what, &format!("TRUNCATE {name}"))
                            .await?;
                    }
                    false
                };
                if !create {
                    continue;
                }
                if history {
                    self.exec(&client, &what, &t.create_history()).await?;
                    continue;
                }
                // A snapshot adds the keys after its rows.
                for sql in t.create(!snapshot, self.types.zero_dates) {
                    self.exec(&client, &what, &sql).await?;
                }
                if !snapshot {
                    // Inserts on PostgreSQL get the numbers the source would give.
                    if let Some(sql) = t.sync_identity(t.auto_increment_floor()) {
                        self.exec(&client, &what, &sql).await?;
                    }
                }
                if snapshot {
                    if let Ok(mut m) = self.targets.lock() {
                        m.insert(t.source.id.clone(), (t.clone(), true));
                    }
                }
            }
        }
        if !snapshot {
            // Tables created for changes only: their indexes and foreign
            // keys at once (a snapshot adds them after its rows).
            let created: Vec<&Arc<Target>> = targets
                .iter()
                .filter(|t| !existing.contains(&t.qualified))
                .collect();
            for t in &created {
                for sql in t.indexes() {
                    self.exec(&client, &format!("indexing {}", t.display()), &sql)
                        .await?;
                }
            }
            for t in &created {
                self.add_foreign_keys(&client, t).await?;
            }
        }
        if let Some(from) = from {
            self.exec(
                &client,
                "writing sluice.checkpoints",
                &self.checkpoint.reset(checkpoint::CDC, 1, &from),
            )
            .await?;
        }
        Ok(())
    }

    async fn load(self: Arc<Self>, _ctx: SinkContext) -> Result<Box<dyn SnapshotLoad>> {
        Ok(Box::new(load::Load::open(self).await?))
    }

    async fn apply(self: Arc<Self>, ctx: SinkContext) -> Result<Box<dyn ChangeWriter>> {
        lanes::open(self, ctx.reporter).await
    }

    fn system_schemas(&self) -> &'static [&'static str] {
        &["pg_catalog", "information_schema", "sluice"]
    }

    fn view(&self) -> View {
        View::ChangeLog(Arc::new(read::Tables {
            endpoint: self.endpoint.clone(),
            renames: self.renames.clone(),
            types: self.types,
        }))
    }
}
