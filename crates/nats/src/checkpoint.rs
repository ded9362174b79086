//! The sink's checkpoint: one key of the JetStream key-value bucket
//! `sluice_checkpoints` per pipeline and sink, written after the messages
//! it covers were acknowledged. A restart resumes after it and publishes
//! again what came later, with the same message ids, which the stream
//! drops as duplicates inside its window.

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use sluice_core::event::Position;
use sluice_core::stage::SinkState;
use sluice_core::{Error, Result};

pub const BUCKET: &str = "sluice_checkpoints";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Snapshot,
    Cdc,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub phase: Phase,
    pub file: String,
    pub offset: u64,
    pub gtid: Option<String>,
    /// When it was written (Unix µs), for `sluice status`.
    #[serde(default)]
    pub written_us: Option<i64>,
    /// The stream sequence of the last message it covers, for `sluice status`.
    #[serde(default)]
    pub stream_seq: Option<u64>,
}

impl Checkpoint {
    pub fn at(phase: Phase, p: &Position) -> Self {
        Checkpoint {
            phase,
            file: p.file.to_string(),
            offset: p.offset,
            gtid: p.gtid.as_deref().map(str::to_string),
            written_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_micros() as i64),
            stream_seq: None,
        }
    }

    /// The same, covering the stream up to message `seq`.
    pub fn through(mut self, seq: Option<u64>) -> Self {
        self.stream_seq = seq;
        self
    }

    pub fn state(&self) -> SinkState {
        match self.phase {
            Phase::Snapshot => SinkState::SnapshotInterrupted,
            Phase::Cdc => SinkState::At(Position {
                file: self.file.clone().into(),
                offset: self.offset,
                gtid: self.gtid.clone().map(Into::into),
            }),
        }
    }
}

/// The bucket and this sink's key in it.
pub struct Store {
    pub kv: kv::Store,
    pub key: String,
}

/// A key-value key for `pipeline` and `sink` (keys allow letters, digits
/// and `-_=./`).
pub fn key(pipeline: &str, sink: &str) -> String {
    format!("{}.{}", clean(pipeline), clean(sink))
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_=/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Store {
    /// The bucket, created when `create` and missing.
    pub async fn open(
        js: &jetstream::Context,
        key: String,
        create: bool,
        role: &str,
    ) -> Result<Option<Store>> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Data(format!("{role}: {what} `{BUCKET}`: {e}"))
        };
        match js.get_key_value(BUCKET).await {
            Ok(kv) => Ok(Some(Store { kv, key })),
            Err(_) if create => {
                let kv = js
                    .create_key_value(kv::Config {
                        bucket: BUCKET.into(),
                        history: 1,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| fail("creating the checkpoint bucket", &e))?;
                Ok(Some(Store { kv, key }))
            }
            Err(_) => Ok(None),
        }
    }

    pub async fn read(&self, role: &str) -> Result<Option<Checkpoint>> {
        let v = self
            .kv
            .get(&self.key)
            .await
            .map_err(|e| Error::Data(format!("{role}: reading its checkpoint: {e}")))?;
        match v {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Data(format!(
                    "{role}: its checkpoint `{}` in `{BUCKET}` is not sluice's: {e}",
                    self.key
                ))
            }),
        }
    }

    pub async fn write(&self, c: &Checkpoint, role: &str) -> Result<()> {
        let bytes = serde_json::to_vec(c).map_err(|e| Error::Internal(e.to_string()))?;
        self.kv
            .put(&self.key, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| Error::Data(format!("{role}: writing its checkpoint: {e}")))
    }
}
