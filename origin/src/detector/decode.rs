//! NanoDet's outputs → boxes: distribution-focal decoding over strides 8/16/32, then per-class
//! non-maximum suppression.
//!
//! Each of the three grids (52², 26², 13² cells for a 416 input) gives, per cell, 80 class
//! scores (already sigmoid) and 44 box values: for each side (left, top, right, bottom) 11 bins
//! whose softmax is a distribution over distances 0–10 strides; its expected value × stride is
//! the distance from the cell's centre ((x + 0.5)·stride, (y + 0.5)·stride) to that side.

/// Grid strides, in pixels of the 416 input, finest first.
pub const STRIDES: [usize; 3] = [8, 16, 32];
pub const CLASSES: usize = 80;
/// Bins per box side (reg_max + 1).
pub const BINS: usize = 11;
/// Below this a class score is not a detection (the brief found 0.35 worked).
pub const SCORE_THRESHOLD: f32 = 0.35;
/// Two boxes of one class overlapping more than this are one object.
pub const IOU_THRESHOLD: f32 = 0.5;
/// Kept per frame, best first.
pub const MAX_DETECTIONS: usize = 100;

/// A box in fractions of the input's width and height (0–1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Box2 {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Box2 {
    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    fn area(&self) -> f32 {
        self.width() * (self.y1 - self.y0).max(0.0)
    }

    fn iou(&self, other: &Box2) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detected {
    /// COCO class index.
    pub class: usize,
    pub score: f32,
    pub bbox: Box2,
}

/// The six outputs, per stride: scores (cells × 80) and box bins (cells × 44).
#[derive(Clone, Debug, Default)]
pub struct Levels {
    pub scores: [Vec<f32>; 3],
    pub boxes: [Vec<f32>; 3],
}

/// Cells of the grid at `level` for the 416 input.
pub fn cells(level: usize) -> usize {
    let side = super::INPUT_SIZE / STRIDES[level];
    side * side
}

impl Levels {
    /// Places one output by its shape (the converted model's output names carry no meaning).
    pub fn insert(&mut self, shape: &[usize], values: Vec<f32>) -> Result<(), String> {
        let [1, rows, cols] = shape else {
            return Err(format!("unexpected output shape {shape:?}"));
        };
        let level = (0..STRIDES.len())
            .find(|&level| cells(level) == *rows)
            .ok_or_else(|| format!("unexpected output shape {shape:?}"))?;
        match *cols {
            CLASSES => self.scores[level] = values,
            n if n == 4 * BINS => self.boxes[level] = values,
            _ => return Err(format!("unexpected output shape {shape:?}")),
        }
        Ok(())
    }

    /// Every level has both outputs at the right size.
    pub fn check(&self) -> Result<(), String> {
        for (level, stride) in STRIDES.iter().enumerate() {
            if self.scores[level].len() != cells(level) * CLASSES
                || self.boxes[level].len() != cells(level) * 4 * BINS
            {
                return Err(format!("output of stride {stride} missing"));
            }
        }
        Ok(())
    }
}

/// Decoded, thresholded, suppressed detections, best first.
pub fn detections(levels: &Levels) -> Vec<Detected> {
    let mut candidates = Vec::new();
    for level in 0..STRIDES.len() {
        for cell in 0..cells(level) {
            let scores = &levels.scores[level][cell * CLASSES..][..CLASSES];
            if !scores.iter().any(|s| *s >= SCORE_THRESHOLD) {
                continue;
            }
            let bbox = cell_box(
                level,
                cell,
                &levels.boxes[level][cell * 4 * BINS..][..4 * BINS],
            );
            for (class, score) in scores.iter().enumerate() {
                if *score >= SCORE_THRESHOLD {
                    candidates.push(Detected {
                        class,
                        score: *score,
                        bbox,
                    });
                }
            }
        }
    }
    nms(candidates)
}

/// The box of one cell from its 44 bins, clipped to the frame.
pub fn cell_box(level: usize, cell: usize, bins: &[f32]) -> Box2 {
    let stride = STRIDES[level] as f32;
    let side = super::INPUT_SIZE / STRIDES[level];
    let (row, col) = (cell / side, cell % side);
    let (cx, cy) = ((col as f32 + 0.5) * stride, (row as f32 + 0.5) * stride);
    let d: Vec<f32> = bins
        .chunks(BINS)
        .map(|side| expected_bin(side) * stride)
        .collect();
    let size = super::INPUT_SIZE as f32;
    let clip = |v: f32| (v / size).clamp(0.0, 1.0);
    Box2 {
        x0: clip(cx - d[0]),
        y0: clip(cy - d[1]),
        x1: clip(cx + d[2]),
        y1: clip(cy + d[3]),
    }
}

/// Σ i·softmax(bins)_i, computed stably.
fn expected_bin(bins: &[f32]) -> f32 {
    let max = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut total, mut weighted) = (0f32, 0f32);
    for (i, v) in bins.iter().enumerate() {
        let p = (v - max).exp();
        total += p;
        weighted += p * i as f32;
    }
    weighted / total
}

