//! Local transcription benchmark (prints figures; not a test). Run:
//! `cargo bench -p dodolens-origin --features local-whisper --bench whisper` (or `cargo test …
//! --bench whisper` for the dev profile the tests use; the C++ is optimised the same in both).
//!
//! Verifies and loads the Whisper folder (`DODOLENS_WHISPER_DIR`, else the one
//! `scripts/bootstrap` assembles), then transcribes, as the pipeline does (Ogg/Opus decoded by
//! ffmpeg, windows of at most 30 s, one thread), each in its own language: the 10 s French and
//! English fixtures' narrations as the pipeline extracts them from the video, and a minute of
//! French through a home (heard in two windows), with the share of its words heard.
//! Prints the wall and CPU time, the real-time factor (time ÷ audio duration), what was heard
//! in the short clips, and the process's peak resident memory before loading, after loading and
//! after transcribing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use dodolens_origin::{
    analysis::{AudioClip, AudioFormat},
    config::Config,
    extract,
    video::MemFile,
    whisper::Transcriber,
};
use dodolens_shared::narration;
use support::*;
use zeroize::Zeroizing;

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
    let dir = whisper_dir();
    let mut clips = Vec::new();
    for narration in [&fixtures::CUISINE, &fixtures::KITCHEN] {
        let (bytes, seconds) = narration_of(&cfg, &narration.over_the_astronaut()).await;
        clips.push((narration.locale, bytes, seconds));
    }
    let tour = &fixtures::TOUR;
    let ogg = tour.ogg();
    clips.push((
        tour.locale,
        Zeroizing::new(std::fs::read(&ogg).unwrap()),
        fixtures::declared_duration(&ogg).parse().unwrap(),
    ));

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

    let mut transcripts = Vec::new();
    for (locale, bytes, seconds) in clips {
        let clip = AudioClip {
            bytes,
            format: AudioFormat::Ogg,
        };
        let (t, c) = (Instant::now(), process_cpu_s());
        let text = transcriber
            .transcribe(&cfg.ffmpeg, &clip, locale)
            .await
            .unwrap();
        transcripts.push(text.clone());
        let (wall, cpu) = (t.elapsed().as_secs_f64(), process_cpu_s() - c);
        println!(
            "{locale}, {seconds:.1} s of audio: wall {wall:.2} s (RTF {:.2}), CPU {cpu:.2} s (RTF {:.2}); {} words",
            wall / seconds,
            cpu / seconds,
            text.split_whitespace().count()
        );
        println!("  heard: {}", &*text);
    }
    let said = words(tour.text);
    let heard = words(&transcripts.last().unwrap()[..]);
    let found = said.iter().filter(|w| heard.contains(w)).count();
    println!("tour: {found} of its {} words heard", said.len());
    let said = directives(tour.text, tour.locale);
    let heard = directives(&transcripts.last().unwrap()[..], tour.locale);
    let kept: Vec<_> = said.iter().filter(|d| heard.contains(d)).collect();
    println!(
        "tour: {} of its {} directives read from what was heard; missed {:?}; added {:?}",
        kept.len(),
        said.len(),
        said.iter()
            .filter(|d| !heard.contains(d))
            .collect::<Vec<_>>(),
        heard
            .iter()
            .filter(|d| !said.contains(d))
            .collect::<Vec<_>>()
    );
    let after = status_kib("VmHWM:");
    println!(
        "peak RSS: {:.0} MiB after load, {:.0} MiB after transcribing (+{:.0} MiB)",
        mib(loaded),
        mib(after),
        mib(after - loaded)
    );
}

/// The narration of a video file, extracted as the pipeline does (Ogg/Opus), and its duration.
async fn narration_of(cfg: &Config, path: &std::path::Path) -> (Zeroizing<Vec<u8>>, f64) {
    let mut file = MemFile::create("dodolens-video-bench").unwrap();
    file.write(&std::fs::read(path).unwrap()).unwrap();
    file.seal().unwrap();
    let duration = extract::probe(&cfg.ffmpeg, &file)
        .await
        .unwrap()
        .duration_s
        .unwrap();
    let audio = extract::extract(&cfg.ffmpeg, &file, "bench", duration, true)
        .await
        .unwrap()
        .audio
        .unwrap();
    (audio, duration)
}

/// Lower-case words without punctuation; digits stand for themselves ("12" is not "douze").
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// What the rule-based parser reads in `text`: action, catalogue key, quantity, room.
fn directives(text: &str, locale: &str) -> Vec<String> {
    narration::directives(text, locale)
        .directives
        .into_iter()
        .map(|d| format!("{:?} {} {:?} {:?}", d.action, d.key, d.quantity, d.room))
        .collect()
}
