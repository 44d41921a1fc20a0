//! The wire contract between browser, edge and origin.
//!
//! Every message that crosses a process boundary is defined here once, so the wasm edge, the
//! native origin and the TypeScript client (generated from these types) cannot drift apart.
//! Field names are `snake_case` JSON; enums are internally tagged with `"type"` so a client can
//! switch on one field. `docs/PROTOCOL.md` shows one JSON example of each message.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Every time in the protocol uses this unit, so the edge
/// (which only has `Date.now()`) and the origin agree without conversions.
pub type Millis = u64;

/// Where a session is in its life. The transitions live in [`crate::lifecycle`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Uploading,
    Uploaded,
    Forwarding,
    /// The origin is at capacity: the session waits its turn and is forwarded again.
    Queued,
    Processing,
    Completed,
    Failed,
    Purged,
}

impl Status {
    /// Completed, failed and purged sessions do no more work.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Purged)
    }
}

/// The origin's pipeline stages, in the order they happen.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Received,
    Probing,
    Extracting,
    Transcribing,
    Analysing,
    Fusing,
    Delivering,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Received,
        Stage::Probing,
        Stage::Extracting,
        Stage::Transcribing,
        Stage::Analysing,
        Stage::Fusing,
        Stage::Delivering,
    ];
}

/// Machine-readable failure reasons. The message beside them is for humans.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The file is not a video we can read (audio only, unknown container, playlist…).
    UnsupportedMedia,
    /// The container is recognised but broken (truncated, no decodable frame).
    InvalidMedia,
    /// More bytes than the configured maximum.
    TooLarge,
    /// Extraction or analysis exceeded its deadline.
    Timeout,
    /// The model provider kept failing (5xx, 429, network) after retries.
    ModelUnavailable,
    /// The model answered something that does not match the schema.
    ModelInvalidResponse,
    /// The edge could not reach the origin, or the origin went silent, after retries.
    OriginUnavailable,
    /// The origin stayed at capacity for the whole queue limit.
    OriginBusy,
    /// The upload sat idle past its expiry.
    Expired,
    /// The user cancelled (tus DELETE).
    Cancelled,
    Internal,
}

/// A failure as the user sees it. `retryable` failures keep the uploaded video until the
/// retention ends, so "Réessayer" can run processing again without a new upload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
}

/// What the uploader declared in tus `Upload-Metadata`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct UploadMeta {
    pub filename: Option<String>,
    /// Always `video/*`; checked at creation.
    pub filetype: String,
    /// BCP 47 language of the narration, e.g. `fr`; used for transcription and labels.
    pub locale: String,
}

/// Bytes received so far and bytes announced.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct UploadProgress {
    #[cfg_attr(test, ts(type = "number"))]
    pub offset: u64,
    /// `null` while the length is deferred (tus `Upload-Defer-Length: 1`, a recording still
    /// being filmed), until a PATCH declares it.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub length: Option<u64>,
}

/// How a queued session waits for a busy origin.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Queue {
    /// When the origin first answered busy: the wait so far is `now - since`.
    #[cfg_attr(test, ts(type = "number"))]
    pub since: Millis,
    /// The origin's queue position (1 = next), when its busy answer gave one
    /// ([`HEADER_QUEUE_POSITION`]).
    pub position: Option<u32>,
}

/// Header of the origin's busy answer (429/503) with the job's place in its queue, 1 = next.
/// Optional: the edge shows the wait without it.
pub const HEADER_QUEUE_POSITION: &str = "dodolens-queue-position";

/// The full state of a session, sent first on every (re)connect and by the JSON endpoint.
/// It contains no video, frame, audio or transcript.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Snapshot {
    pub session_id: String,
    pub status: Status,
    /// The `seq` of the last event folded into this snapshot; events after it follow.
    #[cfg_attr(test, ts(type = "number"))]
    pub seq: u64,
    pub upload: UploadProgress,
    pub meta: UploadMeta,
    pub stage: Option<Stage>,
    /// Progress of the current stage, 0.0–1.0.
    pub progress: Option<f32>,
    /// Set while `queued`.
    pub queue: Option<Queue>,
    pub result: Option<AnalysisResult>,
    pub error: Option<Failure>,
    /// When the session will be purged if nothing else happens.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub expires_at: Option<Millis>,
}

