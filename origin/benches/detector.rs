//! Local vision benchmark (prints figures; not a test). Run:
//! `cargo bench -p dodolens-origin --bench detector`.
//!
//! Loads the embedded NanoDet, then runs it on the frames the pipeline extracts from the 8 s
//! fixture (640×360 → JPEG) and on the astronaut photograph: per-frame wall and CPU time (one
//! thread), and the process's peak resident memory before loading, after loading, and after
//! 24 frames (it must not grow with the number of frames).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use dodolens_origin::{config::Config, detector::Detector, extract, video::MemFile};
use support::*;

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer for the calling thread's CPU clock.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap().trim()
    );
    let cfg = Config::from_vars(|k| match k {
        "DODOLENS_SIGNING_SECRET" => Some(SECRET.into()),
        "DODOLENS_ANALYSER" => Some("local".into()),
        _ => None,
    })
    .unwrap();
    let bytes = std::fs::read(fixtures::moov_at_end()).unwrap();
    let mut video = MemFile::create("dodolens-video-bench").unwrap();
    video.write(&bytes).unwrap();
    video.seal().unwrap();
    let probe = extract::probe(&cfg.ffmpeg, &video).await.unwrap();
    let extraction = extract::extract(
        &cfg.ffmpeg,
        &video,
        "bench",
        probe.duration_s.unwrap(),
        false,
    )
    .await
    .unwrap();
    let astronaut = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/astronaut.jpg"
    ))
    .unwrap();
    let mut frames: Vec<&[u8]> = extraction.frames.iter().map(|f| &f.jpeg[..]).collect();
    frames.push(&astronaut);

    let before = status_kib("VmHWM:");
    let t = Instant::now();
    let detector = Detector::load().unwrap();
    println!(
        "load + optimise: {:.2} s; peak RSS {:.0} → {:.0} MiB",
        t.elapsed().as_secs_f64(),
        before as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0
    );
    let loaded = status_kib("VmHWM:");

    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for round in 0..24 {
        let jpeg = frames[round % frames.len()];
        let (t, c) = (Instant::now(), thread_cpu_s());
        let found = detector.detect_jpeg(jpeg).unwrap();
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu.push((thread_cpu_s() - c) * 1000.0);
        if round < frames.len() && round + 1 == frames.len() {
            println!("astronaut: {:?}", found.first());
        }
    }
    println!(
        "per frame (24 frames, {}×{} extracted JPEGs + the 512² photo): wall median {:.0} ms (max {:.0}), CPU median {:.0} ms, one thread",
        probe.width,
        probe.height,
        median(wall.clone()),
        wall.iter().copied().fold(0.0, f64::max),
        median(cpu)
    );
    let after = status_kib("VmHWM:");
    println!(
        "peak RSS: {:.0} MiB after load, {:.0} MiB after 24 frames (+{:.0} MiB for inference)",
        loaded as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - loaded) as f64 / 1024.0
    );
}
