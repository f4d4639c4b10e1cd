//! The conformance suite behind `cargo xtask conformance`.
//!
//! A run connects to a target, learns what it serves (reflection, or the
//! descriptors it is given), and runs three kinds of [`case::Case`]:
//! health smoke checks, generic checks that hold for every gRPC method, and
//! the semantic properties of each seed contract. Every case ends in a
//! [`report::Verdict`] rather than a panic, so one run reports everything.
//!
//! The suite is an independent oracle: it talks to every target over the
//! network, our own services included, and links none of their code.

pub mod case;
pub mod context;
pub mod declared;
mod gate;
pub mod generic;
#[cfg(feature = "images")]
pub mod latency;
pub mod launcher;
pub mod load;
pub mod property;
pub mod report;
pub mod reproduce;
pub mod runner;
#[cfg(feature = "s3")]
pub mod s3;
pub mod security;
pub mod smoke;
pub mod suites;

use std::{collections::BTreeSet, path::PathBuf, sync::Arc};

use anyhow::Result;
use harness::transport::Channel;

use crate::{
    case::Case,
    context::{Context, Settings},
};

/// What the user says about the target's schemas and services.
#[derive(Debug, Clone, Default)]
pub struct Discover {
    /// A descriptor-set file (`--descriptors`), for services reflection
    /// cannot describe.
    pub descriptors: Option<PathBuf>,
    /// The services the target serves (`--services`), when it cannot say.
    pub services: Option<Vec<String>>,
}

/// Builds the run's context: learns what the target serves and where each
/// service's schema comes from (see [`harness::discovery`]).
pub async fn connect(channel: Channel, discover: &Discover, settings: Settings) -> Result<Context> {
    let contracts = harness::descriptors::embedded();
    let file = match &discover.descriptors {
        Some(path) => Some((path.clone(), harness::descriptors::from_file(path)?)),
        None => None,
    };
    let fallbacks = harness::discovery::Fallbacks { file, contracts: contracts.clone() };
    let discovery =
        harness::discovery::discover(channel.clone(), &fallbacks, discover.services.as_deref()).await?;
    let services: BTreeSet<String> = discovery.served.iter().map(|s| s.name.clone()).collect();
    Ok(Context {
        url: channel.url(),
        channel,
        contracts,
        served: discovery.pool.clone(),
        services,
        discovery,
        settings,
        rules: Default::default(),
        launcher: None,
        target_process_group: None,
        #[cfg(feature = "s3")]
        uploads: context::Uploads::default(),
        #[cfg(feature = "images")]
        reference: None,
    })
}

/// Every case this suite has, for `ctx`'s target.
pub fn all_cases(ctx: &Context) -> Vec<Case> {
    let mut cases = smoke::cases(ctx);
    cases.extend(generic::cases(ctx));
    cases.extend(declared::cases(ctx));
    cases.extend(security::cases(ctx));
    cases.extend(suites::cases(ctx));
    cases
}

/// Runs everything selected and returns the results.
pub async fn run(ctx: Arc<Context>, selection: &runner::Selection) -> Vec<report::CaseResult> {
    let cases = all_cases(&ctx);
    runner::run(ctx, &cases, selection).await
}
