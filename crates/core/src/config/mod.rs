//! The pipeline file: its schema, loading and validation.
//!
//! Loading is three steps, each reporting file, line and column:
//! 1. `${VAR}` interpolation ([`interpolate`]),
//! 2. YAML parsing into the typed schema below (unknown keys are errors, with
//!    the nearest valid key suggested),
//! 3. semantic checks that need no network (URLs parse, patterns compile).
//!
//! Each component's own settings live next to its code, in its own crate;
//! the file's `source:` and `sinks:` take whatever kinds the binary lists
//! in [`crate::connectors!`].

pub mod interpolate;

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::connectors::{SinkSpec, SourceSpec};
use crate::error::ConfigError;

/// A whole pipeline file, with the source kinds `S` and sink kinds `K` the
/// binary offers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound = "S: SourceSpec, K: SinkSpec")]
pub struct PipelineConfig<S, K> {
    /// Identifies the pipeline in logs, metrics and checkpoints.
    pub name: Spanned<String>,
    pub source: S,
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    pub sinks: Spanned<Vec<K>>,
    #[serde(default)]
    pub settings: Settings,
    /// The Prometheus endpoint; off unless set.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// `metrics:` in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `HOST:PORT` to serve `/metrics` on, e.g. `127.0.0.1:9464`.
    pub listen: Spanned<String>,
}

/// A WebAssembly transform plugin (see docs/plugins.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    pub plugin: Spanned<String>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub on_error: OnError,
    /// With `on_error: dead-letter`: the JSON Lines file the failed events
    /// are appended to.
    #[serde(default)]
    pub dead_letter: Option<Spanned<String>>,
    /// Longest a plugin may take for one batch.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Memory limit of one plugin instance.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
}

fn default_deadline_ms() -> u64 {
    5000
}

fn default_memory_mb() -> u64 {
    64
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    #[default]
    Fail,
    Skip,
    DeadLetter,
}

/// Pipeline-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Rows per batch passed between stages.
    pub batch_size: usize,
    /// Default number of parallel readers and writers (per-component settings override it).
    pub parallelism: usize,
    /// Threads of the async runtime; `None`: one per two cores.
    pub threads: Option<usize>,
}

impl Settings {
    /// The async runtime's worker threads. The async side moves and
    /// converts rows; the CPU-heavy stages (plugins, Parquet encoding) run
    /// on threads of their own. A batch handed from one worker to another
    /// is read from the other core's cache and freed across threads: on 2
    /// cores, one worker cost 13% less CPU per row change than two, with
    /// the same snapshot and archive throughput (bench/cdc.sh,
    /// bench/snapshot.sh, bench/archive.sh).
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 2))
            .max(1)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_size: 5000,
            parallelism: 4,
            threads: None,
        }
    }
}

/// A config error as found by a component's own checks, located in the file.
pub fn located<T>(
    file: &str,
    at: &Spanned<T>,
    message: String,
    hint: Option<String>,
) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        line: at.referenced.line(),
        column: at.referenced.column(),
        message,
        hint,
    }
}

