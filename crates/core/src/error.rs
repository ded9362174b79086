//! The library's error type. Every variant names what failed and, where we
//! can tell, what the user should do next (`hint`).

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem in a pipeline file, located by file, line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the location is unknown.
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigError),

    /// A server could not be reached or refused the login.
    #[error("cannot connect to the {role} at {url}: {detail}\n  hint: {hint}")]
    Connect {
        role: String,
        /// Always masked: never carries a password.
        url: String,
        detail: String,
        hint: String,
    },

    /// A statement failed on a server.
    #[error("{role} at {url}: {context}: {detail}{}", fmt_hint(.hint))]
    Server {
        role: String,
        url: String,
        context: String,
        detail: String,
        hint: Option<String>,
    },

    /// Something that must hold before any data moves does not.
    #[error("precondition failed: {message}\n  hint: {hint}")]
    Precondition { message: String, hint: String },

    /// Data that the pipeline cannot represent faithfully.
    #[error("{0}")]
    Data(String),

    #[error("internal error: {0}")]
    Internal(String),

    /// A table's definition changed between discovery and the snapshot's
    /// consistent point; the run starts over (the engine retries).
    #[error("the definition of {table} changed while the snapshot was starting")]
    SchemaChanged { table: String },
}

fn fmt_hint(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!("\n  hint: {h}"),
        None => String::new(),
    }
}

impl Error {
    pub fn precondition(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Precondition {
            message: message.into(),
            hint: hint.into(),
        }
    }
}
