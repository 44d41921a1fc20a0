//! A whole job with `DODOLENS_ANALYSER=local`: the frames and the audio never leave the origin
//! (the simulator beside it receives nothing), the inventory holds only what the embedded model
//! saw — nothing is invented — and says which backend produced it and what it cannot see.

mod support;

use dodolens_origin::detector;
use dodolens_shared::protocol::{Analyser, WarningCode};
use support::{fixtures, *};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_job_keeps_everything_on_the_origin_and_invents_nothing() {
    let s = Scenario::start(&[("DODOLENS_ANALYSER", "local")]).await;
    let (id, event) = s.run(read(&fixtures::astronaut_narrated())).await;
    let result = completed(&event);
    assert_eq!(result.analyser, Analyser::Local);
    assert!(!result.simulated);
    assert_eq!(result.vision_model, detector::MODEL_NAME);
    assert_eq!(result.transcription_model, "");
    assert_eq!(result.media.frames_analysed, 12);
    assert!(result.media.has_audio);
    assert_eq!(
        (
            result.cost.eur,
            result.cost.input_tokens,
            result.cost.audio_seconds
        ),
        (0.0, 0, 0.0)
    );

    // A portrait of a person: no furniture, no box, no volume.
    assert!(
        result.inventory.rooms.is_empty(),
        "{:?}",
        result.inventory.rooms
    );
    assert_eq!(result.inventory.total_m3, 0.0);

    let codes: Vec<WarningCode> = result.inventory.warnings.iter().map(|w| w.code).collect();
    assert!(codes.contains(&WarningCode::LocalBlindSpots), "{codes:?}");
    assert!(!codes.contains(&WarningCode::Simulated), "{codes:?}");
    // One narration warning, saying why it was not read (not "no speech heard").
    let narration: Vec<&str> = result
        .inventory
        .warnings
        .iter()
        .filter(|w| w.code == WarningCode::NoNarration)
        .map(|w| w.message.as_str())
        .collect();
    assert!(
        narration.len() == 1 && narration[0].contains("mode local"),
        "{narration:?}"
    );
    let blind = result
        .inventory
        .warnings
        .iter()
        .find(|w| w.code == WarningCode::LocalBlindSpots)
        .unwrap();
    assert!(
        blind.message.contains("armoires") && blind.message.contains("cartons"),
        "{}",
        blind.message
    );

    // Nothing went to the provider.
    s.sim.assert_no_model_calls().await;
    s.finish(&[&id]).await;
}
