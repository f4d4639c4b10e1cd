//! The suite's side channel into its own S3 server: when each key was last
//! asked about. The upload suite owns the server, so it can see what a
//! target does with S3 while a call is in flight (has it started its upload
//! yet?) and after (has it stopped touching the key?), without trusting the
//! target's word or guessing from how long our own services take.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

/// Last request time per object key of one bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Activity {
    bucket: String,
    last: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Activity {
    pub(super) fn new(bucket: &str) -> Activity {
        Activity { bucket: bucket.to_owned(), last: Arc::default() }
    }

    /// Notes a request for `path` (path-style: `/bucket/key`), now.
    pub(super) fn record(&self, path: &str) {
        if let Some(key) = self.key_of(path) {
            self.last.lock().expect("not poisoned").insert(key, Instant::now());
        }
    }

    /// When `key` was last asked about, if ever.
    pub(super) fn last(&self, key: &str) -> Option<Instant> {
        self.last.lock().expect("not poisoned").get(key).copied()
    }

    fn key_of(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix('/')?.strip_prefix(self.bucket.as_str())?.strip_prefix('/')?;
        let key = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
        (!key.is_empty()).then(|| key.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_path_style_requests_to_the_bucket() {
        let activity = Activity::new("uploads");
        activity.record("/uploads/a%20b/c.txt");
        activity.record("/other/x");
        activity.record("/uploads");
        assert!(activity.last("a b/c.txt").is_some());
        assert!(activity.last("x").is_none());
    }
}
