//! The Durable Object's SQLite storage: the session record, the upload's chunk rows and the event
//! log that long-poll clients catch up from.
//!
//! Chunks are rows keyed by their byte offset, at most [`tus::ROW_BYTES`] each, so a PATCH of any
//! size is written without holding it in memory and the forward streams them back in order. A
//! row is looked up by the offset where the previous one ended (the first one by the row that
//! holds the offset a resumed forward or a range starts at), so a gap can never be streamed as
//! if it were data. The tables are created only when a session is, so probing an
//! unknown id writes nothing.

use dodolens_shared::{handoff::Review, lifecycle, video_digest::VideoDigest};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use worker::{js_sys::Uint8Array, wasm_bindgen::JsValue, Result, SqlStorage, SqlStorageValue};

/// What the object persists besides chunks and events.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Record {
    pub session: lifecycle::Session,
    /// Base URL the origin calls back (`EDGE_PUBLIC_URL`, or the creating request's origin),
    /// kept because forwards also start from alarms, which have no request.
    pub callback_base: String,
    /// SHA-256 of the session's capability token (`shared::capability`); never the token.
    pub token_digest: String,
    /// SHA-256 state over the committed bytes, saved with the offset (`shared::video_digest`).
    #[serde(default)]
    pub digest: VideoDigest,
    /// The customer's confirmation (contact and confirmed inventory), until retention.
    #[serde(default)]
    pub review: Review,
}

/// Row counts for residue checks (dev-only introspection).
#[derive(Serialize, Debug, Default)]
pub struct Counts {
    pub has_session: bool,
    pub chunk_rows: u64,
    pub chunk_bytes: u64,
    pub event_rows: u64,
}

#[derive(Clone)]
pub struct Store {
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

#[derive(Deserialize)]
struct PlacedRow {
    off: u64,
    data: ByteBuf,
}

#[derive(Deserialize)]
struct TextRow {
    body: String,
}

#[derive(Deserialize)]
struct ChunkTotals {
    n: u64,
    bytes: u64,
}

fn int(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(v as i64)
}

impl Store {
    pub fn new(sql: SqlStorage) -> Store {
        Store { sql }
    }

    fn has_tables(&self) -> Result<bool> {
        let rows: Vec<Count> = self
            .sql
            .exec(
                "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'session'",
                None,
            )?
            .to_array()?;
        Ok(rows.first().is_some_and(|c| c.n > 0))
    }

    /// Creates the tables and stores the first record.
    pub fn create(&self, record: &Record) -> Result<()> {
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS session (k INTEGER PRIMARY KEY CHECK (k = 1), body TEXT NOT NULL)",
            None,
        )?;
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS chunks (off INTEGER PRIMARY KEY, data BLOB NOT NULL)",
            None,
        )?;
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)",
            None,
        )?;
        self.save(record)
    }

    pub fn load(&self) -> Result<Option<Record>> {
        if !self.has_tables()? {
            return Ok(None);
        }
        let rows: Vec<TextRow> = self
            .sql
            .exec("SELECT body FROM session WHERE k = 1", None)?
            .to_array()?;
        rows.first()
            .map(|r| serde_json::from_str(&r.body).map_err(worker::Error::from))
            .transpose()
    }

    pub fn save(&self, record: &Record) -> Result<()> {
        let body = serde_json::to_string(record)?;
        self.sql.exec(
            "INSERT OR REPLACE INTO session (k, body) VALUES (1, ?)",
            vec![body.into()],
        )?;
        Ok(())
    }

    /// Stores `data` (SQLite copies it, so the caller may reuse the buffer).
    pub fn write_row(&self, off: u64, data: &Uint8Array) -> Result<()> {
        self.sql.exec_raw(
            "INSERT OR REPLACE INTO chunks (off, data) VALUES (?, ?)",
            vec![JsValue::from(off as f64), data.into()],
        )?;
        Ok(())
    }

    /// The stored bytes from `off` to the end of the row that holds them (the whole row when
    /// `off` is where it starts); `None` when no row holds the byte at `off`.
    pub fn row_from(&self, off: u64) -> Result<Option<Vec<u8>>> {
        let rows: Vec<PlacedRow> = self
            .sql
            .exec(
                "SELECT off, data FROM chunks WHERE off <= ? ORDER BY off DESC LIMIT 1",
                vec![int(off)],
            )?
            .to_array()?;
        Ok(rows.into_iter().next().and_then(|row| {
            let skip = usize::try_from(off - row.off).ok()?;
            let mut data = row.data.into_vec();
            (skip < data.len()).then(|| {
                data.drain(..skip);
                data
            })
        }))
    }

    /// Drops rows at or after `from`: the uncommitted tail of an interrupted or refused PATCH.
    pub fn truncate_rows(&self, from: u64) -> Result<()> {
        self.sql
            .exec("DELETE FROM chunks WHERE off >= ?", vec![int(from)])?;
        Ok(())
    }

    pub fn delete_rows(&self) -> Result<()> {
        self.sql.exec("DELETE FROM chunks", None)?;
        Ok(())
    }

    pub fn append_event(&self, seq: u64, body: &str) -> Result<()> {
        self.sql.exec(
            "INSERT OR REPLACE INTO events (seq, body) VALUES (?, ?)",
            vec![int(seq), body.into()],
        )?;
        Ok(())
    }

    /// Serialized `ServerMessage::Event`s with a sequence number above `seq`, in order.
    pub fn events_after(&self, seq: u64) -> Result<Vec<String>> {
        let rows: Vec<TextRow> = self
            .sql
            .exec(
                "SELECT body FROM events WHERE seq > ? ORDER BY seq",
                vec![int(seq)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.body).collect())
    }

    pub fn delete_events(&self) -> Result<()> {
        self.sql.exec("DELETE FROM events", None)?;
        Ok(())
    }

    pub fn counts(&self) -> Result<Counts> {
        if !self.has_tables()? {
            return Ok(Counts::default());
        }
        let chunks: Vec<ChunkTotals> = self
            .sql
            .exec(
                "SELECT count(*) AS n, coalesce(sum(length(data)), 0) AS bytes FROM chunks",
                None,
            )?
            .to_array()?;
        let events: Vec<Count> = self
            .sql
            .exec("SELECT count(*) AS n FROM events", None)?
            .to_array()?;
        let sessions: Vec<Count> = self
            .sql
            .exec("SELECT count(*) AS n FROM session", None)?
            .to_array()?;
        Ok(Counts {
            has_session: sessions.first().is_some_and(|c| c.n > 0),
            chunk_rows: chunks.first().map_or(0, |c| c.n),
            chunk_bytes: chunks.first().map_or(0, |c| c.bytes),
            event_rows: events.first().map_or(0, |c| c.n),
        })
    }
}
