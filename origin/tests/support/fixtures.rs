//! Test videos, generated with ffmpeg (lavfi testsrc) and espeak-ng the first time they are
//! needed and cached under the cargo target tmp dir, so later runs reuse them.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
};

/// One lock per fixture: a fixture built from another (faststart from moov-at-end) takes the
/// other's lock while holding its own.
static LOCKS: Mutex<Option<HashMap<String, Arc<Mutex<()>>>>> = Mutex::new(None);

pub fn dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dodolens-fixtures-v1");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds `name` with `make(tmp_path)` unless it exists; atomic via rename.
fn cached(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let lock = LOCKS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(name.to_string())
        .or_default()
        .clone();
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir().join(name);
    if !path.exists() {
        let tmp = dir().join(format!("partial-{name}"));
        make(&tmp);
        assert!(tmp.exists(), "fixture {name} was not produced");
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn run(cmd: &mut Command) {
    let out = cmd.current_dir(dir()).output().expect("tool on PATH");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The duration a media file's container declares, as ffprobe prints it ("N/A" or nothing when
/// it declares none).
pub fn declared_duration(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe on PATH");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ffmpeg(args: &[&str], out: &Path) {
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(out));
}

pub const NARRATION: &str =
    "Voici le salon. Le frigo reste, il y a quinze cartons de livres dans le placard.";

pub fn speech() -> PathBuf {
    cached("speech.wav", |out| {
        run(Command::new("espeak-ng")
            .args(["-v", "fr", "-w"])
            .arg(out)
            .arg(NARRATION));
    })
}

/// A phone-like MP4: H.264 + AAC narration, index (moov) at the end.
fn phone_mp4(out: &Path, size: &str, seconds: u32, fps: u32, bitrate: Option<&str>) {
    let speech = speech();
    let video = format!("testsrc=size={size}:rate={fps}:duration={seconds}");
    let pad = format!("[1:a]apad=whole_dur={seconds},aresample=48000[a]");
    let mut args = vec!["-f", "lavfi", "-i", &video, "-i", speech.to_str().unwrap()];
    args.extend(["-filter_complex", &pad, "-map", "0:v", "-map", "[a]"]);
    args.extend([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    let gop = fps.to_string();
    args.extend(["-g", &gop]);
    let bufsize =
        bitrate.map(|b| format!("{}k", b.trim_end_matches('k').parse::<u32>().unwrap() * 2));
    if let (Some(b), Some(buf)) = (bitrate, &bufsize) {
        args.extend([
            "-b:v",
            b,
            "-minrate",
            b,
            "-maxrate",
            b,
            "-bufsize",
            buf,
            "-x264-params",
            "nal-hrd=cbr",
        ]);
    }
    args.extend(["-c:a", "aac", "-b:a", "96k", "-f", "mp4"]);
    ffmpeg(&args, out);
}

pub fn moov_at_end() -> PathBuf {
    cached("moov-at-end.mp4", |out| {
        phone_mp4(out, "640x360", 8, 25, None)
    })
}

/// 120 s of 1080p H.264 at ~4.3 Mbit/s (~65 MB), moov at the end, as a phone writes it.
pub fn long_1080p() -> PathBuf {
    cached("long-1080p-moov-at-end.mp4", |out| {
        phone_mp4(out, "1920x1080", 120, 30, Some("4300k"))
    })
}

pub fn faststart() -> PathBuf {
    cached("faststart.mp4", |out| {
        let src = moov_at_end();
        ffmpeg(
            &[
                "-i",
                src.to_str().unwrap(),
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
            ],
            out,
        );
    })
}

/// Portrait phone video: 640x360 coded, displayed rotated by 90°.
pub fn rotated_mov() -> PathBuf {
    cached("rotated.mov", |out| {
        let src = moov_at_end();
        ffmpeg(
            &[
                "-i",
                src.to_str().unwrap(),
                "-c",
                "copy",
                "-metadata:s:v:0",
                "rotate=90",
                "-f",
                "mov",
            ],
            out,
        );
    })
}

/// The iPhone's default format: 60 s of 1080p HEVC 10-bit at ~6 Mbit/s with AAC narration,
/// displayed rotated by 90° (portrait), and a keyframe only every 7.5 s (8 in all), so a third
/// of the 5 s frame buckets have none. Encoding it takes about two minutes, once.
pub fn iphone_hevc() -> PathBuf {
    cached("iphone-hevc-10bit-rotated.mov", |out| {
        let speech = speech();
        let coded = dir().join("partial-iphone-hevc-coded.mov");
        let args = [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=30:duration=60",
            "-i",
            speech.to_str().unwrap(),
            "-filter_complex",
            "[1:a]apad=whole_dur=60,aresample=48000[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-b:v",
            "6M",
            "-x265-params",
            "keyint=225:min-keyint=225:scenecut=0:log-level=error",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-f",
            "mov",
        ];
        ffmpeg(&args, &coded);
        // ffmpeg 5 writes the display matrix from `rotate` only when copying the stream.
        let rotate = [
            "-i",
            coded.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            "-f",
            "mov",
        ];
        ffmpeg(&rotate, out);
        std::fs::remove_file(&coded).unwrap();
    })
}

/// Like MediaRecorder: VP8 + Opus WebM written as a stream (no duration, no cues), one keyframe.
pub fn webm() -> PathBuf {
    cached("mediarecorder.webm", |out| {
        let speech = speech();
        let output = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=640x360:rate=25:duration=6",
            ])
            .arg("-i")
            .arg(&speech)
            .args([
                "-filter_complex",
                "[1:a]apad=whole_dur=6[a]",
                "-map",
                "0:v",
                "-map",
                "[a]",
            ])
            .args([
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "500k",
            ])
            .args([
                "-g", "1000", "-c:a", "libopus", "-t", "6", "-f", "webm", "pipe:1",
            ])
            .current_dir(dir())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(out, output.stdout).unwrap();
    })
}

pub fn no_audio() -> PathBuf {
    cached("no-audio.mp4", |out| {
        silent_h264(out, "testsrc=size=640x360:rate=25:duration=5", 25)
    })
}

/// 60 s with a keyframe every 9 s (wider than an iPhone's 7.5 s): the plan must seek.
pub fn sparse_keyframes() -> PathBuf {
    cached("sparse-keyframes-9s.mp4", |out| {
        silent_h264(out, "testsrc2=size=640x360:rate=25:duration=60", 225)
    })
}

/// A video-only MP4 of a lavfi source with a keyframe every `gop` frames exactly.
fn silent_h264(out: &Path, source: &str, gop: u32) {
    let gop = gop.to_string();
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            source,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-f",
            "mp4",
        ],
        out,
    );
}

