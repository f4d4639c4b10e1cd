//! Starting further instances of the target with one thing changed, for
//! faults that only a differently configured server can show: S3 that does
//! not answer, a model without a mask head. Possible for targets the suite
//! starts itself (`--target-cmd`), and for any other way of starting one
//! that a caller plugs in ([`Launcher::Custom`], e.g. a test's in-process
//! server).

use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use futures_util::future::BoxFuture;
use harness::target::Target;
use harness::transport::Channel;

/// How long a relaunched target may take to answer.
const STARTUP: Duration = Duration::from_secs(60);

/// What differs in the relaunched instance.
#[derive(Debug, Clone)]
pub enum Change {
    /// It stores uploads into this S3 server instead.
    S3(S3Endpoint),
    /// It serves this model file (`--model PATH`, which our services and the
    /// Python peers both accept).
    Model(PathBuf),
}

/// S3 as a target is told about it.
#[derive(Debug, Clone)]
pub struct S3Endpoint {
    /// `http://host:port`.
    pub url: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
}

impl S3Endpoint {
    /// An address where nothing listens: a port that was free a moment ago.
    pub fn closed() -> Result<S3Endpoint> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Ok(S3Endpoint {
            url: format!("http://127.0.0.1:{port}"),
            access_key: "unreachable".to_owned(),
            secret_key: "unreachable".to_owned(),
        })
    }

    /// The standard AWS variables that name this server.
    fn env(&self) -> [(String, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", &self.access_key),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_key),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
    }
}

/// A further instance, connected; dropping it stops it.
pub struct Launched {
    url: String,
    channel: Channel,
    _running: Box<dyn Send + Sync>,
}

impl Launched {
    /// An instance at `url`, kept running for as long as `running` lives.
    pub fn new(url: String, channel: Channel, running: impl Send + Sync + 'static) -> Launched {
        Launched { url, channel, _running: Box::new(running) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection to it.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

impl fmt::Debug for Launched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launched").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Starts an instance with a change, however the caller does that.
pub type LaunchFn = dyn Fn(Change) -> BoxFuture<'static, Result<Launched>> + Send + Sync;

/// How the run can start its target again.
#[derive(Clone)]
pub enum Launcher {
    /// The run's `--target-cmd`, with the environment the target got.
    Command {
        /// The shell line, with `{port}` or `{addr}`.
        command: String,
        /// What the first instance was given (the S3 variables).
        env: Vec<(String, String)>,
        /// How the first instance is reached.
        security: harness::Security,
    },
    /// Any other way, e.g. a test serving in-process.
    Custom(Arc<LaunchFn>),
}

impl fmt::Debug for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Launcher::Command { command, .. } => f.debug_tuple("Command").field(command).finish(),
            Launcher::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl Launcher {
    /// Starts another instance of the target with `change`, and connects.
    pub async fn launch(&self, change: Change) -> Result<Launched> {
        match self {
            Launcher::Custom(launch) => launch(change).await,
            Launcher::Command { command, env, security } => {
                let (command, env) = match &change {
                    Change::Model(model) => (format!("{command} --model '{}'", model.display()), env.clone()),
                    Change::S3(s3) => {
                        let mut env = env.clone();
                        env.retain(|(key, _)| !key.starts_with("AWS_"));
                        env.extend(s3.env());
                        (command.clone(), env)
                    }
                };
                let log =
                    std::env::temp_dir().join(format!("conformance-relaunch-{}.log", std::process::id()));
                let target = Target::command_with_env(&command, &env, security.clone(), STARTUP, &log)
                    .await
                    .with_context(|| format!("starting the target again with {change:?}"))?;
                Ok(Launched::new(target.url().to_owned(), target.channel(), target))
            }
        }
    }
}
