//! `sluice check`: every precondition of a pipeline, as a list of pass,
//! warn and fail findings, each failure with its fix. `sluice run` runs the
//! same checks first and refuses to start on a failure.
//!
//! Where checks live: the source's in [`crate::stage::Source::precheck`]
//! (privileges, binlog settings, retention, server id, keys), each sink's in
//! its [`crate::stage::Sink::check`] (reachability, privileges, existing
//! tables, character sets, a probe object), the plugins' in their host
//! ([`crate::connectors::Plugins`]: load, accept their config, describe
//! tables).

use std::fmt::Write as _;

use crate::config::PipelineConfig;
use crate::connectors::{Plugins, SinkSpec, SourceSpec};
use crate::setup::Setup;
use crate::stage::{Plan, SinkState};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub level: Level,
    /// What was checked, e.g. `source binlog_format`.
    pub check: String,
    /// What was found.
    pub detail: String,
    /// What to do (empty when passed).
    pub fix: String,
}

impl Finding {
    pub fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            level: Level::Pass,
            check: check.into(),
            detail: detail.into(),
            fix: String::new(),
        }
    }

    pub fn warn(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            level: Level::Warn,
            check: check.into(),
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    pub fn fail(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            level: Level::Fail,
            check: check.into(),
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    /// A check that could not pass because of `e`, with `e`'s own hint as the fix.
    pub fn from_error(check: impl Into<String>, e: &Error) -> Self {
        let text = e.to_string();
        let (detail, hint) = match text.split_once("\n  hint: ") {
            Some((d, h)) => (d.to_string(), h.to_string()),
            None => (text, String::new()),
        };
        let detail = detail
            .strip_prefix("precondition failed: ")
            .map(str::to_string)
            .unwrap_or(detail);
        Finding::fail(check, detail, hint)
    }
}

/// Fails with the first failed finding; logs the warnings.
pub fn enforce(findings: &[Finding]) -> Result<()> {
    for f in findings {
        match f.level {
            Level::Fail => {
                return Err(Error::precondition(
                    format!("{}: {}", f.check, f.detail),
                    f.fix.clone(),
                ))
            }
            Level::Warn => tracing::warn!(check = %f.check, fix = %f.fix, "{}", f.detail),
            Level::Pass => {}
        }
    }
    Ok(())
}

/// Runs every check of `config` without writing anything (the steps of
/// [`Setup`]); everything a server or store says becomes a finding.
pub async fn run<S: SourceSpec, K: SinkSpec>(
    config: &PipelineConfig<S, K>,
    plugins: &dyn Plugins,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    // A sink that cannot even be set up (a folder that cannot be created)
    // is a failed check too.
    let mut setup = match Setup::build(config) {
        Ok(s) => s,
        Err(e) => {
            out.push(Finding::from_error("pipeline", &e));
            return Ok(out);
        }
    };
    let plugins_loaded = match setup.load_plugins(&config.transforms, plugins, 1) {
        Ok(()) => true,
        Err(e) => {
            out.push(Finding::from_error("plugins", &e));
            false
        }
    };
    if let Err(e) = setup.discover_source().await {
        out.push(Finding::from_error("source", &e));
        return Ok(out);
    }
    match setup.describe() {
        Ok(()) if plugins_loaded && !config.transforms.is_empty() => out.push(Finding::pass(
            "plugins",
            format!(
                "{} transform(s) loaded, accepted their config and described {} table(s)",
                config.transforms.len(),
                setup.tables.len()
            ),
        )),
        Ok(()) => {}
        Err(e) => out.push(Finding::from_error("plugins", &e)),
    }
    let (plan, states) = match setup.plan().await {
        Ok(p) => p,
        Err(e) => {
            out.push(Finding::from_error("checkpoints", &e));
            (
                Plan::Snapshot { then_cdc: true },
                vec![SinkState::Fresh; setup.sinks.len()],
            )
        }
    };
    match setup.source_findings(&plan).await {
        Ok(f) => out.extend(f),
        Err(e) => out.push(Finding::from_error("source", &e)),
    }
    for (i, state) in states.iter().enumerate() {
        let sink = &setup.sinks[i];
        let check = format!("sink `{}`", sink.name());
        match setup.sink_findings(i, &plan, state).await {
            Ok(warnings) => {
                out.push(Finding::pass(
                    check,
                    match plan {
                        Plan::Snapshot { .. } => {
                            "reachable, privileges held, ready for the snapshot"
                        }
                        Plan::Cdc { .. } => "reachable, privileges held, ready to resume",
                    },
                ));
                out.extend(warnings);
            }
            Err(e) => {
                out.push(Finding::from_error(check, &e));
                out.extend(sink.warnings(&setup.tables));
            }
        }
    }
    Ok(out)
}

/// The findings as a table: LEVEL, CHECK, DETAIL, and the fix under each
/// warning or failure.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    let width = findings
        .iter()
        .map(|f| f.check.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(out, "{:<6} {:<width$} DETAIL", "RESULT", "CHECK");
    for f in findings {
        let level = match f.level {
            Level::Pass => "pass",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        let _ = writeln!(out, "{level:<6} {:<width$} {}", f.check, f.detail);
        if !f.fix.is_empty() && f.level != Level::Pass {
            let _ = writeln!(out, "{:<6} {:<width$} fix: {}", "", "", f.fix);
        }
    }
    let fails = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warns = findings.iter().filter(|f| f.level == Level::Warn).count();
    let _ = writeln!(
        out,
        "{}: {} passed, {warns} warning(s), {fails} failure(s)",
        if fails == 0 { "ready" } else { "NOT READY" },
        findings.len() - fails - warns
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_failures_with_their_hint() {
        let e = Error::precondition("the source lacks X", "grant X");
        let f = Finding::from_error("source", &e);
        assert_eq!(f.level, Level::Fail);
        assert_eq!(f.detail, "the source lacks X");
        assert_eq!(f.fix, "grant X");
        assert!(enforce(&[Finding::pass("a", "ok"), Finding::warn("b", "meh", "do")]).is_ok());
        let err = enforce(&[f]).expect_err("a failure stops the run");
        assert!(
            err.to_string().contains("source: the source lacks X"),
            "{err}"
        );
        let table = render(&[
            Finding::pass("a", "ok"),
            Finding::fail("source binlog", "off", "turn it on"),
        ]);
        assert!(table.contains("FAIL   source binlog off"), "{table}");
        assert!(table.contains("fix: turn it on"), "{table}");
        assert!(
            table.ends_with("NOT READY: 1 passed, 0 warning(s), 1 failure(s)\n"),
            "{table}"
        );
    }
}
