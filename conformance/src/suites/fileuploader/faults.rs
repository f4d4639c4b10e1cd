//! Uploads that go wrong on purpose: the client cancels, renames the file
//! mid-stream, names it badly, sends a wrong digest or lets its deadline
//! pass, or the target's S3 does not answer. Whatever the status, nothing
//! half-written may be left in S3.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use futures_util::future::join_all;
use proptest::prelude::*;

use super::{
    Case, Context, Failure, Landed, MethodDescriptor, Verdict,
    client::{self, Fault, Outcome, Plan},
    content::{Chunking, Content, chunking},
    expect_refused, faulty_size, run, settle, upload_case,
};
use crate::{
    launcher::{Change, S3Endpoint},
    property,
    s3::Store,
    suites::{expect_eq, verdict},
};

/// The deadline of the deadline fault: long enough that the stream reaches
/// S3 first, on any machine.
const DEADLINE: Duration = Duration::from_secs(2);

pub(super) fn cases(method: &MethodDescriptor) -> Vec<Case> {
    vec![
        upload_case(method, "cancel-at-random-offset", cancel_at_random_offset),
        upload_case(method, "name-change-mid-stream", name_change_mid_stream),
        upload_case(method, "bad-names", bad_names),
        upload_case(method, "expected-sha256-mismatch", expected_sha256_mismatch),
        upload_case(method, "expected-sha256-malformed", expected_sha256_malformed),
        upload_case(method, "deadline-mid-upload", deadline_mid_upload),
        upload_case(method, "s3-unreachable", s3_unreachable),
    ]
}

/// An upload that something interrupts `at` (0 to 1) of the way through,
/// at once or once S3 shows the target's upload.
#[derive(Debug, Clone)]
struct MidUpload {
    size: u64,
    at: f64,
    chunking: Chunking,
    seed: u64,
    wait_for_s3: bool,
}

impl MidUpload {
    fn plan(&self, key: String, fault: Fault) -> Plan {
        Plan {
            fault,
            wait_for_s3: self.wait_for_s3,
            ..Plan::clean(key, Content { seed: self.seed, size: self.size }, self.chunking.clone())
        }
    }
}

/// Where the faults of one property landed, over all its inputs.
#[derive(Debug, Default)]
struct Landings {
    before: AtomicU32,
    after: AtomicU32,
}

impl Landings {
    fn count(&self, landed: Option<Landed>) {
        match landed {
            Some(Landed::BeforeS3) => self.before.fetch_add(1, Ordering::Relaxed),
            Some(Landed::AfterS3) => self.after.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }

    /// A passing property's verdict: it must have exercised both the path
    /// where S3 held nothing yet and the one where the target had to abort.
    fn verdict(&self, what: &str) -> Verdict {
        let (before, after) = (self.before.load(Ordering::Relaxed), self.after.load(Ordering::Relaxed));
        let figures = format!("{what} {after} time(s) after S3 saw the upload, {before} before");
        if before > 0 && after > 0 {
            Verdict::Measured { figures }
        } else {
            Verdict::Skipped {
                reason: format!(
                    "{figures}: one path was never exercised, so the case cannot vouch for it (a target that \
                     touches S3 only once it has the whole file never reaches the abort path)"
                ),
            }
        }
    }
}

/// A property over uploads that `what` happens to partway: single PutObject
/// sizes and multipart ones, any chunking, any point, at once or once S3
/// shows the upload. `check` returns where its fault landed.
async fn mid_upload<F, Fut>(
    ctx: Arc<Context>,
    store: Arc<Store>,
    name: String,
    what: &'static str,
    check: F,
) -> Verdict
where
    F: Fn(Arc<Context>, Arc<Store>, MidUpload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Landed>, Failure>> + Send,
{
    let part = ctx.uploads.part_size as u64;
    let inputs = ctx.settings.inputs.min(12);
    let landings = Arc::new(Landings::default());
    let counted = landings.clone();
    let check = Arc::new(check);
    let verdict = property::check_n(
        ctx,
        &name,
        inputs,
        move || {
            (faulty_size(part), 0.0..=1.0f64, chunking(), any::<u64>(), any::<bool>()).prop_map(
                |(size, at, chunking, seed, wait_for_s3)| MidUpload { size, at, chunking, seed, wait_for_s3 },
            )
        },
        move |_, input: &MidUpload| {
            let MidUpload { size, at, chunking, wait_for_s3, .. } = input;
            let when = if *wait_for_s3 { ", once S3 shows the upload" } else { "" };
            let text = format!(
                "size {size} bytes, {what} at {:.0}%{when}, chunks {:?}",
                at * 100.0,
                chunking.lengths
            );
            (text, None)
        },
        move |ctx, input| {
            let (check, counted, store) = (check.clone(), counted.clone(), store.clone());
            async move {
                let landed = check(ctx, store, input).await?;
                counted.count(landed);
                Ok(())
            }
        },
    )
    .await;
    match verdict {
        Verdict::Passed => landings.verdict(what),
        other => other,
    }
}

/// The client disappears mid-upload: no object, then or after, and no
/// unfinished upload.
async fn cancel_at_random_offset(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    mid_upload(ctx, store, name, "cancelled", |ctx, store, input| async move {
        let key = store.fresh_key("cancelled");
        let plan = input.plan(key.clone(), Fault::CancelAt((input.size as f64 * input.at) as u64));
        let upload = run(&ctx, Some(&store), plan).await?;
        match upload.outcome {
            Outcome::Cancelled => {}
            Outcome::Answered(answer) => {
                return Err(Failure::new(
                    "no answer before the client cancels",
                    format!("{:?}", answer.map(|r| r.message)),
                ));
            }
        }
        store.expect_stays_absent(&key, settle(&ctx)).await?;
        store.expect_no_unfinished(&key, ctx.settings.watchdog).await?;
        Ok(upload.landed)
    })
    .await
}

/// A later message names another file: INVALID_ARGUMENT, and neither name
/// is stored, then or after.
async fn name_change_mid_stream(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    mid_upload(ctx, store, name, "renamed", |ctx, store, input| async move {
        // Any message but the first, which names the file.
        let cuts = input.chunking.cut(input.size);
        let index = 1 + ((cuts.len().saturating_sub(1)) as f64 * input.at) as usize;
        let offset: u64 = cuts[..index.min(cuts.len())].iter().map(|&c| c as u64).sum();
        let (key, other) = (store.fresh_key("renamed-from"), store.fresh_key("renamed-to"));
        let plan = input.plan(key.clone(), Fault::RenameAt(offset, other.clone()));
        let landed = expect_refused(&ctx, Some(&store), plan, tonic::Code::InvalidArgument).await?;
        for key in [&key, &other] {
            store.expect_stays_absent(key, settle(&ctx)).await?;
            store.expect_no_unfinished(key, ctx.settings.watchdog).await?;
        }
        Ok(landed)
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
            let plan = Plan::clean(key.clone(), Content { seed: 1, size: 1024 }, Chunking::whole());
            expect_refused(ctx, None, plan, tonic::Code::InvalidArgument)
                .await
                .map(drop)
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
                    expected_sha256: Some(hex::encode(wrong)),
                    ..Plan::clean(key.clone(), content, chunking)
                };
                expect_refused(&ctx, None, plan, tonic::Code::DataLoss).await?;
                let what = format!("the object from before the refused upload, {old}, then and after");
                store.expect_settled(&key, Some(old), &what, settle(&ctx)).await?;
                store.expect_no_unfinished(&key, ctx.settings.watchdog).await?;
                store.remove(&key).await
            }
        },
    )
    .await
}

