//! `streaming.NumberStreamer`: an inclusive integer range, streamed (seed 002).

use std::time::Duration;

use contracts::streaming::{
    NumberResponse, StreamRequest,
    number_streamer_server::{self, NumberStreamerServer},
};
use futures_util::{Stream, StreamExt, stream};
use tonic::{Request, Response, Status};

use crate::deadline::{self, ResponseStream};

/// Stateless. The response stream is lazy: nothing is computed ahead of the
/// client, and dropping it (cancellation, deadline) stops the work at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct NumberStreamer;

impl NumberStreamer {
    /// The generated server around this implementation.
    pub fn server(self) -> NumberStreamerServer<Self> {
        NumberStreamerServer::new(self)
    }
}

#[tonic::async_trait]
impl number_streamer_server::NumberStreamer for NumberStreamer {
    type StreamNumbersStream = ResponseStream<NumberResponse>;

    async fn stream_numbers(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        let deadline = deadline::from_metadata(request.metadata());
        let request = request.into_inner();
        // A reversed range, or one of more than 1,000,000 values (so that a
        // single request cannot pin the server for hours), breaks a rule.
        crate::rules::check(&request, "streaming.StreamRequest")?;
        let StreamRequest { start, end, interval_ms } = request;
        let values = paced(start..=end, interval_ms).map(|value| Ok(NumberResponse { value }));
        Ok(Response::new(deadline::bounded(values, deadline)))
    }
}

/// Yields `values` with `interval_ms` of sleep between consecutive items but
/// none before the first. Shared with `coreservices`, whose server-streaming
/// method has the same pacing rule.
pub(crate) fn paced<I>(values: I, interval_ms: u32) -> impl Stream<Item = I::Item> + Send
where
    I: Iterator + Send + 'static,
    I::Item: Send,
{
    let interval = Duration::from_millis(u64::from(interval_ms));
    stream::iter(values).enumerate().then(move |(index, value)| async move {
        if index > 0 && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        value
    })
}
