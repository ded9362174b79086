//! Opening connections and explaining failures.
//!
//! Every error that leaves this module names the server's role (source or
//! sink name) and its URL with the password masked, and carries a hint.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::text::{abbreviate, mask_url};
use crate::{Error, Result};

/// How long to wait for a TCP connection and the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Session settings every sluice connection uses, so that values read and
/// written are interpreted identically on both sides.
pub const SESSION_BASE: &[&str] = &["SET NAMES utf8mb4", "SET time_zone = '+00:00'"];

/// A server sluice talks to: its role for messages and its URL.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// "source" or "sink `name`".
    pub role: String,
    url: String,
    opts: Opts,
}

impl Endpoint {
    /// Parses the URL; the error never contains the password.
    pub fn new(role: impl Into<String>, url: &str) -> std::result::Result<Self, String> {
        let opts = Opts::from_url(url).map_err(|e| {
            format!(
                "`{}` is not a valid MySQL URL ({e}); expected mysql://USER:PASSWORD@HOST:PORT",
                mask_url(url)
            )
        })?;
        Ok(Endpoint {
            role: role.into(),
            url: url.to_string(),
            opts,
        })
    }

    /// The URL as configured, password included: never print it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with its password replaced by `***`, safe to print.
    pub fn masked(&self) -> String {
        mask_url(&self.url)
    }

    fn builder(&self, session: &[&str]) -> OptsBuilder {
        let init: Vec<String> = SESSION_BASE
            .iter()
            .chain(session)
            .map(|s| s.to_string())
            .collect();
        OptsBuilder::from_opts(self.opts.clone())
            .init(init)
            .prefer_socket(false)
    }

    /// One connection, with `session` statements run after [`SESSION_BASE`].
    pub async fn connect(&self, session: &[&str]) -> Result<Conn> {
        let fut = Conn::new(self.builder(session));
        match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(self.connect_error(e)),
            Err(_) => Err(Error::Connect {
                role: self.role.clone(),
                url: self.masked(),
                detail: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                hint:
                    "check the host and port in the URL, and that no firewall drops the connection"
                        .into(),
            }),
        }
    }

    /// A pool of up to `size` connections set up like [`connect`](Self::connect).
    pub fn pool(&self, session: &[&str], size: usize) -> Pool {
        let constraints = PoolConstraints::new(0, size.max(1)).unwrap_or_default();
        Pool::new(
            self.builder(session)
                .pool_opts(PoolOpts::default().with_constraints(constraints)),
        )
    }

    fn connect_error(&self, e: mysql_async::Error) -> Error {
        let (detail, hint) = match &e {
            mysql_async::Error::Server(s) if s.code == 1045 => (
                format!("access denied ({})", s.message),
                "check the user and password in the URL; keep the password in an environment variable: mysql://user:${DB_PASSWORD}@host".to_string(),
            ),
            mysql_async::Error::Server(s) if s.code == 1049 => (
                s.message.clone(),
                "remove the database from the URL or create it first".to_string(),
            ),
            mysql_async::Error::Io(io) => (
                io.to_string(),
                format!(
                    "is the server running and listening at {}:{}? check the URL's host and port",
                    self.opts.ip_or_hostname(),
                    self.opts.tcp_port()
                ),
            ),
            other => (other.to_string(), "check the URL and the server's error log".to_string()),
        };
        Error::Connect {
            role: self.role.clone(),
            url: self.masked(),
            detail,
            hint,
        }
    }

    /// Wraps a failed statement with what was being done and a hint.
    pub fn error(&self, context: impl Into<String>, e: mysql_async::Error) -> Error {
        let hint = match &e {
            mysql_async::Error::Server(s) => privilege_hint(s.code, &s.message),
            mysql_async::Error::Io(_) => {
                Some("the connection dropped; check the server is up and rerun".to_string())
            }
            _ => None,
        };
        let detail = match &e {
            mysql_async::Error::Server(s) => format!("{} (error {})", s.message, s.code),
            other => other.to_string(),
        };
        Error::Server {
            role: self.role.clone(),
            url: self.masked(),
            context: context.into(),
            detail,
            hint,
        }
    }

    /// Runs statements that return nothing, each in its own round trip.
    pub async fn exec_all(&self, conn: &mut Conn, stmts: &[String]) -> Result<()> {
        for s in stmts {
            conn.query_drop(s)
                .await
                .map_err(|e| self.error(format!("running `{}`", abbreviate(s)), e))?;
        }
        Ok(())
    }
}

fn privilege_hint(code: u16, message: &str) -> Option<String> {
    match code {
        1044 | 1142 | 1143 | 1227 | 1370 => Some(format!(
            "the user lacks a privilege: grant it (e.g. `GRANT SELECT, SHOW VIEW, TRIGGER ON db.* TO user`), see docs/pipeline-yaml.md \"Privileges\"; server said: {message}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_url_message_is_masked() {
        let e = Endpoint::new("source", "mysq://u:topsecret@h").unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
    }
}