pub fn audio_only() -> PathBuf {
    cached("audio-only.m4a", |out| {
        let speech = speech();
        ffmpeg(
            &["-i", speech.to_str().unwrap(), "-c:a", "aac", "-f", "mp4"],
            out,
        );
    })
}

/// The first 60 % of the moov-at-end MP4: the index never arrived.
pub fn truncated() -> Vec<u8> {
    let mut bytes = std::fs::read(moov_at_end()).unwrap();
    bytes.truncate(bytes.len() * 6 / 10);
    bytes
}

/// An HLS playlist named like a video, pointing at a local file.
pub fn disguised_hls(canary: &Path) -> Vec<u8> {
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nfile://{}\n#EXT-X-ENDLIST\n",
        canary.display()
    )
    .into_bytes()
}

/// An ffconcat script named like a video, pointing at a local file.
pub fn disguised_concat(canary: &Path) -> Vec<u8> {
    format!("ffconcat version 1.0\nfile '{}'\n", canary.display()).into_bytes()
}

/// A real video other files can point at (so a successful read would be visible).
pub fn canary() -> PathBuf {
    no_audio()
}

/// 8 s of the astronaut photograph (a person, nothing a mover quotes) with the French
/// narration, as a phone MP4: what the local backend sees in it is known (tests/detector.rs).
pub fn astronaut_narrated() -> PathBuf {
    cached("astronaut-narrated.mp4", |out| {
        photo_with_speech(&speech(), 8, out)
    })
}

