//! Where binlog events become change events.
//!
//! - [`reader`]: asks the server for its binlog (by file/offset or MariaDB
//!   GTID), follows rotations and heartbeats, and turns raw events into
//!   [`reader::BinlogEvent`]s: transaction starts and ends, row changes, statements.
//! - [`mariadb`]: MariaDB's own event types (GTID, GTID list, annotations,
//!   compressed events), decoded or refused on purpose, never ignored by accident.
//! - [`rows`]: the bytes of a rows event decoded into row images.
//! - [`values`]: row values made identical to what SELECT returns.
//! - [`ddl`]: which tables a statement changes, and rewriting it for a target.
//! - [`column_definition`]: a column as ALTER TABLE defines it, in neutral words.
//! - [`schema`]: table definitions as each TABLE_MAP event describes them.
//!
//! `source::cdc` assembles these into [`crate::event::ChangeBatch`]es.

pub mod column_definition;
pub mod ddl;
pub mod mariadb;
pub mod reader;
pub mod rows;
pub mod schema;
pub mod values;