impl<S: SourceSpec, K: SinkSpec> PipelineConfig<S, K> {
    /// Reads, interpolates, parses and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the pipeline file: {e}"),
            hint: Some("check the path; `sluice validate FILE` takes the YAML file".into()),
        })?;
        Self::from_text(&file, &text, |k| std::env::var(k).ok())
    }

    /// Like [`load`](Self::load) on text already read; `file` names it in errors.
    pub fn from_text(
        file: &str,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let expanded = interpolate::interpolate(text, env).map_err(|e| ConfigError {
            file: file.to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
            hint: Some(e.hint),
        })?;
        let cfg: PipelineConfig<S, K> =
            serde_saphyr::from_str(&expanded).map_err(|e| yaml_error(file, &e))?;
        cfg.check(file)?;
        Ok(cfg)
    }

    fn check(&self, file: &str) -> Result<(), ConfigError> {
        if self.name.value.trim().is_empty() {
            return Err(located(
                file,
                &self.name,
                "`name` is empty".into(),
                Some("give the pipeline a short name, e.g. `name: shop-migrate`".into()),
            ));
        }
        if self.sinks.value.is_empty() {
            return Err(located(
                file,
                &self.sinks,
                "`sinks` is empty: a pipeline needs at least one sink".into(),
                Some("add a sink, e.g. `sinks: [ { mysql: { url: \"mysql://...\" } } ]`".into()),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for sink in &self.sinks.value {
            if !names.insert(sink.name().to_string()) {
                return Err(located(
                    file,
                    &self.sinks,
                    format!("two sinks are named `{}`", sink.name()),
                    Some("give each sink its own `name`: checkpoints are kept per sink".into()),
                ));
            }
        }
        if self.settings.batch_size == 0
            || self.settings.parallelism == 0
            || self.settings.threads == Some(0)
        {
            return Err(ConfigError {
                file: file.into(),
                line: 0,
                column: 0,
                message: "`settings.batch_size`, `settings.parallelism` and `settings.threads` must be at least 1"
                    .into(),
                hint: Some("leave a setting out for its default (docs/pipeline-yaml.md, `settings`)".into()),
            });
        }
        for t in &self.transforms {
            match (&t.on_error, &t.dead_letter) {
                (OnError::DeadLetter, None) => {
                    return Err(located(
                        file,
                        &t.plugin,
                        format!("transform `{}` has `on_error: dead-letter` but no `dead_letter:` file", t.plugin.value),
                        Some("add `dead_letter: ./dead-letter.jsonl` (a JSON Lines file the failed events are appended to)".into()),
                    ))
                }
                (OnError::Fail | OnError::Skip, Some(d)) => {
                    return Err(located(
                        file,
                        d,
                        format!("transform `{}` has a `dead_letter:` file but `on_error` is not `dead-letter`", t.plugin.value),
                        Some("set `on_error: dead-letter`, or remove `dead_letter:`".into()),
                    ))
                }
                _ => {}
            }
            if t.deadline_ms == 0 || t.memory_mb == 0 {
                return Err(located(
                    file,
                    &t.plugin,
                    format!(
                        "transform `{}`: `deadline_ms` and `memory_mb` must be at least 1",
                        t.plugin.value
                    ),
                    None,
                ));
            }
        }
        self.source.check(file)?;
        for sink in &self.sinks.value {
            sink.check(file)?;
        }
        if let Some(m) = &self.metrics {
            if let Err(e) = m.listen.value.parse::<std::net::SocketAddr>() {
                return Err(located(
                    file,
                    &m.listen,
                    format!(
                        "`metrics.listen: {}` is not an address ({e})",
                        m.listen.value
                    ),
                    Some("write HOST:PORT, e.g. `listen: 127.0.0.1:9464`".into()),
                ));
            }
        }
        Ok(())
    }
}

/// Turns a YAML/serde error into a located [`ConfigError`], suggesting the
/// nearest valid key for a typo.
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let text = strip_location(&e.to_string());
    let (message, hint) = if let Some((got, expected)) = unknown(&text, "unknown field") {
        (
            format!("unknown key `{got}`"),
            Some(suggest(&got, &expected, "key")),
        )
    } else if let Some((got, expected)) = unknown(&text, "unknown variant") {
        (
            format!("unknown value `{got}`"),
            Some(suggest(&got, &expected, "value")),
        )
    } else if let Some(field) = text.strip_prefix("missing field ") {
        let field = field.trim_matches('`');
        (
            format!("missing required key `{field}`"),
            Some(format!("add `{field}:` here; see docs/pipeline-yaml.md")),
        )
    } else if text.starts_with("invalid type") || text.starts_with("invalid value") {
        (format!("wrong type: {text}"), None)
    } else if let Some(kind) = text.strip_prefix("invalid ").and_then(scalar_kind) {
        (
            format!("wrong type: expected {kind}"),
            Some("see docs/pipeline-yaml.md for this key's type".into()),
        )
    } else {
        (
            format!("invalid YAML: {text}"),
            Some("check indentation and quoting near this position".into()),
        )
    };
    ConfigError {
        file: file.to_string(),
        line,
        column,
        message,
        hint,
    }
}

/// Plain words for the scalar types saphyr names in "invalid u64" and the like.
fn scalar_kind(t: &str) -> Option<&'static str> {
    Some(match t.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" | "boolean" => "true or false",
        _ => return None,
    })
}

/// Parses serde's "unknown field `x`, expected one of `a`, `b`" (and the
/// variant form) into the offending name and the valid ones.
fn unknown(text: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = text.strip_prefix(prefix)?.trim_start();
    let rest = rest.strip_prefix('`')?;
    let end = rest.find('`')?;
    let got = rest[..end].to_string();
    let expected = rest[end + 1..]
        .trim_start_matches(',')
        .trim()
        .strip_prefix("expected")
        .map(|l| {
            l.trim()
                .trim_start_matches("one of")
                .split([',', ' '])
                .map(|s| s.trim().trim_matches('`').to_string())
                .filter(|s| !s.is_empty() && s != "or")
                .collect()
        })
        .unwrap_or_default();
    Some((got, expected))
}

