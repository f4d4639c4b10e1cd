//! `mensagem.ImagemService`: one response per image, in order, sent before
//! the next image, each with the right size, SHA-256, format and dimensions.
//!
//! Inputs are PNG and JPEG images encoded here, plus arbitrary bytes. The
//! expected values come from this suite's own oracle: SHA-256 of the bytes,
//! the format from the signature bytes, and dimensions from decoding with the
//! `image` crate.

use std::io::Cursor;

use bytes::Bytes;
use contracts::mensagem::ImageFormat;
use proptest::prelude::*;
use prost_reflect::Value;
use sha2::{Digest, Sha256};

use super::*;

#[derive(Debug, Clone)]
enum Input {
    Png { width: u32, height: u32, seed: u8 },
    Jpeg { width: u32, height: u32, seed: u8 },
    Raw(Vec<u8>),
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        let encode = |width: u32, height: u32, seed: u8, format| {
            let pixels = image::RgbImage::from_fn(width, height, |x, y| {
                image::Rgb([(x as u8).wrapping_add(seed), (y as u8) ^ seed, seed])
            });
            let mut out = Cursor::new(Vec::new());
            pixels.write_to(&mut out, format).expect("encoding to memory cannot fail");
            out.into_inner()
        };
        match *self {
            Input::Png { width, height, seed } => encode(width, height, seed, image::ImageFormat::Png),
            Input::Jpeg { width, height, seed } => encode(width, height, seed, image::ImageFormat::Jpeg),
            Input::Raw(ref bytes) => bytes.clone(),
        }
    }
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (1u32..=48, 1u32..=48, any::<u8>()).prop_map(|(width, height, seed)| Input::Png {
            width,
            height,
            seed
        }),
        (1u32..=48, 1u32..=48, any::<u8>()).prop_map(|(width, height, seed)| Input::Jpeg {
            width,
            height,
            seed
        }),
        prop::collection::vec(any::<u8>(), 0..=128).prop_map(Input::Raw),
    ]
}

/// The format the contract says the signature bytes name. Written out here
/// rather than shared with the server: the suite is an independent oracle.
fn signature_format(bytes: &[u8]) -> ImageFormat {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        ImageFormat::Png
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        ImageFormat::Jpeg
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        ImageFormat::Gif
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        ImageFormat::Webp
    } else {
        ImageFormat::Unknown
    }
}

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let method = ctx.contract_method("mensagem.ImagemService", "UploadImagem");
    vec![property_case(
        &method,
        "describes-each-image-in-lockstep",
        |generator, request| {
            generator.stream_of(input().boxed()).prop_map(move |inputs| {
                inputs
                    .iter()
                    .map(|input| message(&request, &[("imagem", Value::Bytes(Bytes::from(input.bytes())))]))
                    .collect()
            })
        },
        |ctx, method, requests| async move { lockstep(&ctx, &method, &requests, check_reply).await },
    )]
}

/// One response against the suite's own oracle for its image.
fn check_reply(index: usize, request: &DynamicMessage, reply: &DynamicMessage) -> Result<(), Failure> {
    let Value::Bytes(bytes) = get(request, "imagem") else { unreachable!("bytes field") };
    let at = |field: &str| format!("response #{index} {field}");
    expect_eq(&at("index"), Value::U64(index as u64), get(reply, "index"))?;
    expect_eq(&at("byte_count"), Value::U64(bytes.len() as u64), get(reply, "byte_count"))?;
    expect_eq(
        &at("sha256_hex"),
        Value::String(hex::encode(Sha256::digest(&bytes))),
        get(reply, "sha256_hex"),
    )?;
    let format = signature_format(&bytes);
    expect_eq(&at("format"), Value::EnumNumber(format.into()), get(reply, "format"))?;
    let dimensions = |reply: &DynamicMessage| {
        let present = |field| reply.has_field_by_name(field).then(|| get(reply, field));
        (present("width"), present("height"))
    };
    let expected = match format {
        ImageFormat::Unknown => (None, None),
        _ => match image::load_from_memory(&bytes) {
            Ok(decoded) => (Some(Value::U32(decoded.width())), Some(Value::U32(decoded.height()))),
            Err(_) => (None, None),
        },
    };
    expect_eq(&at("(width, height)"), expected, dimensions(reply))?;
    match get(reply, "mensagem") {
        Value::String(text) if !text.is_empty() => Ok(()),
        other => Err(Failure::new(format!("{} to be a sentence", at("mensagem")), format!("{other:?}"))),
    }
}
