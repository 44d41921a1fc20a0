//! The embedded NanoDet under tract, against what onnxruntime computed in the conversion script
//! (`scripts/models/convert-nanodet` → `origin/models/nanodet-reference.json`), and on a real
//! photograph with a known COCO object.

use dodolens_origin::detector::{self, decode, preprocess, Detector};
use dodolens_shared::coco;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn reference() -> Value {
    serde_json::from_str(include_str!("../models/nanodet-reference.json")).unwrap()
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// The script's synthetic image, computed the same way (integers only).
fn pattern() -> Vec<u8> {
    let size = detector::INPUT_SIZE;
    let mut rgb = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        for x in 0..size {
            for c in 0..3 {
                rgb.push(((x * 7 + y * 13 + c * 50 + (x * y) % 97) % 256) as u8);
            }
        }
    }
    rgb
}

#[test]
fn the_embedded_model_is_the_committed_one() {
    let recorded = include_str!("../models/nanodet.onnx.sha256");
    let digest = hex::encode(Sha256::digest(detector::MODEL_ONNX));
    assert_eq!(recorded.split_whitespace().next(), Some(digest.as_str()));
}

#[test]
fn tract_matches_onnxruntime_on_the_same_input() {
    let detector = Detector::load().unwrap();
    let size = detector::INPUT_SIZE;
    let levels = detector
        .run(preprocess::from_rgb(&pattern(), size, size))
        .unwrap();
    let samples = reference()["pattern"].as_array().unwrap().clone();
    assert_eq!(samples.len(), 15);
    let mut worst = 0f32;
    for sample in samples {
        let level = sample["level"].as_u64().unwrap() as usize;
        let cell = sample["cell"].as_u64().unwrap() as usize;
        let scores = &levels.scores[level][cell * decode::CLASSES..][..decode::CLASSES];
        let boxes = &levels.boxes[level][cell * 4 * decode::BINS..][..4 * decode::BINS];
        for (got, want) in scores.iter().chain(boxes).zip(
            floats(&sample["scores"])
                .iter()
                .chain(&floats(&sample["boxes"])),
        ) {
            worst = worst.max((got - want).abs());
        }
    }
    assert!(worst < 1e-3, "largest difference {worst}");
}

#[test]
fn the_astronaut_is_a_person() {
    let detector = Detector::load().unwrap();
    let jpeg = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/astronaut.jpg"
    ))
    .unwrap();
    let found = detector.detect_jpeg(&jpeg).unwrap();
    let person = coco::class_index("person").unwrap();
    let best = found.iter().find(|d| d.class == person).expect("a person");
    let expected = &reference()["astronaut"]["detections"][0];
    assert_eq!(expected["class"], 0);
    assert!(
        (best.score - expected["score"].as_f64().unwrap() as f32).abs() < 0.05,
        "{best:?}"
    );
    let b = floats(&expected["box"]);
    for (got, want) in [best.bbox.x0, best.bbox.y0, best.bbox.x1, best.bbox.y1]
        .iter()
        .zip(&b)
    {
        assert!((got - want).abs() < 0.03, "{best:?} vs {b:?}");
    }
    // Nothing a mover would quote is invented from a portrait.
    assert!(
        found
            .iter()
            .all(|d| coco::quote(d.class, d.bbox.width() as f64).is_none()),
        "{found:?}"
    );
}
