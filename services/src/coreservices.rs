//! `coreservices.CoreServices`: one method per RPC pattern (seed 003).

use std::time::{SystemTime, UNIX_EPOCH};

use contracts::coreservices::{
    ChatMessage, NumberMessage, PingRequest, PingResponse, StreamNumbersRequest, UploadNumbersResponse,
    core_services_server::{self, CoreServicesServer},
};
use futures_util::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    deadline::{self, ResponseStream},
    streaming::paced,
};

/// The `sender` the server puts on every chat reply.
pub const SERVER_SENDER: &str = "server";

/// Stateless; every method's result depends only on its own request stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct CoreServices;

impl CoreServices {
    /// The generated server around this implementation.
    pub fn server(self) -> CoreServicesServer<Self> {
        CoreServicesServer::new(self)
    }
}

#[tonic::async_trait]
impl core_services_server::CoreServices for CoreServices {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        let message = request.into_inner().message;
        // A clock before 1970 or past 2262 is not worth failing a ping over.
        let server_time_unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|since| i64::try_from(since.as_nanos()).ok())
            .unwrap_or_default();
        Ok(Response::new(PingResponse { message, server_time_unix_nanos }))
    }

    type StreamNumbersStream = ResponseStream<NumberMessage>;

    async fn stream_numbers(
        &self,
        request: Request<StreamNumbersRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        let deadline = deadline::from_metadata(request.metadata());
        let StreamNumbersRequest { count, interval_ms } = request.into_inner();
        let values = paced(0..i64::from(count), interval_ms).map(|value| Ok(NumberMessage { value }));
        Ok(Response::new(deadline::bounded(values, deadline)))
    }

    async fn upload_numbers(
        &self,
        request: Request<Streaming<NumberMessage>>,
    ) -> Result<Response<UploadNumbersResponse>, Status> {
        let mut numbers = request.into_inner();
        let mut summary = UploadNumbersResponse::default();
        while let Some(NumberMessage { value }) = numbers.message().await? {
            summary.sum = summary.sum.checked_add(value).ok_or_else(|| {
                Status::out_of_range(format!(
                    "the sum overflows int64 at number #{} ({value})",
                    summary.count
                ))
            })?;
            if summary.count == 0 {
                (summary.min, summary.max) = (value, value);
            } else {
                summary.min = summary.min.min(value);
                summary.max = summary.max.max(value);
            }
            summary.count += 1;
        }
        Ok(Response::new(summary))
    }

    type ChatStream = ResponseStream<ChatMessage>;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        // `map` is lazy: message i+1 is read only when tonic asks for the next
        // reply, which is after reply i has been handed to the transport. That
        // is what makes lockstep clients work.
        let replies = request.into_inner().enumerate().map(|(seq, message)| {
            message.map(|ChatMessage { text, .. }| ChatMessage {
                text,
                seq: seq as u64,
                sender: SERVER_SENDER.to_owned(),
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