/// Something that happened to a session, as broadcast to browsers with its `seq`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    Status {
        status: Status,
    },
    Upload {
        #[cfg_attr(test, ts(type = "number"))]
        offset: u64,
        /// `null` while deferred ([`UploadProgress::length`]).
        #[cfg_attr(test, ts(type = "number | null"))]
        length: Option<u64>,
    },
    Stage {
        stage: Stage,
    },
    Progress {
        stage: Stage,
        fraction: f32,
    },
    /// The origin is busy: waiting since `since` (its queue position, when known). Precedes
    /// the `queued` status, and is sent again when the position changes.
    Queued {
        #[cfg_attr(test, ts(type = "number"))]
        since: Millis,
        position: Option<u32>,
    },
    Completed {
        result: Box<AnalysisResult>,
    },
    Failed {
        error: Failure,
    },
    /// The customer confirmed the reviewed inventory; it went to the mover.
    Confirmed {
        confirmed: Box<Confirmed>,
    },
    /// An edit after the confirmation withdrew it.
    Unconfirmed,
}

/// Messages the edge sends on the WebSocket (and, for long-poll, in a JSON array).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Snapshot {
        snapshot: Box<Snapshot>,
    },
    Event {
        #[cfg_attr(test, ts(type = "number"))]
        seq: u64,
        event: SessionEvent,
    },
}

/// Messages a browser may send on the WebSocket. A bare text `ping` is answered `pong` by the
/// runtime without waking the object, so it is not listed here.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Run processing again after a retryable failure, from the stored upload.
    Retry,
}

/// Events the origin posts to the edge (signed, inside an [`OriginReport`]), in the order they
/// happen for one job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OriginEvent {
    Stage {
        stage: Stage,
    },
    Progress {
        stage: Stage,
        fraction: f32,
    },
    Completed {
        result: Box<AnalysisResult>,
    },
    Failed {
        error: Failure,
    },
    /// The job is alive but has nothing new to say (a long model call). It only refreshes the
    /// edge's watchdog: nothing is stored or broadcast, the stage and progress stay.
    Heartbeat,
}

impl OriginEvent {
    /// Completed and failed end the job; the origin delivers them through its outbox.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            OriginEvent::Completed { .. } | OriginEvent::Failed { .. }
        )
    }
}

/// What the origin posts to `callback_url`: one event of one forward attempt. The edge applies
/// only events of the attempt it currently waits for (see [`crate::lifecycle`]), so a late
/// event of an earlier forward (an outbox retry, a job the user already re-ran) changes nothing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct OriginReport {
    /// The `JobMeta::attempt` of the forward this job runs for.
    pub attempt: u32,
    pub event: OriginEvent,
}

/// The video's length in a body-less admission probe (`POST /v1/jobs/{id}/admission`), signed
/// as the forward's Content-Length would be.
pub const HEADER_VIDEO_LENGTH: &str = "dodolens-video-length";

/// A video forwarded while it is still being received: on `POST /v1/jobs/{id}/stream`, the
/// offset of the range in the body; on the finishing forward, the bytes the origin already
/// holds (the body is the rest); on the origin's answers to both, the bytes it holds for that
/// attempt (0 when it has none). Signed with the request it rides on.
pub const HEADER_STREAM_OFFSET: &str = "dodolens-stream-offset";

/// The extra signed headers of a range (`POST /v1/jobs/{id}/stream`: its offset, the range's
/// SHA-256) and of a resumed forward (the bytes the origin holds, the whole video's SHA-256),
/// in the order they are signed.
pub const STREAM_SIGNED_HEADERS: [&str; 2] = [HEADER_STREAM_OFFSET, crate::video_digest::HEADER];

/// Header of the origin's 2xx answer to a forward it acknowledged as a duplicate: the attempt
/// it runs (or ran) for this session, whose events the edge must then accept.
pub const HEADER_RUNNING_ATTEMPT: &str = "dodolens-attempt";

/// Sent by the edge with a forwarded job (in the signed `x-dodolens-metadata` header), so the
/// origin knows where to report and how to interpret the video.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct JobMeta {
    pub session_id: String,
    /// Absolute URL of `POST /internal/sessions/{id}/events` on the edge.
    pub callback_url: String,
    pub meta: UploadMeta,
    /// 1 for the first forward; re-forwards (watchdog, retry) count up.
    pub attempt: u32,
}

