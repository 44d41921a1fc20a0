//! tus 1.0.0 inside the session object: creation (with upload), HEAD, PATCH and termination.
//!
//! Every rule (versions, lengths, offsets, metadata, checksums, limits) is decided by
//! `dodolens_shared::tus`; this module streams bytes into rows. A PATCH body is never held whole:
//! it is cut into rows of at most [`tus::ROW_BYTES`] as it arrives, and the session offset moves
//! only after every row is written (and the checksum, if any, matched). Rows past the committed
//! offset are the tail of an interrupted or refused request and are dropped before the next
//! write. A client that disconnects mid-request keeps what arrived, as tus recommends, so it
//! resumes from the HEAD offset; with a checksum nothing partial is kept.

use crate::{
    error::EdgeError,
    http,
    object::{now, Object},
    routes::UPLOADS,
    store::Record,
};
use dodolens_shared::{
    lifecycle::{self, Input},
    protocol::Status,
    tus::{self, Checksum, TusError},
};
use sha1::{Digest, Sha1};
use std::{cell::Cell, rc::Rc};
use worker::{
    js_sys::{self, ArrayBuffer, Function, Promise, Reflect, Uint8Array},
    wasm_bindgen::{JsCast, JsValue},
    wasm_bindgen_futures::JsFuture,
    web_sys::ReadableStream,
    Request, Response,
};

/// Clears the single-writer flag however the PATCH ends.
struct Writing<'a>(&'a Cell<bool>);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

fn header(req: &Request, name: &str) -> Result<Option<String>, EdgeError> {
    Ok(req.headers().get(name)?)
}

/// `Content-Length`, when the client declared one.
fn declared_length(req: &Request) -> Result<Option<u64>, EdgeError> {
    header(req, "Content-Length")?
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| EdgeError::Tus(TusError::BadRequest("Content-Length".into())))
        })
        .transpose()
}

/// `Upload-Offset` and `Upload-Expires` for a response.
fn progress_headers(record: &Record) -> Vec<(&'static str, String)> {
    let s = &record.session;
    let mut h = vec![("Upload-Offset", s.upload.offset.to_string())];
    h.extend(
        s.expires_at()
            .map(|at| ("Upload-Expires", tus::http_date(at))),
    );
    h
}

impl Object {
    /// POST: creates the session in this fresh object; with a body, also writes it
    /// (creation-with-upload).
    pub async fn create(self: &Rc<Self>, req: Request) -> Result<Response, EdgeError> {
        let config = self.config()?.clone();
        tus::check_version(header(&req, "Tus-Resumable")?.as_deref())?;
        let length = tus::parse_upload_length(
            header(&req, "Upload-Length")?.as_deref(),
            config.max_upload_bytes,
        )?;
        let meta = tus::parse_metadata(header(&req, "Upload-Metadata")?.as_deref())?;
        let with_body = declared_length(&req)?.is_some_and(|n| n > 0);
        let checksum = if with_body {
            tus::check_content_type(header(&req, "Content-Type")?.as_deref())?;
            Checksum::parse(header(&req, "Upload-Checksum")?.as_deref())?
        } else {
            None
        };
        if self.current()?.is_some() {
            return Err(EdgeError::BadRequest("session already exists".into()));
        }
        let id = self.state.id().to_string();
        let origin = req.url()?.origin().ascii_serialization();
        let callback_base = config
            .edge_public_url
            .clone()
            .unwrap_or_else(|| origin.clone());
        let session = lifecycle::Session::new(id.clone(), length, meta, now(), &config.limits);
        self.start(Record {
            session,
            callback_base,
        })
        .await?;

        let mut record = self.active()?;
        if with_body {
            // The upload exists whatever happens to its first bytes: the client learns the
            // accepted offset from Upload-Offset and continues with PATCH.
            match self.write_body(req, record.clone(), 0, checksum).await {
                Ok(written) => record = written,
                Err(e) => worker::console_warn!("creation-with-upload body refused: {e}"),
            }
        }
        let mut headers = vec![("Location", format!("{origin}{UPLOADS}/{id}"))];
        headers.extend(progress_headers(&record));
        Ok(http::empty(201, &headers))
    }

