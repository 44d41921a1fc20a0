//! `POST /v1/handoffs/{id}`: a confirmed inventory reaches the mover's sinks (an Airtable
//! stand-in with a linked lines table, a webhook stand-in that checks the signature), bad
//! requests are refused before the body is read, and by default the raw model result reaches no
//! sink at all.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::HeaderMap,
    routing::post,
    Json, Router,
};
use dodolens_shared::{
    edits,
    protocol::{Contact, Edit, Handoff, Inventory, ItemSource},
    signing::{self, Purpose, SignedParts, HEADER_METADATA, HEADER_SIGNATURE, HEADER_TIMESTAMP},
};
use serde_json::{json, Value};
use support::{fixtures, *};

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Airtable's create-records endpoint: records what it gets per table, answers ids.
async fn airtable(
    State(seen): State<Seen>,
    Path((_base, table)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut seen = seen.lock().unwrap();
    // Ids per table: the webhook may be served first, the ids must not depend on it.
    let n = seen.iter().filter(|(t, _)| *t == table).count();
    let prefix = format!("rec{table}{n}");
    seen.push((table, body.clone()));
    let ids: Vec<Value> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, _)| json!({ "id": format!("{prefix}x{i}") }))
        .collect();
    Json(json!({ "records": ids }))
}

