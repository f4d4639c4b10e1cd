//! An upload without credentials stores nothing: the refusal comes before
//! the work, not after it. Reported with the security checks, and run only
//! when the user says the target demands credentials (`--expect-auth`).

use std::sync::Arc;

use super::{
    SERVICE,
    client::{self, Outcome, Plan},
    content::{Chunking, Content},
    settle,
};
use crate::{
    case::Case,
    context::Context,
    report::{Failure, Verdict},
    s3::Store,
};

/// The case, for a target that demands credentials; `security/credentials`
/// stands for it otherwise.
pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let name = format!("security/{SERVICE}/Upload/refused-upload-stores-nothing");
    if !ctx.settings.demands.auth {
        return Vec::new();
    }
    vec![Case::new("security", name, Some(SERVICE), |ctx| async move {
        match ctx.uploads.store.clone() {
            Ok(store) => match stores_nothing(&ctx, store).await {
                Ok(()) => Verdict::Passed,
                Err(failure) => Verdict::Failed(failure),
            },
            Err(reason) => Verdict::Skipped { reason },
        }
    })]
}

async fn stores_nothing(ctx: &Context, store: Arc<Store>) -> Result<(), Failure> {
    let security = ctx.channel.security();
    let headers = crate::security::without_credentials(security.headers(), false);
    let channel = ctx.channel.secured(security.with_headers(headers));
    // One object small enough for a single PutObject, one in parts.
    for size in [1024, ctx.uploads.part_size as u64 + 1] {
        let key = store.fresh_key("unauthenticated");
        let plan = Plan::clean(key.clone(), Content { seed: 12, size }, Chunking::whole());
        match client::upload(channel.clone(), None, plan, ctx.settings.watchdog).await?.outcome {
            Outcome::Answered(Err(status)) if status.code() == tonic::Code::Unauthenticated => {}
            other => {
                return Err(Failure::new(
                    format!("UNAUTHENTICATED for an upload of {size} bytes without credentials"),
                    format!("{other:?}"),
                ));
            }
        }
        store.expect_stays_absent(&key, settle(ctx)).await?;
        store.expect_no_unfinished(&key, ctx.settings.watchdog).await?;
    }
    Ok(())
}
