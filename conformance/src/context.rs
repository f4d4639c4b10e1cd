//! What every case gets: the target, a client, descriptors and settings.

use std::{collections::BTreeSet, time::Duration};

use harness::{DynamicClient, arbitrary::Sizes, discovery::Discovery, transport::Channel};
use prost_reflect::{DescriptorPool, MethodDescriptor};

use crate::launcher::Launcher;

/// Knobs a user sets on the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Inputs each property tries (proptest's "cases"; here a case is a
    /// named check).
    pub inputs: u32,
    /// Root seed; every case derives its own from it and its name.
    pub seed: u64,
    /// The target's message size limit, for the oversized-message check.
    pub max_message_size: usize,
    /// How large generated inputs grow: strings, bytes, collections,
    /// streams, and whole messages (kept under `max_message_size`).
    pub sizes: Sizes,
    /// How long the harness gives a whole call (or a check's wait for the
    /// server to settle) before it reports that the server never answered.
    /// This is what catches ignored deadlines and replies held back until
    /// half-close. An upload, which may rightly take long, gets it as its
    /// stall limit instead: the most time it may go without progress.
    pub watchdog: Duration,
    /// How long one case may spend shrinking a failure; the smallest input
    /// found by then is reported, and the report says the bound was hit.
    pub shrink_time: Duration,
    /// The command-line arguments that shape what cases do (target, S3,
    /// limits), repeated in every rerun command.
    pub replay_args: Vec<String>,
    /// How the user runs the suite again: `conformance`, or
    /// `cargo xtask conformance --` when xtask launched it.
    pub command: String,
    /// What the user says the target demands of a client.
    pub demands: Demands,
}

/// Credentials the target demands, as the user states them
/// (`--expect-auth`, `--expect-client-cert`): the security checks that call
/// without them run only then, since an open server rightly answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demands {
    /// Calls must carry the run's headers (a bearer token, say).
    pub auth: bool,
    /// Connections must show a client certificate the target trusts.
    pub client_certificate: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            inputs: 64,
            seed: 0,
            max_message_size: 16 * 1024 * 1024,
            sizes: Sizes::default(),
            watchdog: Duration::from_secs(10),
            shrink_time: Duration::from_secs(20),
            replay_args: Vec::new(),
            command: "conformance".to_owned(),
            demands: Demands::default(),
        }
    }
}

/// Shared by every case of a run.
#[derive(Debug, Clone)]
pub struct Context {
    /// `http://host:port` or `https://host:port` of the target, for
    /// reproduction commands.
    pub url: String,
    /// One connection to the target, for everything the suite sends: its
    /// TLS and headers are the user's. Deadlines are sent, never enforced
    /// on the client side, so checks see what the server does with them.
    pub channel: Channel,
    /// The contracts this toolkit knows, compiled into `contracts`.
    pub contracts: DescriptorPool,
    /// Schemas of the services the target serves, each from reflection, the
    /// user's file or the contracts.
    pub served: DescriptorPool,
    /// Fully qualified names of the services the target serves.
    pub services: BTreeSet<String>,
    /// How the served set was learned, and each schema's source.
    pub discovery: Discovery,
    /// Command-line knobs.
    pub settings: Settings,
    /// Judges messages by the `buf.validate` rules in `served`, caching
    /// what it compiles.
    pub rules: std::sync::Arc<harness::rules::Rules>,
    /// Starts another instance of the target with one thing changed; `None`
    /// for a target the suite did not start.
    pub launcher: Option<Launcher>,
    /// Process group of a target command, for its peak memory.
    pub target_process_group: Option<u32>,
    /// What the upload-integrity suite needs beyond the target.
    #[cfg(feature = "s3")]
    pub uploads: Uploads,
    /// A second implementation of the inference contract, serving the same
    /// model, that the target's detections must agree with.
    #[cfg(feature = "images")]
    pub reference: Option<Reference>,
}

/// Another implementation the target is compared with: `--reference`.
#[cfg(feature = "images")]
#[derive(Debug, Clone)]
pub struct Reference {
    /// What it is, for reports.
    pub label: String,
    /// `http://host:port`.
    pub url: String,
    /// A connection to it.
    pub channel: Channel,
}

/// The multipart part size of most uploaders, and the default of the AWS
/// CLI and SDKs' transfer managers.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// The upload-integrity suite's view of the world: the S3 server the
/// target stores into.
#[cfg(feature = "s3")]
#[derive(Debug, Clone)]
pub struct Uploads {
    /// The S3 server uploads are read back from, or why there is none (the
    /// upload cases are then skipped with that reason).
    pub store: Result<std::sync::Arc<crate::s3::Store>, String>,
    /// The target's multipart part size: the suite's sizes straddle it.
    pub part_size: usize,
    /// Whether to run the opt-in 1 GiB upload.
    pub large: bool,
    /// How long S3 must be quiet about a key before the suite takes it that
    /// the target has finished with it: "never stored" must hold that long.
    pub settle: Duration,
}

#[cfg(feature = "s3")]
impl Default for Uploads {
    fn default() -> Self {
        Uploads {
            store: Err("no S3 server to read uploads back from: pass --s3-endpoint".to_owned()),
            part_size: DEFAULT_PART_SIZE,
            large: false,
            settle: Duration::from_millis(500),
        }
    }
}

impl Context {
    /// A fresh client on the shared connection.
    pub fn client(&self) -> DynamicClient {
        DynamicClient::new(self.channel.clone())
    }

    /// A method of one of our contracts, by `package.Service` and name.
    pub fn contract_method(&self, service: &str, method: &str) -> MethodDescriptor {
        self.contracts
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .unwrap_or_else(|| panic!("{service}/{method} is not in the contracts"))
    }
}
