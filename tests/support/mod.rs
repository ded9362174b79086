//! The shared end-to-end test harness: private MariaDB servers and the
//! `sluice` binary.
//!
//! Each server gets a temporary datadir (`mariadb-install-db`), a free port on
//! 127.0.0.1, binlog on in ROW format with full images and metadata, and a
//! unique server id. Servers are shared within a test binary (tests use
//! their own database names) and killed when the binary exits.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

pub mod nats;
pub mod postgres;
mod s3;
#[allow(unused_imports)]
pub use s3::*;

/// A small deterministic generator (xorshift), so that a failing run can
/// be replayed from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 for `n` = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A running private server.
pub struct MariaDb {
    pub name: String,
    pub port: u16,
    pub dir: PathBuf,
    pid: AtomicU32,
    server: PathBuf,
    args: Vec<String>,
}

struct Running {
    pid: u32,
    dir: PathBuf,
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
static CLEANUP: std::sync::Once = std::sync::Once::new();

extern "C" fn cleanup_at_exit() {
    if let Ok(list) = RUNNING.lock() {
        for r in list.iter() {
            unsafe {
                libc::kill(r.pid as i32, libc::SIGKILL);
            }
            let _ = std::fs::remove_dir_all(&r.dir);
        }
    }
}

fn find_binary(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p;
            }
        }
        if let Ok(path) = std::env::var("PATH") {
            for dir in path.split(':') {
                let p = Path::new(dir).join(name);
                if p.exists() {
                    return p;
                }
            }
        }
    }
    panic!(
        "MariaDB server binaries not found (looked for {names:?}); install them with `apt-get install -y mariadb-server` (.ci/run does)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free TCP port on 127.0.0.1")
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

impl MariaDb {
    /// Starts a server with the standard test settings.
    pub fn start(name: &str) -> MariaDb {
        Self::start_with(name, &[])
    }

