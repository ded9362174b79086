//! Reading an archive back: a table's committed files, in commit order, as
//! record batches (for `sluice verify`). Only files the commit log lists
//! count, as for any reader.

use arrow_array::RecordBatch;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ParquetSink;
use crate::event::TableId;
use crate::Result;

impl ParquetSink {
    /// Every row of `table`'s committed files: snapshot parts, then change
    /// files, each in the order it was written.
    pub async fn committed_batches(&self, table: &TableId) -> Result<Vec<RecordBatch>> {
        let c = &self.committer;
        let Some(log) = c.read().await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for f in log
            .files
            .iter()
            .filter(|f| f.database == table.database && f.table == table.name)
        {
            let path = c.object(&f.path);
            let bytes = c
                .store
                .get(&path)
                .await
                .map_err(|e| c.fail(&format!("reading {path}"), e))?
                .bytes()
                .await
                .map_err(|e| c.fail(&format!("reading {path}"), e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| c.fail(&format!("decoding {path}"), e))?;
            for batch in reader {
                out.push(batch.map_err(|e| c.fail(&format!("decoding {path}"), e))?);
            }
        }
        Ok(out)
    }
}