/// What is said over the astronaut for local transcription: a room, an addition and an
/// exclusion that changes it (nothing the local detector sees could be excluded), in each
/// language the rule-based parser reads.
pub struct Narration {
    pub text: &'static str,
    pub locale: &'static str,
    /// The file stem its fixtures are cached under.
    name: &'static str,
}

/// French, the product's first language, spoken by SVOX Pico (`pico2wave`, Apache-2.0): Whisper
/// base garbles espeak-ng's French ("Voici la cuisine" came out "Vas-y l'acquimine", with
/// Whisper's own features through the official CTranslate2 too), but hears Pico's word for word
/// after the AAC and Opus round trip, numbers as digits ("il y a 20 cartons").
pub const CUISINE: Narration = Narration {
    text: "Dans la cuisine, il y a vingt cartons. On garde deux cartons.",
    locale: "fr",
    name: "cuisine-fr-pico",
};

/// English, spoken by espeak-ng at 150 words a minute, which Whisper base hears word for word
/// ("twelve" came out "well boxed").
pub const KITCHEN: Narration = Narration {
    text: "In the kitchen, there are twenty boxes. We keep two boxes.",
    locale: "en",
    name: "kitchen-en150",
};

impl Narration {
    /// The narration alone, as a WAV file.
    pub fn speech(&self) -> PathBuf {
        cached(&format!("{}.wav", self.name), |wav| {
            let mut tts = if self.locale == "fr" {
                let mut pico = Command::new("pico2wave");
                pico.args(["-l", "fr-FR", "-w"]);
                pico
            } else {
                let mut espeak = Command::new("espeak-ng");
                espeak.args(["-v", "en", "-s", "150", "-w"]);
                espeak
            };
            run(tts.arg(wav).arg(self.text));
        })
    }

    /// The astronaut photograph for 10 s with this narration.
    pub fn over_the_astronaut(&self) -> PathBuf {
        cached(&format!("astronaut-{}.mp4", self.name), |out| {
            photo_with_speech(&self.speech(), 10, out)
        })
    }

    /// The narration alone as Ogg/Opus, as the pipeline hands it over.
    pub fn ogg(&self) -> PathBuf {
        let wav = self.speech();
        cached(&format!("{}.ogg", self.name), |out| {
            let args = ["-i", wav.to_str().unwrap(), "-ac", "1", "-ar", "16000"];
            ffmpeg(
                &[&args[..], &["-c:a", "libopus", "-b:a", "24k", "-f", "ogg"]].concat(),
                out,
            );
        })
    }
}

/// About a minute of French narration through a home, for the transcription benchmark: longer
/// than Whisper's 30 s, so it is heard in two windows.
pub const TOUR: Narration = Narration {
    text: "Voici le salon. Il y a un canapé, une table basse et deux fauteuils. Le buffet reste \
           ici. Dans le couloir, il y a six cartons de livres. Voici la chambre. Le lit part avec \
           nous, l'armoire aussi. Il y a quatre cartons de vêtements sous la fenêtre. Dans la \
           salle de bain, rien à emporter. Voici la cuisine. Le frigo reste, la machine à laver \
           part. Il y a douze cartons de vaisselle sur la table. Dans le garage, il y a trois \
           vélos et une étagère. Voici le bureau. Le bureau et la chaise partent, la lampe reste. \
           Il y a huit cartons de dossiers près de la porte. Dans la chambre des enfants, il y a \
           deux petits lits, une commode et dix cartons de jouets. La cave est vide. Sur le \
           balcon, la table de jardin et quatre chaises partent avec nous. Voilà, c'est tout \
           pour aujourd'hui.",
    locale: "fr",
    name: "tour-fr-pico",
};

