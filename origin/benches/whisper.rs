//! Local transcription benchmark (prints figures; not a test). Run:
//! `cargo bench -p dodolens-origin --features local-whisper --bench whisper` (or `cargo test …
//! --bench whisper` for the dev profile the tests use; the C++ is optimised the same in both).
//!
//! Verifies and loads the Whisper folder (`DODOLENS_WHISPER_DIR`, else the one
//! `scripts/bootstrap` assembles), then transcribes, as the pipeline does (Ogg/Opus decoded by
//! ffmpeg, 30 s windows, one thread): the 10 s kitchen fixture's narration and a 60 s clip.
//! Prints the wall and CPU time, the real-time factor (time ÷ audio duration) and the process's
//! peak resident memory before loading, after loading and after transcribing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{path::PathBuf, time::Instant};

use dodolens_origin::{
    analysis::{AudioClip, AudioFormat},
    config::Config,
    extract,
    video::MemFile,
    whisper::Transcriber,
};
use support::*;
use zeroize::Zeroizing;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (ffmpeg children excluded).
fn process_cpu_s() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer for this process's usage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap().trim()
    );
    let cfg = Config::from_vars(|k| match k {
        "DODOLENS_SIGNING_SECRET" => Some(SECRET.into()),
        _ => None,
    })
    .unwrap();
    let dir = std::env::var_os("DODOLENS_WHISPER_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.tools/models/whisper-base"
            ))
        },
        PathBuf::from,
    );

    let video = std::fs::read(fixtures::astronaut_in_the_kitchen()).unwrap();
    let mut file = MemFile::create("dodolens-video-bench").unwrap();
    file.write(&video).unwrap();
    file.seal().unwrap();
    let probe = extract::probe(&cfg.ffmpeg, &file).await.unwrap();
    let duration = probe.duration_s.unwrap();
    let kitchen = extract::extract(&cfg.ffmpeg, &file, "bench", duration, true)
        .await
        .unwrap()
        .audio
        .unwrap();
    let minute = Zeroizing::new(std::fs::read(fixtures::kitchen_minute_ogg()).unwrap());

    let before = status_kib("VmHWM:");
    let t = Instant::now();
    let transcriber = Transcriber::load(&dir).unwrap();
    let loaded = status_kib("VmHWM:");
    println!(
        "verify sha256 + load: {:.2} s; peak RSS {:.0} → {:.0} MiB",
        t.elapsed().as_secs_f64(),
        mib(before),
        mib(loaded)
    );

    for (name, bytes, seconds) in [("kitchen", kitchen, duration), ("minute", minute, 60.0)] {
        let clip = AudioClip {
            bytes,
            format: AudioFormat::Ogg,
        };
        let (t, c) = (Instant::now(), process_cpu_s());
        let text = transcriber
            .transcribe(&cfg.ffmpeg, &clip, "fr")
            .await
            .unwrap();
        let (wall, cpu) = (t.elapsed().as_secs_f64(), process_cpu_s() - c);
        println!(
            "{name} ({seconds:.1} s of audio): wall {wall:.2} s (RTF {:.2}), CPU {cpu:.2} s (RTF {:.2}); {} words",
            wall / seconds,
            cpu / seconds,
            text.split_whitespace().count()
        );
        if name == "kitchen" {
            println!("  heard: {}", &*text);
        }
    }
    let after = status_kib("VmHWM:");
    println!(
        "peak RSS: {:.0} MiB after load, {:.0} MiB after transcribing (+{:.0} MiB)",
        mib(loaded),
        mib(after),
        mib(after - loaded)
    );
}