/// saphyr's Display reads "error: line L column C: message"; we print the
/// location once, up front, in the file:line:column form.
fn strip_location(s: &str) -> String {
    let first = s.lines().next().unwrap_or(s);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    if first.starts_with("line ") {
        if let Some(p) = first.find(": ") {
            return first[p + 2..].to_string();
        }
    }
    first.to_string()
}

fn suggest(got: &str, expected: &[String], what: &str) -> String {
    let best = expected
        .iter()
        .map(|e| (strsim::damerau_levenshtein(got, e), e))
        .min();
    let list = expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match best {
        Some((d, e)) if d <= 3 || d * 2 <= got.len() => {
            format!("did you mean `{e}`? valid {what}s here: {list}")
        }
        _ if expected.is_empty() => format!("no {what}s are allowed here"),
        _ => format!("valid {what}s here: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: demo
source:
  mysql:
    url: mysql://root@127.0.0.1:3306
    include: ["shop.*"]
sinks:
  - mysql:
      url: mysql://root@127.0.0.1:3307
"#;

    /// Stand-ins for the MySQL source and sink: the core knows no component.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TestSource {
        #[allow(dead_code)]
        url: String,
        #[serde(default)]
        #[allow(dead_code)]
        include: Vec<String>,
    }

    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TestSink {
        #[allow(dead_code)]
        url: String,
    }

    impl SourceSpec for TestSource {
        fn check(&self, _file: &str) -> Result<(), ConfigError> {
            Ok(())
        }
        fn build(
            &self,
            _: &crate::connectors::Build<'_>,
        ) -> crate::Result<Box<dyn crate::stage::Source>> {
            Err(crate::Error::Internal("not built in tests".into()))
        }
    }

    impl SinkSpec for TestSink {
        fn name(&self) -> &str {
            "mysql"
        }
        fn check(&self, _file: &str) -> Result<(), ConfigError> {
            Ok(())
        }
        fn build(
            &self,
            _: &crate::connectors::Build<'_>,
        ) -> crate::Result<std::sync::Arc<dyn crate::stage::Sink>> {
            Err(crate::Error::Internal("not built in tests".into()))
        }
    }

    crate::connectors! {
        sources { Mysql(TestSource) }
        sinks { Mysql(TestSink) }
    }

    fn parse(t: &str) -> Result<Pipeline, ConfigError> {
        Pipeline::from_text("p.yaml", t, |_| None)
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.name.value, "demo");
        assert_eq!(c.settings.batch_size, 5000);
        assert_eq!(c.sinks.value.len(), 1);
    }

    #[test]
    fn unknown_key_is_located_and_suggested() {
        let t = GOOD.replace("    include:", "    inclde:");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("`inclde`"), "{e}");
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .contains("did you mean `include`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_and_missing_field() {
        let t = format!("{GOOD}settings:\n  batch_size: lots\n");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, 11, "{e}");
        assert!(
            e.message.contains("wrong type") || e.message.contains("invalid"),
            "{e}"
        );
        let e = parse("name: x\nsinks: []\n").unwrap_err();
        assert!(e.message.contains("missing required key `source`"), "{e}");
    }

    #[test]
    fn unknown_component_kind_is_suggested() {
        let t = GOOD.replace("  - mysql:", "  - mysqll:");
        let e = parse(&t).unwrap_err();
        assert!(e.hint.as_deref().unwrap().contains("`mysql`"), "{e}");
    }

    #[test]
    fn malformed_yaml_is_located() {
        let e = parse("name: [demo\nsource: {\n").unwrap_err();
        assert!(e.line > 0, "{e}");
        assert!(e.message.starts_with("invalid YAML"), "{e}");
    }
}

/// `apply:` of a database sink: how changes are applied (when the source
/// follows changes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplyConfig {
    pub consistency: Consistency,
    /// Apply connections for `eventual`; defaults to `parallelism`.
    pub parallelism: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// Changes partitioned by key over several connections; each target
    /// transaction holds whole source transactions of its partition. Rows are
    /// always in order; a reader may see one partition ahead of another.
    #[default]
    Eventual,
    /// One connection; the target never shows part of a source transaction.
    Transactional,
}

/// `existing_tables:` of a database sink: what to do when a target table
/// already exists.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExistingTables {
    /// Stop before writing anything.
    #[default]
    Fail,
    /// Empty the table, then load.
    Truncate,
    /// Load into the table as it is (its columns must match).
    Append,
}
