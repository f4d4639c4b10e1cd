//! Synthetic pictures whose detections are known in advance: bright squares
//! on a dark background, laid out by the rules `models/README.md` guarantees
//! for the bundled model, and arbitrary pictures for the invariants.

use std::io::Cursor;

use image::{ImageEncoder, RgbImage};
use proptest::prelude::*;

/// The bundled model's input side.
const INPUT: f64 = 640.0;

/// A square's pixels: columns `x..x + side`, rows `y..y + side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Square {
    pub(super) x: u32,
    pub(super) y: u32,
    pub(super) side: u32,
}

impl Square {
    /// Corners as the contract writes boxes: `(x2, y2)` exclusive.
    pub(super) fn corners(&self) -> [f32; 4] {
        let [x, y, side] = [self.x, self.y, self.side].map(|v| v as f32);
        [x, y, x + side, y + side]
    }
}

/// How a scene is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Png,
    Jpeg,
    WebP,
}

/// A picture: a dark, maybe noisy background with bright rectangles.
#[derive(Debug, Clone)]
pub(super) struct Scene {
    pub(super) width: u32,
    pub(super) height: u32,
    /// Bright rectangles `(x, y, width, height)`; for planted scenes, squares.
    pub(super) rectangles: Vec<(u32, u32, u32, u32)>,
    /// Brightness of the rectangles (≥ 230 in planted scenes).
    pub(super) bright: u8,
    /// Amplitude of the background's noise (≤ 60 in planted scenes).
    pub(super) noise: u8,
    pub(super) seed: u32,
    pub(super) encoding: Encoding,
}

impl Scene {
    /// The planted squares, for scenes made by [`planted`].
    pub(super) fn squares(&self) -> Vec<Square> {
        self.rectangles.iter().map(|&(x, y, side, _)| Square { x, y, side }).collect()
    }

    /// Input pixels per image pixel in the bundled model's letterbox.
    pub(super) fn scale(&self) -> f64 {
        (INPUT / f64::from(self.width)).min(INPUT / f64::from(self.height))
    }

    /// The encoded image.
    pub(super) fn encode(&self) -> Vec<u8> {
        let noise = u32::from(self.noise) + 1;
        let image = RgbImage::from_fn(self.width, self.height, |x, y| {
            let inside =
                self.rectangles.iter().any(|&(rx, ry, w, h)| x >= rx && x < rx + w && y >= ry && y < ry + h);
            if inside {
                image::Rgb([self.bright; 3])
            } else {
                let hash = (x.wrapping_mul(0x9e37_79b1) ^ y.wrapping_mul(0x85eb_ca6b) ^ self.seed)
                    .wrapping_mul(0xc2b2_ae35);
                image::Rgb([(hash >> 8) % noise, (hash >> 16) % noise, (hash >> 24) % noise].map(|v| v as u8))
            }
        });
        let mut out = Cursor::new(Vec::new());
        match self.encoding {
            Encoding::Png => image.write_to(&mut out, image::ImageFormat::Png),
            Encoding::Jpeg => image.write_to(&mut out, image::ImageFormat::Jpeg),
            // The `image` crate's WebP encoder is lossless-only and wants RGBA.
            Encoding::WebP => image::codecs::webp::WebPEncoder::new_lossless(&mut out).write_image(
                image::DynamicImage::ImageRgb8(image).to_rgba8().as_raw(),
                self.width,
                self.height,
                image::ExtendedColorType::Rgba8,
            ),
        }
        .expect("encoding to memory cannot fail");
        out.into_inner()
    }
}

/// Image sizes: mostly ones that need resampling and letterboxing, some
/// whose longer side is exactly the input's (no resampling: exact boxes).
fn dimensions() -> impl Strategy<Value = (u32, u32)> {
    prop_oneof![
        3 => (200u32..=1500, 200u32..=1500),
        1 => (200u32..=640).prop_flat_map(|short| prop_oneof![Just((640, short)), Just((short, 640))]),
    ]
}

