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
pub mod generic;
#[cfg(feature = "images")]
pub mod latency;
pub mod launcher;
pub mod property;
pub mod report;
pub mod reproduce;
pub mod runner;
#[cfg(feature = "s3")]
pub mod s3;
pub mod smoke;
pub mod suites;

use std::{collections::BTreeSet, path::Path, sync::Arc};

use anyhow::Result;
use tonic::transport::Channel;

use crate::{
    case::Case,
    context::{Context, Settings},
};

/// Builds the run's context: asks the target what it serves by reflection,
/// falling back to `descriptors` (a descriptor-set file) or, lacking that,
/// our contracts, when the target offers no reflection.
pub async fn connect(
    url: &str,
    channel: Channel,
    descriptors: Option<&Path>,
    settings: Settings,
) -> Result<Context> {
    let contracts = harness::descriptors::embedded();
    let (served, services, has_reflection) = match harness::reflection::fetch(channel.clone()).await {
        Ok(reflected) => {
            let mut pool = reflected.pool;
            if let Some(path) = descriptors {
                pool = harness::descriptors::from_file(path)?;
            }
            (pool, reflected.services.into_iter().collect(), true)
        }
        Err(err) => {
            let pool = match descriptors {
                Some(path) => harness::descriptors::from_file(path)?,
                None => contracts.clone(),
            };
            eprintln!(
                "note: no server reflection ({err:#}); assuming the target serves every service in the descriptors"
            );
            let services: BTreeSet<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
            (pool, services, false)
        }
    };
    let raw = harness::transport::RawChannel::new(url)?;
    Ok(Context {
        url: url.to_owned(),
        channel,
        raw,
        contracts,
        served,
        services,
        has_reflection,
        settings,
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
    cases.extend(suites::cases(ctx));
    cases
}

/// Runs everything selected and returns the results.
pub async fn run(ctx: Arc<Context>, selection: &runner::Selection) -> Vec<report::CaseResult> {
    let cases = all_cases(&ctx);
    runner::run(ctx, &cases, selection).await
}
