//! One commit at a time per key.
//!
//! S3 makes an overwrite atomic: a reader sees the old object or the new
//! one. The embedded s3s-fs does not quite: it renames the new data into
//! place, then writes the object's checksums to a separate file, so two
//! overwrites racing each other can leave one's data with the other's
//! checksums, and every later checked read fails. Serializing the final
//! request of uploads to the same key (PutObject, CompleteMultipartUpload)
//! rules that out for everything this server stores, and costs real S3
//! nothing: parts still upload concurrently, and S3 orders commits to one
//! key anyway.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::OwnedMutexGuard;

/// Locks by object key; entries go away with their last user.
#[derive(Debug, Default)]
pub(crate) struct CommitLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while a key's commit is in flight.
#[derive(Debug)]
pub(crate) struct CommitGuard<'a> {
    owner: &'a CommitLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl CommitLocks {
    /// Waits until no other commit to `key` is in flight.
    pub(crate) async fn lock(&self, key: &str) -> CommitGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().expect("never poisoned: no panics under it");
            locks.entry(key.to_owned()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        CommitGuard { owner: self, key: key.to_owned(), guard: Some(guard) }
    }
}

impl Drop for CommitGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().expect("never poisoned: no panics under it");
        // Only the map holds it now: nobody waits, so forget the key.
        if locks.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(&self.key);
        }
    }
}