/// The gap two squares of letterbox sides `a` and `b` need, from
/// `models/README.md`.
fn gap(a: f64, b: f64) -> f64 {
    let need = |s: f64| match s {
        s if s <= 31.0 => 50.0 - s,
        s if s <= 95.0 => 122.0 - s,
        s => 266.0 - s,
    };
    need(a).max(need(b)).max(a.max(b) / 2.0)
}

/// 0–3 squares laid out left to right, each pair at least the guaranteed
/// gap apart, with letterbox sides in [16, 200].
pub(super) fn planted() -> impl Strategy<Value = Scene> {
    (
        dimensions(),
        prop::collection::vec((0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64), 0..=3),
        prop_oneof![Just(0u8), 0u8..=60],
        230u8..=255,
        any::<u32>(),
    )
        .prop_map(|((width, height), placements, noise, bright, seed)| {
            let mut scene =
                Scene { width, height, rectangles: Vec::new(), bright, noise, seed, encoding: Encoding::Png };
            let scale = scene.scale();
            let min_side = (16.0 / scale).ceil() as u32;
            let max_side = ((200.0 / scale).floor() as u32).min(width).min(height);
            if min_side > max_side {
                return scene;
            }
            let mut cursor: Option<(u32, u32)> = None; // (end x, side) of the last square
            for (size, row, slack) in placements {
                let side = min_side + ((max_side - min_side) as f64 * size).round() as u32;
                let x = match cursor {
                    None => (slack * 40.0) as u32,
                    Some((end, last)) => {
                        let needed = gap(f64::from(last) * scale, f64::from(side) * scale) / scale;
                        // Whole pixels, and a pixel more for resampling's blur.
                        end + needed.ceil() as u32 + 2 + (slack * 20.0) as u32
                    }
                };
                if x + side > width {
                    break;
                }
                let y = ((height - side) as f64 * row).round() as u32;
                scene.rectangles.push((x, y, side, side));
                cursor = Some((x + side, side));
            }
            scene
        })
}

/// Anything goes: rectangles of any shape and brightness, overlapping or
/// not, in any of the three formats.
pub(super) fn arbitrary() -> impl Strategy<Value = Scene> {
    let formats = prop_oneof![Just(Encoding::Png), Just(Encoding::Jpeg), Just(Encoding::WebP)];
    pictures((16u32..=900, 16u32..=900), formats)
}

/// Arbitrary pictures that every implementation sees pixel for pixel alike:
/// lossless, and already at the model's input size, so nothing is
/// resampled. Elsewhere, brightness at the model's threshold may fall either
/// side of it under two decoders or two resizing filters, and so may a
/// detection.
pub(super) fn arbitrary_exact() -> impl Strategy<Value = Scene> {
    let sides = (16u32..=640).prop_flat_map(|short| prop_oneof![Just((640, short)), Just((short, 640))]);
    pictures(sides, Just(Encoding::Png))
}

fn pictures(
    dimensions: impl Strategy<Value = (u32, u32)>,
    encodings: impl Strategy<Value = Encoding>,
) -> impl Strategy<Value = Scene> {
    (
        dimensions,
        prop::collection::vec((0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64), 0..=8),
        0u8..=120,
        100u8..=255,
        any::<u32>(),
        encodings,
    )
        .prop_map(|((width, height), shapes, noise, bright, seed, encoding)| {
            let rectangles = shapes
                .into_iter()
                .map(|(x, y, w, h)| {
                    let x = (x * f64::from(width - 1)) as u32;
                    let y = (y * f64::from(height - 1)) as u32;
                    let w = 1 + (w * f64::from(width - x - 1)) as u32;
                    let h = 1 + (h * f64::from(height - y - 1)) as u32;
                    (x, y, w, h)
                })
                .collect();
            Scene { width, height, rectangles, bright, noise, seed, encoding }
        })
}
