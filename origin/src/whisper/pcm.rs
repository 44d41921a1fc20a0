//! The narration as Whisper reads it: 16 kHz mono samples, cut where they are quiet
//! (`dodolens_shared::audio_cut`, on the 16-bit samples) and handed over in [-1, 1].
//!
//! The clip arrives encoded (the whole-file path's Ogg/Opus, a live segment's WAV), so the same
//! guarded ffmpeg the extraction runs decodes it: the clip goes into a memfd read as
//! `/dev/fd/3`, raw s16le comes back on stdout, and nothing touches a filesystem. The input is
//! forced to the clip's own demuxer and only it is whitelisted; the output is cut at
//! `DODOLENS_MAX_AUDIO_S`, so the samples are bounded whatever the clip claims.

use zeroize::Zeroizing;

use crate::{
    analysis::{AudioClip, AudioFormat},
    config::FfmpegConfig,
    error::JobError,
    extract,
    video::MemFile,
};

/// The sample rate Whisper expects (and the one `audio_cut` reasons in).
pub const RATE: u32 = dodolens_shared::audio_cut::RATE;

/// The decoded 16-bit samples of `clip`, wiped when dropped.
pub async fn samples(
    cfg: &FfmpegConfig,
    clip: &AudioClip,
) -> Result<Zeroizing<Vec<i16>>, JobError> {
    let mut input = MemFile::create("dodolens-narration").map_err(internal)?;
    input.write(&clip.bytes).map_err(internal)?;
    input.seal().map_err(internal)?;
    let mut cmd = extract::child(&cfg.ffmpeg_bin, cfg, Some(input.raw_fd()), None);
    cmd.args(args(cfg, clip.format));
    let pcm = extract::stdout_of(cmd, cfg.timeout, "audio decoding").await?;
    drop(input);
    Ok(from_s16le(&pcm))
}

/// The decoding argv after the program name.
fn args(cfg: &FfmpegConfig, format: AudioFormat) -> Vec<String> {
    let demuxer = match format {
        AudioFormat::Ogg => "ogg",
        AudioFormat::Wav => "wav",
    };
    let mut args = extract::head_args(cfg);
    args.extend(["-format_whitelist", demuxer, "-protocol_whitelist"].map(String::from));
    args.push(extract::PROTOCOL_WHITELIST.into());
    args.extend(
        [
            "-f",
            demuxer,
            "-i",
            "/dev/fd/3",
            "-map",
            "0:a:0",
            "-ac",
            "1",
        ]
        .map(String::from),
    );
    args.extend(["-ar".into(), RATE.to_string()]);
    args.extend(["-t".into(), format!("{:.3}", cfg.max_audio.as_secs_f64())]);
    args.extend(["-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"].map(String::from));
    args
}

/// Little-endian 16-bit samples; a trailing odd byte is dropped.
fn from_s16le(pcm: &[u8]) -> Zeroizing<Vec<i16>> {
    let mut out = Zeroizing::new(Vec::with_capacity(pcm.len() / 2));
    out.extend(
        pcm.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]])),
    );
    out
}

/// Samples as the model takes them: floats in [-1, 1), wiped when dropped.
pub fn unit_range(samples: &[i16]) -> Zeroizing<Vec<f32>> {
    let mut out = Zeroizing::new(Vec::with_capacity(samples.len()));
    out.extend(samples.iter().map(|&s| f32::from(s) / 32768.0));
    out
}

fn internal(e: std::io::Error) -> JobError {
    JobError::Internal(format!("audio memfd: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_then_scaled_to_the_unit_range() {
        let pcm = [0x00, 0x80, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x40, 0x01];
        let samples = from_s16le(&pcm);
        assert_eq!(&samples[..], &[i16::MIN, i16::MAX, 0, 0x4000]);
        assert_eq!(
            &unit_range(&samples)[..],
            &[-1.0, 32767.0 / 32768.0, 0.0, 0.5]
        );
    }

    fn ffmpeg_config() -> FfmpegConfig {
        crate::config::Config::from_vars(|k| {
            (k == "DODOLENS_SIGNING_SECRET").then(|| "s".to_string())
        })
        .unwrap()
        .ffmpeg
    }

    #[tokio::test]
    async fn a_live_segment_comes_back_as_its_own_samples() {
        let pcm: Vec<u8> = (0..4000i32)
            .flat_map(|i| (((i * 37) % 20000 - 10000) as i16).to_le_bytes())
            .collect();
        let clip = AudioClip {
            bytes: crate::live::wav::wav(&pcm, RATE),
            format: AudioFormat::Wav,
        };
        let decoded = samples(&ffmpeg_config(), &clip).await.unwrap();
        assert_eq!(&decoded[..], &from_s16le(&pcm)[..]);
    }

    #[tokio::test]
    async fn a_clip_that_is_not_its_format_is_refused() {
        let clip = AudioClip {
            bytes: Zeroizing::new(b"RIFF but not really a wave file".to_vec()),
            format: AudioFormat::Ogg,
        };
        assert!(samples(&ffmpeg_config(), &clip).await.is_err());
    }

    #[test]
    fn the_input_is_forced_to_the_clip_format_only() {
        let cfg = ffmpeg_config();
        let argv = args(&cfg, AudioFormat::Wav).join(" ");
        assert!(
            argv.contains(
                "-format_whitelist wav -protocol_whitelist file,pipe -f wav -i /dev/fd/3"
            ),
            "{argv}"
        );
        assert!(argv.contains("-ar 16000 -t 600.000"), "{argv}");
        assert!(args(&cfg, AudioFormat::Ogg)
            .join(" ")
            .contains("-f ogg -i /dev/fd/3"));
    }
}
