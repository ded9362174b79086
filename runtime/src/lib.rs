//! sluice: a data pipeline runtime that moves data out of MySQL and MariaDB.
//!
//! A pipeline chains one [`Source`](stage::Source), zero or more
//! [`Transform`](stage::Transform)s and one or more [`Sink`](stage::Sink)s.
//! Stages exchange [`ChangeBatch`](event::ChangeBatch)es: Arrow record batches
//! of row images plus, per row, the operation, source position and commit time.
//!
//! Where things live:
//! - [`config`]: the pipeline YAML, its schema, `${VAR}` interpolation and its errors.
//! - [`event`]: the change event and table schema model shared by every stage.
//! - [`temporal`]: calendar arithmetic, including the encoding of zero dates.
//! - [`types`]: column types as every stage understands them, and their Arrow mapping.
//! - [`schema_change`]: schema changes described for every sink, whatever its SQL dialect.
//! - [`stage`]: the Source / Transform / Sink traits.
//! - [`driver`]: the loop every sink runs: snapshot rows, then changes, resumed past its checkpoint.
//! - [`engine`]: wires stages together, fans batches out to sinks.
//! - [`mysql`]: MySQL protocol helpers shared by the MySQL source and sink:
//!   connections, type mapping, row decoding into Arrow, SQL literal encoding.
//! - [`sources`] and [`sinks`]: one folder per component, config next to code.
//! - [`binlog`]: where binlog events become change events.
//! - [`partition`]: which apply lane gets which row change, so that changes
//!   that can touch the same row stay in order.
//! - [`checkpoint`]: the local checkpoint store for sinks without their own.
//! - [`metrics`]: the Prometheus endpoint.
//! - [`progress`]: progress bars, progress logs and replication lag.
//! - [`precheck`]: `sluice check`, every precondition as pass / warn / fail with its fix.
//! - [`status`]: `sluice status`, each sink's checkpoint against the source.
//! - [`text`]: URLs with the password masked, statements abbreviated, for messages.
//! - [`throttle`]: rows and bytes per second a source may read.
//! - [`view`]: what `sluice verify` reads of each sink.
//! - [`verify`]: `sluice verify`, targets compared with the source range by range, and repaired.

pub mod binlog;
pub mod checkpoint;
pub mod config;
pub mod driver;
pub mod engine;
pub mod error;
pub mod event;
pub mod metrics;
pub mod mysql;
pub mod partition;
pub mod precheck;
pub mod progress;
pub mod schema_change;
pub mod sinks;
pub mod sources;
pub mod stage;
pub mod status;
pub mod temporal;
pub mod text;
pub mod throttle;
pub mod transform;
pub mod types;
pub mod verify;
pub mod view;

pub use error::{Error, Result};
