//! The floor as a process of its own (`--floor-cmd`), so that the suite
//! links no inference runtime: the bare session runs wherever the user's
//! runtime lives, and measures its own windows.
//!
//! The protocol is one JSON object per line. The suite starts the command
//! with `{image}` replaced by the path of the image every call carries; the
//! floor loads its model and answers `{"ready": "<what runs>"}`. Then, per
//! window, the suite writes `{"concurrency": C, "window_ms": W}` and the
//! floor answers `{"latencies_us": [...], "errors": N, "first_error": S,
//! "elapsed_us": T}`, after running C callers back to back for W ms the way
//! the load engine's closed loop does for servers. Closing the floor's stdin ends it.
//! `conformance/peers/python/floor.py` is such a floor, on onnxruntime.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
    sync::Mutex,
};

/// How long a floor may take to load its model.
const STARTUP: Duration = Duration::from_secs(120);

/// How long a window may overrun its length before the floor is given up
/// on: a call started just before the window closed is still waited for.
const OVERRUN: Duration = Duration::from_secs(60);

/// A running floor process; dropping it kills it.
#[derive(Debug)]
pub struct Floor {
    /// What the floor said it runs, for the report.
    pub description: String,
    io: Mutex<Io>,
    /// The image file the command was given, removed with the floor.
    _image: tempfile::NamedTempFile,
}

#[derive(Debug)]
struct Io {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

#[derive(Deserialize)]
struct Ready {
    ready: String,
}

/// One window, as the floor measured it.
#[derive(Debug, Deserialize)]
pub(super) struct Measured {
    pub(super) latencies_us: Vec<u64>,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) elapsed_us: u64,
}

impl Floor {
    /// Starts `command` for `image`, its output going to `log`, and waits
    /// until it is ready.
    pub async fn start(command: &str, image: &[u8], log: &Path) -> Result<Floor> {
        if !command.contains("{image}") {
            bail!("the floor command must say where the image path goes with {{image}}: {command:?}");
        }
        let mut file = tempfile::Builder::new().prefix("conformance-floor-").suffix(".img").tempfile()?;
        std::io::Write::write_all(&mut file, image)?;
        let line = command.replace("{image}", &file.path().display().to_string());
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {line:?}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut io = Io { _child: child, stdin, stdout };
        let ready: Ready = io
            .answer(STARTUP)
            .await
            .with_context(|| format!("the floor did not start (its log is {}): {line}", log.display()))?;
        Ok(Floor { description: ready.ready, io: Mutex::new(io), _image: file })
    }

    /// Runs one window of `length` at `concurrency` callers.
    pub(super) async fn window(&self, concurrency: usize, length: Duration) -> Result<Measured> {
        let mut io = self.io.lock().await;
        let request =
            serde_json::json!({ "concurrency": concurrency, "window_ms": length.as_millis() as u64 });
        io.stdin.write_all(format!("{request}\n").as_bytes()).await.context("writing to the floor")?;
        io.stdin.flush().await.context("writing to the floor")?;
        io.answer(length + OVERRUN).await
    }
}

impl Io {
    /// The next line the floor writes, parsed.
    async fn answer<T: serde::de::DeserializeOwned>(&mut self, patience: Duration) -> Result<T> {
        let started = Instant::now();
        let line = tokio::time::timeout(patience, self.stdout.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", started.elapsed()))?
            .context("reading from the floor")?
            .context("the floor exited")?;
        serde_json::from_str(&line).with_context(|| format!("the floor answered {line:?}"))
    }
}
