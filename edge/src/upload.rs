//! tus 1.0.0 inside the session object: creation (with upload), HEAD, PATCH and termination.
//!
//! Every rule (versions, lengths, offsets, metadata, checksums, limits) is decided by
//! `dodolens_shared::tus`; this module streams bytes into rows. A PATCH body is never held whole:
//! it is cut into rows of at most [`tus::ROW_BYTES`] as it arrives, and the session offset moves
//! only after every row is written (and the checksum, if any, matched), in the same commit as the
//! video's running SHA-256 over exactly those rows. Rows past the committed offset are the tail
//! of an interrupted or refused request and are dropped before the next write. A client that
//! disconnects mid-request keeps what arrived, as tus recommends, so it resumes from the HEAD
//! offset; with a checksum nothing partial is kept.
//!
//! A deferred-length upload (`Upload-Defer-Length: 1`, a recording uploaded while it is filmed)
//! is held to `Tus-Max-Size` until a PATCH's `Upload-Length` declares its length. The
//! declaration is recorded once the PATCH is the writer, before its body is read, so a final
//! PATCH whose body fails still leaves the length known and a retry without the header finishes.
//!
//! One PATCH writes at a time. A newer one at the committed offset takes over, as tusd and
//! `@tus/server` do: a client whose connection went half-open resumes at once instead of
//! meeting 409 until the stale request dies. The older request stops reading (its body is
//! cancelled), drops its uncommitted rows and answers 409; the newer one starts once it has.

use crate::{
    error::EdgeError,
    http,
    object::{now, Object},
    routes::UPLOADS,
    store::Record,
};
use dodolens_shared::{
    capability,
    lifecycle::{self, Input, LifecycleError},
    protocol::UploadMeta,
    tus::{self, Checksum, TusError},
    video_digest::VideoDigest,
};
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use sha1::{Digest, Sha1};
use std::{cell::RefCell, rc::Rc};
use worker::{
    js_sys::{self, ArrayBuffer, Function, Promise, Reflect, Uint8Array},
    wasm_bindgen::{JsCast, JsValue},
    wasm_bindgen_futures::JsFuture,
    web_sys::ReadableStream,
    Request, Response,
};

/// The PATCH currently writing rows, as its successor sees it.
struct Writer {
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
}

/// Who writes the upload's rows: at most one request at a time, the newest.
#[derive(Default)]
pub struct Writers {
    current: RefCell<Option<Writer>>,
}

/// The writing request's side: told to stop when a newer one takes over; when dropped (however
/// the request ends), the successor may start.
struct Turn {
    stop: oneshot::Receiver<()>,
    _done: oneshot::Sender<()>,
}

impl Writers {
    /// Stops the current writer, waits until it has let go, and makes the caller the writer.
    /// Each newcomer registers before it waits, so takeovers queue in arrival order and only
    /// the newest survives.
    async fn take_over(&self) -> Result<Turn, EdgeError> {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let previous = self.current.replace(Some(Writer {
            stop: stop_tx,
            done: done_rx,
        }));
        let mut turn = Turn {
            stop: stop_rx,
            _done: done_tx,
        };
        if let Some(previous) = previous {
            let _ = previous.stop.send(());
            let _ = previous.done.await;
        }
        if turn.superseded() {
            return Err(EdgeError::Superseded);
        }
        Ok(turn)
    }
}