/// The mover's webhook: keeps the body only when its signature verifies with `key`.
async fn webhook(
    State((seen, key)): State<(Seen, &'static str)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let digest = signing::body_digest(&body);
    let parts = SignedParts::new(
        Purpose::Webhook,
        "POST",
        "/hook",
        get(HEADER_TIMESTAMP).parse().unwrap_or(0),
        body.len() as u64,
        &digest,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if signing::verify(key.as_bytes(), &parts, get(HEADER_SIGNATURE), now).is_err() {
        return axum::http::StatusCode::UNAUTHORIZED;
    }
    seen.lock()
        .unwrap()
        .push(("hook".into(), serde_json::from_slice(&body).unwrap()));
    axum::http::StatusCode::NO_CONTENT
}

async fn stand_ins() -> (Seen, String, String) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v0/{base}/{table}", post(airtable))
        .with_state(seen.clone())
        .merge(
            Router::new()
                .route("/hook", post(webhook))
                .with_state((seen.clone(), WEBHOOK_SECRET)),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        seen,
        format!("http://{addr}/v0"),
        format!("http://{addr}/hook"),
    )
}

fn sinks(air: &str, hook: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DODOLENS_AIRTABLE_TOKEN", "pat-test".into()),
        ("DODOLENS_AIRTABLE_BASE", "appBase".into()),
        ("DODOLENS_AIRTABLE_TABLE", "Inventaires".into()),
        ("DODOLENS_AIRTABLE_LINES_TABLE", "Lignes".into()),
        ("DODOLENS_AIRTABLE_URL", air.into()),
        ("DODOLENS_WEBHOOK_URL", hook.into()),
        ("DODOLENS_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("DODOLENS_SINK_ATTEMPTS", "2".into()),
    ]
}

fn contact() -> Contact {
    Contact {
        name: "Camille Martin".into(),
        email: Some("camille@example.fr".into()),
        phone: None,
        move_date: "2030-06-15".into(),
        from_postcode: "75011".into(),
        to_postcode: "69003".into(),
    }
}

fn handoff(id: &str, inventory: Inventory) -> Handoff {
    Handoff {
        session_id: id.into(),
        revision: 1,
        confirmed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        locale: "fr".into(),
        contact: contact(),
        inventory,
    }
}

async fn send(
    origin: std::net::SocketAddr,
    id: &str,
    body: Vec<u8>,
    key: &str,
) -> reqwest::Response {
    let digest = signing::body_digest(&body);
    send_signed(origin, id, &digest, body, key).await
}

/// A hand-off whose signature covers `digest` (the body's, unless a test says otherwise).
async fn send_signed(
    origin: std::net::SocketAddr,
    id: &str,
    digest: &str,
    body: Vec<u8>,
    key: &str,
) -> reqwest::Response {
    let path = format!("/v1/handoffs/{id}");
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signature = signing::sign(
        key.as_bytes(),
        &SignedParts::new(
            Purpose::Handoff,
            "POST",
            &path,
            timestamp,
            body.len() as u64,
            digest,
        ),
    )
    .unwrap();
    reqwest::Client::new()
        .post(format!("http://{origin}{path}"))
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_METADATA, digest)
        .header(HEADER_SIGNATURE, signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn until(seen: &Seen, n: usize) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = seen.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "sinks got {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_inventory_reaches_airtable_with_linked_lines_and_the_signed_webhook() {
    let (seen, air, hook) = stand_ins().await;
    let extra = sinks(&air, &hook);
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Scenario::start(&extra).await;
    // The model's inventory, as the origin produced it, then the customer's corrections.
    let (id, event) = s.run(read(&fixtures::no_audio())).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "the raw result reaches no sink by default"
    );
    let model = completed(&event).inventory.clone();
    let first = model.rooms[0].lines[0].id;
    let confirmed = edits::apply(
        &model,
        &[
            Edit::SetQuantity {
                line: first,
                quantity: 3,
            },
            Edit::AddItem {
                line: 900,
                room: "Salon".into(),
                key: "piano_upright".into(),
                quantity: 1,
            },
        ],
        "fr",
    )
    .unwrap();
    let body = serde_json::to_vec(&handoff(&id, confirmed.clone())).unwrap();
    let response = send(s.origin.addr, &id, body, SECRET).await;
    assert_eq!(response.status(), 202);

    let lines: Vec<_> = confirmed.rooms.iter().flat_map(|r| &r.lines).collect();
    let batches = lines.len().div_ceil(10);
    let seen = until(&seen, 2 + batches).await;
    let session = seen.iter().find(|(t, _)| t == "Inventaires").unwrap();
    let fields = &session.1["records"][0]["fields"];
    assert_eq!(fields["Session"], id.as_str());
    assert_eq!(fields["Name"], "Camille Martin");
    assert_eq!(fields["Email"], "camille@example.fr");
    assert_eq!(fields["Move date"], "2030-06-15");
    assert_eq!(fields["To postcode"], "69003");
    assert_eq!(fields["Total m3"], json!(confirmed.total_m3));
    assert_eq!(fields["Total kg"], json!(confirmed.total_weight_kg));
    assert!(fields["Flagged"].as_str().unwrap().contains("Piano droit"));
    let records: Vec<&Value> = seen
        .iter()
        .filter(|(t, _)| t == "Lignes")
        .flat_map(|(_, body)| body["records"].as_array().unwrap())
        .collect();
    assert_eq!(records.len(), lines.len());
    for (record, line) in records.iter().zip(&lines) {
        let f = &record["fields"];
        assert_eq!(
            f["Session"],
            json!(["recInventaires0x0"]),
            "linked to the session's record"
        );
        assert_eq!(f["Item"], line.label.as_str());
        assert_eq!(f["Quantity"], line.quantity);
        assert_eq!(f["m3"], json!(line.volume_m3));
        assert_eq!(f["Source"], json!(line.source));
    }
    assert!(records.iter().any(|r| r["fields"]["Source"] == "corrected"));
    let piano = records
        .iter()
        .find(|r| r["fields"]["Key"] == "piano_upright")
        .unwrap();
    assert_eq!(piano["fields"]["Source"], json!(ItemSource::Added));
    assert_eq!(piano["fields"]["Flags"], "fragile, heavy");
    let (_, hooked) = seen.iter().find(|(t, _)| t == "hook").unwrap();
    assert_eq!(hooked["type"], "handoff");
    let received: Handoff = serde_json::from_value(hooked["handoff"].clone()).unwrap();
    assert_eq!(received.inventory, confirmed);
    assert_eq!(received.contact, contact());
    s.finish(&[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hand_offs_are_refused_and_reach_no_sink() {
    let (seen, air, hook) = stand_ins().await;
    let extra = sinks(&air, &hook);
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Scenario::start(&extra).await;
    let id = session_id(1);
    let empty = edits::apply(&completed_inventory(), &[], "fr").unwrap();
    let good = serde_json::to_vec(&handoff(&id, empty.clone())).unwrap();
    let addr = s.origin.addr;
    assert_eq!(
        send(addr, &id, good.clone(), "wrong-key").await.status(),
        401
    );
    // A body other than the one signed (same length): the digest does not match.
    let mut altered = good.clone();
    let at = altered.iter().position(|&b| b == b'7').unwrap();
    altered[at] = b'8';
    assert_eq!(
        send_signed(addr, &id, &signing::body_digest(&good), altered, SECRET)
            .await
            .status(),
        401
    );
    assert_eq!(
        send(addr, &session_id(2), good.clone(), SECRET)
            .await
            .status(),
        400
    );
    assert_eq!(
        send(addr, "not-an-id", good.clone(), SECRET).await.status(),
        400
    );
    let mut bad = handoff(&id, empty);
    bad.contact.email = None;
    let bad = serde_json::to_vec(&bad).unwrap();
    assert_eq!(send(addr, &id, bad, SECRET).await.status(), 422);
    // Over the limit: refused from the declared length, before any of the body is sent.
    assert_eq!(head_only_status(addr, &id, 2 << 20).await, 413);
    // A good hand-off after them is the barrier: once it arrived, nothing else did.
    assert_eq!(send(addr, &id, good, SECRET).await.status(), 202);
    let seen = until(&seen, 2).await;
    let tables: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        tables == ["Inventaires", "hook"] || tables == ["hook", "Inventaires"],
        "{tables:?}"
    );
    s.finish(&[]).await;
}

/// The status the origin answers to a hand-off's headers alone (declaring `length` bytes, sending
/// none): a refusal that needs the body would never come, and the read would time out.
async fn head_only_status(addr: std::net::SocketAddr, id: &str, length: u64) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/handoffs/{id} HTTP/1.1\r\nhost: origin\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut answer))
        .await
        .expect("an answer before the body")
        .unwrap();
    let line = std::str::from_utf8(&answer).unwrap();
    line["HTTP/1.1 ".len()..].trim().parse().unwrap()
}

fn completed_inventory() -> Inventory {
    Inventory {
        rooms: vec![],
        subtotal_m3: 0.0,
        margin_ratio: 0.1,
        margin_m3: 0.0,
        total_m3: 0.0,
        total_weight_kg: 0.0,
        item_count: 0,
        flagged: vec![],
        warnings: vec![],
    }
}
