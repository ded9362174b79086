//! Private PostgreSQL servers for the tests, from the installed binaries
//! (`initdb`, `pg_ctl`; `.ci/run` installs them where missing), each on a
//! free port with password logins. Tests read them back with `psql`,
//! independent of the sink's own client.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const PG_PASSWORD: &str = "sluice-pg-secret";

pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

/// The directory of `initdb` and `pg_ctl`: the newest installed version's.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries not found under /usr/lib/postgresql; install them with `apt-get install -y postgresql` (.ci/run does)")
    })
}

/// `cmd` as the `postgres` user when the tests run as root (initdb and the
/// server refuse to run as root).
fn as_server_user(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    pub fn start(name: &str) -> Postgres {
        let bin = bin_dir();
        let base = std::env::var_os("SLUICE_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let port = super::free_tcp_port();
        let dir = base.join(format!("sluice-pg-{name}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the PostgreSQL test dir");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PG_PASSWORD).expect("writing the password file");
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", dir.display());
        }
        let data = dir.join("data");
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=60",
            dir.display()
        );
        let out = as_server_user(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"])
            .output()
            .expect("running pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        let pg = Postgres { port, dir, bin };
        pg.psql_db("postgres", "CREATE DATABASE sluice");
        pg
    }

    /// The URL of database `sluice` for `user` with `password`.
    pub fn url_for(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/sluice",
            self.port
        )
    }

    pub fn url(&self) -> String {
        self.url_for("postgres", PG_PASSWORD)
    }

    fn psql_db(&self, db: &str, sql: &str) -> String {
        self.try_psql_db(db, sql)
            .unwrap_or_else(|e| panic!("psql failed on {sql:?}:\n{e}"))
    }

    /// Runs SQL; the server's error if it fails (a table not created yet).
    fn try_psql_db(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .env("PGPASSWORD", PG_PASSWORD)
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-X",
                "-q",
                "-A",
                "-t",
                "-F",
                "|",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("running psql");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs SQL in database `sluice`; its rows as `|`-separated lines.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("sluice", sql)
    }

    /// The rows of a query, each as its fields; the error if it fails.
    pub fn rows(&self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        Ok(self
            .try_psql_db("sluice", sql)?
            .lines()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
