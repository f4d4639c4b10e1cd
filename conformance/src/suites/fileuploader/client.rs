//! Drives one upload: the content's bytes in the planned messages, with a
//! fault injected where the plan says, under a stall limit: how long the
//! upload may go without progress, rather than a limit on the whole call
//! (a 1 GiB upload takes a while; a stalled one must still be caught).
//!
//! A fault is timed by what S3 sees, not by a guess at how fast the target
//! works: with `wait_for_s3`, the stream is held at the fault point until S3
//! shows the target's upload for the key, sending more data while it does
//! not, so the fault lands on an upload in progress. Uploads go through the
//! harness's transport, which sends a deadline and never enforces it: when
//! one passes, what the client sees is what the server did.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use contracts::uploader::{UploadRequest, UploadResponse, file_uploader_client::FileUploaderClient};
use harness::transport::Channel;
use tokio::sync::{mpsc, oneshot};

use super::content::{Chunking, Content};
use crate::{report::Failure, s3::Store};

/// How long the stream waits for S3 after each message sent past the fault
/// point, before it sends the next: short, since sending more data is what
/// lets a target that fills whole parts first reach S3 at all.
const HOLD_STEP: Duration = Duration::from_millis(100);

/// How long one upload may be held in all, waiting for S3: past it, the
/// stream goes on without pausing (still looking after each message), so a
/// target that touches S3 only at the end costs seconds, not minutes.
const HOLD_BUDGET: Duration = Duration::from_secs(1);

/// What goes wrong on purpose, at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fault {
    /// A clean upload.
    None,
    /// The client cancels the call once the messages before this offset
    /// are on their way.
    CancelAt(u64),
    /// The message starting at or after this offset names another file.
    RenameAt(u64, String),
    /// The client stops sending after this offset, without half-closing,
    /// and lets its deadline pass.
    StallAt(u64, Duration),
}

impl Fault {
    fn offset(&self) -> Option<u64> {
        match self {
            Fault::None => None,
            Fault::CancelAt(at) | Fault::RenameAt(at, _) | Fault::StallAt(at, _) => Some(*at),
        }
    }
}

/// Where a fault landed: before S3 saw anything of the key, or on an
/// upload S3 already held (the path that must abort it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Landed {
    /// S3 had seen nothing of the key.
    BeforeS3,
    /// S3 had seen the target's upload.
    AfterS3,
}

/// One upload.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) key: String,
    pub(super) content: Content,
    pub(super) chunking: Chunking,
    pub(super) expected_sha256: Option<String>,
    pub(super) fault: Fault,
    /// Hold the stream at the fault point until S3 shows the upload.
    pub(super) wait_for_s3: bool,
}

impl Plan {
    /// A clean upload of `content` to `key`.
    pub(super) fn clean(key: String, content: Content, chunking: Chunking) -> Plan {
        Plan { key, content, chunking, expected_sha256: None, fault: Fault::None, wait_for_s3: false }
    }
}

/// How an upload ended, as the client saw it.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The server answered.
    Answered(Result<UploadResponse, tonic::Status>),
    /// The client cancelled as planned.
    Cancelled,
}

/// An upload's end, and where its fault landed.
#[derive(Debug)]
pub(super) struct Upload {
    pub(super) outcome: Outcome,
    pub(super) landed: Option<Landed>,
}

/// Runs `plan` on `channel`, timing its fault by what `store` sees. Fails
/// only when the server stops making progress for `stall_limit`: the caller
/// judges the outcome.
pub(super) async fn upload(
    channel: Channel,
    store: Option<Arc<Store>>,
    plan: Plan,
    stall_limit: Duration,
) -> Result<Upload, Failure> {
    let progress = Arc::new(AtomicU64::new(0));
    let (landed_tx, mut landed_rx) = oneshot::channel();
    let (cancel, timeout) = match &plan.fault {
        Fault::CancelAt(_) => (true, None),
        Fault::StallAt(_, timeout) => (false, Some(*timeout)),
        _ => (false, None),
    };
    let messages = messages(plan, store, progress.clone(), landed_tx);
    let mut client = FileUploaderClient::new(channel).max_decoding_message_size(64 << 20);
    let mut request = tonic::Request::new(messages);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let call = client.upload(request);
    tokio::pin!(call);
    let (mut seen, mut landed, mut waiting) = (0, None, true);
    loop {
        tokio::select! {
            answer = &mut call => {
                let outcome = Outcome::Answered(answer.map(tonic::Response::into_inner));
                return Ok(Upload { outcome, landed: landed.or_else(|| landed_rx.try_recv().ok()) });
            }
            arrived = &mut landed_rx, if waiting => {
                waiting = false;
                landed = arrived.ok();
                if cancel && landed.is_some() {
                    return Ok(Upload { outcome: Outcome::Cancelled, landed });
                }
            }
            () = tokio::time::sleep(stall_limit) => {
                let now = progress.load(Ordering::Relaxed);
                if now == seen {
                    return Err(Failure::new(
                        format!("the upload to make progress or end within {stall_limit:?}"),
                        format!("stuck after {now} bytes were sent"),
                    ));
                }
                seen = now;
            }
        }
    }
}