impl Turn {
    fn superseded(&mut self) -> bool {
        !matches!(self.stop.try_recv(), Ok(None))
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

/// The creation headers every POST is checked against, by the Worker before an object exists
/// and again by the object: version (412), length or `Upload-Defer-Length: 1` (400 empty,
/// malformed, both or neither; 413 too large) and metadata (400 over its bounds or malformed,
/// 415 not a video). The length is `None` when deferred.
pub fn creation_headers(
    req: &Request,
    max_upload: u64,
) -> Result<(Option<u64>, UploadMeta), EdgeError> {
    tus::check_version(header(req, "Tus-Resumable")?.as_deref())?;
    let length = tus::parse_creation_length(
        header(req, "Upload-Length")?.as_deref(),
        header(req, "Upload-Defer-Length")?.as_deref(),
        max_upload,
    )?;
    let meta = tus::parse_metadata(header(req, "Upload-Metadata")?.as_deref())?;
    Ok((length, meta))
}

/// A fresh capability token from the runtime's CSPRNG (`crypto.getRandomValues`).
fn random_token() -> Result<String, EdgeError> {
    let bytes = Uint8Array::new_with_length(capability::TOKEN_BYTES as u32);
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
    let fill: Function = Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
    fill.call1(&crypto, &bytes)?;
    let mut random = [0u8; capability::TOKEN_BYTES];
    bytes.copy_to(&mut random);
    Ok(capability::encode_token(&random))
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

/// Where a PATCH writes: the committed offset it starts from and the limits it must stay in.
#[derive(Clone, Copy)]
struct Plan {
    stored: u64,
    length: u64,
    claimed: u64,
    max_request: u64,
}

impl Plan {
    /// The offset after `read` bytes, or the refusal (409 offset, 413 size).
    fn check(&self, read: u64) -> Result<u64, TusError> {
        tus::plan_patch(
            self.stored,
            self.length,
            self.claimed,
            read,
            self.max_request,
        )
    }
}

impl Object {
    /// POST: creates the session in this fresh object; with a body, also writes it
    /// (creation-with-upload). The `Location` is relative and carries the session's handle, so
    /// the capability travels with the upload URL through any tus client and any proxy.
    pub async fn create(self: &Rc<Self>, req: Request) -> Result<Response, EdgeError> {
        let config = self.config()?.clone();
        let (length, meta) = creation_headers(&req, config.max_upload_bytes)?;
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
        let callback_base = config.edge_public_url.clone().unwrap_or_else(|| {
            req.url()
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default()
        });
        let token = random_token()?;
        let session = lifecycle::Session::new(id.clone(), length, meta, now(), &config.limits);
        self.start(Record {
            session,
            callback_base,
            token_digest: capability::token_digest(&token),
            digest: VideoDigest::new(),
            review: Default::default(),
        })
        .await?;

        let mut record = self.active()?;
        if with_body {
            // The upload exists whatever happens to its first bytes: the client learns the
            // accepted offset from Upload-Offset and continues with PATCH.
            match self.write_body(req, 0, checksum).await {
                Ok(written) => record = written,
                Err(e) => worker::console_warn!("creation-with-upload body refused: {e}"),
            }
        }
        let location = format!("{UPLOADS}/{}", capability::handle(&id, &token));
        let mut headers = vec![("Location", location)];
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
        let record = self.write_body(req, claimed, checksum).await?;
        Ok(http::empty(204, &progress_headers(&record)))
    }

    /// DELETE (tus termination): purges at once; the session answers 410 afterwards.
    pub async fn terminate(self: &Rc<Self>, req: &Request) -> Result<Response, EdgeError> {
        tus::check_version(header(req, "Tus-Resumable")?.as_deref())?;
        self.active()?;
        self.apply(Input::Terminate).await?;
        Ok(http::empty(204, &[]))
    }

    /// The plan of a PATCH claiming `claimed` (with `Upload-Length` header `declares`) against
    /// the committed offset now, and the length it declares.
    fn plan(&self, claimed: u64, declares: Option<&str>) -> Result<(Plan, Option<u64>), EdgeError> {
        let upload = self.active()?.session.upload;
        let config = self.config()?;
        let length = tus::plan_length(
            upload.length,
            declares,
            upload.offset,
            claimed,
            config.max_upload_bytes,
        )?;
        let plan = Plan {
            stored: upload.offset,
            length: length.limit,
            claimed,
            max_request: config.max_request_bytes,
        };
        Ok((plan, length.declare))
    }

    /// Takes over from any earlier writer, streams the body into rows from the committed offset,
    /// then advances the offset and the video digest together. The state machine knows a PATCH
    /// is being received from its start to its end (whatever the end), so the idle expiry does
    /// not purge a slow one mid-stream.
    async fn write_body(
        self: &Rc<Self>,
        req: Request,
        claimed: u64,
        checksum: Option<Checksum>,
    ) -> Result<Record, EdgeError> {
        let declared = declared_length(&req)?;
        let declares = header(&req, "Upload-Length")?;
        // A stale offset, a bad length or an oversized body is refused without disturbing the
        // current writer.
        self.plan(claimed, declares.as_deref())?
            .0
            .check(declared.unwrap_or(0))?;
        let mut turn = self.writers.take_over().await?;
        // The writer taken over from may have committed in the meantime.
        let (plan, declare) = self.plan(claimed, declares.as_deref())?;
        plan.check(declared.unwrap_or(0))?;
        if let Some(length) = declare {
            self.apply(Input::LengthDeclared { length }).await?;
        }
        self.apply(Input::PatchStarted).await?;
        let (offset, digest, written) = match self.write_rows(&req, &mut turn, plan, checksum).await
        {
            Ok((offset, digest)) => (offset, Some(digest), Ok(())),
            Err(e) => (plan.stored, None, Err(e)),
        };
        let ended = self
            .apply_with(Input::Patched { offset }, move |r| {
                if let Some(digest) = digest {
                    r.digest = digest;
                }
            })
            .await;
        match ended {
            Ok(committed) => written.map(|()| {
                self.tail_clean.set(true);
                committed
            }),
            // A DELETE, an expiry or the lifetime purged the session while the rows were
            // being written: they go too.
            Err(EdgeError::Lifecycle(LifecycleError::Purged) | EdgeError::Gone) => {
                self.store.delete_rows()?;
                Err(EdgeError::Gone)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the body as rows after the committed offset; returns the offset they reach and
    /// the digest over them. A refused, broken or superseded body leaves no row past it.
    async fn write_rows(
        &self,
        req: &Request,
        turn: &mut Turn,
        plan: Plan,
        checksum: Option<Checksum>,
    ) -> Result<(u64, VideoDigest), EdgeError> {
        let digest = self.active()?.digest;
        // Rows past the committed offset are the tail of an earlier interrupted or refused write;
        // after a PATCH that committed (or cleaned up) there are none, and no statement is spent.
        let truncate = || -> Result<(), EdgeError> {
            self.store.truncate_rows(plan.stored)?;
            self.tail_clean.set(true);
            Ok(())
        };
        if !self.tail_clean.get() {
            self.store.truncate_rows(plan.stored)?;
        }
        // Until the offset moves, the rows about to be written are such a tail.
        self.tail_clean.set(false);
        let received = match self
            .receive(req, turn, plan, digest, checksum.is_some())
            .await
        {
            Ok(received) => received,
            Err(e) => {
                truncate()?;
                return Err(e);
            }
        };
        if let Some(checksum) = checksum {
            let sha1 = received.sha1.clone().unwrap_or_default();
            if received.interrupted || sha1.as_slice() != checksum.sha1 {
                truncate()?;
                return Err(TusError::ChecksumMismatch.into());
            }
        }
        if turn.superseded() {
            truncate()?;
            return Err(EdgeError::Superseded);
        }
        Ok((plan.check(received.bytes)?, received.digest))
    }

    /// Writes a row and adds it to the video digest: the digest covers exactly the stored rows.
    fn store_row(
        &self,
        off: u64,
        row: &Uint8Array,
        digest: &mut VideoDigest,
    ) -> Result<(), EdgeError> {
        self.store.write_row(off, row)?;
        digest.update(&row.to_vec());
        Ok(())
    }

    /// Reads the body into rows starting at the committed offset; stops with an error as soon
    /// as the request is over a limit or a newer request takes over. Only whole rows and the
    /// final partial row are written, so after an interruption the committed bytes end at the
    /// last row written.
    async fn receive(
        &self,
        req: &Request,
        turn: &mut Turn,
        plan: Plan,
        digest: VideoDigest,
        hash: bool,
    ) -> Result<Received, EdgeError> {
        let mut received = Received {
            digest,
            ..Received::default()
        };
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
        let mut row_start = plan.stored;
        let outcome: Result<(), EdgeError> = async {
            while let Some(current) = buffer.take() {
                let fill = rows.fill(current, filled);
                futures_util::pin_mut!(fill);
                let fill = match select(fill, &mut turn.stop).await {
                    Either::Left((Ok(fill), _)) => fill,
                    Either::Left((Err(_), _)) => {
                        // The client went away; the partial row read so far is lost with the read.
                        received.interrupted = true;
                        return Ok(());
                    }
                    Either::Right(_) => {
                        rows.cancel();
                        return Err(EdgeError::Superseded);
                    }
                };
                let read = (row_start - plan.stored) + (filled + fill.got) as u64;
                plan.check(read)?;
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
                    let row = Uint8Array::new(&fill.buffer);
                    self.store_row(row_start, &row, &mut received.digest)?;
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
        // On a refusal the object releases the rest once the handler is done.
        rows.release();
        outcome?;
        if let Some(buffer) = buffer.filter(|_| filled > 0) {
            let tail = Uint8Array::new_with_byte_offset_and_length(&buffer, 0, filled as u32);
            self.store_row(row_start, &tail, &mut received.digest)?;
            row_start += filled as u64;
        }
        received.bytes = row_start - plan.stored;
        received.sha1 = hasher.map(|h| h.finalize().to_vec());
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

    fn call(&self, method: &str) {
        if let Ok(f) = Reflect::get(&self.reader, &method.into()) {
            if let Ok(f) = f.dyn_into::<Function>() {
                let _ = f.call0(&self.reader);
            }
        }
    }

    fn release(&self) {
        self.call("releaseLock");
    }

    /// Stops the body: nothing more of it is read (a superseded PATCH).
    fn cancel(&self) {
        self.call("cancel");
    }
}

#[derive(Default)]
struct Received {
    bytes: u64,
    /// The client went away before the end of the body.
    interrupted: bool,
    sha1: Option<Vec<u8>>,
    /// The video digest extended by the rows written.
    digest: VideoDigest,
}
