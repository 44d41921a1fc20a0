//! Origin benchmark (prints figures; not a test). Run:
//! `cargo bench -p dodolens-origin --bench pipeline`.
//!
//! On the 120 s 1080p moov-at-end MP4: body received → frames and audio ready, next to bare
//! ffmpeg with the same argv; the same on a 60 s 1080p HEVC 10-bit rotated MOV with a keyframe
//! every 7.5 s (its keyframes alone) and on a 60 s file with one every 9 s (keyframes and
//! seeks), each next to bare ffmpeg decoding every frame; peak memory of
//! origin + ffmpeg per job; 20 sequential jobs (RSS must stay flat); 4 concurrent jobs; the
//! estimated cost of one analysis.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use dodolens_origin::{config::Config, extract, video::MemFile};
use support::*;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn bench_config() -> Config {
    Config::from_vars(|k| match k {
        "DODOLENS_SIGNING_SECRET" => Some(SECRET.into()),
        "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1".into()),
        _ => None,
    })
    .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The bench's own HTTP clients (simulator, callback, origin) need the TLS provider.
    dodolens_origin::install_crypto_provider();
    let path = fixtures::long_1080p();
    let bytes = std::fs::read(&path).unwrap();
    let size_mib = bytes.len() as f64 / 1048576.0;
    println!("fixture: {} ({size_mib:.1} MiB)", path.display());
    let cfg = bench_config();

    // 1. Body received → frames + audio ready (probe + extraction from the memfd).
    extraction_figures(&cfg, &path, false).await;
    extraction_figures(&cfg, &fixtures::iphone_hevc(), true).await;
    extraction_figures(&cfg, &fixtures::sparse_keyframes(), true).await;

    // 2–4. Whole jobs through the real `dodolens-origin` binary (so its memory is its own),
    // with the simulator and the edge callback in this process.
    let sim = Sim::start().await;
    let (cb, cb_addr) = Callback::start().await;
    let mut origin = tokio::process::Command::new(env!("CARGO_BIN_EXE_dodolens-origin"))
        .env("DODOLENS_BIND", "127.0.0.1:0")
        .env("DODOLENS_OPS_BIND", "127.0.0.1:0")
        .env("DODOLENS_SIGNING_SECRET", SECRET)
        .env("OPENAI_BASE_URL", sim.base_url())
        .env("DODOLENS_MAX_CONCURRENT_JOBS", "4")
        .env("DODOLENS_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = origin.id().unwrap();
    let mut stdout = tokio::io::BufReader::new(origin.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line)
        .await
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let sampler = Sampler::start(pid);
    let mut n = 0u64;
    let mut run = |body: Vec<u8>| {
        n += 1;
        let id = session_id(5000 + n);
        let meta = job_meta(&id, &Callback::url(cb_addr, &id), 1);
        let cb = cb.clone();
        async move {
            assert_eq!(
                forward(addr, &meta, body, Signature::Good).await.status(),
                202
            );
            cb.final_event(&id, Duration::from_secs(300)).await
        }
    };

    sampler.reset();
    let event = run(bytes.clone()).await;
    let result = completed(&event).clone();
    let (origin_peak, ffmpeg_peak, _) = sampler.peaks();
    let total = mib(origin_peak + ffmpeg_peak) + size_mib;
    println!(
        "one job: processing {} ms; peak RSS origin {:.0} MiB + ffmpeg {:.0} MiB + memfd {size_mib:.0} MiB = {total:.0} MiB ({:.2} × video)",
        result.processing_ms,
        mib(origin_peak),
        mib(ffmpeg_peak),
        total / size_mib
    );
    println!(
        "cost per analysis (default models {} / {}, {} frames of 768 px, {:.0} s narration): {} input tokens, {} output tokens → {:.4} €",
        result.vision_model,
        result.transcription_model,
        result.media.frames_analysed,
        result.cost.audio_seconds,
        result.cost.input_tokens,
        result.cost.output_tokens,
        result.cost.eur
    );

    let mut rss = Vec::new();
    let t = Instant::now();
    for _ in 0..20 {
        run(bytes.clone()).await;
        rss.push(sampler.rss(pid));
    }
    println!(
        "20 sequential jobs: {:.1} s total ({:.2} s/job); origin RSS after job 1 {:.0} MiB, job 10 {:.0} MiB, job 20 {:.0} MiB",
        t.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() / 20.0,
        mib(rss[0]),
        mib(rss[9]),
        mib(rss[19])
    );

    sampler.reset();
    let t = Instant::now();
    let jobs: Vec<_> = (0..4).map(|_| run(bytes.clone())).collect();
    let results = futures_util::future::join_all(jobs).await;
    let ms: Vec<u64> = results.iter().map(|e| completed(e).processing_ms).collect();
    let (origin_peak, _, ffmpeg_sum) = sampler.peaks();
    println!(
        "4 concurrent jobs: {:.1} s wall; per-job processing {ms:?} ms; peak RSS origin {:.0} MiB + ffmpeg (all at once) {:.0} MiB + memfds {:.0} MiB",
        t.elapsed().as_secs_f64(),
        mib(origin_peak),
        mib(ffmpeg_sum),
        4.0 * size_mib
    );
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    origin.wait().await.unwrap();
}

