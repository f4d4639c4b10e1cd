//! `uploader.FileUploader`: upload integrity, proven against S3 itself.
//!
//! Every upload is read back from S3 and compared by length, SHA-256 and
//! CRC32C; after every case, successful or not, S3 must hold no unfinished
//! multipart upload. The response's own figures are checked too, but never
//! trusted in place of the read-back.
//!
//! The modules follow the themes of the cases: `round_trip` (every size,
//! any chunking, the longest name), `faults` (cancellation, renames, bad
//! names, digests, deadlines, S3 down), `concurrency` (many uploads, many
//! writers of one key), `large` (1 GiB in flat memory) and `refused` (an
//! upload without credentials stores nothing). `client` drives
//! one upload with its planned fault; `content` describes files and
//! chunkings in a few shrinkable numbers.

mod client;
mod concurrency;
mod content;
mod faults;
mod large;
mod refused;
mod round_trip;

use std::{future::Future, sync::Arc};

use contracts::uploader::UploadResponse;
use proptest::prelude::*;

use self::client::{Landed, Outcome, Plan, Upload};
use super::{Case, Context, Failure, MethodDescriptor, Verdict, expect_eq};
use crate::s3::{Settle, Store, Stored};

const SERVICE: &str = "uploader.FileUploader";

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let method = ctx.contract_method(SERVICE, "Upload");
    let mut cases = round_trip::cases(&method, ctx.uploads.part_size as u64);
    cases.extend(faults::cases(&method));
    cases.extend(concurrency::cases(&method));
    cases.extend(refused::cases(ctx));
    if ctx.uploads.large {
        cases.extend(large::cases(&method));
    }
    cases
}

/// A case that needs the S3 server: skipped, with the reason, without one.
fn upload_case<F, Fut>(method: &MethodDescriptor, property: &str, check: F) -> Case
where
    F: Fn(Arc<Context>, Arc<Store>, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Verdict> + Send + 'static,
{
    let name = format!("{SERVICE}/{}/{property}", method.name());
    let check = Arc::new(check);
    super::case(method, property, move |ctx| {
        let (check, name) = (check.clone(), name.clone());
        async move {
            match ctx.uploads.store.clone() {
                Ok(store) => check(ctx, store, name).await,
                Err(reason) => Verdict::Skipped { reason },
            }
        }
    })
}

/// Sizes for fault cases: small (one PutObject) or multipart.
fn faulty_size(part: u64) -> impl Strategy<Value = u64> {
    prop_oneof![1..part, part + 1..=3 * part]
}

/// Runs `plan`, with its fault timed by what `store` sees.
async fn run(ctx: &Context, store: Option<&Arc<Store>>, plan: Plan) -> Result<Upload, Failure> {
    client::upload(ctx.channel.clone(), store.cloned(), plan, ctx.settings.watchdog).await
}

/// How long the suite waits for the target to have finished with a key:
/// quiet for `--settle-ms`, for at most the watchdog's time.
fn settle(ctx: &Context) -> Settle {
    Settle { quiet: ctx.uploads.settle, limit: ctx.settings.watchdog.max(ctx.uploads.settle) }
}

/// Runs `plan`, which must succeed.
async fn succeed(ctx: &Context, plan: Plan) -> Result<UploadResponse, Failure> {
    let size = plan.content.size;
    match run(ctx, None, plan).await?.outcome {
        Outcome::Answered(Ok(response)) => Ok(response),
        Outcome::Answered(Err(status)) => Err(Failure::new(
            format!("a successful upload of {size} bytes"),
            format!("{:?}: {}", status.code(), status.message()),
        )),
        Outcome::Cancelled => unreachable!("only CancelAt plans cancel"),
    }
}

/// Runs `plan`, which the server must refuse with `code`; says where its
/// fault landed.
async fn expect_refused(
    ctx: &Context,
    store: Option<&Arc<Store>>,
    plan: Plan,
    code: tonic::Code,
) -> Result<Option<Landed>, Failure> {
    let key = plan.key.clone();
    let upload = run(ctx, store, plan).await?;
    match upload.outcome {
        Outcome::Answered(Err(status)) if status.code() == code => Ok(upload.landed),
        Outcome::Answered(Err(status)) => Err(Failure::new(
            format!("{code:?} for {key:?}"),
            format!("{:?}: {}", status.code(), status.message()),
        )),
        Outcome::Answered(Ok(response)) => {
            Err(Failure::new(format!("{code:?} for {key:?}"), format!("OK: {}", response.message)))
        }
        Outcome::Cancelled => unreachable!("only CancelAt plans cancel"),
    }
}

/// After a successful upload of `plan`: the response reports what was
/// sent, S3 holds exactly that, and no upload is left unfinished. The
/// object is then deleted.
async fn expect_intact(
    ctx: &Context,
    store: &Store,
    plan: &Plan,
    response: &UploadResponse,
) -> Result<(), Failure> {
    let sent = plan.content.stored();
    expect_response(response, plan, &sent)?;
    store.expect_holds(&plan.key, sent).await?;
    store.expect_no_unfinished(&plan.key, ctx.settings.watchdog).await?;
    store.remove(&plan.key).await
}

/// The response reports what was sent.
fn expect_response(response: &UploadResponse, plan: &Plan, sent: &Stored) -> Result<(), Failure> {
    expect_eq("success", true, response.success)?;
    expect_eq("key", plan.key.as_str(), response.key.as_str())?;
    expect_eq("size", sent.size, response.size)?;
    expect_eq("sha256_hex", hex::encode(sent.sha256), response.sha256_hex.clone())?;
    expect_eq("crc32c", format!("{:08x}", sent.crc32c), format!("{:08x}", response.crc32c))
}
