//! Many uploads at once: each byte-exact, and writers racing on one key
//! never leave a mix of their contents.

use futures_util::future::join_all;
use proptest::prelude::*;

use super::{
    Case, Failure, MethodDescriptor,
    client::Plan,
    content::{Chunking, Content, chunking},
    expect_intact, succeed, upload_case,
};
use crate::{property, s3::Stored};

pub(super) fn cases(method: &MethodDescriptor) -> Vec<Case> {
    vec![
        upload_case(method, "32-concurrent-uploads", |ctx, store, name| async move {
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
                            .map(|(size, chunking, seed)| {
                                Plan::clean(store.fresh_key("concurrent"), Content { seed, size }, chunking)
                            })
                            .collect();
                        let results = join_all(plans.iter().map(|plan| succeed(&ctx, plan.clone()))).await;
                        for (plan, result) in plans.iter().zip(results) {
                            expect_intact(&ctx, &store, plan, &result?).await?;
                        }
                        Ok(())
                    }
                },
            )
            .await
        }),
        upload_case(method, "8-concurrent-overwrites", |ctx, store, name| async move {
            let part = ctx.uploads.part_size as u64;
            property::check_n(
                ctx,
                &name,
                2,
                move || prop::collection::vec((1..=2 * part + 1, any::<u64>()), 8),
                |_, uploads: &Vec<(u64, u64)>| {
                    (format!("sizes {:?}", uploads.iter().map(|u| u.0).collect::<Vec<_>>()), None)
                },
                move |ctx, uploads| concurrent_overwrites(ctx, store.clone(), uploads),
            )
            .await
        }),
    ]
}

/// 8 uploads of different contents to one key at once, while a reader
/// keeps reading it: every read, and the final object, is exactly one of
/// the uploads (or the object from before), never a mix.
async fn concurrent_overwrites(
    ctx: std::sync::Arc<super::Context>,
    store: std::sync::Arc<crate::s3::Store>,
    uploads: Vec<(u64, u64)>,
) -> Result<(), Failure> {
    let key = store.fresh_key("overwritten");
    let before = store.seed(&key, b"the object before the overwrites".to_vec()).await?;
    let plans: Vec<Plan> = uploads
        .into_iter()
        .map(|(size, seed)| {
            Plan::clean(key.clone(), Content { seed, size }, Chunking { lengths: vec![1 << 20] })
        })
        .collect();
    let uploaded: Vec<Stored> = plans.iter().map(|plan| plan.content.stored()).collect();
    let mut allowed = vec![before];
    allowed.extend(&uploaded);

    let (done, mut finished) = tokio::sync::watch::channel(false);
    let reader = {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            loop {
                reads += 1;
                store
                    .expect_one_of(
                        &key,
                        &allowed,
                        "every read to return the old object or exactly one upload",
                    )
                    .await
                    .map_err(|failure| Failure {
                        actual: format!("read #{reads}: {}", failure.actual),
                        ..failure
                    })?;
                if *finished.borrow_and_update() {
                    return Ok::<_, Failure>(reads);
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
    store.expect_one_of(&key, &uploaded, "the final object to equal exactly one of the uploads").await?;
    store.expect_no_unfinished(&key, ctx.settings.watchdog).await?;
    store.remove(&key).await
}
