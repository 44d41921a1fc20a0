//! Local transcription (feature `local-whisper`): whole jobs with `DODOLENS_ANALYSER=local`,
//! no key and no model server, whose narration — French, then English — is heard by Whisper on
//! the origin and read by the rule-based parser: the room it names, the boxes it adds and the
//! ones it keeps back are in the inventory. And a model folder that is not the committed one is
//! refused.
//!
//! The model folder is [`whisper_dir`]'s; a missing folder fails the test rather than skipping it.

mod support;

use std::{path::PathBuf, time::Duration};

use dodolens_origin::{
    backend::{Backend, BackendError},
    config::Config,
    detector,
    whisper::{self, WhisperError},
};
use dodolens_shared::protocol::{Analyser, ItemSource, RoomInventory, WarningCode};
use support::{
    fixtures::{self, Narration},
    *,
};

/// Runs a local job on the astronaut photograph with `narration`; returns each room's lines.
async fn local_job(n: u64, narration: &Narration) -> Vec<RoomLines> {
    let dir = whisper_dir();
    let s = Scenario::start(&[
        ("DODOLENS_ANALYSER", "local"),
        ("DODOLENS_WHISPER_DIR", dir.to_str().unwrap()),
    ])
    .await;
    let id = session_id(n);
    let mut meta = s.meta(&id);
    meta.meta.locale = narration.locale.into();
    let video = read(&narration.over_the_astronaut());
    let response = forward(s.origin.addr, &meta, video, Signature::Good).await;
    assert_eq!(response.status(), 202);
    let event = s.cb.final_event(&id, Duration::from_secs(120)).await;
    let result = completed(&event);
    assert_eq!(result.analyser, Analyser::Local);
    assert_eq!(result.vision_model, detector::MODEL_NAME);
    assert_eq!(result.transcription_model, whisper::MODEL_NAME);
    assert_eq!((result.cost.eur, result.cost.audio_seconds), (0.0, 0.0));

    // The narration was read: no "not analysed" warning; the blind spots still listed.
    let codes: Vec<WarningCode> = result.inventory.warnings.iter().map(|w| w.code).collect();
    assert!(!codes.contains(&WarningCode::NoNarration), "{codes:?}");
    assert!(codes.contains(&WarningCode::LocalBlindSpots), "{codes:?}");

    s.sim.assert_no_model_calls().await;
    s.finish(&[&id]).await;
    let rooms: Vec<_> = result.inventory.rooms.iter().map(room_lines).collect();
    assert!(result.inventory.total_m3 > 0.0, "{rooms:?}");
    rooms
}

type RoomLines = (String, Vec<(String, u32, ItemSource)>);

fn room_lines(room: &RoomInventory) -> RoomLines {
    let lines = room
        .lines
        .iter()
        .map(|l| (l.key.clone(), l.quantity, l.source));
    (room.room.clone(), lines.collect())
}

fn said(room: &str, key: &str, quantity: u32) -> RoomLines {
    (room.into(), vec![(key.into(), quantity, ItemSource::Said)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_french_narration_is_heard_and_its_directives_applied() {
    // "Dans la cuisine, il y a vingt cartons. On garde deux cartons.": the kitchen holds the
    // twenty boxes said, less the two that stay.
    let rooms = local_job(7001, &fixtures::CUISINE).await;
    assert_eq!(rooms, vec![said("Cuisine", "box_standard", 18)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_english_narration_is_heard_and_its_directives_applied() {
    // "In the kitchen, there are twenty boxes. We keep two boxes."
    let rooms = local_job(7002, &fixtures::KITCHEN).await;
    assert_eq!(rooms, vec![said("Kitchen", "box_standard", 18)]);
}

#[test]
fn a_folder_with_an_altered_file_is_refused_at_start_up() {
    let real = whisper_dir();
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
