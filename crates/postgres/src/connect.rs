//! Connections to the target, and its errors as messages that name the
//! server (password masked), what sluice was doing, and what to do next.

use sluice_core::text::mask_url;
use sluice_core::{Error, Result};
use tokio_postgres::{Client, Config, NoTls};

/// Where the sink writes.
#[derive(Clone)]
pub struct Endpoint {
    /// With the password: only ever printed through `masked`.
    url: String,
    pub masked: String,
    config: Config,
    /// The sink's name, for messages.
    pub role: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.masked)
            .finish()
    }
}

impl Endpoint {
    pub fn new(url: &str, sink: &str) -> std::result::Result<Endpoint, String> {
        let masked = mask_url(url);
        let mut config: Config = url
            .parse()
            .map_err(|e| format!("`url` {masked} is not a PostgreSQL URL: {e}"))?;
        if config.get_options().is_none() {
            // The server's NOTICEs (`... already exists, skipping`) are
            // not worth a log line each.
            config.options("-c client_min_messages=warning");
        }
        if config.get_dbname().is_none() {
            return Err(format!(
                "`url` {masked} names no database: write postgres://user@host:5432/DATABASE"
            ));
        }
        Ok(Endpoint {
            url: url.to_string(),
            masked,
            config,
            role: format!("PostgreSQL sink `{sink}`"),
        })
    }

    /// The URL with its password, for `sluice verify`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }

    /// A new connection; its driver task runs until the client is dropped.
    pub async fn connect(&self) -> Result<Client> {
        let (client, conn) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| self.connect_error(e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    fn connect_error(&self, e: tokio_postgres::Error) -> Error {
        let detail = detail(&e);
        let lower = detail.to_ascii_lowercase();
        let hint = if lower.contains("password") || lower.contains("authentication") {
            "check the user and password in `url` (a password from the environment is written `${PG_PASSWORD}`), and the server's pg_hba.conf"
        } else if lower.contains("does not exist") {
            "create the database first (CREATE DATABASE ...), or name an existing one in `url`"
        } else if lower.contains("ssl") || lower.contains("tls") {
            "sluice connects to PostgreSQL without TLS for now: drop `sslmode=require` from `url`, or reach the server through a tunnel"
        } else {
            "check that the server runs and listens on that host and port (listen_addresses, firewall)"
        };
        Error::Connect {
            role: self.role.clone(),
            url: self.masked.clone(),
            detail,
            hint: hint.into(),
        }
    }

    /// A statement's failure, with what sluice was doing.
    pub fn error(&self, context: impl Into<String>, e: tokio_postgres::Error) -> Error {
        let hint = e.as_db_error().and_then(|db| {
            let code = db.code().code();
            match &code[..2] {
                "42" if code == "42501" => Some(
                    "grant the sink's user what it needs: CREATE on the database (for schemas), and ownership or INSERT/UPDATE/DELETE/TRUNCATE on its tables"
                        .to_string(),
                ),
                "53" => Some("the server ran out of a resource (disk, memory, connections)".into()),
                "57" => Some("the server is shutting down or was restarted; run again when it is back".into()),
                _ => None,
            }
        });
        Error::Server {
            role: self.role.clone(),
            url: self.masked.clone(),
            context: context.into(),
            detail: detail(&e),
            hint,
        }
    }
}

/// The server's message (and its SQLSTATE) or the client's, with causes.
pub fn detail(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(&format!("; {d}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(&format!(": {cause}"));
        src = cause.source();
    }
    s
}

/// `"name"` for SQL: case and reserved words survive.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'text'` for SQL (standard_conforming_strings, on since 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
