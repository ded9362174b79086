//! A private S3-protocol server for the tests: `s3s-fs` (installed by
//! .ci/run) on a free port of 127.0.0.1, storing objects under a temporary
//! folder, with SigV4 credentials. One per test binary, killed at exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{free_port, wait_until, Running, CLEANUP, RUNNING};

pub struct S3Server {
    pub port: u16,
    pub root: PathBuf,
}

pub const S3_KEY: &str = "sluicetestkey";
pub const S3_SECRET: &str = "sluice-test-secret-0123456789";

fn s3s_fs() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let mut candidates: Vec<PathBuf> = home.into_iter().map(|h| h.join("bin/s3s-fs")).collect();
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(path.split(':').map(|d| Path::new(d).join("s3s-fs")));
    }
    candidates.into_iter().find(|p| p.exists()).unwrap_or_else(|| {
        panic!("the S3 test server `s3s-fs` is not installed; run `cargo install s3s-fs@0.14.1 --features binary` (.ci/run does)")
    })
}

impl S3Server {
    /// The server shared by this test binary's tests.
    pub fn shared() -> &'static S3Server {
        static SERVER: OnceLock<S3Server> = OnceLock::new();
        SERVER.get_or_init(S3Server::start)
    }

    fn start() -> S3Server {
        CLEANUP.call_once(|| unsafe {
            libc::atexit(super::cleanup_at_exit);
        });
        let port = free_port();
        let root = std::env::temp_dir().join(format!("sluice-s3-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&root).expect("creating the S3 server's folder");
        let log = std::fs::File::create(root.with_extension("log")).expect("S3 server log");
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting s3s-fs");
        RUNNING.lock().unwrap().push(Running {
            pid: child.id(),
            dir: root.clone(),
        });
        wait_until(
            Duration::from_secs(30),
            "the S3 server accepts connections",
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        S3Server { port, root }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (a folder of the server's root) and returns its name.
    pub fn bucket(&self, name: &str) -> String {
        std::fs::create_dir_all(self.root.join(name)).expect("creating a bucket");
        name.to_string()
    }

    /// The sink settings that reach this server, as YAML lines indented by
    /// `indent` spaces.
    pub fn sink_yaml(&self, indent: usize) -> String {
        let pad = " ".repeat(indent);
        format!(
            "{pad}endpoint: {}\n{pad}region: us-east-1\n{pad}access_key_id: {S3_KEY}\n{pad}secret_access_key: {S3_SECRET}\n",
            self.endpoint()
        )
    }

    /// Environment for tests/support/parquet_state.py to read `s3://` URLs.
    pub fn reader_env(&self) -> Vec<(String, String)> {
        vec![
            ("S3_ENDPOINT".into(), self.endpoint()),
            ("S3_KEY".into(), S3_KEY.into()),
            ("S3_SECRET".into(), S3_SECRET.into()),
        ]
    }
}
