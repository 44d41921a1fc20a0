//! JPEG frame → network input: decoded to RGB, resized to 416×416 (bilinear, half-pixel
//! centres, aspect not kept: box widths stay fractions of the frame's width), reordered to BGR
//! planes and normalised with NanoDet's training mean and standard deviation. The brief measured
//! this (not the TF.js package's RGB/255) to give sensible boxes.

use jpeg_decoder::{Decoder, PixelFormat};
use zeroize::Zeroizing;

use super::{DetectorError, INPUT_SIZE};

/// Per channel, in B, G, R order.
pub const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
pub const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];

/// Largest frame decoded (the pipeline extracts 768 px on the long side).
const MAX_PIXELS: usize = 4096 * 4096;

pub fn from_jpeg(jpeg: &[u8]) -> Result<Vec<f32>, DetectorError> {
    let mut decoder = Decoder::new(jpeg);
    decoder
        .read_info()
        .map_err(|e| DetectorError::Frame(e.to_string()))?;
    let info = decoder
        .info()
        .ok_or_else(|| DetectorError::Frame("no header".into()))?;
    let (width, height) = (usize::from(info.width), usize::from(info.height));
    if width == 0 || height == 0 || width * height > MAX_PIXELS {
        return Err(DetectorError::Frame(format!("{width}×{height}")));
    }
    let pixels = Zeroizing::new(
        decoder
            .decode()
            .map_err(|e| DetectorError::Frame(e.to_string()))?,
    );
    let rgb = match info.pixel_format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::L8 => Zeroizing::new(pixels.iter().flat_map(|&l| [l, l, l]).collect()),
        other => return Err(DetectorError::Frame(format!("pixel format {other:?}"))),
    };
    Ok(from_rgb(&rgb, width, height))
}

/// RGB bytes (row-major, 3 per pixel) → the 1×3×416×416 BGR normalised tensor's values.
pub fn from_rgb(rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
    let size = INPUT_SIZE;
    let mut out = vec![0f32; 3 * size * size];
    let xs: Vec<(usize, usize, f32)> = (0..size).map(|i| sample(i, width)).collect();
    for oy in 0..size {
        let (y0, y1, wy) = sample(oy, height);
        for (ox, &(x0, x1, wx)) in xs.iter().enumerate() {
            for channel in 0..3 {
                let at = |x: usize, y: usize| f32::from(rgb[(y * width + x) * 3 + channel]);
                let top = at(x0, y0) * (1.0 - wx) + at(x1, y0) * wx;
                let bottom = at(x0, y1) * (1.0 - wx) + at(x1, y1) * wx;
                let value = top * (1.0 - wy) + bottom * wy;
                let bgr = 2 - channel;
                out[(bgr * size + oy) * size + ox] = (value - MEAN_BGR[bgr]) / STD_BGR[bgr];
            }
        }
    }
    out
}

/// Source pixels and weight for output index `i` of `INPUT_SIZE` over `len` source pixels.
fn sample(i: usize, len: usize) -> (usize, usize, f32) {
    let position =
        ((i as f64 + 0.5) * len as f64 / INPUT_SIZE as f64 - 0.5).clamp(0.0, (len - 1) as f64);
    let first = position.floor() as usize;
    let second = (first + 1).min(len - 1);
    (first, second, (position - first as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_input_is_only_reordered_and_normalised() {
        let size = INPUT_SIZE;
        let rgb: Vec<u8> = (0..size * size * 3).map(|i| (i % 251) as u8).collect();
        let out = from_rgb(&rgb, size, size);
        let (x, y) = (17, 301);
        let pixel = &rgb[(y * size + x) * 3..][..3];
        for (bgr, rgb_channel) in [(0, 2), (1, 1), (2, 0)] {
            let expected = (f32::from(pixel[rgb_channel]) - MEAN_BGR[bgr]) / STD_BGR[bgr];
            assert!((out[(bgr * size + y) * size + x] - expected).abs() < 1e-5);
        }
    }

    #[test]
    fn a_uniform_frame_of_any_size_stays_uniform() {
        let rgb = [200u8, 100, 50].repeat(768 * 432);
        let out = from_rgb(&rgb, 768, 432);
        let plane = INPUT_SIZE * INPUT_SIZE;
        assert!(out[..plane]
            .iter()
            .all(|v| (v - (50.0 - MEAN_BGR[0]) / STD_BGR[0]).abs() < 1e-4));
        assert!(out[2 * plane..]
            .iter()
            .all(|v| (v - (200.0 - MEAN_BGR[2]) / STD_BGR[2]).abs() < 1e-4));
    }

    #[test]
    fn bad_jpegs_are_refused() {
        assert!(matches!(
            from_jpeg(b"not a jpeg"),
            Err(DetectorError::Frame(_))
        ));
        assert!(matches!(from_jpeg(&[]), Err(DetectorError::Frame(_))));
    }
}