/// What the vision model saw, in the shape its strict JSON schema imposes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct VisionResult {
    pub rooms: Vec<VisionRoom>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct VisionRoom {
    /// Free text as the model names it ("salon", "chambre 1").
    pub name: String,
    pub items: Vec<VisionItem>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct VisionItem {
    /// A catalogue key, or `other` for something the catalogue lacks.
    pub key: String,
    /// What the model calls it; shown for `other` items.
    pub label: String,
    /// Counted once across frames: the same sofa seen in five frames is one sofa.
    pub quantity: u32,
    /// The model's estimate, used only for `other` items (catalogue volumes win otherwise).
    pub estimated_volume_m3: Option<f64>,
    /// 0.0–1.0.
    pub confidence: f64,
    /// Indexes of the frames the item is visible in.
    pub frames: Vec<u32>,
}

/// What the narration asks for, extracted from the transcript with a strict schema.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct VoiceDirectives {
    pub directives: Vec<Directive>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum DirectiveAction {
    /// "le frigo reste": remove the item from the move.
    Exclude,
    /// "quinze cartons de livres dans le placard": add items the camera did not see.
    Add,
    /// A remark about a room, kept as text in the inventory.
    Note,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Directive {
    pub action: DirectiveAction,
    /// Catalogue key or `other`; empty for notes.
    pub key: String,
    pub label: String,
    /// How many to add or exclude; `None` with exclude means all of them.
    pub quantity: Option<u32>,
    pub room: Option<String>,
    pub estimated_volume_m3: Option<f64>,
    pub note: Option<String>,
}

/// Why a line is in the inventory.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum ItemSource {
    /// Seen on the video.
    Seen,
    /// Added by the narration.
    Said,
    /// Added by the customer while reviewing the inventory.
    Added,
    /// Seen or said, then its quantity corrected by the customer.
    Corrected,
}

/// What a mover must plan for an item, from the catalogue.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum ItemFlag {
    /// Glass, screens, instruments: wrapped and loaded apart.
    Fragile,
    /// Taken apart before the move and put back together after (beds, wardrobes).
    Disassembly,
    /// Two movers or special equipment (piano, American fridge, safe).
    Heavy,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct InventoryLine {
    /// Unique in the inventory; customer edits name lines by it.
    pub id: u32,
    pub key: String,
    pub label: String,
    pub quantity: u32,
    pub unit_volume_m3: f64,
    pub volume_m3: f64,
    /// Typical weight of one (catalogue), or estimated from the volume for other items.
    pub unit_weight_kg: f64,
    pub weight_kg: f64,
    pub flags: Vec<ItemFlag>,
    pub source: ItemSource,
    pub confidence: Option<f64>,
    pub frames: Vec<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct RoomInventory {
    pub room: String,
    pub lines: Vec<InventoryLine>,
    pub subtotal_m3: f64,
    pub weight_kg: f64,
    pub notes: Vec<String>,
}

/// A line with at least one flag, listed once more at the inventory level so a mover sees the
/// piano without reading every room.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct FlaggedItem {
    pub line: u32,
    pub room: String,
    pub label: String,
    pub quantity: u32,
    pub flags: Vec<ItemFlag>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    TooShort,
    TooDark,
    Blurry,
    NoAudio,
    NoNarration,
    FewFrames,
    UnknownItem,
    Clamped,
    SinkFailed,
    Simulated,
    /// The local model cannot recognise some catalogue categories; the customer adds them.
    LocalBlindSpots,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Warning {
    pub code: WarningCode,
    pub message: String,
}

/// The inventory a mover quotes from. Volumes are in m³, rounded to 0.01 for display only by
/// clients; the numbers here are exact sums.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Inventory {
    pub rooms: Vec<RoomInventory>,
    /// Sum of every line.
    pub subtotal_m3: f64,
    /// Loading margin ratio applied, e.g. 0.1 for 10 %.
    pub margin_ratio: f64,
    pub margin_m3: f64,
    /// `subtotal_m3 + margin_m3`.
    pub total_m3: f64,
    /// Sum of every line's weight (no margin: the margin is space, not mass).
    pub total_weight_kg: f64,
    pub item_count: u32,
    /// Every line with a flag, in inventory order.
    pub flagged: Vec<FlaggedItem>,
    pub warnings: Vec<Warning>,
}

/// Facts ffmpeg found about the video.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct MediaFacts {
    pub duration_s: f64,
    pub width: u32,
    pub height: u32,
    pub rotation: i32,
    pub has_audio: bool,
    pub frames_analysed: u32,
    /// Where each analysed frame lies in the video, in seconds, in the order the vision model
    /// saw them (the frame indices of the lines and sightings): how the frames spread over the
    /// timeline. Absent from results made before it existed.
    #[serde(default)]
    pub frame_times_s: Vec<f64>,
}

/// Estimated cost of the model calls for one analysis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Cost {
    #[cfg_attr(test, ts(type = "number"))]
    pub input_tokens: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub output_tokens: u64,
    pub audio_seconds: f64,
    pub eur: f64,
}

/// Which backend analysed the video.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum Analyser {
    /// An OpenAI-compatible provider (frames and audio leave the origin); also the simulator,
    /// which `simulated` flags. Results from before this field existed were all of this kind.
    #[default]
    Openai,
    /// The models inside the origin: nothing leaves the operator's server.
    Local,
}

