//! `sluice verify --repair` on PostgreSQL: the rows verify found
//! different, rewritten from the source's in one transaction with the
//! statements changes use ([`crate::table`]): the stored rows to remove
//! first, then each source row's key cleared and the row written, so rows
//! that swapped a unique value never collide half way.

use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::BytesMut;
use sluice_core::event::TableSchema;
use sluice_core::Result;
use tokio_postgres::{Client, Statement};

use crate::apply::{unchecked_error, Raw};
use crate::connect::Endpoint;
use crate::read::Tables;
use crate::table::Target;

impl Tables {
    pub(crate) async fn repair_rows(
        &self,
        table: &TableSchema,
        upserts: &[RecordBatch],
        deletes: &[RecordBatch],
    ) -> Result<usize> {
        let ep = &self.endpoint;
        let client = ep.connect().await?;
        let target = Target::new(&Arc::new(table.clone()), &self.renames, self.types);
        let what = format!("repairing {}", target.display());
        let prepare = async |sql: String| {
            client
                .prepare(&sql)
                .await
                .map_err(|e| ep.error(what.clone(), e))
        };
        let delete = prepare(target.delete_sql()).await?;
        let write = prepare(target.upsert_sql()).await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| ep.error(what.clone(), e))?;
        let result = async {
            if table.constraints.foreign_key {
                // Rows made equal to the source's, not changed by it: no
                // foreign key action may follow from them.
                client
                    .batch_execute("SET LOCAL session_replication_role = replica")
                    .await
                    .map_err(|e| unchecked_error(ep, e))?;
            }
            let all: Vec<usize> = (0..target.columns.len()).collect();
            let matched = target.match_columns();
            let mut n = 0;
            for b in deletes {
                n += run(ep, &client, &target, &delete, b, &matched, &what).await?;
            }
            if target.has_key() {
                for b in upserts {
                    run(ep, &client, &target, &delete, b, &matched, &what).await?;
                }
            }
            for b in upserts {
                n += run(ep, &client, &target, &write, b, &all, &what).await?;
            }
            if let Some(sql) = target.sync_identity(0) {
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| ep.error(what.clone(), e))?;
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| ep.error(what.clone(), e))?;
            Ok(n)
        }
        .await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result
    }
}

/// Runs `stmt` once per row of `batch`, with the values of `columns`.
async fn run(
    ep: &Endpoint,
    client: &Client,
    target: &Target,
    stmt: &Statement,
    batch: &RecordBatch,
    columns: &[usize],
    what: &str,
) -> Result<usize> {
    for row in 0..batch.num_rows() {
        let mut values = BytesMut::new();
        let mut ranges = Vec::with_capacity(columns.len());
        for &col in columns {
            ranges.push(target.encode_nullable(batch, row, col, &mut values)?);
        }
        let params: Vec<Raw<'_>> = ranges
            .iter()
            .map(|r| Raw(r.as_ref().map(|r| &values[r.clone()])))
            .collect();
        client
            .execute_raw(stmt, params)
            .await
            .map_err(|e| ep.error(what.to_string(), e))?;
    }
    Ok(batch.num_rows())
}
