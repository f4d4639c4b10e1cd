//! Uploads that go wrong on purpose: the client cancels, renames the file
//! mid-stream, names it badly, sends a wrong digest or lets its deadline
//! pass, or the target's S3 does not answer. Whatever the status, nothing
//! half-written may be left in S3.

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::future::join_all;
use proptest::prelude::*;

use super::{
    Case, Context, Failure, MethodDescriptor, Verdict,
    client::{self, Fault, Outcome, Plan},
    content::{Chunking, Content, chunking},
    expect_refused, faulty_size, upload_case,
};
use crate::{
    launcher::{Change, S3Endpoint},
    property,
    s3::Store,
    suites::{expect_eq, verdict},
};

pub(super) fn cases(method: &MethodDescriptor) -> Vec<Case> {
    vec![
        upload_case(method, "cancel-at-random-offset", cancel_at_random_offset),
        upload_case(method, "name-change-mid-stream", name_change_mid_stream),
        upload_case(method, "bad-names", bad_names),
        upload_case(method, "expected-sha256-mismatch", expected_sha256_mismatch),
        upload_case(method, "deadline-mid-upload", deadline_mid_upload),
        upload_case(method, "s3-unreachable", s3_unreachable),
    ]
}

/// An upload that something interrupts `at` (0 to 1) of the way through.
#[derive(Debug, Clone)]
struct MidUpload {
    size: u64,
    at: f64,
    chunking: Chunking,
    seed: u64,
}

/// A property over uploads that `what` happens to partway: single PutObject
/// sizes and multipart ones, any chunking, any point.
async fn mid_upload<F, Fut>(
    ctx: Arc<Context>,
    store: Arc<Store>,
    name: String,
    what: &'static str,
    check: F,
) -> Verdict
where
    F: Fn(Arc<Context>, Arc<Store>, MidUpload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let part = ctx.uploads.part_size as u64;
    let inputs = ctx.settings.inputs.min(12);
    property::check_n(
        ctx,
        &name,
        inputs,
        move || {
            (faulty_size(part), 0.0..=1.0f64, chunking(), any::<u64>())
                .prop_map(|(size, at, chunking, seed)| MidUpload { size, at, chunking, seed })
        },
        move |_, input: &MidUpload| {
            let MidUpload { size, at, chunking, .. } = input;
            (format!("size {size} bytes, {what} at {:.0}%, chunks {:?}", at * 100.0, chunking.lengths), None)
        },
        move |ctx, input| check(ctx, store.clone(), input),
    )
    .await
}

/// The client disappears mid-upload: no object, no unfinished upload.
async fn cancel_at_random_offset(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    mid_upload(
        ctx,
        store,
        name,
        "cancelled",
        |ctx, store, MidUpload { size, at, chunking, seed }| async move {
            let plan = Plan {
                key: store.fresh_key("cancelled"),
                content: Content { seed, size },
                chunking,
                expected_sha256: None,
                fault: Fault::CancelAt((size as f64 * at) as u64),
            };
            let key = plan.key.clone();
            match client::upload(ctx.channel.clone(), plan, ctx.settings.watchdog).await? {
                Outcome::Cancelled => {}
                Outcome::Answered(answer) => {
                    return Err(Failure::new(
                        "no answer before the client cancels",
                        format!("{:?}", answer.map(|r| r.message)),
                    ));
                }
            }
            store.expect_absent(&key, ctx.settings.watchdog).await?;
            store.expect_no_unfinished(&key, ctx.settings.watchdog).await
        },
    )
    .await
}

/// A later message names another file: INVALID_ARGUMENT, and neither name
/// is stored.
async fn name_change_mid_stream(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    mid_upload(ctx, store, name, "renamed", |ctx, store, MidUpload { size, at, chunking, seed }| async move {
        let content = Content { seed, size };
        let cuts = chunking.cut(size);
        if cuts.len() < 2 {
            // One message cannot change its own name.
            return Ok(());
        }
        // Any message but the first, which names the file.
        let index = 1 + ((cuts.len() - 1) as f64 * at) as usize;
        let offset: u64 = cuts[..index.min(cuts.len() - 1)].iter().map(|&c| c as u64).sum();
        let other = store.fresh_key("renamed-to");
        let plan = Plan {
            key: store.fresh_key("renamed-from"),
            content,
            chunking,
            expected_sha256: None,
            fault: Fault::RenameAt(offset, other.clone()),
        };
        let key = plan.key.clone();
        expect_refused(&ctx, plan, tonic::Code::InvalidArgument).await?;
        for key in [&key, &other] {
            store.expect_absent(key, ctx.settings.watchdog).await?;
            store.expect_no_unfinished(key, ctx.settings.watchdog).await?;
        }
        Ok(())
    })
    .await
}