/// Body received → frames and audio ready through the origin's code (median of 3), next to bare
/// ffmpeg running the same first-pass argv on the file (keyframes only) and, with `full`, that
/// argv decoding every frame (what a sparse-keyframe file cost before seeks).
async fn extraction_figures(cfg: &Config, path: &std::path::Path, full: bool) {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    let mut origin_times = Vec::new();
    let mut bare_times = Vec::new();
    let mut full_times = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mut frame_path = None;
    let mut frames = 0;
    for round in 0..3 {
        let mut video = MemFile::create("dodolens-video-bench").unwrap();
        video.write(&bytes).unwrap();
        video.seal().unwrap();
        let watcher = (round == 0).then(ArgvWatcher::start);
        let t = Instant::now();
        let probe = extract::probe(&cfg.ffmpeg, &video).await.unwrap();
        let duration = probe.duration_s.unwrap();
        let extraction = extract::extract(&cfg.ffmpeg, &video, "bench", duration, probe.has_audio)
            .await
            .unwrap();
        origin_times.push(t.elapsed().as_secs_f64());
        frames = extraction.frames.len();
        frame_path = Some(extraction.path);
        if let Some(watcher) = watcher {
            args = watcher.finish();
        }
        // Bare ffmpeg, same argv, reading the file and discarding outputs.
        let bare_args: Vec<String> = args
            .iter()
            .map(|a| match a.as_str() {
                "/dev/fd/3" => path.to_string_lossy().into_owned(),
                "/dev/fd/4" | "pipe:1" => "/dev/null".to_string(),
                _ => a.clone(),
            })
            .collect();
        bare_times.push(time_ffmpeg(&bare_args));
        if full {
            let all: Vec<String> = bare_args
                .iter()
                .filter(|a| *a != "-skip_frame" && *a != "nokey")
                .cloned()
                .collect();
            full_times.push(time_ffmpeg(&all));
        }
    }
    let (o, b) = (median(origin_times), median(bare_times));
    print!(
        "{name}: received → frames+audio ready: origin {o:.3} s ({:?}, {frames} frames), bare ffmpeg keyframes-only {b:.3} s, ratio {:.2}×",
        frame_path.unwrap(),
        o / b
    );
    if full {
        print!(", bare ffmpeg full decode {:.3} s", median(full_times));
    }
    println!();
    println!("argv: ffmpeg {}", args.join(" "));
}

fn time_ffmpeg(args: &[String]) -> f64 {
    let t = Instant::now();
    let status = Command::new("ffmpeg")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    t.elapsed().as_secs_f64()
}

/// Records the argv of the extraction ffmpeg this process starts (the one writing JPEGs to a
/// pipe), read from `/proc`, so bare ffmpeg can be timed with exactly what the origin runs.
struct ArgvWatcher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<Vec<String>>>,
}

impl ArgvWatcher {
    fn start() -> ArgvWatcher {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let me = std::process::id();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for child in children(me) {
                    let raw = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
                    let argv: Vec<String> = raw
                        .split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    // The keyframes pass (seeks may run beside it).
                    if argv.iter().any(|a| a == "nokey") {
                        return Some(argv[1..].to_vec());
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            None
        });
        ArgvWatcher { stop, thread }
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .join()
            .unwrap()
            .expect("the extraction's ffmpeg was not seen")
    }
}

/// Samples the origin's and its ffmpeg children's memory every few milliseconds.
struct Sampler {
    state: std::sync::Arc<std::sync::Mutex<(u64, u64, u64)>>,
    pid: u32,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let state = std::sync::Arc::new(std::sync::Mutex::new((0, 0, 0)));
        let shared = state.clone();
        std::thread::spawn(move || loop {
            let origin = proc_kib(pid, "VmHWM:");
            let children: Vec<u64> = children(pid)
                .iter()
                .map(|c| proc_kib(*c, "VmHWM:"))
                .collect();
            let mut s = shared.lock().unwrap();
            s.0 = s.0.max(origin);
            s.1 = s.1.max(children.iter().copied().max().unwrap_or(0));
            s.2 = s.2.max(children.iter().sum());
            drop(s);
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        });
        Sampler { state, pid }
    }

    /// Resets the kernel's peak RSS of the origin and the sampled maxima.
    fn reset(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
        *self.state.lock().unwrap() = (0, 0, 0);
    }

    /// (origin peak, largest ffmpeg peak, largest sum of concurrent ffmpeg peaks) in KiB.
    fn peaks(&self) -> (u64, u64, u64) {
        *self.state.lock().unwrap()
    }

    fn rss(&self, pid: u32) -> u64 {
        proc_kib(pid, "VmRSS:")
    }
}

fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}
