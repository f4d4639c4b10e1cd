//! What the upload suite asserts about S3, as verdicts: the store knows how
//! to look, the suite decides what must be there.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use super::{Store, Stored};
use crate::report::Failure;

/// How long the suite waits for a target to have finished with a key.
#[derive(Debug, Clone, Copy)]
pub struct Settle {
    /// S3 must have been quiet about the key this long.
    pub quiet: Duration,
    /// The longest the suite waits for that, in all.
    pub limit: Duration,
}

impl Store {
    /// S3 holds exactly `expected` at `key`.
    pub async fn expect_holds(&self, key: &str, expected: Stored) -> Result<(), Failure> {
        let stored = self.read(key).await.map_err(unanswered)?;
        if stored == Some(expected) {
            return Ok(());
        }
        let show = |stored: Option<Stored>| stored.map_or("no object".to_owned(), |s| s.to_string());
        Err(Failure::new(format!("S3 to hold {expected}"), format!("S3 holds {}", show(stored))))
    }

    /// S3 holds, at `key`, exactly one of `allowed`.
    pub async fn expect_one_of(&self, key: &str, allowed: &[Stored], what: &str) -> Result<(), Failure> {
        let stored = self.read(key).await.map_err(unanswered)?;
        match stored {
            Some(stored) if allowed.contains(&stored) => Ok(()),
            Some(stored) => Err(Failure::new(what, format!("S3 holds {stored}"))),
            None => Err(Failure::new(what, "no object")),
        }
    }

    /// No object at `key`, now and until the target has demonstrably
    /// finished with it (see [`Store::expect_settled`]).
    pub async fn expect_stays_absent(&self, key: &str, settle: Settle) -> Result<(), Failure> {
        self.expect_settled(key, None, &format!("no object at {key:?}"), settle).await
    }

    /// `key` holds `expected` (`None`: no object) now, and keeps holding it
    /// until S3 has been quiet about the key for `settle.quiet`, or
    /// `settle.limit` has passed: "never" properties must hold after the
    /// call, not just at the first instant, since a target may still be
    /// writing. Quiet means no request from the target for the key, where
    /// the suite serves S3 and sees every request; elsewhere, no change in
    /// what the key holds or the multipart uploads under it.
    pub async fn expect_settled(
        &self,
        key: &str,
        expected: Option<Stored>,
        what: &str,
        settle: Settle,
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let mut quiet_since = started;
        let mut state: Option<(Option<Stored>, Vec<String>)> = None;
        loop {
            let stored = self.read(key).await.map_err(unanswered)?;
            if stored != expected {
                let show = |stored: Option<Stored>| stored.map_or("no object".to_owned(), |s| s.to_string());
                let after = format!("{:.0?} after the call ended", started.elapsed());
                return Err(Failure::new(what, format!("S3 holds {} {after}", show(stored))));
            }
            match self.last_request(key) {
                Some(last) => quiet_since = quiet_since.max(last),
                None if self.sees_requests() => {}
                None => {
                    let now = (stored, self.unfinished_uploads(key).await.map_err(unanswered)?);
                    if state.as_ref().is_some_and(|before| *before != now) {
                        quiet_since = Instant::now();
                    }
                    state = Some(now);
                }
            }
            if quiet_since.elapsed() >= settle.quiet || started.elapsed() >= settle.limit {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// No multipart upload left unfinished under `key_prefix`. Cleanup after
    /// a cancelled call runs after the call is gone, so it gets `patience`.
    pub async fn expect_no_unfinished(&self, key_prefix: &str, patience: Duration) -> Result<(), Failure> {
        eventually(patience, || async {
            let unfinished = self.unfinished_uploads(key_prefix).await.map_err(unanswered)?;
            if unfinished.is_empty() {
                Ok(())
            } else {
                Err(Failure::new("no unfinished multipart upload", unfinished.join(", ")))
            }
        })
        .await
    }

    /// Puts `data` at `key` directly, as a verdict.
    pub async fn seed(&self, key: &str, data: Vec<u8>) -> Result<Stored, Failure> {
        let stored = Stored::of(&data);
        self.put(key, data).await.map_err(unanswered)?;
        Ok(stored)
    }

    /// Deletes `key` once a check is done with it, as a verdict.
    pub async fn remove(&self, key: &str) -> Result<(), Failure> {
        self.delete(key).await.map_err(unanswered)
    }
}

/// S3 itself failed the suite: not the target's fault, but no verdict can
/// be reached without it.
fn unanswered(err: anyhow::Error) -> Failure {
    Failure::new("S3 to answer the suite", format!("{err:#}"))
}

/// Retries `check` until it passes or `patience` is spent.
async fn eventually<F, Fut>(patience: Duration, check: F) -> Result<(), Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let started = std::time::Instant::now();
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(failure) if started.elapsed() >= patience => return Err(failure),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
