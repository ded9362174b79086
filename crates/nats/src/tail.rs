//! `sluice tail`: a stream's messages as JSON lines as they arrive, for
//! people debugging a subscription. It reads through an ephemeral
//! consumer that acknowledges nothing, so it changes nothing any other
//! consumer sees.

use std::io::Write;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures::StreamExt;
use sluice_core::text::mask_url;
use sluice_core::{Error, Result};

pub struct TailOptions {
    pub url: String,
    pub stream: String,
    /// Only messages on these subjects (wildcards allowed).
    pub subject: Option<String>,
    /// Only messages published from now on.
    pub new_only: bool,
    /// Stop once every message there is has been printed.
    pub until_idle: bool,
}

/// Prints each message as `{"seq", "subject", "id", "key", "value"}`;
/// returns how many.
pub async fn tail(o: &TailOptions, out: &mut (dyn Write + Send)) -> Result<u64> {
    let role = format!("tail of {}", o.stream);
    let js = crate::connect(&o.url, &role).await?;
    let stream = js.get_stream(&o.stream).await.map_err(|e| {
        Error::precondition(
            format!(
                "{role}: no stream {} on {}: {e}",
                o.stream,
                mask_url(&o.url)
            ),
            "name the stream a nats sink writes (its `stream:`, SLUICE by default)",
        )
    })?;
    let consumer: async_nats::jetstream::consumer::Consumer<pull::Config> = stream
        .create_consumer(pull::Config {
            filter_subject: o.subject.clone().unwrap_or_default(),
            ack_policy: AckPolicy::None,
            deliver_policy: if o.new_only {
                DeliverPolicy::New
            } else {
                DeliverPolicy::All
            },
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| Error::Data(format!("{role}: creating a consumer: {e}")))?;
    let mut n = 0u64;
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| Error::Data(format!("{role}: reading: {e}")))?;
        let mut got = 0;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| Error::Data(format!("{role}: reading: {e}")))?;
            got += 1;
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            let header = |name: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_string())
            };
            let value = serde_json::from_slice::<serde_json::Value>(&m.payload)
                .unwrap_or_else(|_| String::from_utf8_lossy(&m.payload).into_owned().into());
            let line = serde_json::json!({
                "seq": seq,
                "subject": m.subject.as_str(),
                "id": header("Nats-Msg-Id"),
                "key": header("Sluice-Key").and_then(|k| serde_json::from_str::<serde_json::Value>(&k).ok()),
                "value": value,
            });
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(|e| Error::Data(format!("{role}: writing: {e}")))?;
            n += 1;
        }
        if got == 0 && o.until_idle {
            return Ok(n);
        }
    }
}
