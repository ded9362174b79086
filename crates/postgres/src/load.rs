//! The snapshot: each batch streamed into its table with
//! `COPY ... FROM STDIN (FORMAT binary)`, over as many connections as the
//! sink's `parallelism`. Keys are added once every row is in (building an
//! index over loaded rows is faster than maintaining it row by row).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use futures::SinkExt;
use sluice_core::event::{ChangeBatch, Position};
use sluice_core::stage::SnapshotLoad;
use sluice_core::{Error, Result};
use tokio::sync::{mpsc, Mutex};
use tokio_postgres::Client;

use crate::checkpoint;
use crate::table::{put_copy_field, put_history_copy_meta, Target, HISTORY_META};
use crate::PostgresSink;

/// COPY's binary header: signature, flags, no header extension.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Bytes sent to the server at a time.
const CHUNK: usize = 1 << 20;

pub struct Load {
    sink: Arc<PostgresSink>,
    /// Idle connections; a write takes one and gives it back.
    idle: Mutex<mpsc::Receiver<Client>>,
    give_back: mpsc::Sender<Client>,
    parallelism: usize,
}

impl Load {
    pub async fn open(sink: Arc<PostgresSink>) -> Result<Load> {
        let parallelism = sink.parallelism.max(1);
        let (tx, rx) = mpsc::channel(parallelism);
        for _ in 0..parallelism {
            let client = sink.endpoint.connect().await?;
            // Each write is its own transaction: a restart loads the
            // snapshot again from empty tables anyway.
            client
                .batch_execute("SET synchronous_commit = off")
                .await
                .map_err(|e| sink.endpoint.error("setting up a load connection", e))?;
            let _ = tx.send(client).await;
        }
        Ok(Load {
            sink,
            idle: Mutex::new(rx),
            give_back: tx,
            parallelism,
        })
    }
}

impl Load {
    /// One COPY of `rows` rows, each written by `tuple`.
    async fn copy(
        &self,
        client: &Client,
        sql: &str,
        target: &Target,
        tuple: impl Fn(usize, &mut BytesMut) -> Result<()>,
        rows: usize,
    ) -> Result<()> {
        let ep = &self.sink.endpoint;
        let what = || format!("loading {}", target.display());
        let copy = client
            .copy_in::<_, bytes::Bytes>(sql)
            .await
            .map_err(|e| ep.error(what(), e))?;
        futures::pin_mut!(copy);
        let mut buf = BytesMut::with_capacity(CHUNK + 64 * 1024);
        buf.put_slice(HEADER);
        for row in 0..rows {
            tuple(row, &mut buf)?;
            if buf.len() >= CHUNK {
                copy.send(buf.split().freeze())
                    .await
                    .map_err(|e| ep.error(what(), e))?;
            }
        }
        buf.put_i16(-1);
        copy.send(buf.freeze())
            .await
            .map_err(|e| ep.error(what(), e))?;
        copy.as_mut()
            .finish()
            .await
            .map_err(|e| ep.error(what(), e))?;
        Ok(())
    }
}

#[async_trait]
impl SnapshotLoad for Load {
    fn parallelism(&self) -> usize {
        self.parallelism
    }

    async fn write(&self, batch: ChangeBatch) -> Result<()> {
        let Some(image) = &batch.after else {
            return Ok(());
        };
        let target = self.sink.target(&batch.table)?;
        let client = {
            let mut idle = self.idle.lock().await;
            idle.recv()
                .await
                .ok_or_else(|| Error::Internal("postgres load: no connection".into()))?
        };
        let result = async {
            let cols = target.columns.len();
            // The rows; with `history: true` the change table too (op `r`).
            self.copy(
                &client,
                &target.copy_sql(),
                &target,
                |row, buf| {
                    buf.put_i16(cols as i16);
                    for col in 0..cols {
                        put_copy_field(&target, image, row, col, buf)?;
                    }
                    Ok(())
                },
                image.num_rows(),
            )
            .await?;
            if self.sink.history {
                self.copy(
                    &client,
                    &target.history_copy_sql(),
                    &target,
                    |row, buf| {
                        buf.put_i16((HISTORY_META + cols) as i16);
                        put_history_copy_meta(b'r', &batch.events[row], buf);
                        for col in 0..cols {
                            put_copy_field(&target, image, row, col, buf)?;
                        }
                        Ok(())
                    },
                    image.num_rows(),
                )
                .await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if result.is_ok() {
            let _ = self.give_back.send(client).await;
        }
        result
    }

    async fn finish(self: Box<Self>, position: &Position) -> Result<()> {
        let ep = &self.sink.endpoint;
        let client = ep.connect().await?;
        let created = self.sink.targets();
        for target in &created {
            let identity = target.sync_identity(target.auto_increment_floor());
            for sql in target
                .add_keys()
                .into_iter()
                .chain(target.indexes())
                .chain(identity)
            {
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| ep.error(format!("indexing {}", target.display()), e))?;
            }
            client
                .batch_execute(&format!("ANALYZE {}", target.qualified))
                .await
                .map_err(|e| ep.error(format!("analyzing {}", target.display()), e))?;
        }
        // Every key exists now: the foreign keys can reference them.
        for target in &created {
            self.sink.add_foreign_keys(&client, target).await?;
        }
        client
            .batch_execute(&self.sink.checkpoint.reset(checkpoint::CDC, 1, position))
            .await
            .map_err(|e| ep.error("recording the snapshot's end in sluice.checkpoints", e))?;
        Ok(())
    }
}
