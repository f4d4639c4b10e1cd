//! From `output0` to boxes: the postprocessing of `proto/inference/README.md`.

use super::{image_input::Letterbox, model::Layout};

/// What a call asked for, with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholds {
    pub(crate) confidence: f32,
    pub(crate) iou: f32,
    pub(crate) max_detections: usize,
}

/// One kept detection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detection {
    /// Corners in original-image pixels.
    pub(crate) corners: [f32; 4],
    pub(crate) score: f32,
    pub(crate) class: usize,
    /// The anchor it came from, for its mask coefficients.
    pub(crate) anchor: usize,
}

/// Confidence filter, stable sort by score, class-aware greedy NMS, then
/// boxes mapped back to the `width` × `height` original and clipped.
pub(crate) fn detect(
    output: &[f32],
    layout: &Layout,
    thresholds: Thresholds,
    placement: &Letterbox,
    (width, height): (u32, u32),
) -> Vec<Detection> {
    let anchors = layout.anchors;
    let row = |channel: usize| &output[channel * anchors..(channel + 1) * anchors];
    let mut best: Vec<(f32, usize)> = row(4).iter().map(|&score| (score, 0)).collect();
    for class in 1..layout.classes {
        for (best, &score) in best.iter_mut().zip(row(4 + class)) {
            if score > best.0 {
                *best = (score, class);
            }
        }
    }
    let mut candidates: Vec<usize> =
        (0..anchors).filter(|&anchor| best[anchor].0 >= thresholds.confidence).collect();
    // Stable: equal scores keep anchor order, as every implementation must.
    candidates.sort_by(|&a, &b| best[b].0.total_cmp(&best[a].0));

    let (cx, cy, w, h) = (row(0), row(1), row(2), row(3));
    let corners = |anchor: usize| {
        let (half_w, half_h) = (w[anchor] / 2.0, h[anchor] / 2.0);
        [cx[anchor] - half_w, cy[anchor] - half_h, cx[anchor] + half_w, cy[anchor] + half_h]
    };
    let mut kept: Vec<(usize, [f32; 4])> = Vec::new();
    for anchor in candidates {
        if kept.len() >= thresholds.max_detections {
            break;
        }
        let class = best[anchor].1;
        let candidate = corners(anchor);
        let suppressed = kept.iter().any(|&(other, other_box)| {
            best[other].1 == class && iou(&candidate, &other_box) > thresholds.iou
        });
        if !suppressed {
            kept.push((anchor, candidate));
        }
    }

    let scale = placement.scale as f32;
    let (left, top) = (placement.left as f32, placement.top as f32);
    let (width, height) = (width as f32, height as f32);
    kept.into_iter()
        .map(|(anchor, [x1, y1, x2, y2])| {
            let x = |value: f32| ((value - left) / scale).clamp(0.0, width);
            let y = |value: f32| ((value - top) / scale).clamp(0.0, height);
            Detection {
                corners: [x(x1), y(y1), x(x2), y(y2)],
                score: best[anchor].0,
                class: best[anchor].1,
                anchor,
            }
        })
        .collect()
}

/// Intersection over union of two corner boxes; 0 when both are empty.
pub(crate) fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let inter_w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let inter_h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let intersection = inter_w * inter_h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - intersection;
    if union > 0.0 { intersection / union } else { 0.0 }
}