/// An `expected_sha256` that is not 64 lowercase hex digits: INVALID_ARGUMENT,
/// and nothing stored. The upper-case form of the right digest is among them,
/// so a server that compares without regard to case is caught.
async fn expected_sha256_malformed(ctx: Arc<Context>, store: Arc<Store>, _: String) -> Verdict {
    let content = Content { seed: 3, size: 1024 };
    let right = hex::encode(content.stored().sha256);
    let digests = [
        ("upper case", right.to_uppercase()),
        ("63 digits", right[1..].to_owned()),
        ("65 digits", format!("{right}0")),
        ("a letter past f", format!("g{}", &right[1..])),
        ("empty", String::new()),
    ];
    let checks = digests.into_iter().map(|(kind, digest)| {
        let (ctx, store) = (&ctx, &store);
        async move {
            let key = store.fresh_key("malformed-sha256");
            let plan = Plan {
                expected_sha256: Some(digest),
                ..Plan::clean(key.clone(), content, Chunking::whole())
            };
            let checked = async {
                expect_refused(ctx, None, plan, tonic::Code::InvalidArgument).await?;
                store.expect_stays_absent(&key, settle(ctx)).await
            };
            checked
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

/// The client lets its deadline pass mid-upload, once S3 shows the upload,
/// and never cancels: the server itself must end the call with
/// DEADLINE_EXCEEDED, and nothing is stored, then or after.
async fn deadline_mid_upload(ctx: Arc<Context>, store: Arc<Store>, _: String) -> Verdict {
    let part = ctx.uploads.part_size as u64;
    let key = store.fresh_key("deadline");
    let plan = Plan {
        fault: Fault::StallAt(part / 2, DEADLINE),
        wait_for_s3: true,
        ..Plan::clean(key.clone(), Content { seed: 5, size: 3 * part }, Chunking { lengths: vec![1 << 20] })
    };
    verdict(
        async {
            let upload = run(&ctx, Some(&store), plan).await?;
            match upload.outcome {
                Outcome::Answered(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {}
                other => {
                    return Err(Failure::new(
                        format!("DEADLINE_EXCEEDED from the server once the {DEADLINE:?} deadline passes"),
                        format!("{other:?}"),
                    ));
                }
            }
            store.expect_stays_absent(&key, settle(&ctx)).await?;
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
                let plan =
                    Plan::clean(format!("unreachable/{size}"), Content { seed: 9, size }, Chunking::whole());
                match client::upload(target.channel(), None, plan, stall_limit).await?.outcome {
                    Outcome::Answered(Err(status))
                        if status.code() == tonic::Code::Unavailable
                            && !harness::transport::connection_failed(&status) => {}
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
