//! A live recording's audio segments go to the transcription model as WAV: the origin holds
//! raw PCM (mono s16le, cut on sample boundaries), and a 44-byte RIFF header is all a decoder
//! needs to read it — no encoder to run per segment.

use zeroize::Zeroizing;

/// `pcm` (mono, 16-bit little-endian, `rate` Hz) as a WAV file.
pub(crate) fn wav(pcm: &[u8], rate: u32) -> Zeroizing<Vec<u8>> {
    let data = pcm.len() as u32;
    let mut out = Zeroizing::new(Vec::with_capacity(44 + pcm.len()));
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_describes_the_samples() {
        let file = wav(&[1, 0, 2, 0], 16_000);
        assert_eq!(file.len(), 48);
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(file[4..8].try_into().unwrap()), 40);
        assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 16_000);
        assert_eq!(u32::from_le_bytes(file[40..44].try_into().unwrap()), 4);
        assert_eq!(&file[44..], &[1, 0, 2, 0]);
    }
}