/// The final result of one analysis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct AnalysisResult {
    pub inventory: Inventory,
    pub media: MediaFacts,
    pub cost: Cost,
    pub vision_model: String,
    pub transcription_model: String,
    #[serde(default)]
    pub analyser: Analyser,
    /// True when the answers came from the OpenAI simulator, not a real model.
    pub simulated: bool,
    #[cfg_attr(test, ts(type = "number"))]
    pub processing_ms: u64,
}

// ---- The customer's review and the mover's hand-off (rules in `edits` and `handoff`) ----

/// One change the customer makes to the inventory while reviewing it. Lines are named by their
/// `id`; an added line brings a new id chosen by the page (any id the inventory does not use).
/// Applied in order by [`crate::edits::apply`], which decides every number.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Edit {
    /// 0 hides the line (as a removal); above [`crate::fusion::MAX_QUANTITY`] it is capped.
    SetQuantity {
        line: u32,
        quantity: u32,
    },
    Remove {
        line: u32,
    },
    /// Brings back a removed line (the undo of `remove`).
    Restore {
        line: u32,
    },
    /// A catalogue item by key, in a room (created if new).
    AddItem {
        line: u32,
        room: String,
        key: String,
        quantity: u32,
    },
    /// Something the catalogue lacks, with the customer's volume (and weight, else estimated).
    AddFree {
        line: u32,
        room: String,
        label: String,
        unit_volume_m3: f64,
        unit_weight_kg: Option<f64>,
        quantity: u32,
    },
    /// Moves a line to another room (created if new).
    Move {
        line: u32,
        room: String,
    },
    RenameRoom {
        room: String,
        to: String,
    },
}

/// What the customer types so the mover can call back; checked by [`crate::handoff::validate`].
/// At least one of `email` and `phone`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Contact {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub move_date: String,
    pub from_postcode: String,
    pub to_postcode: String,
}

/// Which contact field is wrong, and why (the page words it).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    Name,
    Email,
    Phone,
    /// Neither an email nor a phone number.
    Reach,
    MoveDate,
    FromPostcode,
    ToPostcode,
}

/// `POST /api/dodo-lens/sessions/{id}/confirm`: the edit list and the contact. The edge
/// recomputes the inventory from the session's result; the browser's totals are never sent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct ConfirmRequest {
    pub edits: Vec<Edit>,
    pub contact: Contact,
}

/// The answer to a confirmation, and the `confirmed` event: the inventory as the edge computed
/// it. The contact is not echoed to browsers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Confirmed {
    /// 1 for the first confirmation; a confirmation after an edit counts up.
    pub revision: u32,
    #[cfg_attr(test, ts(type = "number"))]
    pub confirmed_at: Millis,
    pub inventory: Inventory,
}

/// `POST {ORIGIN_URL}/v1/handoffs/{id}` (signed): what the mover's sinks receive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(export, export_to = "../../web/src/generated/protocol.ts"))]
pub struct Handoff {
    pub session_id: String,
    pub revision: u32,
    #[cfg_attr(test, ts(type = "number"))]
    pub confirmed_at: Millis,
    pub locale: String,
    pub contact: Contact,
    pub inventory: Inventory,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_snake_case() {
        let e = ServerMessage::Event {
            seq: 7,
            event: SessionEvent::Progress {
                stage: Stage::Extracting,
                fraction: 0.5,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["event"]["type"], "progress");
        assert_eq!(v["event"]["stage"], "extracting");
    }

    #[test]
    fn origin_event_round_trips() {
        let e = OriginEvent::Failed {
            error: Failure {
                code: ErrorCode::UnsupportedMedia,
                message: "audio only".into(),
                retryable: false,
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains(r#""code":"unsupported_media""#), "{text}");
        assert_eq!(serde_json::from_str::<OriginEvent>(&text).unwrap(), e);
    }

    #[test]
    fn origin_reports_carry_the_attempt_beside_the_event() {
        let report = OriginReport {
            attempt: 3,
            event: OriginEvent::Heartbeat,
        };
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(text, r#"{"attempt":3,"event":{"type":"heartbeat"}}"#);
        assert_eq!(serde_json::from_str::<OriginReport>(&text).unwrap(), report);
        assert!(
            serde_json::from_str::<OriginReport>(r#"{"type":"heartbeat"}"#).is_err(),
            "an event without its attempt is refused"
        );
        assert!(!OriginEvent::Heartbeat.is_final());
    }

    #[test]
    fn client_retry_message_parses() {
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"retry"}"#).unwrap(),
            ClientMessage::Retry
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"rm -rf"}"#).is_err());
    }

    #[test]
    fn final_statuses() {
        assert!(Status::Completed.is_final());
        assert!(Status::Purged.is_final());
        assert!(!Status::Processing.is_final());
    }
}
