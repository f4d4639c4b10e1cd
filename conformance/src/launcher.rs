//! Starting further instances of the target with a different S3 server,
//! for faults that only a differently configured server can show (S3 that
//! does not answer). Possible for targets the suite starts itself: our
//! services in-process, or a `--target-cmd`.

use std::time::Duration;

use anyhow::Result;
use harness::target::Target;

/// How the run started its target.
#[derive(Debug, Clone)]
pub enum Launcher {
    /// Our services, in this process, with this configuration.
    InProcess(Box<services::Config>),
    /// A shell command with `{port}` or `{addr}`.
    Command(String),
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
}

/// A further instance; dropping it stops it.
#[derive(Debug)]
pub enum Launched {
    /// Served by this process.
    InProcess(services::RunningServer),
    /// A started command.
    Command(Box<Target>),
}

impl Launched {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self {
            Launched::InProcess(server) => server.url(),
            Launched::Command(target) => target.url().to_owned(),
        }
    }
}

impl Launcher {
    /// Starts another instance of the target serving the model at `model`.
    /// A command gets `--model PATH` appended, which our services and the
    /// Python reference both accept.
    pub async fn launch_with_model(&self, model: &std::path::Path) -> Result<Launched> {
        match self {
            Launcher::InProcess(config) => {
                let mut config = (**config).clone();
                let mut inference = config.inference.clone().unwrap_or_default();
                inference.model = services::inference::ModelSource::File(model.to_owned());
                config.inference = Some(inference);
                Ok(Launched::InProcess(services::spawn(config).await?))
            }
            Launcher::Command(command) => {
                let command = format!("{command} --model '{}'", model.display());
                let log =
                    std::env::temp_dir().join(format!("conformance-relaunch-{}.log", std::process::id()));
                let target = Target::command_with_env(&command, &[], Duration::from_secs(60), &log).await?;
                Ok(Launched::Command(Box::new(target)))
            }
        }
    }

    /// Starts another instance of the target that stores uploads into `s3`.
    pub async fn launch(&self, s3: &S3Endpoint) -> Result<Launched> {
        match self {
            Launcher::InProcess(config) => {
                let mut config = (**config).clone();
                config.s3.backend = services::s3::Backend::Static {
                    endpoint: s3.url.clone(),
                    access_key: s3.access_key.clone(),
                    secret_key: s3.secret_key.clone(),
                };
                Ok(Launched::InProcess(services::spawn(config).await?))
            }
            Launcher::Command(command) => {
                let env = [
                    ("AWS_ENDPOINT_URL", s3.url.as_str()),
                    ("AWS_ACCESS_KEY_ID", &s3.access_key),
                    ("AWS_SECRET_ACCESS_KEY", &s3.secret_key),
                    ("AWS_REGION", "us-east-1"),
                ]
                .map(|(key, value)| (key.to_owned(), value.to_owned()));
                let log =
                    std::env::temp_dir().join(format!("conformance-relaunch-{}.log", std::process::id()));
                let target = Target::command_with_env(command, &env, Duration::from_secs(60), &log).await?;
                Ok(Launched::Command(Box::new(target)))
            }
        }
    }
}
