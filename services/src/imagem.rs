//! `mensagem.ImagemService`: describes each streamed image (seed 000).

use std::io::Cursor;

use contracts::mensagem::{
    ImageFormat, ImagemRequest, ImagemResposta,
    imagem_service_server::{self, ImagemServiceServer},
};
use futures_util::StreamExt;
use image::{ImageReader, Limits};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status, Streaming};

use crate::{container, deadline::ResponseStream};

/// Decoding allocates width × height × channels bytes whatever the file size,
/// so a 100-byte PNG header can ask for gigabytes. Above this the image is
/// described without dimensions instead of being decoded.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;

/// Stateless. Each image is described on the blocking pool, because decoding
/// a large JPEG would otherwise stall every other call on the same runtime
/// thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImagemService;

impl ImagemService {
    /// The generated server around this implementation.
    pub fn server(self) -> ImagemServiceServer<Self> {
        ImagemServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl imagem_service_server::ImagemService for ImagemService {
    type UploadImagemStream = ResponseStream<ImagemResposta>;

    async fn upload_imagem(
        &self,
        request: Request<Streaming<ImagemRequest>>,
    ) -> Result<Response<Self::UploadImagemStream>, Status> {
        // Lazy like `Chat`: request i+1 is read only after response i is out.
        let responses = request.into_inner().enumerate().then(|(index, request)| async move {
            let image = request?.imagem;
            tokio::task::spawn_blocking(move || describe(&image, index as u64))
                .await
                .map_err(|err| Status::internal(format!("describing image #{index} failed: {err}")))
        });
        Ok(Response::new(Box::pin(responses)))
    }
}

/// The answer to image number `index` of a stream: its format by signature,
/// and its dimensions only when the file is whole and decodes.
pub fn describe(image: &[u8], index: u64) -> ImagemResposta {
    let format = detect_format(image);
    let dimensions = if container::is_complete(format, image) { decode_dimensions(image) } else { None };
    let sha256_hex = hex::encode(Sha256::digest(image));
    let mensagem = match (format, dimensions) {
        (ImageFormat::Unknown, _) => {
            format!("Received {} bytes that are not a recognised image.", image.len())
        }
        (format, Some((width, height))) => {
            format!("Received a {width}x{height} {} image of {} bytes.", format_name(format), image.len())
        }
        (format, None) => format!(
            "Received {} bytes that look like {} but do not decode.",
            image.len(),
            format_name(format)
        ),
    };
    ImagemResposta {
        mensagem,
        byte_count: image.len() as u64,
        sha256_hex,
        format: format.into(),
        width: dimensions.map(|(width, _)| width),
        height: dimensions.map(|(_, height)| height),
        index,
    }
}

/// Judged by signature bytes alone, as the contract promises; whether the
/// rest of the file is sound is what `decode_dimensions` finds out.
pub(crate) fn detect_format(image: &[u8]) -> ImageFormat {
    match image::guess_format(image) {
        Ok(image::ImageFormat::Png) => ImageFormat::Png,
        Ok(image::ImageFormat::Jpeg) => ImageFormat::Jpeg,
        Ok(image::ImageFormat::Gif) => ImageFormat::Gif,
        Ok(image::ImageFormat::WebP) => ImageFormat::Webp,
        _ => ImageFormat::Unknown,
    }
}

fn decode_dimensions(image: &[u8]) -> Option<(u32, u32)> {
    let mut reader = ImageReader::new(Cursor::new(image)).with_guessed_format().ok()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let decoded = reader.decode().ok()?;
    // A file that declares no pixels (a GIF's screen may be 0 wide) has
    // decoded to nothing: it has no dimensions to report.
    (decoded.width() > 0 && decoded.height() > 0).then(|| (decoded.width(), decoded.height()))
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Gif => "GIF",
        ImageFormat::Webp => "WebP",
        ImageFormat::Unknown => "unknown",
    }
}
