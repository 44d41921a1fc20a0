//! Local transcription (feature `local-whisper`): a whole job with `DODOLENS_ANALYSER=local`,
//! no key and no model server, whose espeak-ng narration is heard by Whisper on the origin and
//! read by the rule-based parser — the room it names, the boxes it adds and the ones it keeps
//! back are in the inventory — and a model folder that is not the committed one is refused.
//!
//! The model folder is the one `scripts/bootstrap` assembles (`.tools/models/whisper-base`), or
//! `DODOLENS_WHISPER_DIR` when set; a missing folder fails the test rather than skipping it.

mod support;

use std::{path::PathBuf, time::Duration};

use dodolens_origin::{
    backend::{Backend, BackendError},
    config::Config,
    detector,
    whisper::{self, WhisperError},
};
use dodolens_shared::protocol::{Analyser, ItemSource, WarningCode};
use support::{fixtures, *};

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("DODOLENS_WHISPER_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.tools/models/whisper-base"
            ))
        },
        PathBuf::from,
    );
    assert!(
        dir.join("model.bin").exists(),
        "no Whisper model in {dir:?}: run scripts/bootstrap"
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_job_hears_the_narration_and_applies_its_directives() {
    let dir = model_dir();
    let s = Scenario::start(&[
        ("DODOLENS_ANALYSER", "local"),
        ("DODOLENS_WHISPER_DIR", dir.to_str().unwrap()),
    ])
    .await;
    let id = session_id(7001);
    let mut meta = s.meta(&id);
    meta.meta.locale = "en".into();
    let video = read(&fixtures::astronaut_in_the_kitchen());
    let response = forward(s.origin.addr, &meta, video, Signature::Good).await;
    assert_eq!(response.status(), 202);
    let event = s.cb.final_event(&id, Duration::from_secs(120)).await;
    let result = completed(&event);
    assert_eq!(result.analyser, Analyser::Local);
    assert_eq!(result.vision_model, detector::MODEL_NAME);
    assert_eq!(result.transcription_model, whisper::MODEL_NAME);
    assert_eq!((result.cost.eur, result.cost.audio_seconds), (0.0, 0.0));

    // "In the kitchen, there are twenty boxes. We keep two boxes.": the kitchen holds the
    // twenty boxes said, less the two that stay.
    let rooms: Vec<(&str, Vec<(&str, u32, ItemSource)>)> = result
        .inventory
        .rooms
        .iter()
        .map(|r| {
            let lines = r
                .lines
                .iter()
                .map(|l| (l.key.as_str(), l.quantity, l.source));
            (r.room.as_str(), lines.collect())
        })
        .collect();
    assert_eq!(
        rooms,
        vec![("Kitchen", vec![("box_standard", 18, ItemSource::Said)])],
        "{rooms:?}; warnings {:?}",
        result.inventory.warnings
    );
    assert!(result.inventory.total_m3 > 0.0);

    // The narration was read: no "not analysed" warning; the blind spots still listed.
    let codes: Vec<WarningCode> = result.inventory.warnings.iter().map(|w| w.code).collect();
    assert!(
        !codes.contains(&WarningCode::NoNarration),
        "{:?}",
        result.inventory.warnings
    );
    assert!(codes.contains(&WarningCode::LocalBlindSpots), "{codes:?}");

    // Nothing went to a model server.
    let stats = s.sim.stats().await;
    assert_eq!(
        (
            stats["chat_completions"].as_u64(),
            stats["transcriptions"].as_u64()
        ),
        (Some(0), Some(0)),
        "{stats}"
    );
    s.finish(&[&id]).await;
}

#[test]
fn a_folder_with_an_altered_file_is_refused_at_start_up() {
    let real = model_dir();
    let altered = tempdir_in_target("whisper-altered");
    for (name, _) in whisper::files::expected() {
        std::os::unix::fs::symlink(real.join(name), altered.join(name)).unwrap();
    }
    std::fs::remove_file(altered.join("config.json")).unwrap();
    let mut config = std::fs::read(real.join("config.json")).unwrap();
    config.push(b'\n');
    std::fs::write(altered.join("config.json"), config).unwrap();

    let cfg = Config::from_vars(|k| match k {
        "DODOLENS_SIGNING_SECRET" => Some(SECRET.into()),
        "DODOLENS_ANALYSER" => Some("local".into()),
        "DODOLENS_WHISPER_DIR" => Some(altered.to_str().unwrap().into()),
        _ => None,
    })
    .unwrap();
    let refused = Backend::new(&cfg).err();
    std::fs::remove_dir_all(&altered).unwrap();
    match refused {
        Some(BackendError::Whisper(WhisperError::Checksum(path))) => {
            assert!(path.ends_with("config.json"), "{path:?}")
        }
        other => panic!("{:?}", other.map(|e| e.to_string())),
    }
}

/// An empty folder under the target dir (never the test's TMPDIR, which must stay empty).
fn tempdir_in_target(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
