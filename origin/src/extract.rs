//! Probe and extraction with ffmpeg, reading the video straight from its memfd.
//!
//! Why it looks like this (numbers in ARCHITECTURE.md §7): phones write the MP4 index at the
//! end, so ffmpeg must be able to seek — it opens `/dev/fd/3`, a fresh description of the memfd.
//! Frames must cover the whole video, and decoding every frame of a 1080p video is 10–50× slower
//! than decoding keyframes only, so one process decodes keyframes, keeps the first one in each
//! of N equal time buckets, downscales them to JPEG on stdout and encodes the audio track to a
//! second memfd at the same time. When keyframes are too sparse to fill the buckets,
//! `shared::frame_plan` decides what fills the rest, from the keyframe times the container's
//! packets carry (read without decoding while the keyframes pass starts). Keyframes at most
//! 8 s apart (an iPhone's HEVC MOV: one every 7.5 s) are frames enough; the empty buckets of
//! wider gaps, or a second after a keyframe, get one short process each, one after the other
//! but beside the keyframes pass, that seeks to the bucket's start and decodes reference frames
//! only (`-skip_frame noref`) from the keyframe before it — on the 60 s 1080p HEVC 10-bit MOV,
//! the four such seeks took 2.7 s and 114 MiB against 2.6 s and 332 MiB as four inputs of one
//! process and 23 s for a full decode (ARCHITECTURE.md, "Frames from sparse keyframes"). When
//! seeks would decode more than half the video (MediaRecorder WebM: one keyframe), a second
//! pass decodes every frame with the same buckets.
//!
//! Every child runs with a demuxer and protocol whitelist (a playlist or concat file disguised
//! as `.mp4` is refused and cannot make ffmpeg open another file or URL), an address-space
//! limit, a wall-clock timeout and `kill_on_drop`, and in `/` so a relative path can never
//! write into the service's directory.

use std::{os::fd::RawFd, process::Stdio, time::Duration};

use serde_json::Value;
use tokio::{io::AsyncReadExt, process::Command};
use zeroize::Zeroizing;

use dodolens_shared::frame_plan::{self, FramePlan};

use crate::{config::FfmpegConfig, error::JobError, video::MemFile};

pub const FORMAT_WHITELIST: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm";
pub const PROTOCOL_WHITELIST: &str = "file,pipe";

const VIDEO_FD: RawFd = 3;
pub(crate) const AUDIO_FD: RawFd = 4;
/// More JPEG bytes than this on stdout means something is wrong; the rest is read and dropped.
const MAX_FRAME_BYTES: u64 = 64 * 1024 * 1024;
pub(crate) const MAX_STDERR_BYTES: u64 = 256 * 1024;
/// The end of an over-long log, kept as well: the line that explains a failure is there.
pub(crate) const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// What ffprobe found.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub duration_s: Option<f64>,
    /// Displayed size, rotation applied.
    pub width: u32,
    pub height: u32,
    /// Clockwise degrees, 0/90/180/270.
    pub rotation: i32,
    pub has_audio: bool,
}

pub struct Frame {
    pub jpeg: Zeroizing<Vec<u8>>,
    pub pts_s: f64,
}

pub struct Extraction {
    pub frames: Vec<Frame>,
    /// Mono 16 kHz Opus in Ogg, when the video has sound.
    pub audio: Option<Zeroizing<Vec<u8>>>,
    pub path: FramePath,
}

/// How the frames were obtained (logged; the tests check which path a file takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramePath {
    /// A keyframe in every bucket.
    Keyframes,
    /// Keyframes, and this many seeks to the starts of the buckets without one.
    KeyframesAndSeeks(usize),
    /// Keyframes too sparse to seek: every frame decoded.
    DecodedAll,
}

