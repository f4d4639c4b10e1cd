//! moto in server mode, from the pinned virtualenv `cargo xtask` installs.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context as _, Result, bail};
use tokio::process::{Child, Command};

/// moto accepts any credentials; these are its documented test ones.
pub(super) const ACCESS_KEY: &str = "testing";
pub(super) const SECRET_KEY: &str = "testing";

/// How long moto may take to answer after it starts (about 1 s here).
const STARTUP: Duration = Duration::from_secs(60);

/// Starts `moto_server` on a free loopback port and waits until it answers
/// S3. Its output goes to a log file: it logs every request.
pub(super) async fn start(program: &Path) -> Result<(String, Child)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::env::temp_dir().join(format!("conformance-moto-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {}: `cargo xtask conformance --s3 moto` installs it into tools/venv; elsewhere, \
                 `pip install 'moto[server]==5.2.5' crc32c awscrt` and pass --moto-server",
                program.display()
            )
        })?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = super::client::static_client(&endpoint, ACCESS_KEY, SECRET_KEY);
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("moto exited with {status} before answering; its log is {}", log.display());
        }
        if client.list_buckets().send().await.is_ok() {
            return Ok((endpoint, child));
        }
        if started.elapsed() > STARTUP {
            bail!("moto did not answer on port {port} within {STARTUP:?}; its log is {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
