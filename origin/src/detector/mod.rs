//! The local object detector: NanoDet (COCO, 80 classes) run in-process with tract.
//!
//! Why this shape: frames must never leave the origin in local mode, and nothing may be
//! downloaded at build or run time, so the ONNX file converted once by
//! `scripts/models/convert-nanodet` is embedded in the binary (its sha256 is checked by a test)
//! and run by tract, a pure-Rust engine that needs no shared library. The plan is optimised once
//! at start-up and shared by every job; each call makes its own small state, so concurrent jobs
//! do not contend, and tract runs on the calling thread only, so one frame uses one core (the
//! pipeline calls it from a blocking task).
//!
//! [`preprocess`] turns a JPEG frame into the network's input, [`decode`] turns its six outputs
//! into boxes; what the classes mean for a move is decided in `dodolens_shared::coco`.

pub mod decode;
pub mod preprocess;

use std::sync::Arc;

use thiserror::Error;
use tract_onnx::prelude::*;

pub use decode::{Box2, Detected, Levels};

/// The converted model, as committed (`origin/models/nanodet.onnx`).
pub const MODEL_ONNX: &[u8] = include_bytes!("../../models/nanodet.onnx");
/// What results say produced the vision part in local mode.
pub const MODEL_NAME: &str = "nanodet-coco (local, tract)";
/// The network's square input side, in pixels.
pub const INPUT_SIZE: usize = 416;

#[derive(Debug, Error)]
pub enum DetectorError {
    #[error("model: {0}")]
    Model(String),
    #[error("frame: {0}")]
    Frame(String),
}

fn model_error(e: impl std::fmt::Display) -> DetectorError {
    DetectorError::Model(e.to_string())
}

#[derive(Clone)]
pub struct Detector {
    plan: Arc<TypedRunnableModel>,
}

impl Detector {
    /// Parses and optimises the embedded model (about a second; done once at start-up).
    pub fn load() -> Result<Detector, DetectorError> {
        let size = INPUT_SIZE as i64;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(MODEL_ONNX))
            .map_err(model_error)?
            .with_input_fact(0, f32::fact([1, 3, size, size]).into())
            .map_err(model_error)?
            .into_optimized()
            .map_err(model_error)?
            .into_runnable()
            .map_err(model_error)?;
        Ok(Detector { plan })
    }

    /// Everything the model finds in a JPEG frame, after per-class NMS.
    pub fn detect_jpeg(&self, jpeg: &[u8]) -> Result<Vec<Detected>, DetectorError> {
        let input = preprocess::from_jpeg(jpeg)?;
        let levels = self.run(input)?;
        Ok(decode::detections(&levels))
    }

    /// The raw outputs for one preprocessed input tensor (1×3×416×416, BGR, normalised).
    pub fn run(&self, input: Vec<f32>) -> Result<Levels, DetectorError> {
        let tensor =
            Tensor::from_shape(&[1, 3, INPUT_SIZE, INPUT_SIZE], &input).map_err(model_error)?;
        drop(input);
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(model_error)?;
        let mut levels = Levels::default();
        for output in &outputs {
            let view = output.to_plain_array_view::<f32>().map_err(model_error)?;
            let shape = view.shape().to_vec();
            let values: Vec<f32> = view.iter().copied().collect();
            levels
                .insert(&shape, values)
                .map_err(DetectorError::Model)?;
        }
        levels.check().map_err(DetectorError::Model)?;
        Ok(levels)
    }
}
