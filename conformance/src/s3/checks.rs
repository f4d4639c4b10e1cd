//! What the upload suite asserts about S3, as verdicts: the store knows how
//! to look, the suite decides what must be there.

use std::{future::Future, time::Duration};

use super::{Store, Stored};
use crate::report::Failure;

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

    /// No object at `key`, once the server has had `patience` to clean up
    /// after a call that ended without one.
    pub async fn expect_absent(&self, key: &str, patience: Duration) -> Result<(), Failure> {
        eventually(patience, || async {
            match self.read(key).await.map_err(unanswered)? {
                None => Ok(()),
                Some(stored) => {
                    Err(Failure::new(format!("no object at {key:?}"), format!("an object of {stored}")))
                }
            }
        })
        .await
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
