//! Reading a stream back for `sluice verify`: a table's messages on its
//! subject, in stream order, decoded from Debezium's encoding into the
//! table's current shape, and replayed like an archive. Only a stream
//! whose retention still holds every message since the snapshot can be
//! compared.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Date32Builder, Decimal128Builder, Decimal256Builder, DurationMicrosecondBuilder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
    UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_trait::async_trait;
use base64::Engine;
use futures::StreamExt;
use serde_json::Value;

use sluice_core::event::{ColumnDef, Op, TableSchema};
use sluice_core::temporal::{self, DateTimeParts};
use sluice_core::types::LogicalType;
use sluice_core::view::{ChangeLog, LoggedBatch};
use sluice_core::{Error, Result};

use crate::NatsSinkConfig;

/// A sink's stream, as `sluice verify` reads it.
pub struct StreamLog {
    pub config: NatsSinkConfig,
    pub role: String,
}

/// One change read back: its operation, the row it left (a delete: the
/// row deleted), and the row before it (updates and deletes).
struct Logged {
    op: Op,
    image: Value,
    before: Option<Value>,
}

#[async_trait]
impl ChangeLog for StreamLog {
    async fn read(&self, table: &TableSchema) -> Result<Vec<LoggedBatch>> {
        let js = crate::connect(&self.config.url.value, &self.role).await?;
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Data(format!(
                "{}: {what} of stream {}: {e}",
                self.role, self.config.stream
            ))
        };
        let Ok(stream) = js.get_stream(&self.config.stream).await else {
            return Ok(Vec::new());
        };
        let subject = crate::table_subject(&self.config.subject, table);
        // The subject's last message now: the replay reads up to it.
        let last = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(Vec::new()),
            Err(e) => return Err(fail(&format!("reading {subject}"), &e)),
        };
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: subject.clone(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| fail("reading", &e))?;
        let mut messages = consumer.messages().await.map_err(|e| fail("reading", &e))?;
        let mut logged = Vec::new();
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| fail("reading", &e))?;
            let seq = m.info().map_err(|e| fail("reading", &e))?.stream_sequence;
            let v: Value = serde_json::from_slice(&m.payload)
                .map_err(|e| fail(&format!("message {seq} on {subject}"), &e))?;
            let op = match v["op"].as_str() {
                Some("r") => Op::Read,
                Some("c") => Op::Insert,
                Some("u") => Op::Update,
                Some("d") => Op::Delete,
                other => {
                    return Err(fail(
                        &format!("message {seq} on {subject}"),
                        &format!("op {other:?} is not r, c, u or d"),
                    ))
                }
            };
            let (image, before) = match op {
                Op::Delete => (v["before"].clone(), Some(v["before"].clone())),
                Op::Update => (v["after"].clone(), Some(v["before"].clone())),
                _ => (v["after"].clone(), None),
            };
            logged.push(Logged { op, image, before });
            if seq >= last {
                break;
            }
        }
        batches(table, &logged).map_err(|e| fail(&format!("decoding {subject}"), &e))
    }

    /// Debezium has no zero date: they are null in the stream.
    fn as_stored(&self, _table: &TableSchema, batch: RecordBatch) -> Result<RecordBatch> {
        sluice_core::view::zero_dates_as_null(batch)
    }
}