/// The plan's messages, generated as the transport takes them. At the fault
/// point it decides where the fault lands and says so on `landed`.
fn messages(
    plan: Plan,
    store: Option<Arc<Store>>,
    progress: Arc<AtomicU64>,
    landed: oneshot::Sender<Landed>,
) -> tokio_stream::wrappers::ReceiverStream<UploadRequest> {
    const QUEUE: usize = 2;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        // Said as soon as it is decided: the server may end the call on the
        // very message that carries the fault.
        let mut landed = Some(landed);
        let mut say = |landing: Landed| {
            if let Some(landed) = landed.take() {
                let _ = landed.send(landing);
            }
        };
        let cuts = plan.chunking.cut(plan.content.size);
        let mut budget = if plan.wait_for_s3 { HOLD_BUDGET } else { Duration::ZERO };
        let (mut offset, mut landing) = (0u64, None);
        for (index, &length) in cuts.iter().enumerate() {
            let at_fault = plan.fault.offset().is_some_and(|at| offset >= at && index > 0);
            if at_fault && landing.is_none() {
                // Every message so far is taken by the transport once all
                // queue slots are free again.
                let _ = tx.reserve_many(QUEUE).await;
                let seen = wait_for(store.as_deref(), &plan.key, HOLD_STEP.min(budget), &mut budget).await;
                if seen || !plan.wait_for_s3 {
                    let at = if seen { Landed::AfterS3 } else { Landed::BeforeS3 };
                    landing = Some(at);
                    say(at);
                }
            }
            if landing.is_some() && matches!(plan.fault, Fault::CancelAt(_) | Fault::StallAt(..)) {
                break;
            }
            if tx.send(message(&plan, index, offset, length, landing.is_some())).await.is_err() {
                return;
            }
            offset += length as u64;
            progress.store(offset, Ordering::Relaxed);
        }
        if plan.fault != Fault::None && landing.is_none() {
            // The data ran out first: the fault lands at the end, after the
            // target had the whole file, and before it half-closed.
            let _ = tx.reserve_many(QUEUE).await;
            let seen = wait_for(store.as_deref(), &plan.key, budget, &mut budget).await;
            say(if seen { Landed::AfterS3 } else { Landed::BeforeS3 });
            // A rename needs a message to carry the other name: an empty one.
            if matches!(plan.fault, Fault::RenameAt(..))
                && tx.send(message(&plan, cuts.len(), offset, 0, true)).await.is_err()
            {
                return;
            }
        }
        match plan.fault {
            // Never half-close: the client leaves, or the deadline has to
            // end the call.
            Fault::CancelAt(_) | Fault::StallAt(..) => tx.closed().await,
            Fault::None | Fault::RenameAt(..) => {}
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Message `index`, holding `length` bytes from `offset`; `renamed` once
/// a rename fault has landed.
fn message(plan: &Plan, index: usize, offset: u64, length: usize, renamed: bool) -> UploadRequest {
    let filename = match &plan.fault {
        _ if index == 0 => plan.key.clone(),
        Fault::RenameAt(_, other) if renamed => other.clone(),
        _ => String::new(),
    };
    UploadRequest {
        filename,
        chunk: plan.content.bytes(offset, length).into(),
        expected_sha256: if index == 0 { plan.expected_sha256.clone() } else { None },
    }
}

/// Whether S3 has seen `key`, waiting up to `patience` for it; the time
/// waited comes out of `budget`.
async fn wait_for(store: Option<&Store>, key: &str, patience: Duration, budget: &mut Duration) -> bool {
    let Some(store) = store else { return false };
    let started = Instant::now();
    let seen = loop {
        if store.touched(key).await.unwrap_or(false) {
            break true;
        }
        if started.elapsed() >= patience {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    *budget = budget.saturating_sub(started.elapsed());
    seen
}
