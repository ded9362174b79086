//! sluice's core: what every pipeline is made of, whatever its databases.
//!
//! A pipeline chains one [`Source`](stage::Source), zero or more
//! [`Transform`](stage::Transform)s and one or more [`Sink`](stage::Sink)s.
//! Stages exchange [`ChangeBatch`](event::ChangeBatch)es: Arrow record
//! batches of row images plus, per row, the operation, source position and
//! commit time. The core knows no database: sources and sinks live in their
//! own crates and join through [`connectors`].
//!
//! Where things live:
//! - [`event`]: the change event and table schema model shared by every stage.
//! - [`types`]: column types as every stage understands them, and their Arrow mapping.
//! - [`temporal`]: calendar arithmetic, including the encoding of zero dates.
//! - [`schema_change`]: schema changes described for every sink, whatever its SQL dialect.
//! - [`stage`]: the Source / Transform / Sink traits and the messages between them.
//! - [`connectors`]: how sources and sinks register (`connectors!`), and the plugin host's trait.
//! - [`config`]: the pipeline YAML, its schema, `${VAR}` interpolation and its errors.
//! - [`filter`]: which tables a pattern list selects.
//! - [`rename`]: where a sink's `rename:` rules put a source table.
//! - [`setup`]: the steps before data moves (build, plugins, discover, plan, check).
//! - [`engine`]: `sluice run`: wires stages together, fans batches out to sinks.
//! - [`driver`]: the loop every sink runs: snapshot rows, then changes, resumed past its checkpoint.
//! - [`partition`]: which apply lane gets which row change, so that changes
//!   that can touch the same row stay in order.
//! - [`precheck`]: `sluice check`, every precondition as pass / warn / fail with its fix.
//! - [`status`]: `sluice status`, each sink's checkpoint against the source.
//! - [`verify`]: `sluice verify`'s report, and the trait a source verifies its sinks by.
//! - [`view`]: what `sluice verify` reads of each sink.
//! - [`progress`]: progress bars, progress logs and replication lag.
//! - [`metrics`]: the Prometheus endpoint.
//! - [`throttle`]: rows and bytes per second a source may read.
//! - [`text`]: URLs with the password masked, statements abbreviated, for messages.

pub mod config;
pub mod connectors;
pub mod driver;
pub mod engine;
pub mod error;
pub mod event;
pub mod filter;
pub mod metrics;
pub mod partition;
pub mod precheck;
pub mod progress;
pub mod rename;
pub mod schema_change;
pub mod setup;
pub mod stage;
pub mod status;
pub mod temporal;
pub mod text;
pub mod throttle;
pub mod types;
pub mod verify;
pub mod view;

pub use error::{Error, Result};
