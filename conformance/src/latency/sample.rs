//! The image every latency request carries.
//!
//! Fixed bytes, so that runs, machines and implementations are compared on
//! the same work: a 640×640 JPEG (the model's input size, so the letterbox
//! never resamples) whose bright squares the bundled model detects, so NMS
//! and the response carry real boxes rather than an empty list.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

/// Side of the image, in pixels.
const SIZE: u32 = 640;

/// Bright shapes as (x, y, width, height): three `defect` squares and one
/// `scratch` bar (aspect ratio 5).
const SHAPES: [(u32, u32, u32, u32); 4] =
    [(64, 72, 64, 64), (300, 120, 96, 96), (120, 400, 48, 48), (360, 440, 160, 32)];

/// A deterministic 640×640 JPEG: a few bright squares on a dark, noisy
/// background.
pub fn sample_image() -> Vec<u8> {
    // xorshift32: deterministic noise without a random-number crate.
    let mut state = 0x9E37_79B9_u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 32) as u8
    };
    let mut image = RgbImage::new(SIZE, SIZE);
    for pixel in image.pixels_mut() {
        // 16..=47 per channel: far below the model's "bright" sum of 460.
        *pixel = Rgb([16 + noise(), 16 + noise(), 16 + noise()]);
    }
    for (x, y, width, height) in SHAPES {
        for py in y..y + height {
            for px in x..x + width {
                image.put_pixel(px, py, Rgb([240, 236, 228]));
            }
        }
    }
    let mut jpeg = Cursor::new(Vec::new());
    image.write_to(&mut jpeg, ImageFormat::Jpeg).expect("encoding an in-memory JPEG cannot fail");
    jpeg.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_deterministic_640_jpeg() {
        let bytes = sample_image();
        assert_eq!(bytes, sample_image());
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Jpeg);
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (SIZE, SIZE));
    }
}
