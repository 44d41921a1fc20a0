//! The one ffmpeg of a live job, reading the recording from its stdin as the ranges arrive.
//!
//! A fragmented MP4 or a WebM without cues can be decoded from a pipe, in order, before its
//! end. ffmpeg keeps a candidate frame about every 2 s (`fps=1/2`, scaled like the whole-file
//! path), writes them as MJPEG on stdout — each scored as it arrives, sharpness and difference
//! from the previous candidate (`crate::quality`) — logs their times (`showinfo`) on stderr,
//! and writes the audio, mono 16 kHz s16le, into the job's audio memfd for
//! [`super::segments`]. The child is guarded like every other (`extract::child`); the bytes go
//! through a channel to a writer task, so a range is acknowledged without waiting for ffmpeg.

use std::process::Stdio;

use bytes::Bytes;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStderr, ChildStdin, ChildStdout},
    sync::mpsc,
    task::JoinHandle,
};
use zeroize::Zeroizing;

use crate::{
    config::FfmpegConfig,
    error::JobError,
    extract::{self, AUDIO_FD, STDERR_TAIL_BYTES},
    quality::Gray,
    video::MemFile,
};

/// Seconds between candidates.
pub(crate) const CANDIDATE_EVERY_S: u32 = 2;
/// Candidate JPEG bytes kept at most; later candidates are dropped.
const MAX_CANDIDATE_BYTES: usize = 128 * 1024 * 1024;

/// A candidate frame and its scores, in arrival order.
pub(crate) struct Scored {
    pub jpeg: Zeroizing<Vec<u8>>,
    pub sharpness: f64,
    pub difference: f64,
}

/// A candidate with its time in the recording.
pub(crate) struct Candidate {
    pub scored: Scored,
    pub t: f64,
}

/// What ffmpeg said: candidate times and the end of the rest, for a failure's cause.
#[derive(Default)]
struct Log {
    times: Vec<f64>,
    tail: String,
}

pub(crate) struct Decoder {
    input: Option<mpsc::UnboundedSender<Bytes>>,
    child: Child,
    writer: JoinHandle<()>,
    frames: JoinHandle<Vec<Scored>>,
    log: JoinHandle<Log>,
}

impl Decoder {
    /// Starts ffmpeg; with `audio`, the audio track goes there.
    pub(crate) fn spawn(cfg: &FfmpegConfig, audio: Option<&MemFile>) -> Result<Decoder, JobError> {
        let mut cmd = extract::child(&cfg.ffmpeg_bin, cfg, None, audio.map(MemFile::raw_fd));
        cmd.stdin(Stdio::piped()).args(args(cfg, audio.is_some()));
        let mut child = cmd
            .spawn()
            .map_err(|e| JobError::Internal(format!("spawn live extraction: {e}")))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (input, bytes) = mpsc::unbounded_channel();
        Ok(Decoder {
            input: Some(input),
            child,
            writer: tokio::spawn(write(stdin, bytes)),
            frames: tokio::spawn(read_frames(stdout)),
            log: tokio::spawn(read_log(stderr)),
        })
    }

    /// Queues `bytes` for ffmpeg, in order. A child that died is found out at the finish.
    pub(crate) fn feed(&self, bytes: Bytes) {
        if let Some(input) = &self.input {
            let _ = input.send(bytes);
        }
    }

    /// Closes ffmpeg's input, waits for it to end, and returns the candidates with their times.
    pub(crate) async fn finish(mut self, cfg: &FfmpegConfig) -> Result<Vec<Candidate>, JobError> {
        self.input = None;
        let work = async {
            let status = self.child.wait().await.map_err(extract::internal)?;
            let _ = (&mut self.writer).await;
            let scored = (&mut self.frames).await.map_err(extract::internal)?;
            let log = (&mut self.log).await.map_err(extract::internal)?;
            Ok::<_, JobError>((status, scored, log))
        };
        let (status, scored, log) = tokio::time::timeout(cfg.timeout, work)
            .await
            .map_err(|_| JobError::Timeout("live extraction"))??;
        if !status.success() {
            let signal = std::os::unix::process::ExitStatusExt::signal(&status);
            return Err(extract::failed(signal, &log.tail));
        }
        Ok(scored
            .into_iter()
            .enumerate()
            .map(|(i, scored)| Candidate {
                t: log
                    .times
                    .get(i)
                    .copied()
                    .unwrap_or((i as u32 * CANDIDATE_EVERY_S) as f64),
                scored,
            })
            .collect())
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // The child is killed by kill_on_drop; the tasks would end with its pipes anyway.
        self.writer.abort();
        self.frames.abort();
        self.log.abort();
    }
}