    /// Starts a server with extra `mariadbd` options (they override the defaults).
    pub fn start_with(name: &str, extra: &[&str]) -> MariaDb {
        CLEANUP.call_once(|| unsafe {
            libc::atexit(cleanup_at_exit);
        });
        let install = find_binary(&["mariadb-install-db", "mysql_install_db"]);
        let server = find_binary(&["mariadbd", "mysqld"]);
        let base = std::env::var_os("SLUICE_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&base).expect("creating the test temp dir");
        let dir = base.join(format!(
            "sluice-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("creating a datadir");
        // A private tmpdir: a starting server deletes `#sql*` files in its
        // tmpdir, which breaks other servers sharing /tmp.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("creating a tmpdir");

        let mut cmd = Command::new(&install);
        cmd.env("TMPDIR", &tmp)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if is_root() {
            cmd.arg("--user=root");
        }
        let out = cmd.output().expect("running mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed for {name}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        // TCP logins as root come from 127.0.0.1; allow them without a password.
        let init = dir.join("init.sql");
        std::fs::write(
            &init,
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
        )
        .expect("writing init.sql");

        let port = free_port();
        let server_id = 1000 + (port as u32 % 60000);
        let mut args: Vec<String> = vec![
            "--no-defaults".into(),
            format!("--datadir={}", data.display()),
            format!("--socket={}", dir.join("mysqld.sock").display()),
            format!("--pid-file={}", dir.join("mysqld.pid").display()),
            format!("--log-error={}", dir.join("error.log").display()),
            format!("--tmpdir={}", tmp.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            "--skip-name-resolve".into(),
            format!("--init-file={}", init.display()),
            format!("--log-bin={}", dir.join("binlog").display()),
            "--binlog-format=ROW".into(),
            "--binlog-row-image=FULL".into(),
            "--binlog-row-metadata=FULL".into(),
            format!("--server-id={server_id}"),
            "--innodb-buffer-pool-size=256M".into(),
            "--innodb-log-file-size=256M".into(),
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--sync-binlog=0".into(),
            "--max-connections=200".into(),
        ];
        if is_root() {
            args.push("--user=root".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let db = MariaDb {
            name: name.to_string(),
            port,
            dir,
            pid: AtomicU32::new(0),
            server,
            args,
        };
        db.spawn();
        db
    }

    fn spawn(&self) {
        let child: Child = Command::new(&self.server)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mariadbd");
        let pid = child.id();
        self.pid.store(pid, Ordering::SeqCst);
        RUNNING.lock().unwrap().push(Running {
            pid,
            dir: self.dir.clone(),
        });
        self.wait_ready(child);
    }

    /// Stops the server (SIGTERM, a clean shutdown) and starts it again on
    /// the same port and datadir.
    pub fn restart(&self) {
        self.shut_down();
        self.spawn();
    }

    /// Stops the server for good (SIGTERM, a clean shutdown).
    #[allow(dead_code)]
    pub fn stop(&self) {
        self.shut_down();
    }

    fn shut_down(&self) {
        let pid = self.pid.load(Ordering::SeqCst);
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut status = 0;
            let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
            if r == pid as i32 || (r == -1 && unsafe { libc::kill(pid as i32, 0) } != 0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd {} did not stop",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(mut list) = RUNNING.lock() {
            list.retain(|r| r.pid != pid);
        }
    }

    fn wait_ready(&self, mut child: Child) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "mariadbd for {} exited early ({status}); error log:\n{}",
                    self.name,
                    self.error_log_tail()
                );
            }
            if mysql::Conn::new(self.opts("root", "")).is_ok() {
                // The process is reaped in `restart` or killed at exit.
                std::mem::forget(child);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd for {} did not accept connections within 90 s; error log:\n{}",
                self.name,
                self.error_log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn error_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn opts(&self, user: &str, password: &str) -> mysql::Opts {
        mysql::OptsBuilder::new()
            .ip_or_hostname(Some("127.0.0.1"))
            .tcp_port(self.port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false)
            .init(vec!["SET NAMES utf8mb4", "SET time_zone = '+00:00'"])
            .into()
    }

    /// `mysql://root@127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    pub fn url_for(&self, user: &str, password: &str) -> String {
        format!("mysql://{user}:{password}@127.0.0.1:{}", self.port)
    }

    pub fn conn(&self) -> mysql::Conn {
        mysql::Conn::new(self.opts("root", "")).expect("connecting as root")
    }

    /// Runs statements separated by `;` at the end of a line, one at a time
    /// so that an error in any of them fails the test.
    pub fn exec(&self, sql: &str) {
        let mut c = self.conn();
        for stmt in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            let stmt = stmt.trim_end_matches(';');
            c.query_drop(stmt)
                .unwrap_or_else(|e| panic!("on {}: {e}\nSQL: {stmt}", self.name));
        }
    }

    pub fn query<T: mysql::prelude::FromRow>(&self, sql: &str) -> Vec<T> {
        let mut c = self.conn();
        c.query(sql)
            .unwrap_or_else(|e| panic!("on {}: {e}\nSQL: {sql}", self.name))
    }

    /// Rows through the binary protocol, so FLOATs and temporals come back exact.
    /// Like [`query`](Self::query), `None` when the statement fails (a
    /// table that does not exist yet, say).
    pub fn try_query<T: mysql::prelude::FromRow>(&self, sql: &str) -> Option<Vec<T>> {
        use mysql::prelude::Queryable;
        self.conn().query(sql).ok()
    }

    pub fn rows(&self, sql: &str) -> Vec<Vec<mysql::Value>> {
        let mut c = self.conn();
        let rows: Vec<mysql::Row> = c
            .exec(sql, ())
            .unwrap_or_else(|e| panic!("on {}: {e}\nSQL: {sql}", self.name));
        rows.into_iter().map(|r| r.unwrap()).collect()
    }

    pub fn scalar<T: mysql::prelude::FromValue>(&self, sql: &str) -> T {
        let mut c = self.conn();
        c.query_first(sql)
            .unwrap_or_else(|e| panic!("on {}: {e}\nSQL: {sql}", self.name))
            .unwrap_or_else(|| panic!("no row from {sql}"))
    }

    /// `CHECKSUM TABLE` result.
    pub fn checksum(&self, table: &str) -> Option<u64> {
        let rows: Vec<(String, Option<u64>)> = self.query(&format!("CHECKSUM TABLE {table}"));
        rows.into_iter().next().and_then(|r| r.1)
    }

    /// `SHOW CREATE TABLE` without the AUTO_INCREMENT counter.
    pub fn show_create(&self, table: &str) -> String {
        let rows: Vec<(String, String)> = self.query(&format!("SHOW CREATE TABLE {table}"));
        rows.into_iter()
            .next()
            .map(|r| r.1)
            .unwrap_or_default()
            .split(' ')
            .filter(|w| !w.starts_with("AUTO_INCREMENT="))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn table_exists(&self, db: &str, table: &str) -> bool {
        self.scalar::<u64>(&format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}'"
        )) > 0
    }

    pub fn database_exists(&self, db: &str) -> bool {
        self.scalar::<u64>(&format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
        )) > 0
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let pid = self.pid.load(Ordering::SeqCst);
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        if let Ok(mut list) = RUNNING.lock() {
            list.retain(|r| r.pid != pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The source and target servers shared by the tests of one test binary.
pub fn pair() -> &'static (MariaDb, MariaDb) {
    static PAIR: OnceLock<(MariaDb, MariaDb)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| MariaDb::start("source"));
            let b = s.spawn(|| MariaDb::start("target"));
            (
                a.join().expect("source start"),
                b.join().expect("target start"),
            )
        });
        (a, b)
    })
}

