//! Drives one upload: the content's bytes in the planned messages, with a
//! fault injected where the plan says, under a stall limit: how long the
//! upload may go without progress, rather than a limit on the whole call
//! (a 1 GiB upload takes a while; a stalled one must still be caught).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use contracts::uploader::{UploadRequest, UploadResponse, file_uploader_client::FileUploaderClient};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

use super::content::{Chunking, Content};
use crate::report::Failure;

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

/// One upload.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) key: String,
    pub(super) content: Content,
    pub(super) chunking: Chunking,
    pub(super) expected_sha256: Option<String>,
    pub(super) fault: Fault,
}

/// How an upload ended, as the client saw it.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The server answered.
    Answered(Result<UploadResponse, tonic::Status>),
    /// The client cancelled as planned.
    Cancelled,
}

/// Runs `plan` on `channel`. Fails only when the server stops making
/// progress for `stall_limit`: the caller judges the outcome.
pub(super) async fn upload(channel: Channel, plan: Plan, stall_limit: Duration) -> Result<Outcome, Failure> {
    let progress = Arc::new(AtomicU64::new(0));
    let (reached, mut reached_rx) = oneshot::channel();
    let timeout = match &plan.fault {
        Fault::StallAt(_, timeout) => Some(*timeout),
        _ => None,
    };
    let messages = messages(plan, progress.clone(), reached);
    let mut client = FileUploaderClient::new(channel);
    let mut request = tonic::Request::new(messages);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let call = client.upload(request);
    tokio::pin!(call);
    let (mut seen, mut cancelling) = (0, true);
    loop {
        tokio::select! {
            answer = &mut call => return Ok(Outcome::Answered(answer.map(tonic::Response::into_inner))),
            reached = &mut reached_rx, if cancelling => {
                if reached.is_ok() {
                    // Give the server a moment with the bytes it has, so
                    // the cancellation lands mid-upload, not before it.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Ok(Outcome::Cancelled);
                }
                cancelling = false;
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

/// The plan's messages, generated as the transport takes them.
fn messages(
    plan: Plan,
    progress: Arc<AtomicU64>,
    reached: oneshot::Sender<()>,
) -> tokio_stream::wrappers::ReceiverStream<UploadRequest> {
    const QUEUE: usize = 2;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let mut offset = 0u64;
        for (index, length) in plan.chunking.cut(plan.content.size).into_iter().enumerate() {
            let stop = match &plan.fault {
                Fault::CancelAt(at) | Fault::StallAt(at, _) => offset >= *at && index > 0,
                _ => false,
            };
            if stop {
                break;
            }
            let filename = match &plan.fault {
                _ if index == 0 => plan.key.clone(),
                Fault::RenameAt(at, other) if offset >= *at => other.clone(),
                _ => String::new(),
            };
            let message = UploadRequest {
                filename,
                chunk: plan.content.bytes(offset, length).into(),
                expected_sha256: if index == 0 { plan.expected_sha256.clone() } else { None },
            };
            if tx.send(message).await.is_err() {
                return;
            }
            offset += length as u64;
            progress.store(offset, Ordering::Relaxed);
        }
        match plan.fault {
            Fault::CancelAt(_) => {
                // Every message is taken by the transport once all queue
                // slots are free again.
                let _ = tx.reserve_many(QUEUE).await;
                let _ = reached.send(());
                tx.closed().await;
            }
            // Never half-close: the deadline has to end the call.
            Fault::StallAt(..) => tx.closed().await,
            Fault::None | Fault::RenameAt(..) => {}
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