/// The argv after the program name: the recording on stdin, candidates on stdout, the audio to
/// `/dev/fd/4` when asked.
fn args(cfg: &FfmpegConfig, audio: bool) -> Vec<String> {
    let mut args = extract::head_args(cfg);
    args.extend(extract::input_guard().map(String::from));
    args.extend(["-i", "pipe:0", "-map", "0:v:0", "-vf"].map(String::from));
    args.push(format!(
        "fps=1/{CANDIDATE_EVERY_S},{}",
        extract::scale_filter(cfg)
    ));
    args.extend(["-pix_fmt", "yuvj420p", "-q:v"].map(String::from));
    args.push(cfg.jpeg_quality.to_string());
    args.extend(
        [
            "-c:v",
            "mjpeg",
            "-f",
            "image2pipe",
            "-flush_packets",
            "1",
            "pipe:1",
        ]
        .map(String::from),
    );
    if audio {
        args.extend(
            [
                "-map",
                "0:a:0",
                "-vn",
                "-ac",
                "1",
                "-ar",
                "16000",
                "-c:a",
                "pcm_s16le",
            ]
            .map(String::from),
        );
        args.extend(["-t".into(), format!("{:.3}", cfg.max_audio.as_secs_f64())]);
        args.extend(["-flush_packets", "1", "-f", "s16le"].map(String::from));
        args.push(format!("/dev/fd/{AUDIO_FD}"));
    }
    args
}

/// Writes the queued ranges to ffmpeg's stdin; closes it when the queue is closed.
async fn write(mut stdin: ChildStdin, mut bytes: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(chunk) = bytes.recv().await {
        if stdin.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

/// Reads the MJPEG stream and scores every complete image as it arrives.
async fn read_frames(mut stdout: ChildStdout) -> Vec<Scored> {
    let mut pending = Zeroizing::new(Vec::new());
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut scored = Vec::new();
    let mut kept = 0usize;
    let mut previous: Option<Gray> = None;
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => return scored,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let (jpegs, consumed) = extract::split_complete_jpegs(&pending);
        pending.drain(..consumed);
        for jpeg in jpegs {
            kept += jpeg.len();
            if kept > MAX_CANDIDATE_BYTES {
                continue;
            }
            let before = previous.take();
            let Ok((one, gray)) = tokio::task::spawn_blocking(move || score(jpeg, before)).await
            else {
                continue;
            };
            previous = gray;
            scored.push(one);
        }
    }
}

/// Sharpness, and the difference from the previous candidate (1 for the first, or after one
/// that did not decode).
fn score(jpeg: Zeroizing<Vec<u8>>, previous: Option<Gray>) -> (Scored, Option<Gray>) {
    let gray = Gray::decode(&jpeg);
    let sharpness = gray.as_ref().map_or(0.0, Gray::sharpness);
    let difference = match (&gray, &previous) {
        (Some(now), Some(before)) => now.difference(before),
        _ => 1.0,
    };
    (
        Scored {
            jpeg,
            sharpness,
            difference,
        },
        gray,
    )
}

/// Collects the candidates' times and keeps the end of everything else ffmpeg said.
async fn read_log(stderr: ChildStderr) -> Log {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut log = Log::default();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return log,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        if text.contains("Parsed_showinfo") {
            log.times.extend(extract::showinfo_times(&text));
            continue;
        }
        log.tail.push_str(&text);
        if log.tail.len() > 2 * STDERR_TAIL_BYTES {
            let mut cut = log.tail.len() - STDERR_TAIL_BYTES;
            while !log.tail.is_char_boundary(cut) {
                cut += 1;
            }
            log.tail.drain(..cut);
        }
    }
}