pub async fn probe(cfg: &FfmpegConfig, video: &MemFile) -> Result<Probe, JobError> {
    let mut cmd = child(&cfg.ffprobe_bin, cfg, Some(video.raw_fd()), None);
    cmd.args(["-v", "error"]).args(input_guard()).args([
        "-show_entries",
        "format=duration:stream=codec_type,width,height,duration:stream_side_data=rotation:\
         stream_tags=rotate:stream_disposition=attached_pic",
        "-of",
        "json",
        &format!("/dev/fd/{VIDEO_FD}"),
    ]);
    let out = run(cmd, cfg.timeout, "probe").await?;
    if !out.status_ok {
        return Err(failure(&out));
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| JobError::InvalidMedia(format!("ffprobe output: {e}")))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| {
        s["codec_type"] == "video" && s["disposition"]["attached_pic"].as_i64() != Some(1)
    });
    let Some(video) = video else {
        return Err(JobError::UnsupportedMedia("no video stream".into()));
    };
    let rotation = video["side_data_list"]
        .as_array()
        .and_then(|list| list.iter().find_map(|d| d["rotation"].as_f64()))
        .or_else(|| {
            video["tags"]["rotate"]
                .as_str()
                .and_then(|r| r.parse().ok())
        })
        .map(|r| ((r.round() as i32 % 360) + 360) % 360)
        .unwrap_or(0);
    let (w, h) = (
        video["width"].as_u64().unwrap_or(0),
        video["height"].as_u64().unwrap_or(0),
    );
    let (width, height) = if rotation % 180 == 90 { (h, w) } else { (w, h) };
    let duration_s = [&json["format"]["duration"], &video["duration"]]
        .iter()
        .find_map(|v| v.as_str().and_then(|d| d.parse::<f64>().ok()))
        .filter(|d| d.is_finite() && *d > 0.0);
    Ok(Probe {
        duration_s,
        width: width as u32,
        height: height as u32,
        rotation,
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

/// Duration by demuxing the video track without decoding, for containers that do not declare
/// it (MediaRecorder WebM).
pub async fn measure_duration(cfg: &FfmpegConfig, video: &MemFile) -> Result<f64, JobError> {
    let mut cmd = child(&cfg.ffmpeg_bin, cfg, Some(video.raw_fd()), None);
    cmd.args(["-nostdin", "-hide_banner", "-nostats", "-v", "error"])
        .args(input_guard())
        .args(["-i", &format!("/dev/fd/{VIDEO_FD}")])
        .args([
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-",
        ]);
    let out = run(cmd, cfg.timeout, "probe").await?;
    if !out.status_ok {
        return Err(failure(&out));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .find_map(|us| us.trim().parse::<f64>().ok())
        .map(|us| us / 1e6)
        .filter(|d| *d > 0.0)
        .ok_or_else(|| JobError::InvalidMedia("no decodable video".into()))
}

/// Frames across the whole duration and, when `with_audio`, the audio track.
pub async fn extract(
    cfg: &FfmpegConfig,
    video: &MemFile,
    job_id: &str,
    duration_s: f64,
    with_audio: bool,
) -> Result<Extraction, JobError> {
    let audio_file = if with_audio {
        Some(MemFile::create(&format!("dodolens-audio-{job_id}")).map_err(internal)?)
    } else {
        None
    };
    let (first, (plan, sought)) = tokio::try_join!(
        frames_pass(cfg, video, audio_file.as_ref(), duration_s, true),
        planned_seeks(cfg, video, duration_s),
    )?;
    let audio = match &audio_file {
        Some(file) => Some(file.read_all().map_err(internal)?).filter(|a| !a.is_empty()),
        None => None,
    };
    drop(audio_file);
    let (frames, path) = match plan {
        FramePlan::Complete => (first, FramePath::Keyframes),
        FramePlan::Seek(times) => (
            merge(cfg, duration_s, first, sought),
            FramePath::KeyframesAndSeeks(times.len()),
        ),
        FramePlan::DecodeAll => {
            // Same buckets, no audio again.
            let all = frames_pass(cfg, video, None, duration_s, false).await?;
            let frames = if all.len() > first.len() { all } else { first };
            (frames, FramePath::DecodedAll)
        }
    };
    if frames.is_empty() {
        return Err(JobError::InvalidMedia("no decodable frame".into()));
    }
    Ok(Extraction {
        frames,
        audio,
        path,
    })
}

/// The plan from the container's keyframes and, when it seeks, the frames sought: this runs
/// beside the keyframes pass, so a job has at most two ffmpeg at a time.
async fn planned_seeks(
    cfg: &FfmpegConfig,
    video: &MemFile,
    duration_s: f64,
) -> Result<(FramePlan, Vec<Frame>), JobError> {
    let keyframes = keyframe_times(cfg, video).await?;
    let plan = frame_plan::plan(&keyframes, duration_s, cfg.frame_count);
    let sought = match &plan {
        FramePlan::Seek(times) => seek_frames(cfg, video, times).await?,
        FramePlan::Complete | FramePlan::DecodeAll => Vec::new(),
    };
    Ok((plan, sought))
}

/// The video track's keyframe times from its packets' flags: demuxed, not decoded (0.1 s of
/// CPU for the 120 s 1080p fixture).
async fn keyframe_times(cfg: &FfmpegConfig, video: &MemFile) -> Result<Vec<f64>, JobError> {
    let mut cmd = child(&cfg.ffprobe_bin, cfg, Some(video.raw_fd()), None);
    cmd.args(["-v", "error"]).args(input_guard()).args([
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "csv=p=0",
        &format!("/dev/fd/{VIDEO_FD}"),
    ]);
    let out = run(cmd, cfg.timeout, "probe").await?;
    if !out.status_ok {
        return Err(failure(&out));
    }
    Ok(parse_keyframes(&String::from_utf8_lossy(&out.stdout)))
}

/// `7.500000,K__` lines: the times of the packets flagged K (a packet without a time is skipped).
fn parse_keyframes(csv: &str) -> Vec<f64> {
    csv.lines()
        .filter_map(|line| line.split_once(','))
        .filter(|(_, flags)| flags.contains('K'))
        .filter_map(|(time, _)| time.parse::<f64>().ok())
        .collect()
}

/// One frame from each seek, one seek after the other.
async fn seek_frames(
    cfg: &FfmpegConfig,
    video: &MemFile,
    times: &[f64],
) -> Result<Vec<Frame>, JobError> {
    let mut frames = Vec::with_capacity(times.len());
    for &at in times {
        let mut cmd = child(&cfg.ffmpeg_bin, cfg, Some(video.raw_fd()), None);
        cmd.args(seek_args(cfg, at));
        let out = run(cmd, cfg.timeout, "extraction").await?;
        if !out.status_ok {
            return Err(failure(&out));
        }
        let shown = showinfo_times(&out.stderr);
        // Past the last frame a seek finds nothing; the bucket stays empty.
        if let Some(jpeg) = split_jpegs(&out.stdout).into_iter().next() {
            let pts_s = at + shown.first().copied().unwrap_or(0.0);
            frames.push(Frame { jpeg, pts_s });
        }
    }
    Ok(frames)
}

/// The keyframes, and the frames sought for the buckets they left empty, in time order. The
/// container's flags and the decoder can disagree (a keyframe that does not decode), so a
/// sought frame only fills a bucket the keyframes pass did not.
fn merge(cfg: &FfmpegConfig, duration_s: f64, first: Vec<Frame>, sought: Vec<Frame>) -> Vec<Frame> {
    let bucket = bucket_seconds(cfg, duration_s);
    let bucket_of = |frame: &Frame| (frame.pts_s / bucket).floor() as i64;
    let filled: Vec<i64> = first.iter().map(bucket_of).collect();
    let mut frames = first;
    frames.extend(
        sought
            .into_iter()
            .filter(|f| !filled.contains(&bucket_of(f))),
    );
    frames.sort_by(|a, b| a.pts_s.total_cmp(&b.pts_s));
    frames
}

async fn frames_pass(
    cfg: &FfmpegConfig,
    video: &MemFile,
    audio: Option<&MemFile>,
    duration_s: f64,
    keyframes_only: bool,
) -> Result<Vec<Frame>, JobError> {
    let bucket = bucket_seconds(cfg, duration_s);
    let mut cmd = child(
        &cfg.ffmpeg_bin,
        cfg,
        Some(video.raw_fd()),
        audio.map(MemFile::raw_fd),
    );
    cmd.args(extraction_args(
        cfg,
        duration_s,
        keyframes_only,
        audio.is_some(),
    ));
    let out = run(cmd, cfg.timeout, "extraction").await?;
    if !out.status_ok {
        return Err(failure(&out));
    }
    let times = showinfo_times(&out.stderr);
    let frames = split_jpegs(&out.stdout)
        .into_iter()
        .enumerate()
        .map(|(i, jpeg)| Frame {
            jpeg,
            pts_s: times.get(i).copied().unwrap_or(i as f64 * bucket),
        })
        .collect();
    Ok(frames)
}

fn bucket_seconds(cfg: &FfmpegConfig, duration_s: f64) -> f64 {
    frame_plan::bucket_seconds(duration_s, cfg.frame_count)
}

/// The extraction argv after the program name: input `/dev/fd/3`, JPEG frames on stdout and,
/// with `audio`, Ogg/Opus to `/dev/fd/4`.
fn extraction_args(
    cfg: &FfmpegConfig,
    duration_s: f64,
    keyframes_only: bool,
    audio: bool,
) -> Vec<String> {
    let bucket = bucket_seconds(cfg, duration_s);
    let mut args = head_args(cfg);
    if keyframes_only {
        args.extend(["-skip_frame".into(), "nokey".into()]);
    }
    args.extend(input_guard().map(String::from));
    args.extend(["-i".into(), format!("/dev/fd/{VIDEO_FD}")]);
    args.extend(["-map", "0:v:0", "-vf"].map(String::from));
    args.push(format!(
        "select='isnan(prev_selected_t)+gte(floor(t/{bucket})-floor(prev_selected_t/{bucket}),1)',{}",
        scale_filter(cfg)
    ));
    args.extend(jpeg_output(cfg, cfg.frame_count));
    if audio {
        args.extend(
            [
                "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-c:a", "libopus", "-b:a",
                "24k",
            ]
            .map(String::from),
        );
        args.extend(["-application", "voip"].map(String::from));
        // Bounded by duration and size, whatever the video's length.
        args.extend(["-t".into(), format!("{:.3}", cfg.max_audio.as_secs_f64())]);
        args.extend(["-fs".into(), cfg.max_audio_bytes.to_string()]);
        args.extend(["-f", "ogg"].map(String::from));
        args.push(format!("/dev/fd/{AUDIO_FD}"));
    }
    args
}

/// One JPEG of the first reference frame at or after `at` seconds: the input seek decodes from
/// the keyframe before `at`, skipping the frames nothing refers to.
fn seek_args(cfg: &FfmpegConfig, at: f64) -> Vec<String> {
    let mut args = head_args(cfg);
    args.extend(["-skip_frame".into(), "noref".into()]);
    args.extend(input_guard().map(String::from));
    args.extend(["-ss".into(), format!("{at:.3}")]);
    args.extend(["-i".into(), format!("/dev/fd/{VIDEO_FD}")]);
    args.extend([
        "-map".into(),
        "0:v:0".into(),
        "-vf".into(),
        scale_filter(cfg),
    ]);
    args.extend(jpeg_output(cfg, 1));
    args
}

/// The options every extraction starts with: overwrite, quiet, no stdin interaction, threads.
pub(crate) fn head_args(cfg: &FfmpegConfig) -> Vec<String> {
    let mut args: Vec<String> = [
        "-y",
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "info",
    ]
    .map(String::from)
    .into();
    args.extend(["-threads".into(), cfg.threads.to_string()]);
    args
}

/// Downscale to the long side (never up; rotation is already applied), then log each frame's
/// time for [`showinfo_times`].
pub(crate) fn scale_filter(cfg: &FfmpegConfig) -> String {
    let side = cfg.long_side;
    format!("scale='if(gte(iw,ih),min({side},iw),-2)':'if(gte(iw,ih),-2,min({side},ih))',showinfo")
}

/// At most `frames` JPEGs on stdout.
fn jpeg_output(cfg: &FfmpegConfig, frames: u32) -> Vec<String> {
    let mut args: Vec<String> = ["-fps_mode", "passthrough", "-frames:v"]
        .map(String::from)
        .into();
    args.push(frames.to_string());
    args.extend(["-pix_fmt", "yuvj420p", "-q:v"].map(String::from));
    args.push(cfg.jpeg_quality.to_string());
    args.extend(["-c:v", "mjpeg", "-f", "image2pipe", "pipe:1"].map(String::from));
    args
}

/// Options that bound what an input may be: no playlists, no concat, no network, no devices.
pub(crate) fn input_guard() -> [&'static str; 4] {
    [
        "-format_whitelist",
        FORMAT_WHITELIST,
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
    ]
}

/// A guarded child (see the module docs) with the video at fd 3 and the audio output at fd 4
/// when given; stdin is null unless the caller pipes it.
pub(crate) fn child(
    bin: &str,
    cfg: &FfmpegConfig,
    video_fd: Option<RawFd>,
    audio_fd: Option<RawFd>,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let limit = cfg.max_memory_bytes as libc::rlim_t;
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2, close,
    // setrlimit) run, on descriptors the parent keeps open for the child's whole life.
    unsafe {
        cmd.pre_exec(move || {
            // Move both to high numbers first so placing one cannot clobber the other.
            let video = match video_fd {
                Some(fd) => Some(check(libc::fcntl(fd, libc::F_DUPFD, 10))?),
                None => None,
            };
            let audio = match audio_fd {
                Some(fd) => Some(check(libc::fcntl(fd, libc::F_DUPFD, 10))?),
                None => None,
            };
            if let Some(video) = video {
                check(libc::dup2(video, VIDEO_FD))?;
                libc::close(video);
            }
            if let Some(audio) = audio {
                check(libc::dup2(audio, AUDIO_FD))?;
                libc::close(audio);
            }
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            check(libc::setrlimit(libc::RLIMIT_AS, &rlimit))?;
            Ok(())
        });
    }
    cmd
}

fn check(ret: libc::c_int) -> std::io::Result<libc::c_int> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

struct Output {
    status_ok: bool,
    /// Set when the child was killed by a signal (the kernel, e.g. out of memory).
    signal: Option<i32>,
    stdout: Zeroizing<Vec<u8>>,
    stderr: String,
}

/// Runs a guarded child to its end and returns its stdout, or the failure its stderr explains.
pub(crate) async fn stdout_of(
    cmd: Command,
    timeout: Duration,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, JobError> {
    let out = run(cmd, timeout, what).await?;
    if !out.status_ok {
        return Err(failure(&out));
    }
    Ok(out.stdout)
}

async fn run(mut cmd: Command, timeout: Duration, what: &'static str) -> Result<Output, JobError> {
    let mut child = cmd
        .spawn()
        .map_err(|e| JobError::Internal(format!("spawn {what}: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let work = async {
        let (out, err) = tokio::join!(
            read_capped(&mut stdout, MAX_FRAME_BYTES as usize, 0),
            read_capped(&mut stderr, MAX_STDERR_BYTES as usize, STDERR_TAIL_BYTES),
        );
        let (out, err) = (out.map_err(internal)?, err.map_err(internal)?);
        let status = child.wait().await.map_err(internal)?;
        Ok::<_, JobError>(Output {
            status_ok: status.success(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            stdout: out.head,
            stderr: err.text(),
        })
    };
    // On timeout the future (and the child with it) is dropped: kill_on_drop ends ffmpeg.
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| JobError::Timeout(what))?
}

/// What was kept of a child's pipe: the first `cap` bytes and the last `tail` bytes.
pub(crate) struct Capped {
    head: Zeroizing<Vec<u8>>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl Capped {
    /// The diagnostics as text: the head, then (when bytes were dropped) the tail, where the
    /// message that explains a failure usually is.
    pub(crate) fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!("\n[… {} bytes not kept …]\n", self.dropped));
            let tail: Vec<u8> = self.tail.iter().copied().collect();
            text.push_str(&String::from_utf8_lossy(&tail));
        }
        text
    }
}

/// Reads `pipe` to its end, keeping the first `cap` bytes and the last `tail` bytes and
/// discarding the rest. It never stops reading: a child blocked on a full pipe would hang until
/// its timeout (a file that floods ffmpeg's log must fail as itself, not as a timeout).
pub(crate) async fn read_capped(
    pipe: &mut (impl tokio::io::AsyncRead + Unpin),
    cap: usize,
    tail: usize,
) -> std::io::Result<Capped> {
    let mut kept = Capped {
        head: Zeroizing::new(Vec::new()),
        tail: std::collections::VecDeque::with_capacity(tail),
        dropped: 0,
    };
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = cap.saturating_sub(kept.head.len()).min(n);
        kept.head.extend_from_slice(&buf[..room]);
        for &b in &buf[room..n] {
            if tail == 0 {
                kept.dropped += 1;
                continue;
            }
            if kept.tail.len() == tail {
                kept.tail.pop_front();
                kept.dropped += 1;
            }
            kept.tail.push_back(b);
        }
    }
}

fn failure(out: &Output) -> JobError {
    failed(out.signal, &out.stderr)
}

/// A failed child: resource exhaustion is ours (retryable), anything else is the file's.
pub(crate) fn failed(signal: Option<i32>, stderr: &str) -> JobError {
    let resources = [
        "error while loading shared libraries",
        "Cannot allocate memory",
        "out of memory",
    ];
    if let Some(signal) = signal {
        JobError::Internal(format!("ffmpeg killed by signal {signal}"))
    } else if resources.iter().any(|r| stderr.contains(r)) {
        JobError::Internal("ffmpeg memory limit reached".into())
    } else {
        media_error(stderr)
    }
}

/// Classifies an ffmpeg failure from its diagnostics (which never reach the logs whole).
fn media_error(stderr: &str) -> JobError {
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let last: String = last.chars().take(160).collect();
    // "Invalid data" about the input itself means ffmpeg could not read it as any allowed
    // format; the same words from a decoder mean a readable file with damaged frames.
    let unreadable = stderr.lines().any(|l| {
        l.contains("Invalid data found when processing input")
            && !l.starts_with("Error while decoding stream")
    });
    if stderr.contains("moov atom not found") || stderr.contains("partial file") {
        JobError::InvalidMedia(last)
    } else if stderr.contains("not on whitelist") || unreadable {
        JobError::UnsupportedMedia(last)
    } else {
        JobError::InvalidMedia(last)
    }
}

pub(crate) fn showinfo_times(stderr: &str) -> Vec<f64> {
    stderr
        .lines()
        .filter(|l| l.contains("Parsed_showinfo"))
        .filter_map(|l| l.split("pts_time:").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Splits ffmpeg's concatenated MJPEG output at each end-of-image marker (0xFFD9 cannot occur
/// inside entropy-coded data, where 0xFF is always followed by 0x00 or a restart marker).
fn split_jpegs(stream: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    split_complete_jpegs(stream).0
}

/// [`split_jpegs`] over a stream still being written: the complete images, and how many bytes
/// of `stream` they (and anything before them) took — the rest is an image still arriving.
pub(crate) fn split_complete_jpegs(stream: &[u8]) -> (Vec<Zeroizing<Vec<u8>>>, usize) {
    let mut frames = Vec::new();
    let mut consumed = 0;
    let mut start = None;
    let mut i = 0;
    while i + 1 < stream.len() {
        match (stream[i], stream[i + 1], start) {
            (0xFF, 0xD8, None) => {
                start = Some(i);
                i += 2;
            }
            (0xFF, 0xD9, Some(s)) => {
                frames.push(Zeroizing::new(stream[s..i + 2].to_vec()));
                start = None;
                i += 2;
                consumed = i;
            }
            _ => i += 1,
        }
    }
    (frames, consumed)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> JobError {
    JobError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_concatenated_jpegs() {
        let stream = [
            0xFF, 0xD8, 1, 2, 0xFF, 0x00, 0xFF, 0xD9, 0xFF, 0xD8, 3, 0xFF, 0xD9, 9,
        ];
        let frames = split_jpegs(&stream);
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[1][..], &[0xFF, 0xD8, 3, 0xFF, 0xD9]);
    }

    #[test]
    fn keeps_the_times_of_keyframe_packets() {
        let csv = "0.000000,K__\n0.033333,___\nN/A,K__\n7.500000,K_D\n\n";
        assert_eq!(parse_keyframes(csv), vec![0.0, 7.5]);
    }

    #[test]
    fn parses_showinfo_times() {
        let log = "[Parsed_showinfo_2 @ 0x1] n:   0 pts:      0 pts_time:0       pos: 1\n\
                   [Parsed_showinfo_2 @ 0x1] n:   1 pts:  12800 pts_time:10.5    pos: 2\n\
                   [Parsed_showinfo_2 @ 0x1] config in time_base: 1/12800";
        assert_eq!(showinfo_times(log), vec![0.0, 10.5]);
    }

    #[test]
    fn classifies_failures() {
        assert!(matches!(
            media_error("[hls @ 0x1] Format not on whitelist 'mov'\n/dev/fd/3: Invalid argument"),
            JobError::UnsupportedMedia(_)
        ));
        assert!(matches!(
            media_error("moov atom not found"),
            JobError::InvalidMedia(_)
        ));
        assert!(matches!(
            media_error("/dev/fd/3: Invalid data found when processing input"),
            JobError::UnsupportedMedia(_)
        ));
        assert!(matches!(
            media_error(
                "[mjpeg @ 0x1] No JPEG data found in image\n\
                 Error while decoding stream #0:0: Invalid data found when processing input\n\
                 Conversion failed!"
            ),
            JobError::InvalidMedia(_)
        ));
    }
}
