//! A target table read back for `sluice verify`: every row, each value
//! turned into the Arrow type the pipeline carries for its column, so the
//! verifier compares it with the source's row exactly as it compares an
//! archive's (both sides written as the same canonical literals).
//!
//! Values are read as PostgreSQL's text, in settings that make the text
//! exact: `extra_float_digits = 1` (the shortest text that reads back as
//! the same float), `TimeZone = UTC`, `IntervalStyle = postgres`,
//! `bytea_output = hex`. Parsing is independent of the codec that wrote
//! them (`types.rs`), so a codec mistake shows up as a difference.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Date32Builder, Decimal128Builder, Decimal256Builder, DurationMicrosecondBuilder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
    UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use async_trait::async_trait;
use futures::TryStreamExt;
use sluice_core::event::{ColumnDef, Op, TableSchema};
use sluice_core::rename::Renames;
use sluice_core::temporal::{date_to_days, DAY_US};
use sluice_core::types::LogicalType;
use sluice_core::view::{ChangeLog, LoggedBatch};
use sluice_core::{Error, Result};

use crate::connect::{quote_ident, Endpoint};
use crate::table::{Target, TypeOptions};
use crate::types::ZeroDates;

/// Rows per batch handed to the verifier.
const BATCH_ROWS: usize = 10_000;

/// The sink's tables, read back.
pub struct Tables {
    pub endpoint: Endpoint,
    pub renames: Renames,
    pub types: TypeOptions,
}

#[async_trait]
impl ChangeLog for Tables {
    fn as_stored(&self, _table: &TableSchema, batch: RecordBatch) -> Result<RecordBatch> {
        self.zero_dates_as_null(batch)
    }

    fn repairable(&self) -> bool {
        true
    }

    async fn repair(
        &self,
        table: &TableSchema,
        upserts: &[RecordBatch],
        deletes: &[RecordBatch],
    ) -> Result<usize> {
        self.repair_rows(table, upserts, deletes).await
    }

    /// The table's current rows, as one snapshot (every row `Read`).
    async fn read(&self, table: &TableSchema) -> Result<Vec<LoggedBatch>> {
        let ep = &self.endpoint;
        let client = ep.connect().await?;
        client
            .batch_execute(
                "SET extra_float_digits = 1; SET TimeZone = 'UTC'; \
                 SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; \
                 SET DateStyle = 'ISO, YMD'",
            )
            .await
            .map_err(|e| ep.error("setting up a verify connection", e))?;
        let target = Target::new(&Arc::new(table.clone()), &self.renames, self.types);
        let exists = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&target.qualified])
            .await
            .map_err(|e| ep.error(format!("looking for {}", target.display()), e))?;
        if !exists.get::<_, bool>(0) {
            // Every source row is then reported missing.
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM {}",
            table
                .columns
                .iter()
                .map(|c| match c.logical {
                    // `inet::text` adds the netmask; host() is the address.
                    LogicalType::Inet4 | LogicalType::Inet6 => {
                        format!("host({})", quote_ident(&c.name))
                    }
                    _ => format!("{}::text", quote_ident(&c.name)),
                })
                .collect::<Vec<_>>()
                .join(", "),
            target.qualified
        );
        let what = format!("reading {} for verification", target.display());
        let rows = client
            .query_raw(&sql, std::iter::empty::<&str>())
            .await
            .map_err(|e| ep.error(what.clone(), e))?;
        futures::pin_mut!(rows);
        let schema = Arc::new(Schema::new(
            table
                .arrow
                .fields()
                .iter()
                .map(|f| {
                    Field::new(f.name(), f.data_type().clone(), true)
                        .with_metadata(f.metadata().clone())
                })
                .collect::<Vec<_>>(),
        ));
        let mut out = Vec::new();
        let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); table.columns.len()];
        let mut n = 0;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| ep.error(what.clone(), e))?
        {
            for (i, col) in columns.iter_mut().enumerate() {
                col.push(
                    row.try_get::<_, Option<String>>(i)
                        .map_err(|e| ep.error(what.clone(), e))?,
                );
            }
            n += 1;
            if n == BATCH_ROWS {
                out.push(self.batch(table, &schema, &target, &mut columns)?);
                n = 0;
            }
        }
        if n > 0 {
            out.push(self.batch(table, &schema, &target, &mut columns)?);
        }
        Ok(out)
    }
}

impl Tables {
    /// Zero and partial-zero dates as NULL under `zero_dates: null` (the
    /// encoding of `sluice_core::temporal` puts them below 0000-01-01).
    fn zero_dates_as_null(&self, batch: RecordBatch) -> Result<RecordBatch> {
        if self.types.zero_dates != ZeroDates::Null {
            return Ok(batch);
        }
        sluice_core::view::zero_dates_as_null(batch)
    }

