//! The MySQL/MariaDB family of sluice: the source (a consistent parallel
//! snapshot, then the binlog), the sink (a replica, changes applied exactly
//! once), and `sluice verify` of a MySQL source against any sink.
//!
//! - [`source`]: the source's settings, snapshot and change stream;
//! - [`binlog`]: where binlog events become change events;
//! - [`sink`]: the sink's settings, DDL, bulk load and change apply;
//! - [`verify`]: key ranges checksummed on both servers, rows compared
//!   through the transforms, repair;
//! - [`ranges`]: splitting a table into key ranges (the snapshot's and
//!   verify's);
//! - [`connect`]: connections, masked URLs, server errors with hints;
//! - [`catalog`]: which tables exist, their columns, keys and DDL;
//! - [`privileges`]: what a user may do, checked before anything is written;
//! - [`decode`]: server row values into Arrow arrays;
//! - [`encode`]: Arrow values back into exact SQL literals.

pub mod binlog;
pub mod catalog;
pub mod connect;
pub mod decode;
pub mod encode;
pub mod privileges;
pub mod ranges;
pub mod sink;
pub mod source;
pub mod verify;

// The core's modules under the names this crate's code was written with.
pub(crate) use sluice_core::{
    config, error, event, filter, partition, precheck, progress, rename, schema_change, stage,
    temporal, text, throttle, types, view, Error, Result,
};

pub use sink::MysqlSinkConfig;
pub use source::MysqlSourceConfig;