/// The astronaut photograph as an H.264 + AAC MP4 of `seconds`, `speech` padded to the end.
fn photo_with_speech(speech: &Path, seconds: u32, out: &Path) {
    let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/astronaut.jpg");
    let pad = format!("[1:a]apad=whole_dur={seconds},aresample=48000[a]");
    let duration = seconds.to_string();
    let args = [
        "-loop",
        "1",
        "-framerate",
        "25",
        "-i",
        photo,
        "-i",
        speech.to_str().unwrap(),
        "-filter_complex",
        &pad,
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-t",
        &duration,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-f",
        "mp4",
    ];
    ffmpeg(&args, out);
}

/// A Matroska file whose 6000 tiny MJPEG frames are all noise: the container is fine (ffprobe
/// reads it), but decoding logs two lines per frame — about 750 KiB of stderr, far past the
/// origin's stderr cap and any pipe buffer — before ffmpeg gives up.
pub fn floods_stderr() -> PathBuf {
    cached("floods-stderr.mkv", |out| {
        let clean = dir().join("partial-floods-stderr-clean.mkv");
        ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=32x32:rate=100:duration=60",
                "-c:v",
                "mjpeg",
                "-q:v",
                "31",
                "-f",
                "matroska",
            ],
            &clean,
        );
        let mut data = std::fs::read(&clean).unwrap();
        std::fs::remove_file(&clean).unwrap();
        // Overwrite each JPEG (SOI … EOI) with noise free of 0xFF, so no marker survives.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut i = 0;
        while let Some(start) = find(&data, &[0xFF, 0xD8, 0xFF], i) {
            let end = find(&data, &[0xFF, 0xD9], start).unwrap() + 2;
            for b in &mut data[start..end] {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = (seed % 255) as u8;
            }
            i = end;
        }
        std::fs::write(out, data).unwrap();
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Seconds of the live-capture recordings: enough audio for two segments before the last.
pub const LIVE_SECONDS: u32 = 64;

/// A recording as MediaRecorder streams it: `format_args` choose the container; narration
/// repeated over the whole duration.
fn live_recording(out: &Path, codecs: &[&str], format_args: &[&str]) {
    let speech = speech();
    let video = format!("testsrc=size=480x270:rate=15:duration={LIVE_SECONDS}");
    let secs = LIVE_SECONDS.to_string();
    let mut args = vec!["-f", "lavfi", "-i", &video, "-stream_loop", "-1", "-i"];
    args.push(speech.to_str().unwrap());
    args.extend(["-map", "0:v", "-map", "1:a", "-t", &secs]);
    args.extend(codecs);
    args.extend(format_args);
    ffmpeg(&args, out);
}

/// Fragmented MP4 (H.264 + AAC, a keyframe a second, the index up front and a fragment per
/// keyframe), as Safari and recent Chromium record.
pub fn live_mp4() -> PathBuf {
    cached("live-fragmented.mp4", |out| {
        live_recording(
            out,
            &[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "15",
                "-pix_fmt",
                "yuv420p",
            ],
            &[
                "-c:a",
                "aac",
                "-movflags",
                "frag_keyframe+empty_moov+default_base_moof",
                "-f",
                "mp4",
            ],
        )
    })
}

/// WebM as a live stream (VP8 + Opus, no cues, no duration), as Chromium and Firefox record.
pub fn live_webm() -> PathBuf {
    cached("live-stream.webm", |out| {
        live_recording(
            out,
            &[
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "400k",
                "-g",
                "30",
            ],
            &["-c:a", "libopus", "-live", "1", "-f", "webm"],
        )
    })
}
