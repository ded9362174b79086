//! Sinks: where data goes. One folder per kind, config next to code.

pub mod mysql;
pub mod parquet;
