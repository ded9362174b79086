//! MySQL/MariaDB building blocks shared by the MySQL source and sink.
//!
//! - [`connect`]: opening connections, masking URLs, turning server errors into hints.
//! - [`decode`]: server row values into Arrow arrays.
//! - [`encode`]: Arrow values back into exact SQL literals.
//! - [`catalog`]: which tables exist, their columns, keys and DDL.
//! - [`privileges`]: what the user may do, checked before anything is written.

pub mod catalog;
pub mod connect;
pub mod decode;
pub mod encode;
pub mod privileges;
