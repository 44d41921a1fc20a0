//! Origin benchmark (prints figures; not a test). Run:
//! `cargo bench -p dodolens-origin --bench pipeline`.
//!
//! On the 120 s 1080p moov-at-end MP4: body received → frames and audio ready, next to bare
//! ffmpeg with the same argv; peak memory of origin + ffmpeg per job; 20 sequential jobs (RSS
//! must stay flat); 4 concurrent jobs; the estimated cost of one analysis.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use dodolens_origin::{config::Config, extract, video::MemFile};
use support::*;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Largest RSS of any child waited for so far, in KiB.
fn children_max_rss_kib() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as u64
}

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
    let path = fixtures::long_1080p();
    let bytes = std::fs::read(&path).unwrap();
    let size_mib = bytes.len() as f64 / 1048576.0;
    println!("fixture: {} ({size_mib:.1} MiB)", path.display());
    let cfg = bench_config();

    // 1. Body received → frames + audio ready (probe + extraction from the memfd).
    let mut origin_times = Vec::new();
    let mut bare_times = Vec::new();
    let mut args = Vec::new();
    for round in 0..3 {
        let mut video = MemFile::create("dodolens-video-bench").unwrap();
        video.write(&bytes).unwrap();
        video.seal().unwrap();
        let t = Instant::now();
        let probe = extract::probe(&cfg.ffmpeg, &video).await.unwrap();
        let duration = probe.duration_s.unwrap();
        let extraction = extract::extract(&cfg.ffmpeg, &video, "bench", duration, probe.has_audio)
            .await
            .unwrap();
        origin_times.push(t.elapsed().as_secs_f64());
        assert_eq!(extraction.frames.len(), 12);
        if round == 0 {
            args = extract::extraction_args(&cfg.ffmpeg, duration, true, true);
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
        let t = Instant::now();
        let status = Command::new("ffmpeg")
            .args(&bare_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        bare_times.push(t.elapsed().as_secs_f64());
        assert!(status.success());
    }
    let (o, b) = (median(origin_times), median(bare_times));
    println!("received → frames+audio ready: origin {o:.3} s (probe + extraction), bare ffmpeg {b:.3} s, ratio {:.2}×", o / b);
    println!("argv: ffmpeg {}", args.join(" "));

    // 2–4. Whole jobs through the in-process origin, simulator and edge callback.
    let s = Scenario::start(&[("DODOLENS_MAX_CONCURRENT_JOBS", "4")]).await;
    let (_, event) = s.run(bytes.clone()).await;
    let result = completed(&event).clone();
    let own_peak = status_kib("VmHWM:");
    let ffmpeg_peak = children_max_rss_kib();
    println!(
        "one job: processing {} ms; peak RSS origin {:.0} MiB + largest ffmpeg {:.0} MiB + memfd {size_mib:.0} MiB = {:.0} MiB ({:.2} × video)",
        result.processing_ms,
        mib(own_peak),
        mib(ffmpeg_peak),
        mib(own_peak + ffmpeg_peak) + size_mib,
        (mib(own_peak + ffmpeg_peak) + size_mib) / size_mib
    );
    println!(
        "cost per analysis (default models {} / {}, {} frames): {} input tokens, {} output tokens, {:.0} s audio → {:.4} €",
        result.vision_model,
        result.transcription_model,
        result.media.frames_analysed,
        result.cost.input_tokens,
        result.cost.output_tokens,
        result.cost.audio_seconds,
        result.cost.eur
    );

    let mut rss = Vec::new();
    let t = Instant::now();
    for _ in 0..20 {
        s.run(bytes.clone()).await;
        rss.push(status_kib("VmRSS:"));
    }
    println!(
        "20 sequential jobs: {:.1} s total; RSS after job 1 {:.0} MiB, after job 10 {:.0} MiB, after job 20 {:.0} MiB",
        t.elapsed().as_secs_f64(),
        mib(rss[0]),
        mib(rss[9]),
        mib(rss[19])
    );

    let t = Instant::now();
    let jobs = (0..4).map(|_| s.run(bytes.clone()));
    let results = futures_util::future::join_all(jobs).await;
    let ms: Vec<u64> = results.iter().map(|(_, e)| completed(e).processing_ms).collect();
    println!(
        "4 concurrent jobs: {:.1} s wall; per-job processing {ms:?} ms; peak RSS origin {:.0} MiB, largest ffmpeg {:.0} MiB",
        t.elapsed().as_secs_f64(),
        mib(status_kib("VmHWM:")),
        mib(children_max_rss_kib())
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.origin.shutdown().await;
}
