//! `exechub` processes a test runs beside its in-process server, on the same
//! database and queue: started, stopped with SIGTERM, killed when the test ends.

use std::time::Duration;

use super::{SECRET, TestServer};

/// A child process killed when the test ends, however it ends.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// Sends SIGTERM, as a service manager stopping it would.
    pub fn terminate(&self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits at most `limit` for the process to exit; its exit status.
    pub async fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl TestServer {
    /// Starts `exechub serve --no-workers <args>` on a free port of this server's
    /// database and queue; returns it once it answers.
    pub async fn serve_process(&self, args: &[&str]) -> (Process, String) {
        let bind = free_address();
        let mut all = vec!["--no-workers", "--bind", &bind];
        all.extend(args);
        let process = Process(self.spawn("serve", &all));
        let base = format!("http://{bind}");
        wait_until_serving(&base).await;
        (process, base)
    }
}

/// A free address on loopback, `127.0.0.1:PORT`.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// Waits (at most 30 s) until the server at `base` answers.
pub async fn wait_until_serving(base: &str) {
    let started = std::time::Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestServer {
    /// Starts `exechub <subcommand> <args>` as a process on this server's database,
    /// queue (and Redis) and JWT secret.
    pub fn spawn(&self, subcommand: &str, args: &[&str]) -> std::process::Child {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_exechub"));
        command
            .arg(subcommand)
            .args(args)
            .env("EXECHUB_DATABASE_URL", &self.database_url)
            .env("EXECHUB_DATA_DIR", &self.data_dir)
            .env("EXECHUB_JWT_SECRET", SECRET)
            .env("EXECHUB_QUEUE_PREFIX", &self.scheduler.queue_prefix)
            .env("EXECHUB_STEP_LEASE", "2s")
            .env("EXECHUB_RECONCILE_INTERVAL", "1s")
            .env("EXECHUB_QUEUE_POLL_INTERVAL", "20ms")
            .env("EXECHUB_LOG", "warn")
            .stdout(std::process::Stdio::null());
        if let Some(redis) = &self.scheduler.redis_url {
            command.env("EXECHUB_REDIS_URL", redis);
        }
        command.spawn().expect("start exechub")
    }
}
