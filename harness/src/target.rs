//! The server under test: an address someone else runs, or a command the
//! harness starts, waits for, and always stops.
//!
//! A command is a shell line with `{port}` (or `{addr}`, meaning
//! `127.0.0.1:{port}`) where the listening port goes. The harness picks a free
//! port, starts the command in its own process group, and waits until the
//! server answers health or reflection. Stopping sends SIGTERM to the whole
//! group, then SIGKILL if it lingers; dropping the target kills the group, so
//! a failing or interrupted run leaves no server behind.

use std::{
    os::unix::process::ExitStatusExt,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use crate::{security::Security, transport::Channel};
use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

const SIGTERM: i32 = 15;

/// How long a started command may take to answer before the run gives up.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A server the suite can reach.
#[derive(Debug)]
pub struct Target {
    url: String,
    channel: Channel,
    process: Option<Child>,
    /// How a started command was started, to start it again.
    launch: Option<Launch>,
}

/// A started command's shell line (its port filled in), environment,
/// security and log.
#[derive(Debug, Clone)]
struct Launch {
    url: String,
    line: String,
    env: Vec<(String, String)>,
    security: Security,
    log: std::path::PathBuf,
}

impl Target {
    /// A server already running at `url` (`http://host:port`, or
    /// `https://host:port` with TLS `security`).
    pub async fn address(url: &str, security: Security) -> Result<Target> {
        let channel = crate::connect_with(url, security).await?;
        Ok(Target { url: url.to_owned(), channel, process: None, launch: None })
    }

    /// Starts `command` on a free port and waits until it answers. Its
    /// stdout and stderr go to `log`: a server's own logging (grpcio prints
    /// tracebacks for the garbage the suite sends) would bury the report.
    pub async fn command(command: &str, startup_timeout: Duration, log: &Path) -> Result<Target> {
        Self::command_with_env(command, &[], Security::plaintext(), startup_timeout, log).await
    }

    /// [`Target::command`] with extra environment variables, e.g. the
    /// standard AWS ones naming the S3 server the target must use, reached
    /// as `security` says (TLS makes its URL `https://`).
    pub async fn command_with_env(
        command: &str,
        env: &[(String, String)],
        security: Security,
        startup_timeout: Duration,
        log: &Path,
    ) -> Result<Target> {
        if !command.contains("{port}") && !command.contains("{addr}") {
            bail!("the target command must say where the port goes with {{port}} or {{addr}}: {command:?}");
        }
        let port = free_port()?;
        let line =
            command.replace("{addr}", &format!("127.0.0.1:{port}")).replace("{port}", &port.to_string());
        let url = format!("{}://127.0.0.1:{port}", security.scheme());
        let launch = Launch { url: url.clone(), line, env: env.to_vec(), security, log: log.to_owned() };
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let (child, channel) = launch.start(startup_timeout).await?;
        Ok(Target { url, channel, process: Some(child), launch: Some(launch) })
    }

    /// Kills a started command's whole process group with SIGKILL, as a
    /// crash or an out-of-memory kill would, and waits for its shell.
    /// Nothing happens to an address.
    pub async fn kill(&mut self) -> Result<()> {
        let Some(mut child) = self.process.take() else { return Ok(()) };
        let group = child.id();
        if let Some(pid) = group {
            signal_group(pid, "KILL").await;
        }
        child.wait().await?;
        // The shell may die before the server it started: wait until the
        // whole group is gone, so that its port is free to listen on again.
        let started = Instant::now();
        while let Some(pid) = group
            && signal_group(pid, "0").await
        {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("the target's processes outlived SIGKILL for 10 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Starts a killed or stopped command again, on the same port, and
    /// waits until it answers. Channels already made reconnect to it.
    pub async fn start_again(&mut self, startup_timeout: Duration) -> Result<()> {
        let Some(launch) = &self.launch else {
            bail!("only a target the run started can be started again");
        };
        if self.process.is_some() {
            bail!("the target command is still running");
        }
        let (child, _) = launch.start(startup_timeout).await?;
        self.process = Some(child);
        Ok(())
    }

    /// `http://host:port` or `https://host:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A channel to the target; clones share one connection.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The process group of a started command (its shell's pid), for
    /// [`crate::memory::peak_rss_of_group`].
    pub fn process_group(&self) -> Option<u32> {
        self.process.as_ref()?.id()
    }

    /// Stops a started command: SIGTERM to its process group, SIGKILL after
    /// `grace`. Returns whether it stopped cleanly: every process of the
    /// group gone within `grace`, and the shell's exit status 0, or death by
    /// the SIGTERM itself (the `sh` wrapping the command dies that way even
    /// when the server shuts down gracefully). Waiting for the whole group,
    /// not the shell alone, matters: `sh` does not always exec its command,
    /// and a server that hangs on shutdown must not outlive the run.
    /// Addresses are left alone.
    pub async fn stop(mut self, grace: Duration) -> Result<bool> {
        self.launch = None;
        let Some(mut child) = self.process.take() else {
            return Ok(true);
        };
        let group = child.id();
        if let Some(pid) = group {
            signal_group(pid, "TERM").await;
        }
        let started = Instant::now();
        let clean = match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => {
                let status = status?;
                status.success() || status.signal() == Some(SIGTERM)
            }
            Err(_) => false,
        };
        let mut emptied = false;
        while let Some(pid) = group {
            // Signal 0 only asks whether any process of the group is left.
            if !signal_group(pid, "0").await {
                emptied = true;
                break;
            }
            if started.elapsed() >= grace {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !emptied && let Some(pid) = group {
            signal_group(pid, "KILL").await;
        }
        let _ = child.wait().await;
        Ok(clean && (emptied || group.is_none()))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &self.process
            && let Some(pid) = child.id()
        {
            // Synchronous on purpose: Drop may run while the runtime is
            // shutting down. `kill_on_drop` covers the shell itself.
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
        }
    }
}

impl Launch {
    /// Starts the line, its output appended to the log, and waits until it
    /// answers.
    async fn start(&self, startup_timeout: Duration) -> Result<(Child, Channel)> {
        let Launch { url, line, env, security, log } = self;
        let log_file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(line)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {line:?}"))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the target command exited with {status} before serving (its output is in {}): {line}",
                    log.display()
                );
            }
            if let Ok(channel) = crate::connect_with(url, security.clone()).await
                && answers(&channel).await
            {
                return Ok((child, channel));
            }
            if started.elapsed() > startup_timeout {
                if let Some(pid) = child.id() {
                    signal_group(pid, "KILL").await;
                }
                bail!("the target command did not answer at {url} within {startup_timeout:?}: {line}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Health `Check("")` or reflection answering means the server is up. Any
/// answer counts, even an error status: it proves something serves gRPC.
async fn answers(channel: &Channel) -> bool {
    match crate::health::status(channel.clone(), "").await {
        Ok(_) => true,
        Err(status) => status.code() != tonic::Code::Unavailable && status.code() != tonic::Code::Unknown,
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Sends `signal` to the process group led by `pid`; whether any process
/// of the group received it. By pid, not by `Child`: once the shell has
/// been reaped, `Child` forgets its pid, while the group may live on.
async fn signal_group(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}
