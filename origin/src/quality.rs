//! Cheap quality signals computed from the extracted JPEG frames: mean luma (too dark) and a
//! sharpness score (blurry). They feed fusion's warnings; decoding a dozen 768 px frames costs a
//! few milliseconds, far less than asking ffmpeg for another filter pass.

use zeroize::{Zeroize, Zeroizing};

use crate::extract::Frame;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quality {
    /// Mean luma over all frames, 0–255.
    pub mean_luma: Option<f64>,
    /// Median over frames of var(Laplacian) / (var + 100): 0 is flat, near 1 is sharp.
    pub sharpness: Option<f64>,
}

pub fn assess(frames: &[Frame]) -> Quality {
    let mut lumas = Vec::new();
    let mut sharpness = Vec::new();
    for frame in frames {
        let Some(gray) = Gray::decode(&frame.jpeg) else {
            continue;
        };
        lumas.push(gray.pixels.iter().map(|&v| v as f64).sum::<f64>() / gray.pixels.len() as f64);
        sharpness.push(gray.sharpness());
    }
    sharpness.sort_by(f64::total_cmp);
    Quality {
        mean_luma: (!lumas.is_empty()).then(|| lumas.iter().sum::<f64>() / lumas.len() as f64),
        sharpness: sharpness.get(sharpness.len() / 2).copied(),
    }
}

/// A decoded frame's luma plane.
pub(crate) struct Gray {
    pixels: Zeroizing<Vec<u8>>,
    w: usize,
    h: usize,
}

impl Gray {
    /// `None` for a JPEG that does not decode, or is smaller than 3×3.
    pub(crate) fn decode(jpeg: &[u8]) -> Option<Gray> {
        let mut decoder = jpeg_decoder::Decoder::new(jpeg);
        let mut pixels = decoder.decode().ok()?;
        let info = decoder.info()?;
        let gray = Zeroizing::new(to_gray(&pixels, info.pixel_format));
        pixels.zeroize();
        let (w, h) = (info.width as usize, info.height as usize);
        (gray.len() == w * h && w >= 3 && h >= 3).then_some(Gray { pixels: gray, w, h })
    }

    /// var(Laplacian) / (var + 100): 0 is flat, near 1 is sharp.
    pub(crate) fn sharpness(&self) -> f64 {
        let var = laplacian_variance(&self.pixels, self.w, self.h);
        var / (var + 100.0)
    }

    /// How different from `other`: the mean absolute luma difference over 64, at most 1
    /// (1 for frames of different sizes).
    pub(crate) fn difference(&self, other: &Gray) -> f64 {
        if (self.w, self.h) != (other.w, other.h) {
            return 1.0;
        }
        let sum: u64 = self
            .pixels
            .iter()
            .zip(other.pixels.iter())
            .map(|(&a, &b)| a.abs_diff(b) as u64)
            .sum();
        (sum as f64 / self.pixels.len() as f64 / 64.0).min(1.0)
    }
}

fn to_gray(pixels: &[u8], format: jpeg_decoder::PixelFormat) -> Vec<u8> {
    match format {
        jpeg_decoder::PixelFormat::L8 => pixels.to_vec(),
        jpeg_decoder::PixelFormat::RGB24 => pixels
            .chunks_exact(3)
            .map(|p| ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000) as u8)
            .collect(),
        _ => Vec::new(),
    }
}

fn laplacian_variance(gray: &[u8], w: usize, h: usize) -> f64 {
    let mut sum = 0.0;
    let mut sum_sq = 0.0;
    let mut n = 0.0;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = gray[y * w + x] as f64;
            let lap = gray[(y - 1) * w + x] as f64
                + gray[(y + 1) * w + x] as f64
                + gray[y * w + x - 1] as f64
                + gray[y * w + x + 1] as f64
                - 4.0 * c;
            sum += lap;
            sum_sq += lap * lap;
            n += 1.0;
        }
    }
    let mean = sum / n;
    sum_sq / n - mean * mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_go_from_zero_to_one() {
        let flat = |v: u8| Gray {
            pixels: Zeroizing::new(vec![v; 16 * 16]),
            w: 16,
            h: 16,
        };
        assert_eq!(flat(10).difference(&flat(10)), 0.0);
        assert_eq!(flat(0).difference(&flat(32)), 0.5);
        assert_eq!(flat(0).difference(&flat(255)), 1.0);
    }

    #[test]
    fn flat_image_has_no_sharpness_and_edges_do() {
        let flat = vec![128u8; 16 * 16];
        assert_eq!(laplacian_variance(&flat, 16, 16), 0.0);
        let stripes: Vec<u8> = (0..16 * 16)
            .map(|i| if i % 2 == 0 { 0 } else { 255 })
            .collect();
        assert!(laplacian_variance(&stripes, 16, 16) > 1000.0);
    }
}
