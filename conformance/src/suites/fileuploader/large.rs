//! 1 GiB arrives intact, and the server's peak memory does not grow with
//! the file. Opt-in (`--large`): it moves more than a gigabyte.

use std::sync::Arc;

use super::{
    Case, Context, Failure, MethodDescriptor, Verdict,
    client::Plan,
    content::{Chunking, Content},
    expect_intact, succeed, upload_case,
};
use crate::s3::Store;

/// How much more a 1 GiB upload may take than a 64 MiB one: a server that
/// streams needs the same buffers for both.
const ALLOWED_GROWTH: u64 = 64 << 20;

pub(super) fn cases(method: &MethodDescriptor) -> Vec<Case> {
    vec![upload_case(method, "1GiB-flat-memory", large)]
}

async fn large(ctx: Arc<Context>, store: Arc<Store>, _: String) -> Verdict {
    let peak = || ctx.target_process_group.and_then(harness::memory::peak_rss_of_group);
    let outcome = async {
        let mut peaks = Vec::new();
        for size in [64u64 << 20, 1 << 30] {
            let plan = Plan::clean(
                store.fresh_key("large"),
                Content { seed: size, size },
                Chunking { lengths: vec![1 << 20] },
            );
            let started = std::time::Instant::now();
            let response = succeed(&ctx, plan.clone()).await?;
            let elapsed = started.elapsed();
            expect_intact(&ctx, &store, &plan, &response).await?;
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
