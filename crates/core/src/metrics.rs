//! The Prometheus endpoint (`metrics.listen`, off by default): rows and
//! bytes read per table, rows written per table and sink, changes applied,
//! lag and checkpoint age per sink, time in plugins, transient errors
//! retried. Served over HTTP/1 by hyper at `/metrics`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::progress::{self, Progress};
use crate::{Error, Result};

/// Binds the address before anything is written, so a taken port stops the
/// run early.
pub async fn bind(listen: &str) -> Result<TcpListener> {
    let addr: SocketAddr = listen.parse().map_err(|e| {
        Error::precondition(
            format!("metrics.listen `{listen}` is not an address: {e}"),
            "write it as HOST:PORT, e.g. 127.0.0.1:9464",
        )
    })?;
    TcpListener::bind(addr).await.map_err(|e| {
        Error::precondition(
            format!("metrics.listen {addr}: cannot listen there: {e}"),
            "choose a free port (or remove `metrics:` to run without the endpoint)",
        )
    })
}

/// What the endpoint reports on.
pub struct Exposed {
    pub pipeline: String,
    pub sinks: Vec<String>,
    pub progress: Arc<Progress>,
}

/// Serves `/metrics` on `listener` until the returned task is aborted.
pub fn serve(listener: TcpListener, exposed: Exposed) -> tokio::task::JoinHandle<()> {
    let exposed = Arc::new(exposed);
    tracing::info!(listen = ?listener.local_addr().ok(), "metrics at /metrics");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let exposed = exposed.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let exposed = exposed.clone();
                    async move { Ok::<_, Infallible>(respond(&req, &exposed)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn respond(req: &Request<Incoming>, exposed: &Exposed) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        let mut r = Response::new(Full::new(Bytes::from_static(b"see /metrics\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from(render(exposed))));
    if let Ok(v) = "text/plain; version=0.0.4".parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A label value in the exposition format.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics in Prometheus' text exposition format.
pub fn render(e: &Exposed) -> String {
    let p = &e.progress;
    let pipeline = label(&e.pipeline);
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let counts = p.table_counts();
    family(
        &mut out,
        "sluice_rows_read_total",
        "counter",
        "Rows the source read, per table.",
    );
    for t in &counts {
        let _ = writeln!(
            out,
            "sluice_rows_read_total{{pipeline=\"{pipeline}\",table=\"{}\"}} {}",
            label(&t.table.to_string()),
            t.read_rows
        );
    }
    family(
        &mut out,
        "sluice_bytes_read_total",
        "counter",
        "Bytes of row images the source read, per table.",
    );
    for t in &counts {
        let _ = writeln!(
            out,
            "sluice_bytes_read_total{{pipeline=\"{pipeline}\",table=\"{}\"}} {}",
            label(&t.table.to_string()),
            t.read_bytes
        );
    }
    family(
        &mut out,
        "sluice_rows_written_total",
        "counter",
        "Rows each sink wrote (snapshot rows and row changes), per table.",
    );
    for t in &counts {
        for (i, n) in t.written.iter().enumerate() {
            let sink = e.sinks.get(i).map_or(i.to_string(), |s| label(s));
            let _ = writeln!(out, "sluice_rows_written_total{{pipeline=\"{pipeline}\",sink=\"{sink}\",table=\"{}\"}} {n}", label(&t.table.to_string()));
        }
    }
    family(
        &mut out,
        "sluice_changes_applied_total",
        "counter",
        "Row changes each sink applied.",
    );
    for i in 0..p.sink_count() {
        let sink = e.sinks.get(i).map_or(i.to_string(), |s| label(s));
        let _ = writeln!(
            out,
            "sluice_changes_applied_total{{pipeline=\"{pipeline}\",sink=\"{sink}\"}} {}",
            p.changes(i)
        );
    }
    family(&mut out, "sluice_lag_seconds", "gauge", "Now minus the commit time of the last change a sink applied; 0 once it has applied all the source had (heartbeats keep an idle source at 0). Absent before the first change.");
    for i in 0..p.sink_count() {
        let lag = p.lag(i);
        if lag != Duration::MAX {
            let sink = e.sinks.get(i).map_or(i.to_string(), |s| label(s));
            let _ = writeln!(
                out,
                "sluice_lag_seconds{{pipeline=\"{pipeline}\",sink=\"{sink}\"}} {:.3}",
                lag.as_secs_f64()
            );
        }
    }
    family(
        &mut out,
        "sluice_checkpoint_age_seconds",
        "gauge",
        "Seconds since a sink last committed its checkpoint. Absent before the first.",
    );
    for i in 0..p.sink_count() {
        if let Some(age) = p.checkpoint_age(i) {
            let sink = e.sinks.get(i).map_or(i.to_string(), |s| label(s));
            let _ = writeln!(
                out,
                "sluice_checkpoint_age_seconds{{pipeline=\"{pipeline}\",sink=\"{sink}\"}} {:.3}",
                age.as_secs_f64()
            );
        }
    }
    family(
        &mut out,
        "sluice_plugin_seconds_total",
        "counter",
        "Time spent in transform plugins.",
    );
    let _ = writeln!(
        out,
        "sluice_plugin_seconds_total{{pipeline=\"{pipeline}\"}} {:.6}",
        p.plugin_seconds()
    );
    family(
        &mut out,
        "sluice_transient_errors_total",
        "counter",
        "Transient errors (lost connections, deadlocks, lock wait timeouts) retried.",
    );
    let _ = writeln!(
        out,
        "sluice_transient_errors_total{{pipeline=\"{pipeline}\"}} {}",
        progress::transient_errors()
    );
    let counters = progress::plugin_counters();
    if !counters.is_empty() {
        family(
            &mut out,
            "sluice_plugin_counter_total",
            "counter",
            "Counters plugins keep (the host's `counter` import), by plugin and name.",
        );
        for ((plugin, name), value) in counters {
            let _ = writeln!(
                out,
                "sluice_plugin_counter_total{{pipeline=\"{pipeline}\",plugin=\"{}\",name=\"{}\"}} {value}",
                label(&plugin),
                label(&name)
            );
        }
    }
    out
}
