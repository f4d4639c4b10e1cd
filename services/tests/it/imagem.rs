use std::io::Cursor;

use contracts::mensagem::{
    ImageFormat, ImagemRequest, ImagemResposta, imagem_service_client::ImagemServiceClient,
};
use image::{ImageEncoder, RgbImage};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::support::{assert_code, start, start_with};

fn encode(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let pixels = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
    let mut out = Cursor::new(Vec::new());
    match format {
        // The WebP encoder in `image` is lossless-only and wants RGBA.
        image::ImageFormat::WebP => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(
                image::DynamicImage::ImageRgb8(pixels).to_rgba8().as_raw(),
                width,
                height,
                image::ExtendedColorType::Rgba8,
            )
            .unwrap(),
        _ => pixels.write_to(&mut out, format).unwrap(),
    }
    out.into_inner()
}

struct Expected {
    bytes: Vec<u8>,
    format: ImageFormat,
    dimensions: Option<(u32, u32)>,
}

fn check(index: usize, response: &ImagemResposta, expected: &Expected) {
    assert_eq!(response.index, index as u64);
    assert_eq!(response.byte_count, expected.bytes.len() as u64);
    assert_eq!(response.sha256_hex, hex::encode(Sha256::digest(&expected.bytes)));
    assert_eq!(response.format(), expected.format, "image #{index}");
    assert_eq!(response.width.zip(response.height), expected.dimensions, "image #{index}");
    assert!(!response.mensagem.is_empty());
}

#[tokio::test]
async fn describes_each_image_in_lockstep() {
    let (_server, channel) = start().await;
    let png = encode(37, 21, image::ImageFormat::Png);
    let mut truncated_png = png.clone();
    truncated_png.truncate(png.len() / 2);
    // Lenient decoders produce pixels for these; the contract says a cut
    // file has no dimensions.
    let jpeg = encode(64, 48, image::ImageFormat::Jpeg);
    let quarter_jpeg = jpeg[..jpeg.len() / 4].to_vec();
    let png_without_iend = png[..png.len() - 12].to_vec();
    let webp = encode(12, 3, image::ImageFormat::WebP);
    let short_webp = webp[..webp.len() - 1].to_vec();
    let cases = [
        Expected { bytes: png, format: ImageFormat::Png, dimensions: Some((37, 21)) },
        Expected {
            bytes: encode(64, 48, image::ImageFormat::Jpeg),
            format: ImageFormat::Jpeg,
            dimensions: Some((64, 48)),
        },
        Expected {
            bytes: encode(5, 9, image::ImageFormat::Gif),
            format: ImageFormat::Gif,
            dimensions: Some((5, 9)),
        },
        Expected {
            bytes: encode(12, 3, image::ImageFormat::WebP),
            format: ImageFormat::Webp,
            dimensions: Some((12, 3)),
        },
        // The seed client's payload: not an image, still answered.
        Expected { bytes: vec![0, 1, 2, 3, 4, 5], format: ImageFormat::Unknown, dimensions: None },
        Expected { bytes: vec![], format: ImageFormat::Unknown, dimensions: None },
        // Right signature, broken body: the format is known, the size is not.
        Expected { bytes: truncated_png, format: ImageFormat::Png, dimensions: None },
        Expected { bytes: quarter_jpeg, format: ImageFormat::Jpeg, dimensions: None },
        Expected { bytes: png_without_iend, format: ImageFormat::Png, dimensions: None },
        Expected { bytes: short_webp, format: ImageFormat::Webp, dimensions: None },
    ];

    let (tx, rx) = mpsc::channel(1);
    tx.send(ImagemRequest { imagem: cases[0].bytes.clone().into() }).await.unwrap();
    let mut responses =
        ImagemServiceClient::new(channel).upload_imagem(ReceiverStream::new(rx)).await.unwrap().into_inner();
    for (index, expected) in cases.iter().enumerate() {
        if index > 0 {
            tx.send(ImagemRequest { imagem: expected.bytes.clone().into() }).await.unwrap();
        }
        // The answer arrives while the stream is still open.
        let response = responses.message().await.unwrap().expect("one response per request");
        check(index, &response, expected);
    }
    drop(tx);
    assert_eq!(responses.message().await.unwrap(), None);
}

#[tokio::test]
async fn a_header_that_claims_a_huge_image_is_not_decoded() {
    let (_server, channel) = start().await;
    // A PNG whose IHDR claims 1,000,000 x 1,000,000 pixels: decoding it would
    // need terabytes, so the server must describe it without dimensions.
    let mut png = encode(1, 1, image::ImageFormat::Png);
    png[16..20].copy_from_slice(&1_000_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&1_000_000u32.to_be_bytes());
    // Keep the chunk's CRC valid, so it is the size that stops the decoder.
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let request = ImagemRequest { imagem: png.into() };
    let mut responses = ImagemServiceClient::new(channel)
        .upload_imagem(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    assert_eq!(response.format(), ImageFormat::Png);
    assert_eq!((response.width, response.height), (None, None));
}

#[tokio::test]
async fn an_oversized_image_is_resource_exhausted() {
    let config = services::Config { max_message_size: 1024, ..Default::default() };
    let (_server, channel) = start_with(config).await;
    let mut client = ImagemServiceClient::new(channel);
    let requests =
        [ImagemRequest { imagem: vec![1; 10].into() }, ImagemRequest { imagem: vec![7; 4096].into() }];
    let mut responses = client.upload_imagem(tokio_stream::iter(requests)).await.unwrap().into_inner();
    assert_eq!(responses.message().await.unwrap().unwrap().byte_count, 10);
    assert_code(responses.message().await, Code::ResourceExhausted);
}