/// Every kind of name the contract forbids: INVALID_ARGUMENT, nothing stored.
async fn bad_names(ctx: Arc<Context>, store: Arc<Store>, _: String) -> Verdict {
    let prefix = store.fresh_key("bad-name");
    let names = [
        ("empty", String::new()),
        ("1025 bytes", format!("{prefix}/{}", "x".repeat(1024 - prefix.len()))),
        ("'..' segment first", format!("../{prefix}")),
        ("'..' segment inside", format!("{prefix}/../x")),
        ("'..' segment last", format!("{prefix}/..")),
        ("leading '/'", format!("/{prefix}/x")),
        ("NUL", format!("{prefix}/a\0b")),
        ("newline", format!("{prefix}/a\nb")),
        ("escape", format!("{prefix}/a\u{1b}b")),
        ("DEL", format!("{prefix}/a\u{7f}b")),
    ];
    let checks = names.into_iter().map(|(kind, key)| {
        let ctx = &ctx;
        async move {
            let plan = Plan {
                key: key.clone(),
                content: Content { seed: 1, size: 1024 },
                chunking: Chunking::whole(),
                expected_sha256: None,
                fault: Fault::None,
            };
            expect_refused(ctx, plan, tonic::Code::InvalidArgument)
                .await
                .map_err(|failure| Failure { expected: format!("{kind}: {}", failure.expected), ..failure })
        }
    });
    for outcome in join_all(checks).await {
        if let Err(failure) = outcome {
            return Verdict::Failed(failure);
        }
    }
    verdict(store.expect_no_unfinished(store.prefix(), ctx.settings.watchdog).await)
}

/// A wrong `expected_sha256`: DATA_LOSS, and the object that was there
/// before is still there, untouched.
async fn expected_sha256_mismatch(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    let part = ctx.uploads.part_size as u64;
    let inputs = ctx.settings.inputs.min(6);
    property::check_n(
        ctx,
        &name,
        inputs,
        move || (faulty_size(part), chunking(), any::<u64>()),
        |_, input: &(u64, Chunking, u64)| {
            (format!("size {} bytes, chunks {:?}", input.0, input.1.lengths), None)
        },
        move |ctx, (size, chunking, seed)| {
            let store = store.clone();
            async move {
                let key = store.fresh_key("sha256-mismatch");
                let old = store.seed(&key, b"the object before the failed upload".to_vec()).await?;
                let content = Content { seed, size };
                let mut wrong = content.stored().sha256;
                wrong[0] ^= 1;
                let plan = Plan {
                    key: key.clone(),
                    content,
                    chunking,
                    expected_sha256: Some(hex::encode(wrong)),
                    fault: Fault::None,
                };
                expect_refused(&ctx, plan, tonic::Code::DataLoss).await?;
                store.expect_holds(&key, old).await.map_err(|failure| Failure {
                    expected: format!("the object from before the refused upload: {}", failure.expected),
                    ..failure
                })?;
                store.expect_no_unfinished(&key, ctx.settings.watchdog).await?;
                store.remove(&key).await
            }
        },
    )
    .await
}

/// The client lets its deadline pass mid-upload: whatever status ends the
/// call, nothing is stored and no upload is left unfinished.
async fn deadline_mid_upload(ctx: Arc<Context>, store: Arc<Store>, _: String) -> Verdict {
    let part = ctx.uploads.part_size as u64;
    let plan = Plan {
        key: store.fresh_key("deadline"),
        content: Content { seed: 5, size: 3 * part },
        chunking: Chunking { lengths: vec![1 << 20] },
        expected_sha256: None,
        fault: Fault::StallAt(part + (part / 2), Duration::from_millis(500)),
    };
    let key = plan.key.clone();
    verdict(
        async {
            match client::upload(ctx.channel.clone(), plan, ctx.settings.watchdog).await? {
                Outcome::Answered(Err(_)) => {}
                other => {
                    return Err(Failure::new(
                        "the call to fail once its deadline passes",
                        format!("{other:?}"),
                    ));
                }
            }
            store.expect_absent(&key, ctx.settings.watchdog).await?;
            store.expect_no_unfinished(&key, ctx.settings.watchdog).await
        }
        .await,
    )
}

/// The target's S3 does not answer: uploads fail with UNAVAILABLE (or
/// `success = false`), promptly, instead of hanging.
async fn s3_unreachable(ctx: Arc<Context>, _: Arc<Store>, _: String) -> Verdict {
    let Some(launcher) = ctx.launcher.clone() else {
        return Verdict::Skipped { reason: "needs a target the suite starts (--target-cmd)".into() };
    };
    let outcome =
        async {
            let s3 = S3Endpoint::closed().map_err(|err| Failure::new("a free port", err.to_string()))?;
            let target = launcher.launch(Change::S3(s3)).await.map_err(|err| {
                Failure::new("a second instance of the target to start", format!("{err:#}"))
            })?;
            // An S3 client retries a refused connection a few times, with
            // backoff: seconds, more than a call's watchdog may be.
            let stall_limit = ctx.settings.watchdog.max(Duration::from_secs(30));
            for size in [1024, 2 * ctx.uploads.part_size as u64 + 1] {
                let plan = Plan {
                    key: format!("unreachable/{size}"),
                    content: Content { seed: 9, size },
                    chunking: Chunking::whole(),
                    expected_sha256: None,
                    fault: Fault::None,
                };
                match client::upload(target.channel(), plan, stall_limit).await? {
                    Outcome::Answered(Err(status)) if status.code() == tonic::Code::Unavailable => {}
                    Outcome::Answered(Ok(response)) => expect_eq("success", false, response.success)
                        .map_err(|failure| Failure {
                            expected: format!("UNAVAILABLE or success = false for {size} bytes"),
                            ..failure
                        })?,
                    other => {
                        return Err(Failure::new(
                            format!("UNAVAILABLE or success = false for {size} bytes"),
                            format!("{other:?}"),
                        ));
                    }
                }
            }
            Ok(())
        }
        .await;
    verdict(outcome)
}
