//! The segmentation map: each detection's mask, assembled at the original
//! image's size by the rule in `proto/inference/README.md`, then run-length
//! encoded.

use super::{detections::Detection, image_input::Letterbox, model::Layout};

/// A `width` × `height` class map (0 = background, k + 1 = class k), as
/// `(value, run length)` pairs, row-major.
pub(crate) fn segmentation(
    output: &[f32],
    protos: &[f32],
    layout: &Layout,
    placement: &Letterbox,
    detections: &[Detection],
    (width, height): (u32, u32),
) -> Vec<u32> {
    let (proto_h, proto_w) = layout.proto_size;
    let plane = proto_h * proto_w;
    let input = layout.input_size as f32;
    let scale = placement.scale as f32;
    let (left, top) = (placement.left as f32, placement.top as f32);
    let (fx, fy) = (proto_w as f32 / input, proto_h as f32 / input);
    let mut map = vec![0u32; width as usize * height as usize];
    let mut logits = vec![0f32; plane];
    for detection in detections {
        let coefficients: Vec<f32> = (0..layout.mask_channels)
            .map(|k| output[(4 + layout.classes + k) * layout.anchors + detection.anchor])
            .collect();
        let [x1, y1, x2, y2] = detection.corners;
        // Pixels whose centre lies in [x1, x2) × [y1, y2).
        let columns = pixel_span(x1, x2, width);
        let rows = pixel_span(y1, y2, height);
        if columns.is_empty() || rows.is_empty() {
            continue;
        }
        // Prototype cells the bilinear samples of those pixels can touch.
        let to_proto_x =
            |x: usize| (((x as f32 + 0.5) * scale + left) * fx - 0.5).clamp(0.0, (proto_w - 1) as f32);
        let to_proto_y =
            |y: usize| (((y as f32 + 0.5) * scale + top) * fy - 0.5).clamp(0.0, (proto_h - 1) as f32);
        let (u_lo, u_hi) =
            (to_proto_x(columns.start) as usize, (to_proto_x(columns.end - 1) as usize + 1).min(proto_w - 1));
        let (v_lo, v_hi) =
            (to_proto_y(rows.start) as usize, (to_proto_y(rows.end - 1) as usize + 1).min(proto_h - 1));
        for v in v_lo..=v_hi {
            for u in u_lo..=u_hi {
                let cell = v * proto_w + u;
                logits[cell] =
                    coefficients.iter().enumerate().map(|(k, c)| c * protos[k * plane + cell]).sum();
            }
        }
        let sample_columns: Vec<(usize, usize, f32)> = columns
            .clone()
            .map(|x| {
                let px = to_proto_x(x);
                let u0 = px as usize;
                (u0, (u0 + 1).min(proto_w - 1), px - u0 as f32)
            })
            .collect();
        let value = detection.class as u32 + 1;
        for y in rows {
            let py = to_proto_y(y);
            let v0 = py as usize;
            let (v1, wy) = ((v0 + 1).min(proto_h - 1), py - v0 as f32);
            let (top_row, bottom_row) =
                (&logits[v0 * proto_w..][..proto_w], &logits[v1 * proto_w..][..proto_w]);
            let map_row = &mut map[y * width as usize..][..width as usize];
            for (x, &(u0, u1, wx)) in columns.clone().zip(&sample_columns) {
                if map_row[x] != 0 {
                    continue; // A higher-scoring detection already holds it.
                }
                let upper = top_row[u0] + (top_row[u1] - top_row[u0]) * wx;
                let lower = bottom_row[u0] + (bottom_row[u1] - bottom_row[u0]) * wx;
                if upper + (lower - upper) * wy > 0.0 {
                    map_row[x] = value;
                }
            }
        }
    }
    run_length(&map)
}

/// Indices `i` in `0..limit` with `lo <= i + 0.5 < hi`.
fn pixel_span(lo: f32, hi: f32, limit: u32) -> std::ops::Range<usize> {
    let start = (lo - 0.5).ceil().max(0.0) as usize;
    let end = ((hi - 0.5).ceil().max(0.0) as usize).min(limit as usize);
    start..end.max(start)
}

fn run_length(map: &[u32]) -> Vec<u32> {
    let mut runs = Vec::new();
    let mut values = map.iter().copied();
    let Some(mut current) = values.next() else { return runs };
    let mut length = 1u32;
    for value in values {
        if value == current {
            length += 1;
        } else {
            runs.extend([current, length]);
            (current, length) = (value, 1);
        }
    }
    runs.extend([current, length]);
    runs
}
