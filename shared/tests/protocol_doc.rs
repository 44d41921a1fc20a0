//! Keeps docs/PROTOCOL.md true: every JSON example annotated `<!-- type: T -->` must parse as
//! `T` and serialise back to the same JSON (so a renamed or missing field fails here).

use dodolens_shared::protocol::{
    ClientMessage, ConfirmRequest, Handoff, JobMeta, OriginEvent, OriginReport, ServerMessage,
    SessionEvent,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

fn round_trip<T: DeserializeOwned + Serialize>(json: &str) -> Result<(), String> {
    let original: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let typed: T = serde_json::from_value(original.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if back == original {
        Ok(())
    } else {
        Err(format!("re-serialised differently:\n{back:#}"))
    }
}

#[test]
fn every_protocol_example_round_trips() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md");
    let mut checked = 0;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(ty) = line
            .strip_prefix("<!-- type: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```json"),
            "a ```json block must follow the {ty} marker"
        );
        let json: String = lines
            .by_ref()
            .take_while(|l| *l != "```")
            .collect::<Vec<_>>()
            .join("\n");
        let outcome = match ty {
            "ServerMessage" => round_trip::<ServerMessage>(&json),
            "SessionEvent" => round_trip::<SessionEvent>(&json),
            "ClientMessage" => round_trip::<ClientMessage>(&json),
            "OriginEvent" => round_trip::<OriginEvent>(&json),
            "OriginReport" => round_trip::<OriginReport>(&json),
            "JobMeta" => round_trip::<JobMeta>(&json),
            "ConfirmRequest" => round_trip::<ConfirmRequest>(&json),
            "Handoff" => round_trip::<Handoff>(&json),
            other => panic!("unknown type marker {other}"),
        };
        if let Err(e) = outcome {
            panic!("example of {ty} is out of date: {e}\n{json}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} examples found");
}