    pub fn head(&self, req: &Request) -> Result<Response, EdgeError> {
        tus::check_version(header(req, "Tus-Resumable")?.as_deref())?;
        let s = self.active()?.session;
        Ok(http::empty(
            200,
            &tus::head_headers(s.upload, &s.meta, s.expires_at()),
        ))
    }

    pub async fn patch(self: &Rc<Self>, req: Request) -> Result<Response, EdgeError> {
        tus::check_version(header(&req, "Tus-Resumable")?.as_deref())?;
        tus::check_content_type(header(&req, "Content-Type")?.as_deref())?;
        let claimed = tus::parse_upload_offset(header(&req, "Upload-Offset")?.as_deref())?;
        let checksum = Checksum::parse(header(&req, "Upload-Checksum")?.as_deref())?;
        let record = self.active()?;
        let record = self.write_body(req, record, claimed, checksum).await?;
        Ok(http::empty(204, &progress_headers(&record)))
    }

    /// DELETE (tus termination): purges at once; the session answers 410 afterwards.
    pub async fn terminate(self: &Rc<Self>, req: &Request) -> Result<Response, EdgeError> {
        tus::check_version(header(req, "Tus-Resumable")?.as_deref())?;
        self.active()?;
        self.apply(Input::Terminate).await?;
        Ok(http::empty(204, &[]))
    }

    /// Streams the body into rows from the committed offset, then advances the offset.
    async fn write_body(
        self: &Rc<Self>,
        req: Request,
        record: Record,
        claimed: u64,
        checksum: Option<Checksum>,
    ) -> Result<Record, EdgeError> {
        let max_request = self.config()?.max_request_bytes;
        let stored = record.session.upload.offset;
        let length = record.session.upload.length;
        let declared = declared_length(&req)?;
        tus::plan_patch(stored, length, claimed, declared.unwrap_or(0), max_request)?;
        if self.writing.replace(true) {
            return Err(EdgeError::Busy);
        }
        let _writing = Writing(&self.writing);

        // Rows past the committed offset are the tail of an earlier interrupted or refused write;
        // after a PATCH that committed (or cleaned up) there are none, and no statement is spent.
        let truncate = || -> Result<(), EdgeError> {
            self.store.truncate_rows(stored)?;
            self.tail_clean.set(true);
            Ok(())
        };
        if !self.tail_clean.get() {
            self.store.truncate_rows(stored)?;
        }
        // Until the offset moves, the rows about to be written are such a tail.
        self.tail_clean.set(false);
        let received = match self
            .receive(
                &req,
                stored,
                length,
                claimed,
                max_request,
                checksum.is_some(),
            )
            .await
        {
            Ok(received) => received,
            Err(e) => {
                truncate()?;
                return Err(e);
            }
        };
        if let Some(checksum) = checksum {
            let digest = received.digest.unwrap_or_default();
            if received.interrupted || digest.as_slice() != checksum.sha1 {
                truncate()?;
                return Err(TusError::ChecksumMismatch.into());
            }
        }
        let offset = tus::plan_patch(stored, length, claimed, received.bytes, max_request)?;

        // A DELETE or an expiry may have happened while the rows were being written.
        match self.current()? {
            Some(latest) if latest.session.status != Status::Purged => {
                if offset == stored {
                    self.tail_clean.set(true);
                    return Ok(latest);
                }
                let committed = self.apply(Input::Patched { offset }).await?;
                self.tail_clean.set(true);
                Ok(committed)
            }
            Some(_) => {
                self.store.delete_rows()?;
                Err(EdgeError::Gone)
            }
            None => Err(EdgeError::Gone),
        }
    }

