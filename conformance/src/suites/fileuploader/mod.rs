//! `uploader.FileUploader`: upload integrity, proven against S3 itself.
//!
//! Every upload is read back from S3 and compared by length and SHA-256;
//! after every case, successful or not, S3 must hold no unfinished
//! multipart upload. The response's own figures are checked too, but never
//! trusted in place of the read-back.

mod client;
mod content;

use std::{future::Future, sync::Arc, time::Duration};

use contracts::uploader::UploadResponse;
use futures_util::future::join_all;
use proptest::prelude::*;

use self::{
    client::{Fault, Outcome, Plan},
    content::{Chunking, Content, chunking},
};
use super::{Case, Context, Failure, MethodDescriptor, Verdict, expect_eq, verdict};
use crate::{
    launcher::S3Endpoint,
    property,
    s3::{Store, Stored},
};

const SERVICE: &str = "uploader.FileUploader";

/// Bytes one size's round-trip property may move: bounds the number of
/// inputs for large sizes, so a run stays in seconds.
const ROUND_TRIP_BUDGET: u64 = 160 << 20;

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let method = ctx.contract_method(SERVICE, "Upload");
    let part = ctx.uploads.part_size as u64;
    let mut cases: Vec<Case> = [
        ("0", 0),
        ("1", 1),
        ("part-1", part - 1),
        ("part", part),
        ("part+1", part + 1),
        ("3part+7", 3 * part + 7),
        ("64MiB", 64 << 20),
    ]
    .into_iter()
    .map(|(label, size)| round_trip(&method, label, size))
    .collect();
    cases.extend([
        upload_case(&method, "cancel-at-random-offset", cancel_at_random_offset),
        upload_case(&method, "name-change-mid-stream", name_change_mid_stream),
        upload_case(&method, "bad-names", bad_names),
        upload_case(&method, "longest-name", longest_name),
        upload_case(&method, "expected-sha256-mismatch", expected_sha256_mismatch),
        upload_case(&method, "deadline-mid-upload", deadline_mid_upload),
        upload_case(&method, "s3-unreachable", s3_unreachable),
        upload_case(&method, "32-concurrent-uploads", concurrent_uploads),
        upload_case(&method, "8-concurrent-overwrites", concurrent_overwrites),
    ]);
    if ctx.uploads.large {
        cases.push(upload_case(&method, "1GiB-flat-memory", large));
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

/// Files of exactly `size` bytes, in any chunking, with and without
/// `expected_sha256`, arrive intact.
fn round_trip(method: &MethodDescriptor, label: &str, size: u64) -> Case {
    upload_case(method, &format!("round-trip/size={label}"), move |ctx, store, name| async move {
        let cases = (ROUND_TRIP_BUDGET / size.max(1)).clamp(1, u64::from(ctx.settings.cases)) as u32;
        property::check_n(
            ctx,
            &name,
            cases,
            || (chunking(), any::<u64>(), any::<bool>()),
            show_plan(size),
            move |ctx, (chunking, seed, send_expected)| {
                let store = store.clone();
                async move {
                    let content = Content { seed, size };
                    let digests = content.digests();
                    let plan = Plan {
                        key: store.fresh_key("round-trip"),
                        content,
                        chunking,
                        expected_sha256: send_expected.then(|| hex::encode(digests.0)),
                        fault: Fault::None,
                    };
                    let response = succeed(&ctx, plan.clone()).await?;
                    expect_intact(&ctx, &store, &plan, &response, digests).await
                }
            },
        )
        .await
    })
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
    let cases = ctx.settings.cases.min(12);
    property::check_n(
        ctx,
        &name,
        cases,
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
            let cancel_at = (size as f64 * at) as u64;
            let plan = Plan {
                key: store.fresh_key("cancelled"),
                content: Content { seed, size },
                chunking,
                expected_sha256: None,
                fault: Fault::CancelAt(cancel_at),
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
            expect_absent_eventually(&ctx, &store, &key).await?;
            expect_no_unfinished(&ctx, &store, &key).await
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
            expect_absent_eventually(&ctx, &store, key).await?;
            expect_no_unfinished(&ctx, &store, key).await?;
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
    verdict(expect_no_unfinished(&ctx, &store, store.prefix()).await)
}

/// The longest name the contract allows, 1024 bytes, is stored under
/// exactly that key. Its segments stay short, so a file-system-backed S3
/// can hold it.
async fn longest_name(ctx: Arc<Context>, store: Arc<Store>, _: String) -> Verdict {
    if let Some(max) = store.max_key_bytes {
        return Verdict::Skipped { reason: format!("{} stores keys of at most {max} bytes", store.label) };
    }
    let mut key = store.fresh_key("longest-name");
    while key.len() < 1024 {
        let segment = (1024 - key.len() - 1).min(200);
        key.push('/');
        key.push_str(&"n".repeat(segment.max(1)));
    }
    key.truncate(1024);
    let content = Content { seed: 3, size: 4096 };
    let digests = content.digests();
    let plan = Plan { key, content, chunking: Chunking::whole(), expected_sha256: None, fault: Fault::None };
    verdict(
        async {
            let response = succeed(&ctx, plan.clone()).await?;
            expect_intact(&ctx, &store, &plan, &response, digests).await
        }
        .await,
    )
}

/// A wrong `expected_sha256`: DATA_LOSS, and the object that was there
/// before is still there, untouched.
async fn expected_sha256_mismatch(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    let part = ctx.uploads.part_size as u64;
    let cases = ctx.settings.cases.min(6);
    property::check_n(
        ctx,
        &name,
        cases,
        move || (faulty_size(part), chunking(), any::<u64>()),
        |_, input: &(u64, Chunking, u64)| {
            (format!("size {} bytes, chunks {:?}", input.0, input.1.lengths), None)
        },
        move |ctx, (size, chunking, seed)| {
            let store = store.clone();
            async move {
                let key = store.fresh_key("sha256-mismatch");
                let old = b"the object before the failed upload".to_vec();
                let old_stored = Stored { size: old.len() as u64, sha256: sha256(&old) };
                store.put(&key, old).await.map_err(s3_failed)?;
                let content = Content { seed, size };
                let mut wrong = content.digests().0;
                wrong[0] ^= 1;
                let plan = Plan {
                    key: key.clone(),
                    content,
                    chunking,
                    expected_sha256: Some(hex::encode(wrong)),
                    fault: Fault::None,
                };
                expect_refused(&ctx, plan, tonic::Code::DataLoss).await?;
                let now = store.read(&key).await.map_err(s3_failed)?;
                expect_eq("the object after the refused upload", Some(old_stored), now)?;
                expect_no_unfinished(&ctx, &store, &key).await?;
                delete(&store, &key).await
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
            expect_absent_eventually(&ctx, &store, &key).await?;
            expect_no_unfinished(&ctx, &store, &key).await
        }
        .await,
    )
}

/// The target's S3 does not answer: uploads fail with UNAVAILABLE (or
/// `success = false`), promptly, instead of hanging.
async fn s3_unreachable(ctx: Arc<Context>, _: Arc<Store>, _: String) -> Verdict {
    let Some(launcher) = ctx.uploads.launcher.clone() else {
        return Verdict::Skipped {
            reason: "needs a target the suite starts (in-process or --target-cmd)".into(),
        };
    };
    let outcome = async {
        let s3 = S3Endpoint::closed().map_err(|err| Failure::new("a free port", err.to_string()))?;
        let target = launcher
            .launch(&s3)
            .await
            .map_err(|err| Failure::new("a second instance of the target to start", format!("{err:#}")))?;
        let chan = harness::connect(&target.url())
            .await
            .map_err(|err| Failure::new("the second instance to accept connections", format!("{err:#}")))?;
        // An S3 client retries a refused connection a few times, with
        // backoff: seconds, not the moments a watchdog is tuned for.
        let patience = ctx.settings.watchdog.max(Duration::from_secs(30));
        for size in [1024, 2 * ctx.uploads.part_size as u64 + 1] {
            let plan = Plan {
                key: format!("unreachable/{size}"),
                content: Content { seed: 9, size },
                chunking: Chunking::whole(),
                expected_sha256: None,
                fault: Fault::None,
            };
            match client::upload(chan.clone(), plan, patience).await? {
                Outcome::Answered(Err(status)) if status.code() == tonic::Code::Unavailable => {}
                Outcome::Answered(Ok(response)) if !response.success => {}
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

/// 32 uploads of random sizes at once, each byte-exact.
async fn concurrent_uploads(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    let part = ctx.uploads.part_size as u64;
    property::check_n(
        ctx,
        &name,
        2,
        move || prop::collection::vec((0..=2 * part + 1, chunking(), any::<u64>()), 32),
        |_, uploads: &Vec<(u64, Chunking, u64)>| {
            (format!("sizes {:?}", uploads.iter().map(|u| u.0).collect::<Vec<_>>()), None)
        },
        move |ctx, uploads| {
            let store = store.clone();
            async move {
                let plans: Vec<Plan> = uploads
                    .into_iter()
                    .map(|(size, chunking, seed)| Plan {
                        key: store.fresh_key("concurrent"),
                        content: Content { seed, size },
                        chunking,
                        expected_sha256: None,
                        fault: Fault::None,
                    })
                    .collect();
                let results = join_all(plans.iter().map(|plan| succeed(&ctx, plan.clone()))).await;
                for (plan, result) in plans.iter().zip(results) {
                    expect_intact(&ctx, &store, plan, &result?, plan.content.digests()).await?;
                }
                Ok(())
            }
        },
    )
    .await
}

/// 8 uploads of different contents to one key at once, while a reader
/// keeps reading it: every read, and the final object, is exactly one of
/// the uploads (or the object from before), never a mix.
async fn concurrent_overwrites(ctx: Arc<Context>, store: Arc<Store>, name: String) -> Verdict {
    let part = ctx.uploads.part_size as u64;
    property::check_n(
        ctx,
        &name,
        2,
        move || prop::collection::vec((1..=2 * part + 1, any::<u64>()), 8),
        |_, uploads: &Vec<(u64, u64)>| {
            (format!("sizes {:?}", uploads.iter().map(|u| u.0).collect::<Vec<_>>()), None)
        },
        move |ctx, uploads| {
            let store = store.clone();
            async move {
                let key = store.fresh_key("overwritten");
                let before = b"the object before the overwrites".to_vec();
                let mut allowed = vec![Stored { size: before.len() as u64, sha256: sha256(&before) }];
                store.put(&key, before).await.map_err(s3_failed)?;
                let plans: Vec<Plan> = uploads
                    .into_iter()
                    .map(|(size, seed)| Plan {
                        key: key.clone(),
                        content: Content { seed, size },
                        chunking: Chunking { lengths: vec![1 << 20] },
                        expected_sha256: None,
                        fault: Fault::None,
                    })
                    .collect();
                allowed.extend(
                    plans
                        .iter()
                        .map(|plan| Stored { size: plan.content.size, sha256: plan.content.digests().0 }),
                );

                let (done, mut finished) = tokio::sync::watch::channel(false);
                let reader = {
                    let (store, key, allowed) = (store.clone(), key.clone(), allowed.clone());
                    tokio::spawn(async move {
                        let mut reads = 0u32;
                        loop {
                            let seen = store.read_racing(&key).await.map_err(s3_failed)?;
                            reads += 1;
                            if !seen.is_some_and(|seen| allowed.contains(&seen)) {
                                return Err(Failure::new(
                                    "every read to return the old object or exactly one upload",
                                    format!("read #{reads} returned {seen:?}"),
                                ));
                            }
                            if *finished.borrow_and_update() {
                                return Ok(reads);
                            }
                        }
                    })
                };
                let results = join_all(plans.iter().map(|plan| succeed(&ctx, plan.clone()))).await;
                let _ = done.send(true);
                for result in results {
                    result?;
                }
                reader.await.map_err(|err| Failure::new("the reader to finish", err.to_string()))??;
                let last = store.read(&key).await.map_err(s3_failed)?;
                if !last.is_some_and(|last| allowed[1..].contains(&last)) {
                    return Err(Failure::new(
                        "the final object to equal exactly one of the uploads",
                        format!("{last:?}"),
                    ));
                }
                expect_no_unfinished(&ctx, &store, &key).await?;
                delete(&store, &key).await
            }
        },
    )
    .await
}

/// 1 GiB arrives intact, and the server's peak memory does not grow with
/// the file: it may not rise by more than 64 MiB over what a 64 MiB upload
/// already needed.
async fn large(ctx: Arc<Context>, store: Arc<Store>, _: String) -> Verdict {
    const ALLOWED_GROWTH: u64 = 64 << 20;
    let peak = || ctx.uploads.target_process_group.and_then(harness::memory::peak_rss_of_group);
    let outcome = async {
        let mut peaks = Vec::new();
        for size in [64u64 << 20, 1 << 30] {
            let content = Content { seed: size, size };
            let digests = content.digests();
            let plan = Plan {
                key: store.fresh_key("large"),
                content,
                chunking: Chunking { lengths: vec![1 << 20] },
                expected_sha256: None,
                fault: Fault::None,
            };
            let started = std::time::Instant::now();
            let response = succeed(&ctx, plan.clone()).await?;
            let elapsed = started.elapsed();
            expect_intact(&ctx, &store, &plan, &response, digests).await?;
            peaks.push((size, peak(), elapsed));
        }
        let figures: Vec<String> = peaks
            .iter()
            .map(|(size, peak, elapsed)| {
                let peak =
                    peak.map_or("not measured".to_owned(), |p| format!("{:.1} MiB", p as f64 / 1048576.0));
                format!(
                    "{} MiB in {:.1}s ({:.0} MiB/s), server peak RSS {peak}",
                    size >> 20,
                    elapsed.as_secs_f64(),
                    (*size >> 20) as f64 / elapsed.as_secs_f64()
                )
            })
            .collect();
        match (peaks[0].1, peaks[1].1) {
            (Some(small), Some(big)) if big > small + ALLOWED_GROWTH => Err(Failure::new(
                format!("peak RSS to grow by at most {} MiB from 64 MiB to 1 GiB", ALLOWED_GROWTH >> 20),
                figures.join("; "),
            )),
            (Some(_), Some(_)) => Ok(figures.join("; ")),
            _ => Ok(format!("{}; memory is measured only for a --target-cmd", figures.join("; "))),
        }
    }
    .await;
    match outcome {
        Ok(figures) => Verdict::Measured { figures },
        Err(failure) => Verdict::Failed(failure),
    }
}

/// Sizes for fault cases: small (one PutObject) or multipart.
fn faulty_size(part: u64) -> impl Strategy<Value = u64> {
    prop_oneof![1..part, part + 1..=3 * part]
}

fn show_plan(
    size: u64,
) -> impl Fn(&Context, &(Chunking, u64, bool)) -> (String, Option<String>) + Send + 'static {
    move |_, (chunking, seed, expected)| {
        (
            format!(
                "{size} bytes from seed {seed}, chunk lengths {:?} in turn, expected_sha256 {}",
                chunking.lengths,
                if *expected { "sent" } else { "not sent" }
            ),
            None,
        )
    }
}

/// Runs `plan`, which must succeed.
async fn succeed(ctx: &Context, plan: Plan) -> Result<UploadResponse, Failure> {
    let size = plan.content.size;
    match client::upload(ctx.channel.clone(), plan, ctx.settings.watchdog).await? {
        Outcome::Answered(Ok(response)) => Ok(response),
        Outcome::Answered(Err(status)) => Err(Failure::new(
            format!("a successful upload of {size} bytes"),
            format!("{:?}: {}", status.code(), status.message()),
        )),
        Outcome::Cancelled => unreachable!("only CancelAt plans cancel"),
    }
}

/// Runs `plan`, which the server must refuse with `code`.
async fn expect_refused(ctx: &Context, plan: Plan, code: tonic::Code) -> Result<(), Failure> {
    let key = plan.key.clone();
    match client::upload(ctx.channel.clone(), plan, ctx.settings.watchdog).await? {
        Outcome::Answered(Err(status)) if status.code() == code => Ok(()),
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

/// After a successful upload of `plan`, whose content has `digests`: the
/// response reports what was sent, S3 holds exactly that, and no upload is
/// left unfinished. The object is then deleted.
async fn expect_intact(
    ctx: &Context,
    store: &Store,
    plan: &Plan,
    response: &UploadResponse,
    digests: ([u8; 32], u32),
) -> Result<(), Failure> {
    expect_response(response, plan, digests)?;
    expect_stored(store, &plan.key, Stored { size: plan.content.size, sha256: digests.0 }).await?;
    expect_no_unfinished(ctx, store, &plan.key).await?;
    delete(store, &plan.key).await
}

/// The response reports what was sent.
fn expect_response(response: &UploadResponse, plan: &Plan, digests: ([u8; 32], u32)) -> Result<(), Failure> {
    expect_eq("success", true, response.success)?;
    expect_eq("key", plan.key.as_str(), response.key.as_str())?;
    expect_eq("size", plan.content.size, response.size)?;
    expect_eq("sha256_hex", hex::encode(digests.0), response.sha256_hex.clone())?;
    expect_eq("crc32c", format!("{:08x}", digests.1), format!("{:08x}", response.crc32c))
}

/// S3 holds exactly `expected` at `key`.
async fn expect_stored(store: &Store, key: &str, expected: Stored) -> Result<(), Failure> {
    let stored = store.read(key).await.map_err(s3_failed)?;
    if stored == Some(expected) {
        return Ok(());
    }
    let show = |s: Option<Stored>| {
        s.map_or("no object".to_owned(), |s| format!("{} bytes, SHA-256 {}", s.size, hex::encode(s.sha256)))
    };
    Err(Failure::new(format!("S3 to hold {}", show(Some(expected))), format!("S3 holds {}", show(stored))))
}

/// No object at `key`, once the server has had time to clean up after a
/// call that ended without it.
async fn expect_absent_eventually(ctx: &Context, store: &Store, key: &str) -> Result<(), Failure> {
    eventually(ctx, || async {
        match store.read(key).await.map_err(s3_failed)? {
            None => Ok(()),
            Some(stored) => Err(Failure::new(
                format!("no object at {key:?}"),
                format!("an object of {} bytes", stored.size),
            )),
        }
    })
    .await
}

/// No multipart upload left unfinished under `key`. Cleanup after a
/// cancelled call runs after the call is gone, so it gets the watchdog's
/// time to finish.
async fn expect_no_unfinished(ctx: &Context, store: &Store, key: &str) -> Result<(), Failure> {
    eventually(ctx, || async {
        let unfinished = store.unfinished_uploads(key).await.map_err(s3_failed)?;
        if unfinished.is_empty() {
            Ok(())
        } else {
            Err(Failure::new("no unfinished multipart upload", unfinished.join(", ")))
        }
    })
    .await
}

/// Retries `check` until it passes or the watchdog's time is up.
async fn eventually<F, Fut>(ctx: &Context, check: F) -> Result<(), Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let started = std::time::Instant::now();
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(failure) if started.elapsed() >= ctx.settings.watchdog => return Err(failure),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn delete(store: &Store, key: &str) -> Result<(), Failure> {
    store.delete(key).await.map_err(s3_failed)
}

fn s3_failed(err: anyhow::Error) -> Failure {
    Failure::new("S3 to answer the suite", format!("{err:#}"))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
