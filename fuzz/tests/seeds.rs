//! The committed seed corpus: a few small, valid inputs per target, and a
//! few near misses. The test fails when `fuzz/corpus/` differs from what it
//! would write; `FUZZ_WRITE_SEEDS=1 cargo test -p fuzz --test seeds`
//! writes it.

use std::{io::Cursor, path::PathBuf};

use contracts::inference::InferRequest;
use image::{ImageFormat, RgbImage};
use prost::Message;
use tonic_reflection::pb::v1::{
    FileDescriptorResponse, ServerReflectionResponse, server_reflection_response::MessageResponse,
};

fn write(target: &str, name: &str, data: &[u8]) {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let path = folder.join(name);
    if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(&path, data).unwrap();
    } else {
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == data,
            "{} differs from the seed this test writes: run `FUZZ_WRITE_SEEDS=1 cargo test -p fuzz --test seeds`",
            path.display()
        );
    }
}

fn picture(format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8 * 60, y as u8 * 80, 128]));
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

#[test]
fn the_committed_seeds_are_what_this_writes() {
    let formats = [
        ("png", ImageFormat::Png),
        ("jpeg", ImageFormat::Jpeg),
        ("gif", ImageFormat::Gif),
        ("webp", ImageFormat::WebP),
    ];
    for (name, format) in formats {
        let bytes = picture(format);
        write("imagem_describe", name, &bytes);
        write("imagem_describe", &format!("{name}-cut"), &bytes[..bytes.len() * 2 / 3]);
        let request =
            InferRequest { image_bytes: bytes.into(), confidence_threshold: 0.5, ..Default::default() };
        write("inference_request", name, &request.encode_to_vec());
    }
    write("imagem_describe", "text", b"not an image at all");
    let segmentation = InferRequest {
        image_bytes: picture(ImageFormat::Png).into(),
        return_segmentation: true,
        ..Default::default()
    };
    write("inference_request", "segmentation", &segmentation.encode_to_vec());
    let thresholds = InferRequest {
        image_bytes: picture(ImageFormat::Png).into(),
        iou_threshold: 1.5,
        max_detections: 3,
        ..Default::default()
    };
    write("inference_request", "bad-threshold", &thresholds.encode_to_vec());

    for (name, key) in [
        ("plain", "photos/2026/cat.jpg"),
        ("dot-dot", "photos/../cat.jpg"),
        ("absolute", "/etc/passwd"),
        ("folder", "photos/"),
        ("control", "cat\u{7}.jpg"),
        ("unicode", "fotos/gato-ñandú.jpg"),
    ] {
        write("upload_key", name, key.as_bytes());
    }

    // One small file, as a descriptor set and as a reflection answer.
    let pool = harness::descriptors::embedded();
    let file = pool.get_file_by_name("calculator/calculator.proto").expect("the calculator contract");
    let encoded = file.file_descriptor_proto().encode_to_vec();
    let set = prost_types::FileDescriptorSet { file: vec![file.file_descriptor_proto().clone()] };
    write("descriptors", "set", &set.encode_to_vec());
    let answer = ServerReflectionResponse {
        message_response: Some(MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
            file_descriptor_proto: vec![encoded],
        })),
        ..Default::default()
    };
    write("descriptors", "reflection", &answer.encode_to_vec());

    let types: Vec<_> = {
        let mut types: Vec<_> = pool.all_messages().collect();
        types.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        types
    };
    for (pick, descriptor) in types
        .iter()
        .enumerate()
        .filter(|(_, d)| !matches!(d.package_name(), "google.protobuf" | "buf.validate"))
    {
        let mut message = prost_reflect::DynamicMessage::new(descriptor.clone());
        for field in descriptor.fields().take(3) {
            if let Some(value) = sample(&field) {
                message.set_field(&field, value);
            }
        }
        let mut data = vec![pick as u8];
        data.extend(message.encode_to_vec());
        write("renderers", descriptor.full_name(), &data);
    }
}

fn sample(field: &prost_reflect::FieldDescriptor) -> Option<prost_reflect::Value> {
    use prost_reflect::{Kind, Value};
    if field.is_list() || field.is_map() {
        return None;
    }
    Some(match field.kind() {
        Kind::String => Value::String("héllo \"world\"\n".into()),
        Kind::Bytes => Value::Bytes(vec![0, 1, 255].into()),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(-9_223_372_036_854_775_808),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::MAX),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-1),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(7),
        Kind::Float => Value::F32(f32::NAN),
        Kind::Double => Value::F64(f64::INFINITY),
        Kind::Bool => Value::Bool(true),
        Kind::Enum(_) => Value::EnumNumber(99),
        Kind::Message(_) => return None,
    })
}
