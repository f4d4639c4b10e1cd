//! Files arrive intact: every size that straddles the part size, any
//! chunking, with and without `expected_sha256`, and the longest name.

use proptest::prelude::*;

use super::{
    Case, MethodDescriptor, Verdict,
    client::Plan,
    content::{Chunking, Content, chunking},
    expect_intact, succeed, upload_case,
};
use crate::{property, suites::verdict};

/// Bytes one size's round-trip property may move: bounds the number of
/// inputs for large sizes, so a run stays in seconds.
const ROUND_TRIP_BUDGET: u64 = 160 << 20;

pub(super) fn cases(method: &MethodDescriptor, part: u64) -> Vec<super::Case> {
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
    .map(|(label, size)| round_trip(method, label, size))
    .collect();
    cases.push(upload_case(method, "longest-name", |ctx, store, _| async move {
        if let Some(max) = store.max_key_bytes {
            return Verdict::Skipped {
                reason: format!("{} stores keys of at most {max} bytes", store.label),
            };
        }
        let plan = Plan::clean(
            longest_key(&store.fresh_key("longest-name")),
            Content { seed: 3, size: 4096 },
            Chunking::whole(),
        );
        verdict(
            async {
                let response = succeed(&ctx, plan.clone()).await?;
                expect_intact(&ctx, &store, &plan, &response).await
            }
            .await,
        )
    }));
    cases
}

/// Files of exactly `size` bytes, in any chunking, with and without
/// `expected_sha256`, arrive intact.
fn round_trip(method: &MethodDescriptor, label: &str, size: u64) -> Case {
    upload_case(method, &format!("round-trip/size={label}"), move |ctx, store, name| async move {
        let inputs = (ROUND_TRIP_BUDGET / size.max(1)).clamp(1, u64::from(ctx.settings.inputs)) as u32;
        property::check_n(
            ctx,
            &name,
            inputs,
            || (chunking(), any::<u64>(), any::<bool>()),
            move |_, (chunking, seed, expected): &(Chunking, u64, bool)| {
                let sent = if *expected { "sent" } else { "not sent" };
                let text = format!(
                    "{size} bytes from seed {seed}, chunk lengths {:?} in turn, expected_sha256 {sent}",
                    chunking.lengths
                );
                (text, None)
            },
            move |ctx, (chunking, seed, send_expected)| {
                let store = store.clone();
                async move {
                    let content = Content { seed, size };
                    let plan = Plan {
                        expected_sha256: send_expected.then(|| hex::encode(content.stored().sha256)),
                        ..Plan::clean(store.fresh_key("round-trip"), content, chunking)
                    };
                    let response = succeed(&ctx, plan.clone()).await?;
                    expect_intact(&ctx, &store, &plan, &response).await
                }
            },
        )
        .await
    })
}

/// The longest name the contract allows, 1024 bytes, starting with
/// `prefix`. Its segments stay short, so a file-system-backed S3 can hold it.
fn longest_key(prefix: &str) -> String {
    let mut key = prefix.to_owned();
    while key.len() < 1024 {
        let segment = (1024 - key.len() - 1).min(200);
        key.push('/');
        key.push_str(&"n".repeat(segment.max(1)));
    }
    key.truncate(1024);
    key
}
