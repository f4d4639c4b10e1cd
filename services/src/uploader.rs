//! `uploader.UploaderService`: counts client-streamed chunks (seed 004).

use contracts::uploader::{
    ImageChunk, UploadSummary,
    uploader_service_server::{self, UploaderServiceServer},
};
use tonic::{Request, Response, Status, Streaming};

/// Keeps nothing: chunks are counted and dropped as they arrive, so memory
/// use does not grow with the upload.
#[derive(Debug, Default, Clone, Copy)]
pub struct UploaderService;

impl UploaderService {
    /// The generated server around this implementation.
    pub fn server(self) -> UploaderServiceServer<Self> {
        UploaderServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl uploader_service_server::UploaderService for UploaderService {
    async fn upload_image(
        &self,
        request: Request<Streaming<ImageChunk>>,
    ) -> Result<Response<UploadSummary>, Status> {
        let mut chunks = request.into_inner();
        let mut summary = UploadSummary::default();
        while let Some(chunk) = chunks.message().await? {
            summary.total_chunks = summary.total_chunks.checked_add(1).ok_or_else(|| {
                Status::out_of_range("more than 2147483647 chunks: total_chunks (int32) cannot count them")
            })?;
            // A message is at most 4 GiB, so this only overflows after
            // exabytes; saturate rather than fail a real upload.
            summary.total_bytes = summary.total_bytes.saturating_add(chunk.data.len() as i64);
        }
        Ok(Response::new(summary))
    }
}
