//! `nats-publisher dump URL STREAM FILE`: every message of STREAM (subject,
//! headers Nats-Msg-Id and Sluice-Key, payload) into FILE.
//! `nats-publisher clear URL`: deletes every stream but key-value buckets
//! (streams on the same subjects cannot exist side by side).
//! `nats-publisher publish URL STREAM SUBJECT FILE`: a new stream STREAM on
//! SUBJECT, then FILE's messages published to it with acknowledgement, up
//! to 20,000 unacknowledged (as the sink does); prints the count and the
//! seconds from the first publish to the last acknowledgement.

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Read, Write};
use std::time::Instant;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;

/// Unacknowledged messages at most, as the sink's change writer keeps.
const IN_FLIGHT: usize = 20_000;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn put(w: &mut impl Write, b: &[u8]) -> std::io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(b)
}

fn get(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut n = [0u8; 4];
    match r.read_exact(&mut n) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let mut b = vec![0; u32::from_le_bytes(n) as usize];
    r.read_exact(&mut b)?;
    Ok(Some(b))
}

async fn dump(js: jetstream::Context, name: &str, file: &str) -> Result<(), Error> {
    let mut s = js.get_stream(name).await?;
    let total = s.info().await?.state.messages;
    let consumer = s
        .create_consumer(pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut out = BufWriter::new(std::fs::File::create(file)?);
    let mut n = 0;
    while n < total {
        let Some(m) = messages.next().await else { break };
        let m = m?;
        let header = |k: &str| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(k))
                .map(|v| v.as_str().as_bytes().to_vec())
                .unwrap_or_default()
        };
        put(&mut out, m.subject.as_bytes())?;
        put(&mut out, &header("Nats-Msg-Id"))?;
        put(&mut out, &header("Sluice-Key"))?;
        put(&mut out, &m.payload)?;
        n += 1;
    }
    out.flush()?;
    println!("{n}");
    Ok(())
}

async fn clear(js: jetstream::Context) -> Result<(), Error> {
    let mut names = js.stream_names();
    let mut all = Vec::new();
    while let Some(name) = names.next().await {
        all.push(name?);
    }
    for name in all.iter().filter(|n| !n.starts_with("KV_")) {
        js.delete_stream(name).await?;
    }
    Ok(())
}

async fn publish(js: jetstream::Context, name: &str, subject: &str, file: &str) -> Result<(), Error> {
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        ..Default::default()
    })
    .await?;
    let mut r = BufReader::new(std::fs::File::open(file)?);
    let mut messages = Vec::new();
    while let Some(subject) = get(&mut r)? {
        let (Some(id), Some(key), Some(payload)) = (get(&mut r)?, get(&mut r)?, get(&mut r)?) else {
            return Err("a truncated dump".into());
        };
        messages.push((String::from_utf8(subject)?, String::from_utf8(id)?, String::from_utf8(key)?, payload));
    }
    let n = messages.len();
    let start = Instant::now();
    let mut in_flight = VecDeque::new();
    for (subject, id, key, payload) in messages {
        if in_flight.len() >= IN_FLIGHT {
            if let Some(a) = in_flight.pop_front() {
                a.await?;
            }
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert("Sluice-Key", key.as_str());
        in_flight.push_back(js.publish_with_headers(subject, headers, payload.into()).await?);
    }
    for a in in_flight {
        a.await?;
    }
    println!("{n} {:.3}", start.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let js = |url: &str| {
        let url = url.to_string();
        // As the sink does: room for every acknowledgement it keeps pending
        // (the client's default, 5,000, would make a publish wait for good).
        async move {
            let client = async_nats::connect(url).await?;
            Ok::<_, Error>(jetstream::ContextBuilder::new().max_ack_inflight(IN_FLIGHT + 1024).build(client))
        }
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>()[1..] {
        ["dump", url, name, file] => dump(js(url).await?, name, file).await,
        ["clear", url] => clear(js(url).await?).await,
        ["publish", url, name, subject, file] => publish(js(url).await?, name, subject, file).await,
        _ => Err("usage: nats-publisher dump URL STREAM FILE | clear URL | publish URL STREAM SUBJECT FILE".into()),
    }
}