    /// Reads the body into rows starting at `stored`; stops with an error as soon as the
    /// request is over a limit. Only whole rows and the final partial row are written, so after
    /// an interruption the committed bytes end at the last row written.
    async fn receive(
        &self,
        req: &Request,
        stored: u64,
        length: u64,
        claimed: u64,
        max_request: u64,
        hash: bool,
    ) -> Result<Received, EdgeError> {
        let mut received = Received::default();
        let Some(body) = req.inner().body() else {
            return Ok(received);
        };
        // Once the declared length is in, the body is over: waiting for the stream's end would
        // let the last row commit on its own, one more storage commit (and fsync) per PATCH
        // than writing it together with the new offset. The object drains the end afterwards.
        let declared = declared_length(req)?;
        let rows = RowReader::new(&body)?;
        let mut hasher = hash.then(Sha1::new);
        let mut buffer = Some(ArrayBuffer::new(tus::ROW_BYTES as u32));
        let mut filled = 0usize;
        let mut row_start = stored;
        let outcome: Result<(), EdgeError> = async {
            while let Some(current) = buffer.take() {
                let Ok(fill) = rows.fill(current, filled).await else {
                    // The client went away; the partial row read so far is lost with the read.
                    received.interrupted = true;
                    return Ok(());
                };
                let read = (row_start - stored) + (filled + fill.got) as u64;
                tus::plan_patch(stored, length, claimed, read, max_request)?;
                if let Some(h) = hasher.as_mut() {
                    let view = Uint8Array::new_with_byte_offset_and_length(
                        &fill.buffer,
                        filled as u32,
                        fill.got as u32,
                    );
                    h.update(view.to_vec());
                }
                filled += fill.got;
                if filled == tus::ROW_BYTES {
                    self.store
                        .write_row(row_start, &Uint8Array::new(&fill.buffer))?;
                    row_start += filled as u64;
                    filled = 0;
                }
                let done = fill.done || declared == Some(read);
                buffer = Some(fill.buffer);
                if done {
                    return Ok(());
                }
            }
            Ok(())
        }
        .await;
        // On a refusal the object drains the rest once the handler is done.
        rows.release();
        outcome?;
        if let Some(buffer) = buffer.filter(|_| filled > 0) {
            let tail = Uint8Array::new_with_byte_offset_and_length(&buffer, 0, filled as u32);
            self.store.write_row(row_start, &tail)?;
            row_start += filled as u64;
        }
        received.bytes = row_start - stored;
        received.digest = hasher.map(|h| h.finalize().to_vec());
        Ok(received)
    }
}

/// A BYOB reader on a request body that fills a whole row per call with workerd's
/// `readAtLeast`: one round trip per MiB instead of one per network piece (4 KiB), and the
/// bytes land directly in the buffer SQLite copies the row from.
struct RowReader {
    reader: JsValue,
    read_at_least: Function,
}

struct Fill {
    /// The row buffer, handed back by the read that took it over.
    buffer: ArrayBuffer,
    got: usize,
    done: bool,
}

impl RowReader {
    fn new(body: &ReadableStream) -> Result<RowReader, JsValue> {
        let options = js_sys::Object::new();
        Reflect::set(&options, &"mode".into(), &"byob".into())?;
        let get_reader: Function = Reflect::get(body, &"getReader".into())?.dyn_into()?;
        let reader = get_reader.call1(body, &options)?;
        let read_at_least = Reflect::get(&reader, &"readAtLeast".into())?.dyn_into()?;
        Ok(RowReader {
            reader,
            read_at_least,
        })
    }

    /// Reads into `buffer[filled..]` until it is full or the body ends.
    async fn fill(&self, buffer: ArrayBuffer, filled: usize) -> Result<Fill, JsValue> {
        let want = (tus::ROW_BYTES - filled) as u32;
        let view = Uint8Array::new_with_byte_offset_and_length(&buffer, filled as u32, want);
        let read = self
            .read_at_least
            .call2(&self.reader, &want.into(), &view)?;
        let step = JsFuture::from(Promise::from(read)).await?;
        let done = Reflect::get(&step, &"done".into())?
            .as_bool()
            .unwrap_or(true);
        let value: Uint8Array = Reflect::get(&step, &"value".into())?.dyn_into()?;
        Ok(Fill {
            buffer: value.buffer(),
            got: value.length() as usize,
            done,
        })
    }

    fn release(&self) {
        if let Ok(release) = Reflect::get(&self.reader, &"releaseLock".into()) {
            if let Ok(release) = release.dyn_into::<Function>() {
                let _ = release.call0(&self.reader);
            }
        }
    }
}

#[derive(Default)]
struct Received {
    bytes: u64,
    /// The client went away before the end of the body.
    interrupted: bool,
    digest: Option<Vec<u8>>,
}
