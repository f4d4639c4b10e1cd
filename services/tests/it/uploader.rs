use contracts::uploader::{ImageChunk, UploadSummary, uploader_service_client::UploaderServiceClient};
use tonic::{Code, transport::Channel};

use crate::support::{assert_code, start, start_with};

/// A chunk of `len` bytes with a recognisable pattern.
fn chunk(len: usize) -> ImageChunk {
    ImageChunk { data: (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>().into() }
}

async fn upload(channel: Channel, chunks: Vec<ImageChunk>) -> Result<UploadSummary, tonic::Status> {
    let mut client = UploaderServiceClient::new(channel).max_encoding_message_size(usize::MAX);
    client.upload_image(tokio_stream::iter(chunks)).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn summary_counts_every_chunk_and_byte() {
    let (_server, channel) = start().await;
    let cases: Vec<(Vec<usize>, UploadSummary)> = vec![
        (vec![], UploadSummary { total_chunks: 0, total_bytes: 0 }),
        (vec![0], UploadSummary { total_chunks: 1, total_bytes: 0 }),
        (vec![0, 0, 0], UploadSummary { total_chunks: 3, total_bytes: 0 }),
        (vec![1024; 5], UploadSummary { total_chunks: 5, total_bytes: 5120 }),
        (vec![1, 0, 65_536, 4 << 20, 7], UploadSummary { total_chunks: 5, total_bytes: 65_544 + (4 << 20) }),
    ];
    for (sizes, expected) in cases {
        let chunks = sizes.iter().map(|&len| chunk(len)).collect();
        assert_eq!(upload(channel.clone(), chunks).await.unwrap(), expected, "chunk sizes {sizes:?}");
    }
}

#[tokio::test]
async fn an_oversized_chunk_is_resource_exhausted_and_the_server_keeps_serving() {
    let config = services::Config { max_message_size: 64 * 1024, ..Default::default() };
    let (_server, channel) = start_with(config).await;
    let status = assert_code(
        upload(channel.clone(), vec![chunk(10), chunk(65 * 1024)]).await,
        Code::ResourceExhausted,
    );
    assert!(status.message().contains("too large"), "{status:?}");
    let summary = upload(channel, vec![chunk(60 * 1024)]).await.unwrap();
    assert_eq!(summary, UploadSummary { total_chunks: 1, total_bytes: 60 * 1024 });
}
