//! From request bytes to the model's input tensor: checked decoding, then
//! the letterbox described in `proto/inference/README.md`.

use std::io::Cursor;

use contracts::mensagem::ImageFormat;
use image::{ImageReader, Limits, RgbImage, imageops::FilterType};
use tonic::Status;

use crate::{container, imagem::detect_format};

/// Grey of the letterbox padding, as Ultralytics pads.
const PAD: u8 = 114;

/// Decodes a PNG, JPEG or WebP image to RGB, refusing before any pixel is
/// allocated when its header declares more than `max_pixels`.
pub(crate) fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, Status> {
    if bytes.is_empty() {
        return Err(Status::invalid_argument("image_bytes is empty"));
    }
    let format = match detect_format(bytes) {
        format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Webp) => format,
        ImageFormat::Gif | ImageFormat::Unknown => {
            return Err(Status::invalid_argument("image_bytes is not a PNG, JPEG or WebP image"));
        }
    };
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|err| Status::invalid_argument(format!("image_bytes cannot be read: {err}")))
    };
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|err| Status::invalid_argument(format!("image_bytes has no readable header: {err}")))?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(Status::resource_exhausted(format!(
            "the image declares {width}x{height} = {pixels} pixels; this server accepts at most {max_pixels}"
        )));
    }
    if pixels == 0 {
        return Err(Status::invalid_argument(format!("the image is {width}x{height}: it has no pixels")));
    }
    // Decoders fill a cut-off file with grey rather than fail; a detector
    // would then happily run on half an image.
    if !container::is_complete(format, bytes) {
        return Err(Status::invalid_argument("image_bytes is truncated or corrupt"));
    }
    let mut reader = reader()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // RGBA16 at the declared size, with room for one conversion.
    limits.max_alloc = Some(pixels * 8 * 2);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|err| Status::invalid_argument(format!("image_bytes does not decode: {err}")))?;
    Ok(decoded.into_rgb8())
}

/// How an image sits in the model's square input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Letterbox {
    /// Input pixels per image pixel.
    pub(crate) scale: f64,
    /// The scaled image's size in input pixels.
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Where it starts in the input.
    pub(crate) left: u32,
    pub(crate) top: u32,
}

impl Letterbox {
    /// The placement of a `width` × `height` image in a `size` × `size` input.
    pub(crate) fn new(width: u32, height: u32, size: u32) -> Letterbox {
        let scale = (f64::from(size) / f64::from(width)).min(f64::from(size) / f64::from(height));
        let scaled = |side: u32| ((f64::from(side) * scale).round_ties_even() as u32).clamp(1, size);
        let (new_width, new_height) = (scaled(width), scaled(height));
        let offset = |new: u32| (f64::from(size - new) / 2.0 - 0.1).round_ties_even().max(0.0) as u32;
        Letterbox {
            scale,
            width: new_width,
            height: new_height,
            left: offset(new_width),
            top: offset(new_height),
        }
    }
}

/// Fills `tensor` (`3 × size × size`, NCHW, RGB in [0, 1]) with the
/// letterboxed image.
pub(crate) fn letterbox(image: &RgbImage, size: u32, tensor: &mut Vec<f32>) -> Letterbox {
    let placement = Letterbox::new(image.width(), image.height(), size);
    let resized;
    let placed = if (image.width(), image.height()) == (placement.width, placement.height) {
        image
    } else {
        resized = image::imageops::resize(image, placement.width, placement.height, FilterType::Triangle);
        &resized
    };
    let plane = (size * size) as usize;
    tensor.clear();
    tensor.resize(3 * plane, f32::from(PAD) / 255.0);
    let (red, rest) = tensor.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    let row_width = placement.width as usize;
    for (y, row) in placed.as_raw().chunks_exact(row_width * 3).enumerate() {
        let start = (placement.top as usize + y) * size as usize + placement.left as usize;
        let (red, green, blue) = (
            &mut red[start..start + row_width],
            &mut green[start..start + row_width],
            &mut blue[start..start + row_width],
        );
        for (x, pixel) in row.chunks_exact(3).enumerate() {
            red[x] = f32::from(pixel[0]) / 255.0;
            green[x] = f32::from(pixel[1]) / 255.0;
            blue[x] = f32::from(pixel[2]) / 255.0;
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_matches_ultralytics_rounding() {
        // 1280x720 → 640x360, centred vertically: 140 rows above, 140 below.
        assert_eq!(
            Letterbox::new(1280, 720, 640),
            Letterbox { scale: 0.5, width: 640, height: 360, left: 0, top: 140 }
        );
        // An odd margin puts the extra row below: (640 - 639) / 2 - 0.1 rounds to 0.
        let odd = Letterbox::new(1000, 999, 640);
        assert_eq!((odd.width, odd.height, odd.left, odd.top), (640, 639, 0, 0));
        // Small images are scaled up.
        assert_eq!(Letterbox::new(320, 160, 640).scale, 2.0);
    }
}