/// The path of the `sluice` binary cargo built for this test run.
pub fn sluice_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
}

/// The workspace root (the tests belong to crates/cli).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// Result of running the binary.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    /// Panics with the output unless the run succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.ok(),
            "sluice failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the run failed and stderr contains every needle.
    pub fn assert_fails_with(&self, needles: &[&str]) -> &Self {
        assert!(
            !self.ok(),
            "sluice unexpectedly succeeded:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

fn to_run(out: Output) -> Run {
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `sluice ARGS` with extra environment variables.
pub fn sluice(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args).current_dir(root()).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    to_run(cmd.output().expect("running sluice"))
}

/// Writes `yaml` to a temp file named after `name` and returns its path.
pub fn write_pipeline(name: &str, yaml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-pipelines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating pipeline dir");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("writing pipeline");
    path
}

/// Runs `sluice run` on a pipeline text.
pub fn run_pipeline(name: &str, yaml: &str, env: &[(&str, &str)]) -> Run {
    let path = write_pipeline(name, yaml);
    sluice(
        &[
            "run",
            "--progress",
            "log",
            path.to_str().expect("utf-8 path"),
        ],
        env,
    )
}

/// A snapshot-only pipeline from `src` to `dst` for `include` patterns, with extra sink YAML.
pub fn migrate_yaml(
    name: &str,
    src: &str,
    dst: &str,
    include: &[&str],
    sink_extra: &str,
) -> String {
    let inc = include
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "name: {name}\nsource:\n  mysql:\n    url: {src}\n    mode: snapshot\n    include: [{inc}]\nsinks:\n  - mysql:\n      url: {dst}\n{sink_extra}"
    )
}

/// Asserts two servers hold the same rows in `table`, compared value by value
/// in key order, and the same CHECKSUM TABLE.
pub fn assert_same_table(
    src: &MariaDb,
    src_table: &str,
    dst: &MariaDb,
    dst_table: &str,
    order_by: &str,
) {
    let a = src.rows(&format!("SELECT * FROM {src_table} ORDER BY {order_by}"));
    let b = dst.rows(&format!("SELECT * FROM {dst_table} ORDER BY {order_by}"));
    assert_eq!(a.len(), b.len(), "row count of {src_table} vs {dst_table}");
    for (i, (ra, rb)) in a.iter().zip(&b).enumerate() {
        for (c, (va, vb)) in ra.iter().zip(rb).enumerate() {
            assert_eq!(
                va, vb,
                "{src_table} vs {dst_table}: row {i}, column {c} differs (full rows: {ra:?} / {rb:?})"
            );
        }
    }
    assert_eq!(
        src.checksum(src_table),
        dst.checksum(dst_table),
        "CHECKSUM TABLE of {src_table} vs {dst_table}"
    );
}

/// A `sluice run` in the background, killed if dropped.
pub struct Background {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Background {
    /// Starts `sluice run` on a pipeline file; stderr goes to a log file.
    pub fn start(path: &Path, extra: &[&str]) -> Background {
        let log = path.with_extension(format!("{}.log", std::process::id()));
        let err = std::fs::File::create(&log).expect("creating a log file");
        let out = err.try_clone().expect("cloning a file handle");
        let child = Command::new(sluice_bin())
            .arg("run")
            .args(["--progress", "log"])
            .args(extra)
            .arg(path)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting sluice");
        Background {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: a crash at whatever moment this is.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `limit`; returns the exit status.
    pub fn terminate(mut self, limit: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "sluice did not exit within {limit:?} of SIGTERM; log:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Whether it is still running (panics with the log if it exited).
    /// Polls `check` while the pipeline runs: `Ok` when the condition
    /// holds, else `Err(what differs)`. Fails at once if the pipeline
    /// exits, and after `limit` panics with the last difference and the
    /// pipeline's log.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut() -> Result<(), String>,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            self.assert_running();
            let differs = match check() {
                Ok(()) => return,
                Err(d) => d,
            };
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting until {what}\n{differs}\nlog:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("sluice exited early ({status}); log:\n{}", self.output());
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `GET /metrics` over a plain socket: the body, or why not.
pub fn scrape(port: u16) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    if !text.starts_with("HTTP/1.1 200") {
        return Err(text);
    }
    Ok(text)
}

/// The value of the sample `name{labels}` (labels as printed, in order).
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let head = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&head))
        .and_then(|v| v.trim().parse().ok())
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    free_port()
}

/// Waits until `pipeline` follows changes (its sink wrote a change-stream checkpoint).
pub fn wait_following(dst: &MariaDb, pipeline: &str) {
    let sql = format!(
        "SELECT COUNT(*) FROM sluice.checkpoints WHERE pipeline = '{pipeline}' AND phase = 'cdc'"
    );
    // A deadline, not a wait: generous, as a first run may build plugins.
    wait_until(
        Duration::from_secs(180),
        "the pipeline follows changes",
        || dst.database_exists("sluice") && dst.scalar::<u64>(&sql) > 0,
    );
}

/// Polls until `cond` holds, or panics after `limit` with `what`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether every table has the same CHECKSUM TABLE on both servers.
pub fn checksums_equal(src: &MariaDb, dst: &MariaDb, tables: &[(&str, &str)]) -> bool {
    tables.iter().all(|(s, d)| {
        let dst_exists = d
            .split_once('.')
            .is_some_and(|(db, t)| dst.table_exists(db, t));
        dst_exists && src.checksum(s) == dst.checksum(d)
    })
}

/// The type matrix: every column type with edge values, in database `db`.
pub fn type_matrix_sql(db: &str) -> String {
    std::fs::read_to_string(root().join("tests/data/type-matrix.sql"))
        .expect("reading tests/data/type-matrix.sql")
        .replace("typ.", &format!("{db}."))
        .replace("DATABASE typ ", &format!("DATABASE {db} "))
}

/// Runs `sluice verify` with `args`, writing the report to a file; returns
/// the run and the report's differences as `(kind, table, key)` triples.
pub fn verify(
    pipeline: &std::path::Path,
    args: &[&str],
) -> (Run, BTreeSet<(String, String, String)>) {
    let report = pipeline.with_extension("report.json");
    let _ = std::fs::remove_file(&report);
    let mut all = vec![
        "verify",
        "--report",
        report.to_str().expect("utf-8 path"),
        pipeline.to_str().expect("utf-8 path"),
    ];
    all.splice(1..1, args.iter().copied());
    let run = sluice(&all, &[]);
    let mut found = BTreeSet::new();
    if let Ok(text) = std::fs::read_to_string(&report) {
        let json: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
        for sink in json["sinks"].as_array().expect("sinks") {
            for t in sink["tables"].as_array().expect("tables") {
                for d in t["differences"].as_array().expect("differences") {
                    let key = d["key"]
                        .as_object()
                        .expect("key")
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",");
                    found.insert((
                        d["kind"].as_str().unwrap_or_default().to_string(),
                        t["source"].as_str().unwrap_or_default().to_string(),
                        key,
                    ));
                }
            }
        }
    }
    (run, found)
}

pub fn triple(kind: &str, table: &str, key: &str) -> (String, String, String) {
    (kind.into(), table.into(), key.into())
}

/// Asserts verify exited 3 (rows differ) and found exactly `expected`
/// `(kind, table, key)` differences.
pub fn assert_found(
    run: &Run,
    found: &BTreeSet<(String, String, String)>,
    expected: &[(&str, &str, &str)],
) {
    assert_eq!(run.status.code(), Some(3), "{}{}", run.stdout, run.stderr);
    let expected: BTreeSet<_> = expected
        .iter()
        .map(|(k, t, key)| triple(k, t, key))
        .collect();
    assert_eq!(found, &expected, "{}", run.stdout);
}

/// The seed of a generated test: `SLUICE_SEED` (hex), or the clock's.
pub fn seed() -> u64 {
    let seed = std::env::var("SLUICE_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("seed 0x{seed:x} (SLUICE_SEED=0x{seed:x} replays it)");
    seed
}