    fn batch(
        &self,
        table: &TableSchema,
        schema: &Arc<Schema>,
        target: &Target,
        columns: &mut [Vec<Option<String>>],
    ) -> Result<LoggedBatch> {
        let rows = columns.first().map_or(0, Vec::len);
        let arrays: Vec<ArrayRef> = table
            .columns
            .iter()
            .zip(columns.iter_mut())
            .zip(schema.fields())
            .map(|((c, values), f)| {
                let values = std::mem::take(values);
                self.array(c, f.data_type(), values).map_err(|e| {
                    Error::Data(format!(
                        "{} column `{}` on PostgreSQL: {e}",
                        target.display(),
                        c.name
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let image = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| Error::Internal(format!("reading {}: {e}", target.display())))?;
        Ok(LoggedBatch {
            ops: vec![Op::Read; rows],
            image,
            missing: Vec::new(),
            before: None,
        })
    }

    /// One column's text values as an Arrow array of type `dt`.
    fn array(
        &self,
        c: &ColumnDef,
        dt: &DataType,
        values: Vec<Option<String>>,
    ) -> std::result::Result<ArrayRef, String> {
        macro_rules! build {
            ($builder:expr, $parse:expr) => {{
                let mut b = $builder;
                for v in &values {
                    match v {
                        Some(v) => b.append_value($parse(v.as_str())?),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }};
        }
        fn num<T: std::str::FromStr>(v: &str) -> std::result::Result<T, String> {
            v.parse().map_err(|_| format!("cannot read {v:?}"))
        }
        Ok(match (c.logical, dt) {
            (_, DataType::Int8) => build!(Int8Builder::new(), num::<i8>),
            (_, DataType::Int16) => build!(Int16Builder::new(), num::<i16>),
            (_, DataType::Int32) => build!(Int32Builder::new(), num::<i32>),
            (_, DataType::Int64) => build!(Int64Builder::new(), num::<i64>),
            (_, DataType::UInt8) => build!(UInt8Builder::new(), num::<u8>),
            (_, DataType::UInt16) => build!(UInt16Builder::new(), num::<u16>),
            (_, DataType::UInt32) => build!(UInt32Builder::new(), num::<u32>),
            (LogicalType::Bit { .. }, DataType::UInt64) => {
                build!(UInt64Builder::new(), |v: &str| u64::from_str_radix(v, 2)
                    .map_err(|_| format!("cannot read bits {v:?}")))
            }
            (_, DataType::UInt64) => build!(UInt64Builder::new(), num::<u64>),
            (_, DataType::Float32) => build!(Float32Builder::new(), num::<f32>),
            (_, DataType::Float64) => build!(Float64Builder::new(), num::<f64>),
            (_, DataType::Decimal128(p, s)) => build!(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
                |v: &str| scaled(v, *s as usize)
                    .and_then(|d| d.parse::<i128>().map_err(|_| format!("cannot read {v:?}")))
            ),
            (_, DataType::Decimal256(p, s)) => build!(
                Decimal256Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
                |v: &str| scaled(v, *s as usize).and_then(|d| arrow_buffer::i256::from_string(&d)
                    .ok_or_else(|| format!("cannot read {v:?}")))
            ),
            (_, DataType::Date32) => build!(Date32Builder::new(), date),
            (_, DataType::Timestamp(_, tz)) => build!(
                TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()),
                timestamp
            ),
            (_, DataType::Duration(_)) => build!(DurationMicrosecondBuilder::new(), interval),
            (_, DataType::Utf8) => build!(StringBuilder::new(), |v: &str| Ok::<_, String>(
                v.to_string()
            )),
            (_, DataType::Binary) => build!(BinaryBuilder::new(), hex),
            (_, other) => return Err(format!("no reader for Arrow type {other}")),
        })
    }
}

/// A numeric's text as the digits of its value times 10^scale.
fn scaled(v: &str, scale: usize) -> std::result::Result<String, String> {
    sluice_core::types::scaled_decimal_digits(v, scale)
        .ok_or_else(|| format!("cannot read the numeric {v:?}"))
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn date(v: &str) -> std::result::Result<i32, String> {
    let bad = || format!("cannot read the date {v:?}");
    let mut parts = v.splitn(3, '-');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(bad)
    };
    let (y, m, d) = (next()?, next()?, next()?);
    Ok(date_to_days(y, m as u8, d as u8))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+00]` as microseconds since the epoch.
fn timestamp(v: &str) -> std::result::Result<i64, String> {
    let bad = || format!("cannot read the timestamp {v:?}");
    let v = v.strip_suffix("+00").unwrap_or(v);
    let (day, time) = v.split_once(' ').ok_or_else(bad)?;
    // PostgreSQL holds real dates only (zero dates are refused or NULL),
    // which the pipeline carries as plain microseconds since the epoch.
    Ok(date(day)? as i64 * DAY_US + interval(time)?)
}

/// `[-]H:MM:SS[.ffffff]` (an interval without days, as the sink writes
/// TIME) as signed microseconds.
fn interval(v: &str) -> std::result::Result<i64, String> {
    let bad = || format!("cannot read the time {v:?}");
    let (negative, rest) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let mut parts = hms.split(':');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<i64>().ok())
            .ok_or_else(bad)
    };
    let (h, m, s) = (next()?, next()?, next()?);
    if frac.len() > 6 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let micro: i64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    let us = ((h * 60 + m) * 60 + s) * 1_000_000 + micro;
    Ok(if negative { -us } else { us })
}

/// bytea's `\x…` text as bytes.
fn hex(v: &str) -> std::result::Result<Vec<u8>, String> {
    let digits = v
        .strip_prefix("\\x")
        .ok_or_else(|| format!("cannot read bytea {v:?}"))?;
    (0..digits.len() / 2)
        .map(|i| {
            u8::from_str_radix(digits.get(2 * i..2 * i + 2).unwrap_or(""), 16)
                .map_err(|_| format!("cannot read bytea {v:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_read_back_exactly() {
        assert_eq!(scaled("-12.5", 3).unwrap(), "-12500");
        assert_eq!(scaled("7", 2).unwrap(), "700");
        assert!(scaled("1.234", 2).is_err());
        assert_eq!(
            interval("-838:59:59").unwrap(),
            -(838 * 3600 + 59 * 60 + 59) * 1_000_000
        );
        assert_eq!(interval("00:00:00.5").unwrap(), 500_000);
        assert_eq!(
            timestamp("1970-01-01 00:00:01.000002+00").unwrap(),
            1_000_002
        );
        assert_eq!(date("1970-01-02").unwrap(), 1);
        assert_eq!(hex("\\x00ff").unwrap(), vec![0, 255]);
    }
}
