//! Fuzz targets for the code that reads bytes nobody vouches for: image
//! files (container checks, decoding under the pixel limit), inference
//! requests up to the model, upload keys, descriptors from reflection and
//! descriptor-set files, and the renderers of counterexamples.
//!
//! Each target is a function that must not panic on any input and checks
//! what its code promises (a refusal is a clean status with the code the
//! contract names; what is accepted keeps its limits). The binaries in
//! `src/bin/` hand them to libFuzzer; `tests/corpus.rs` replays the
//! committed seeds and regressions through them without it.

use contracts::inference::InferRequest;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Code;
use tonic_reflection::pb::v1::{ServerReflectionResponse, server_reflection_response::MessageResponse};

/// A target: any bytes in, a panic when its code breaks a promise.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary and its corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("imagem_describe", imagem_describe),
    ("inference_request", inference_request),
    ("upload_key", upload_key),
    ("descriptors", descriptors),
    ("renderers", renderers),
];

/// `mensagem.ImagemService`'s answer for one image: the format by its
/// signature, dimensions only for a whole file that decodes.
pub fn imagem_describe(data: &[u8]) {
    let answer = services::imagem::describe(data, 7);
    assert_eq!(answer.byte_count, data.len() as u64);
    assert_eq!(answer.index, 7);
    assert_eq!(answer.sha256_hex.len(), 64);
    assert_eq!(answer.width.is_some(), answer.height.is_some(), "width and height come together");
    assert!(answer.width.is_none_or(|w| w > 0) && answer.height.is_none_or(|h| h > 0));
}

/// The side of the model input the inference target letterboxes into:
/// small, so that each input is cheap.
const INPUT_SIZE: u32 = 32;
/// The pixel limit the inference target decodes under.
const MAX_PIXELS: u64 = 512 * 512;

/// An `Infer` request as it comes off the wire (or, when the bytes are not
/// one, an image alone), up to the model's input tensor.
pub fn inference_request(data: &[u8]) {
    let request = InferRequest::decode(data)
        .unwrap_or_else(|_| InferRequest { image_bytes: data.to_vec().into(), ..Default::default() });
    let model = services::inference::ModelInput {
        size: INPUT_SIZE,
        max_pixels: MAX_PIXELS,
        mask_head: false,
        model: "fuzz",
    };
    match services::inference::prepare(&request, &model) {
        Ok(prepared) => {
            let (width, height) = prepared.size();
            assert!(u64::from(width) * u64::from(height) <= MAX_PIXELS, "{width}x{height} is over the limit");
            assert!(width > 0 && height > 0);
            let side = INPUT_SIZE as usize;
            assert_eq!(prepared.input().len(), 3 * side * side);
            assert!(prepared.input().iter().all(|v| (0.0..=1.0).contains(v)));
        }
        Err(status) => assert!(
            matches!(
                status.code(),
                Code::InvalidArgument | Code::ResourceExhausted | Code::FailedPrecondition
            ),
            "{status:?}"
        ),
    }
}

/// An upload's file name: a key that passes keeps the contract's limits,
/// and a refusal is INVALID_ARGUMENT with a message short enough for a
/// header.
pub fn upload_key(data: &[u8]) {
    let key = String::from_utf8_lossy(data);
    match services::fileuploader::validate_key(&key) {
        Ok(()) => {
            assert!(!key.is_empty() && key.len() <= 1024);
            assert!(!key.starts_with('/') && !key.ends_with('/'));
            assert!(key.split('/').all(|segment| !matches!(segment, "" | "." | "..")));
            assert!(!key.chars().any(char::is_control));
        }
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().len() <= 512, "{} bytes of message", status.message().len());
        }
    }
}

/// Descriptors from a server: a reflection answer as it comes off the
/// wire, and a descriptor-set file. Either becomes a pool or an error.
///
/// prost-reflect 0.16 panics on some malformed files (an index out of
/// bounds while labelling an error, for one); the harness catches that and
/// reports an error, which is the behaviour under test. libFuzzer's panic
/// hook aborts on any panic, caught or not, so this target puts back the
/// default hook: a panic that escapes still ends the run, since
/// libfuzzer-sys aborts on it after unwinding.
pub fn descriptors(data: &[u8]) {
    static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    let _ = harness::descriptors::from_bytes(data);
    if let Ok(answer) = ServerReflectionResponse::decode(data)
        && let Some(MessageResponse::FileDescriptorResponse(response)) = answer.message_response
        && let Ok(files) = response
            .file_descriptor_proto
            .into_iter()
            .map(harness::descriptors::File::decode)
            .collect::<Result<Vec<_>, _>>()
    {
        let _ = harness::descriptors::pool_from_files(files);
    }
}

/// A counterexample as reports show it: text format, and the JSON of a
/// `buf curl` line. The first byte picks one of the contracts' message
/// types; the rest is the message.
pub fn renderers(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let types = message_types();
    let descriptor = &types[usize::from(pick) % types.len()];
    let Ok(message) = DynamicMessage::decode(descriptor.clone(), body) else { return };
    let text = harness::text::to_text(&message);
    assert_eq!(text, harness::text::to_text(&message), "the same message renders the same");
    if let Ok(json) = serde_json::to_string(&message) {
        serde_json::from_str::<serde_json::Value>(&json).expect("the JSON of a message is JSON");
    }
}

fn message_types() -> &'static [MessageDescriptor] {
    static TYPES: std::sync::OnceLock<Vec<MessageDescriptor>> = std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types: Vec<MessageDescriptor> = harness::descriptors::embedded().all_messages().collect();
        types.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        types
    })
}