/// The changes as batches, a new one where the columns the messages carry
/// change (a column added to the table after they were written).
fn batches(
    table: &TableSchema,
    logged: &[Logged],
) -> std::result::Result<Vec<LoggedBatch>, String> {
    let schema = sluice_core::types::all_nullable(&table.arrow);
    let missing_of = |l: &Logged| -> Vec<usize> {
        (0..table.columns.len())
            .filter(|&i| l.image.get(&table.columns[i].name).is_none())
            .collect()
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < logged.len() {
        let missing = missing_of(&logged[start]);
        let mut end = start + 1;
        while end < logged.len() && missing_of(&logged[end]) == missing {
            end += 1;
        }
        let part = &logged[start..end];
        let image = rows(table, &schema, part.iter().map(|l| &l.image))?;
        let before = part
            .iter()
            .all(|l| l.op == Op::Read || l.op == Op::Insert || l.before.is_some())
            .then(|| {
                rows(
                    table,
                    &schema,
                    part.iter()
                        .map(|l| l.before.as_ref().unwrap_or(&Value::Null)),
                )
            })
            .transpose()?;
        out.push(LoggedBatch {
            ops: part.iter().map(|l| l.op).collect(),
            image,
            missing,
            before,
        });
        start = end;
    }
    Ok(out)
}

/// Rows (JSON objects; null for a row with no image) as a batch.
fn rows<'a>(
    table: &TableSchema,
    schema: &Arc<Schema>,
    images: impl Iterator<Item = &'a Value> + Clone,
) -> std::result::Result<RecordBatch, String> {
    let columns = table
        .columns
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            let values = images
                .clone()
                .map(|i| i.get(&c.name).unwrap_or(&Value::Null));
            column(c, f.data_type(), values).map_err(|e| format!("column `{}`: {e}", c.name))
        })
        .collect::<std::result::Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// One column's values, from Debezium's encoding of `c`'s type (see
