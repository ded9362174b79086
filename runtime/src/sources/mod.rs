//! Sources: where data comes from. One folder per kind, config next to code.

pub mod mysql;