/// Greedy per-class suppression: the best box of a class removes its overlapping rivals.
pub fn nms(mut candidates: Vec<Detected>) -> Vec<Detected> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detected> = Vec::new();
    for candidate in candidates {
        let suppressed = kept
            .iter()
            .any(|k| k.class == candidate.class && k.bbox.iou(&candidate.bbox) > IOU_THRESHOLD);
        if !suppressed {
            kept.push(candidate);
            if kept.len() == MAX_DETECTIONS {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn reference() -> Value {
        let text = include_str!("../../models/nanodet-reference.json");
        serde_json::from_str(text).unwrap()
    }

    fn floats(value: &Value) -> Vec<f32> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    }

    /// The astronaut's candidate cells from the conversion script, every other cell empty.
    fn astronaut_levels() -> Levels {
        let mut levels = Levels::default();
        for level in 0..3 {
            levels.scores[level] = vec![0.0; cells(level) * CLASSES];
            levels.boxes[level] = vec![0.0; cells(level) * 4 * BINS];
        }
        for cell in reference()["astronaut"]["cells"].as_array().unwrap() {
            let level = cell["level"].as_u64().unwrap() as usize;
            let index = cell["cell"].as_u64().unwrap() as usize;
            levels.scores[level][index * CLASSES..][..CLASSES]
                .copy_from_slice(&floats(&cell["scores"]));
            levels.boxes[level][index * 4 * BINS..][..4 * BINS]
                .copy_from_slice(&floats(&cell["boxes"]));
        }
        levels
    }

    #[test]
    fn decodes_the_reference_outputs_to_the_reference_boxes() {
        let reference = reference();
        assert_eq!(
            reference["score_threshold"].as_f64().unwrap() as f32,
            SCORE_THRESHOLD
        );
        assert_eq!(
            reference["iou_threshold"].as_f64().unwrap() as f32,
            IOU_THRESHOLD
        );
        let expected = reference["astronaut"]["detections"].as_array().unwrap();
        let found = detections(&astronaut_levels());
        assert_eq!(found.len(), expected.len(), "{found:?}");
        assert!(!found.is_empty());
        for (got, want) in found.iter().zip(expected) {
            assert_eq!(got.class, want["class"].as_u64().unwrap() as usize);
            assert!((got.score - want["score"].as_f64().unwrap() as f32).abs() < 1e-6);
            let b = floats(&want["box"]);
            for (g, w) in [got.bbox.x0, got.bbox.y0, got.bbox.x1, got.bbox.y1]
                .iter()
                .zip(&b)
            {
                assert!((g - w).abs() < 1e-4, "{got:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn a_uniform_distribution_is_the_middle_bin_and_a_peak_is_its_bin() {
        assert!((expected_bin(&[0.0; BINS]) - 5.0).abs() < 1e-6);
        let mut peak = [-50.0; BINS];
        peak[3] = 50.0;
        assert!((expected_bin(&peak) - 3.0).abs() < 1e-4);
        // Large logits stay finite.
        assert!(expected_bin(&[1e30; BINS]).is_finite());
    }

    #[test]
    fn cells_sit_at_their_centres() {
        let mut bins = [-50.0f32; 4 * BINS];
        for side in 0..4 {
            bins[side * BINS + 2] = 50.0; // 2 strides each way
        }
        // Level 2 (stride 32), 13 cells a row: cell 14 is row 1, column 1, centre (48, 48).
        let b = cell_box(2, 14, &bins);
        let px = |v: f32| v * 416.0;
        assert!((px(b.x0) - (48.0f32 - 64.0).max(0.0)).abs() < 1e-2, "{b:?}");
        assert!((px(b.x1) - 112.0).abs() < 1e-2, "{b:?}");
        assert!((px(b.y1) - 112.0).abs() < 1e-2, "{b:?}");
    }

    #[test]
    fn nms_is_per_class() {
        let square = Box2 {
            x0: 0.1,
            y0: 0.1,
            x1: 0.5,
            y1: 0.5,
        };
        let shifted = Box2 {
            x0: 0.12,
            y0: 0.1,
            x1: 0.52,
            y1: 0.5,
        };
        let apart = Box2 {
            x0: 0.6,
            y0: 0.6,
            x1: 0.9,
            y1: 0.9,
        };
        let d = |class, score, bbox| Detected { class, score, bbox };
        let kept = nms(vec![
            d(56, 0.5, shifted),
            d(56, 0.9, square),
            d(57, 0.4, square),
            d(56, 0.6, apart),
        ]);
        assert_eq!(
            kept,
            vec![d(56, 0.9, square), d(56, 0.6, apart), d(57, 0.4, square)]
        );
    }

    #[test]
    fn outputs_are_placed_by_shape() {
        let mut levels = Levels::default();
        assert!(levels.insert(&[1, 169, 80], vec![0.0; 169 * 80]).is_ok());
        assert!(levels.insert(&[1, 170, 80], vec![]).is_err());
        assert!(levels.insert(&[1, 169, 43], vec![]).is_err());
        assert!(levels.insert(&[169, 80], vec![]).is_err());
        assert!(levels.check().is_err());
    }
}