/// [`crate::envelope`]).
fn column<'a>(
    c: &ColumnDef,
    dt: &DataType,
    values: impl Iterator<Item = &'a Value>,
) -> std::result::Result<ArrayRef, String> {
    macro_rules! build {
        ($builder:expr, $get:expr) => {{
            let mut b = $builder;
            for v in values {
                if v.is_null() {
                    b.append_null();
                } else {
                    b.append_value($get(v)?);
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let int = |v: &Value| v.as_i64().ok_or_else(|| format!("{v} is not an integer"));
    let uint = |v: &Value| -> std::result::Result<u64, String> {
        if let LogicalType::Bit { width } = c.logical {
            return bits(v, width);
        }
        v.as_u64()
            .ok_or_else(|| format!("{v} is not an unsigned integer"))
    };
    let float = |v: &Value| v.as_f64().ok_or_else(|| format!("{v} is not a number"));
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{v} is not a string"))
    };
    // A value at a narrower width, refused when it does not fit.
    fn fit<T: TryFrom<W>, W: Copy + std::fmt::Display>(w: W) -> std::result::Result<T, String> {
        T::try_from(w).map_err(|_| format!("{w} is out of the column's range"))
    }
    Ok(match dt {
        DataType::Int8 => build!(Int8Builder::new(), |v| int(v).and_then(fit)),
        DataType::Int16 => build!(Int16Builder::new(), |v| int(v).and_then(fit)),
        DataType::Int32 => build!(Int32Builder::new(), |v| int(v).and_then(fit)),
        DataType::Int64 => build!(Int64Builder::new(), int),
        DataType::UInt8 => build!(UInt8Builder::new(), |v| uint(v).and_then(fit)),
        DataType::UInt16 => build!(UInt16Builder::new(), |v| uint(v).and_then(fit)),
        DataType::UInt32 => build!(UInt32Builder::new(), |v| uint(v).and_then(fit)),
        DataType::UInt64 => build!(UInt64Builder::new(), uint),
        DataType::Float32 => build!(Float32Builder::new(), |v| float(v).map(|f| f as f32)),
        DataType::Float64 => build!(Float64Builder::new(), float),
        DataType::Decimal128(p, s) => {
            let a = build!(Decimal128Builder::new(), |v| text(v).and_then(|t| {
                scaled(&t, *s as usize)?
                    .parse::<i128>()
                    .map_err(|e| e.to_string())
            }));
            Arc::new(
                a.as_any()
                    .downcast_ref::<arrow_array::Decimal128Array>()
                    .ok_or("not a decimal")?
                    .clone()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Decimal256(p, s) => {
            let a = build!(Decimal256Builder::new(), |v| text(v).and_then(|t| {
                arrow_buffer::i256::from_string(&scaled(&t, *s as usize)?)
                    .ok_or_else(|| format!("{t:?} is not a decimal"))
            }));
            Arc::new(
                a.as_any()
                    .downcast_ref::<arrow_array::Decimal256Array>()
                    .ok_or("not a decimal")?
                    .clone()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Date32 => build!(Date32Builder::new(), |v| int(v).and_then(fit)),
        DataType::Timestamp(_, tz) => {
            let us = |v: &Value| -> std::result::Result<i64, String> {
                match c.logical {
                    LogicalType::Timestamp { .. } => iso_us(&text(v)?),
                    LogicalType::DateTime { fsp } if fsp <= 3 => int(v).map(|ms| ms * 1000),
                    _ => int(v),
                }
            };
            let a = build!(TimestampMicrosecondBuilder::new(), us);
            Arc::new(
                a.as_any()
                    .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                    .ok_or("not a timestamp")?
                    .clone()
                    .with_timezone_opt(tz.clone()),
            )
        }
        DataType::Duration(_) => build!(DurationMicrosecondBuilder::new(), int),
        DataType::Utf8 => build!(StringBuilder::new(), text),
        DataType::Binary => {
            let bytes = |v: &Value| -> std::result::Result<Vec<u8>, String> {
                if c.logical == LogicalType::Geometry {
                    // {wkb, srid} back to the server's SRID + WKB.
                    let srid = v["srid"].as_u64().ok_or("a geometry without its srid")? as u32;
                    let mut out = srid.to_le_bytes().to_vec();
                    out.extend(base64(&text(&v["wkb"])?)?);
                    return Ok(out);
                }
                base64(&text(v)?)
            };
            build!(BinaryBuilder::new(), bytes)
        }
        other => return Err(format!("cannot read {other} values back from a stream")),
    })
}

fn base64(s: &str) -> std::result::Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("{s:?} is not base64: {e}"))
}

/// BIT(1) as a boolean, BIT(n) as base64 bytes, least significant first.
fn bits(v: &Value, width: u8) -> std::result::Result<u64, String> {
    if width == 1 {
        return v
            .as_bool()
            .map(u64::from)
            .ok_or_else(|| format!("{v} is not a boolean"));
    }
    let bytes = base64(v.as_str().ok_or_else(|| format!("{v} is not a string"))?)?;
    if bytes.len() > 8 {
        return Err(format!("{} bytes for a BIT({width})", bytes.len()));
    }
    Ok(bytes
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | *b as u64))
}

/// A decimal's text as the digits of its value at `scale`.
fn scaled(t: &str, scale: usize) -> std::result::Result<String, String> {
    sluice_core::types::scaled_decimal_digits(t, scale)
        .ok_or_else(|| format!("{t:?} is not a decimal of scale {scale}"))
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` as microseconds since the epoch.
fn iso_us(t: &str) -> std::result::Result<i64, String> {
    let bad = || format!("{t:?} is not an ISO-8601 UTC time");
    let body = t.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let (time, frac) = time.split_once('.').unwrap_or((time, ""));
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let h: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || h.len() != 3 || frac.len() > 6 {
        return Err(bad());
    }
    let micro = if frac.is_empty() {
        0
    } else {
        num(frac)? * 10u32.pow(6 - frac.len() as u32)
    };
    Ok(temporal::datetime_to_us(DateTimeParts {
        year: num(d[0])? as u16,
        month: num(d[1])? as u8,
        day: num(d[2])? as u8,
        hour: num(h[0])? as u8,
        minute: num(h[1])? as u8,
        second: num(h[2])? as u8,
        micro,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_read_back() {
        assert_eq!(scaled("-12.3", 2).as_deref(), Ok("-1230"));
        assert_eq!(scaled("0.00001", 5).as_deref(), Ok("000001"));
        assert!(scaled("1.234", 2).is_err());
        assert_eq!(bits(&serde_json::json!("AQg="), 12), Ok(0x801));
        assert_eq!(bits(&serde_json::json!(true), 1), Ok(1));
        assert_eq!(iso_us("1970-01-01T00:00:01.5Z"), Ok(1_500_000));
        assert_eq!(iso_us("1970-01-01T00:00:00Z"), Ok(0));
        assert!(iso_us("1970-01-01 00:00:00").is_err());
    }
}
