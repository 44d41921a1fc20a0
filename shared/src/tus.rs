//! tus 1.0.0 rules (https://tus.io/protocols/resumable-upload), as pure functions.
//!
//! Any standard tus client (tus-js-client, Uppy, tuspy) must work against the edge unmodified, and
//! the edge is a wasm Worker that is awkward to test. So every header rule and every status code
//! is decided here, from plain strings and numbers, and the edge only reads headers, calls these
//! functions and writes what they return. We speak the core protocol plus `creation`,
//! `creation-with-upload`, `creation-defer-length`, `expiration`, `termination` and `checksum`
//! (sha1 only). A deferred length is what lets the page upload a recording while it is being
//! filmed: the length is declared by a later PATCH once the camera stops, and until then the
//! bytes received are held to `Tus-Max-Size` (tusd once let deferred uploads bypass its
//! maximum, tusd #1032). Concatenation is refused: a video inventory does not need it.

use crate::protocol::{Millis, UploadMeta, UploadProgress};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use thiserror::Error;

pub const TUS_VERSION: &str = "1.0.0";
pub const TUS_EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,expiration,termination,checksum";
pub const TUS_CHECKSUM_ALGORITHMS: &str = "sha1";
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// Rows in the Durable Object's SQLite hold at most this many bytes.
pub const ROW_BYTES: usize = 1024 * 1024;
/// Narration language when the client does not declare one (the product is French first).
pub const DEFAULT_LOCALE: &str = "fr";
/// Longest `Upload-Metadata` header accepted at creation (400 above): ours needs three short
/// pairs; the bound keeps a hostile header out of storage, snapshots and the forward.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Longest `filename` (decoded UTF-8 bytes), the common filesystem limit.
pub const MAX_FILENAME_BYTES: usize = 255;
/// How long a browser may cache a preflight answer, in seconds.
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 86_400;

/// Request headers a tus client may send cross-origin (tus-js-client and Uppy send these).
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Tus-Resumable, Upload-Length, \
     Upload-Metadata, Upload-Offset, Upload-Checksum, Upload-Defer-Length, Upload-Concat, \
     X-HTTP-Method-Override, X-Requested-With, X-Turnstile-Token";
const ALLOW_METHODS: &str = "POST, GET, HEAD, PATCH, DELETE, OPTIONS";
/// Response headers a browser script may read; without this a browser client cannot resume.
const EXPOSE_HEADERS: &str = "Location, Upload-Offset, Upload-Length, Upload-Defer-Length, \
     Upload-Expires, Upload-Metadata, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, \
     Tus-Checksum-Algorithm";

/// Clients disagree on padding (the spec says "Base64" without more), so both forms decode.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Every way a tus request can be refused; [`TusError::status`] is the HTTP code.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum TusError {
    #[error("Tus-Resumable header missing or unsupported (this server speaks {TUS_VERSION})")]
    UnsupportedVersion,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("Upload-Offset {got} does not match the current offset {expected}")]
    OffsetMismatch { expected: u64, got: u64 },
    #[error("upload exceeds the maximum size of {max} bytes")]
    TooLarge { max: u64 },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("unknown upload")]
    NotFound,
    #[error("upload expired or purged")]
    Gone,
    #[error("checksum mismatch")]
    ChecksumMismatch,
}

impl TusError {
    /// 412, 400, 409, 413, 415, 404, 410 or 460.
    pub fn status(&self) -> u16 {
        match self {
            TusError::UnsupportedVersion => 412,
            TusError::BadRequest(_) => 400,
            TusError::OffsetMismatch { .. } => 409,
            TusError::TooLarge { .. } => 413,
            TusError::UnsupportedMediaType(_) => 415,
            TusError::NotFound => 404,
            TusError::Gone => 410,
            // Defined by the checksum extension, not by HTTP.
            TusError::ChecksumMismatch => 460,
        }
    }
}

fn bad(message: impl Into<String>) -> TusError {
    TusError::BadRequest(message.into())
}

/// `Tus-Resumable` must be exactly 1.0.0 on every request but OPTIONS (412 otherwise).
pub fn check_version(header: Option<&str>) -> Result<(), TusError> {
    match header {
        Some(v) if v.trim() == TUS_VERSION => Ok(()),
        _ => Err(TusError::UnsupportedVersion),
    }
}

/// A decimal integer as the spec writes it: ASCII digits only (no sign, no exponent).
fn digits<'a>(name: &str, header: Option<&'a str>) -> Result<&'a str, TusError> {
    let value = header
        .ok_or_else(|| bad(format!("{name} header is required")))?
        .trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("{name} must be a non-negative integer")));
    }
    Ok(value)
}

/// An `Upload-Length` value: a positive integer ≤ `max` (400 / 413). An empty upload is
/// refused (400): it can never be a video, and would otherwise sit until it expired.
pub fn parse_upload_length(header: Option<&str>, max: u64) -> Result<u64, TusError> {
    if header.is_none() {
        return Err(bad("Upload-Length or Upload-Defer-Length: 1 is required"));
    }
    // All digits but too big for u64 is certainly over the limit.
    match digits("Upload-Length", header)?.parse::<u64>() {
        Ok(0) => Err(bad(
            "Upload-Length must be at least 1 byte: an empty file is not a video",
        )),
        Ok(length) if length <= max => Ok(length),
        _ => Err(TusError::TooLarge { max }),
    }
}

/// The length a creation declares: `Some` from `Upload-Length` ([`parse_upload_length`]), or
/// `None` with `Upload-Defer-Length: 1` (the length comes with a later PATCH). Neither, both, or
/// any other `Upload-Defer-Length` value is 400, as the creation-defer-length extension says.
pub fn parse_creation_length(
    length: Option<&str>,
    defer: Option<&str>,
    max: u64,
) -> Result<Option<u64>, TusError> {
    match (length, defer.map(str::trim)) {
        (None, Some("1")) => Ok(None),
        (None, Some(_)) => Err(bad("Upload-Defer-Length must be 1")),
        (Some(_), Some(_)) => Err(bad(
            "send either Upload-Length or Upload-Defer-Length, not both",
        )),
        (length, None) => parse_upload_length(length, max).map(Some),
    }
}

/// What a PATCH does to the upload's length, decided before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchLength {
    /// The offset the body must not pass: the length when known, else `Tus-Max-Size`.
    pub limit: u64,
    /// The length this PATCH declares (a deferred upload's `Upload-Length`), to record before
    /// its body is read: a final PATCH that then fails still leaves the length known, so a
    /// client retrying without the header (tus-js-client's deferred-length retry bug,
    /// tus-js-client#794) can finish the upload.
    pub declare: Option<u64>,
}

/// The length side of a PATCH at `claimed` on an upload at `stored` whose length is `known`
/// (`None` = deferred), with the PATCH's `Upload-Length` header.
///
/// The offset is checked first (409), as in [`plan_patch`]. A deferred upload's header declares
/// the length: a positive integer ≤ `max_upload` (400 / 413), not below `stored` (400). Once
/// known, the same value again is accepted (a client retrying its final PATCH sends it again)
/// and any other is 400: the length cannot change.
pub fn plan_length(
    known: Option<u64>,
    header: Option<&str>,
    stored: u64,
    claimed: u64,
    max_upload: u64,
) -> Result<PatchLength, TusError> {
    if claimed != stored {
        return Err(TusError::OffsetMismatch {
            expected: stored,
            got: claimed,
        });
    }
    let declared = header
        .map(|h| parse_upload_length(Some(h), max_upload))
        .transpose()?;
    let declare = match (known, declared) {
        (_, None) => None,
        (Some(known), Some(declared)) if known == declared => None,
        (Some(known), Some(declared)) => {
            return Err(bad(format!(
                "Upload-Length {declared} cannot change the upload's length {known}"
            )))
        }
        (None, Some(declared)) if declared < stored => {
            return Err(bad(format!(
                "Upload-Length {declared} is less than the {stored} bytes already received"
            )))
        }
        (None, declared) => declared,
    };
    Ok(PatchLength {
        limit: known.or(declare).unwrap_or(max_upload),
        declare,
    })
}

/// `Upload-Offset` on PATCH: a non-negative integer (400).
pub fn parse_upload_offset(header: Option<&str>) -> Result<u64, TusError> {
    digits("Upload-Offset", header)?
        .parse()
        .map_err(|_| bad("Upload-Offset is out of range"))
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs. Requires `filetype` = `video/*`
/// (415 otherwise); `filename` optional; `locale` defaults to `fr`; unknown keys ignored.
///
/// Keys must be unique and values valid base64 of UTF-8 (400); a key may come without a value.
/// The header is at most [`MAX_METADATA_BYTES`] and the filename at most [`MAX_FILENAME_BYTES`]
/// (400), checked before anything is decoded further.
pub fn parse_metadata(header: Option<&str>) -> Result<UploadMeta, TusError> {
    if header.is_some_and(|h| h.len() > MAX_METADATA_BYTES) {
        return Err(bad(format!(
            "Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes"
        )));
    }
    let mut filename = None;
    let mut filetype = None;
    let mut locale = None;
    let mut seen: Vec<&str> = Vec::new();
    for pair in header.unwrap_or("").split(',').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let mut parts = pair.split(' ').filter(|p| !p.is_empty());
        let key = parts.next().unwrap_or_default();
        let encoded = parts.next();
        if parts.next().is_some() {
            return Err(bad(format!(
                "Upload-Metadata pair `{key}` has more than one value"
            )));
        }
        if seen.contains(&key) {
            return Err(bad(format!("Upload-Metadata key `{key}` is repeated")));
        }
        seen.push(key);
        let value = match encoded {
            None => String::new(),
            Some(encoded) => {
                let bytes = BASE64
                    .decode(encoded)
                    .map_err(|_| bad(format!("Upload-Metadata `{key}` is not valid base64")))?;
                String::from_utf8(bytes)
                    .map_err(|_| bad(format!("Upload-Metadata `{key}` is not UTF-8")))?
            }
        };
        if key == "filename" && value.len() > MAX_FILENAME_BYTES {
            return Err(bad(format!(
                "Upload-Metadata `filename` is longer than {MAX_FILENAME_BYTES} bytes"
            )));
        }
        match key {
            "filename" => filename = Some(value).filter(|v| !v.is_empty()),
            "filetype" => filetype = Some(value),
            "locale" => locale = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
    }

    let filetype = filetype.unwrap_or_default().trim().to_ascii_lowercase();
    let is_video = filetype
        .strip_prefix("video/")
        .is_some_and(|subtype| !subtype.is_empty() && !subtype.contains(['/', ' ', ',']));
    if !is_video {
        let shown = if filetype.is_empty() {
            "no filetype"
        } else {
            filetype.as_str()
        };
        return Err(TusError::UnsupportedMediaType(format!(
            "{shown} (a video/* file is required)"
        )));
    }

    let locale = locale.unwrap_or_else(|| DEFAULT_LOCALE.to_owned());
    let locale_ok = locale.len() <= 35
        && locale.split('-').all(|t| !t.is_empty() && t.len() <= 8)
        && locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !locale_ok {
        return Err(bad("Upload-Metadata `locale` is not a language tag"));
    }

    Ok(UploadMeta {
        filename,
        filetype,
        locale,
    })
}

/// The `Upload-Metadata` a HEAD response echoes, in the same `key base64` form.
pub fn encode_metadata(meta: &UploadMeta) -> String {
    let mut pairs = Vec::with_capacity(3);
    if let Some(name) = &meta.filename {
        pairs.push(format!("filename {}", BASE64.encode(name)));
    }
    pairs.push(format!("filetype {}", BASE64.encode(&meta.filetype)));
    pairs.push(format!("locale {}", BASE64.encode(&meta.locale)));
    pairs.join(",")
}

/// PATCH bodies (and creation-with-upload bodies) must be `application/offset+octet-stream` (415).
pub fn check_content_type(header: Option<&str>) -> Result<(), TusError> {
    let media_type = header.unwrap_or("").split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case(OFFSET_OCTET_STREAM) {
        Ok(())
    } else {
        let shown = if media_type.is_empty() {
            "no Content-Type"
        } else {
            media_type
        };
        Err(TusError::UnsupportedMediaType(format!(
            "{shown} (expected {OFFSET_OCTET_STREAM})"
        )))
    }
}

/// A parsed `Upload-Checksum` (only `sha1` is supported; others are 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub sha1: [u8; 20],
}

impl Checksum {
    /// `None` when the header is absent. The value is `<algorithm> <base64 digest>`.
    pub fn parse(header: Option<&str>) -> Result<Option<Checksum>, TusError> {
        let Some(value) = header else { return Ok(None) };
        let (algorithm, digest) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("Upload-Checksum must be `<algorithm> <base64 digest>`"))?;
        if !algorithm.eq_ignore_ascii_case("sha1") {
            return Err(bad(format!(
                "Upload-Checksum algorithm `{algorithm}` is not supported (use {TUS_CHECKSUM_ALGORITHMS})"
            )));
        }
        let bytes = BASE64
            .decode(digest.trim())
            .map_err(|_| bad("Upload-Checksum digest is not valid base64"))?;
        let sha1 = bytes
            .try_into()
            .map_err(|_| bad("Upload-Checksum sha1 digest must be 20 bytes"))?;
        Ok(Some(Checksum { sha1 }))
    }

    /// 460 when `body` does not hash to the declared value.
    pub fn verify(&self, body: &[u8]) -> Result<(), TusError> {
        if Sha1::digest(body).as_slice() == self.sha1 {
            Ok(())
        } else {
            Err(TusError::ChecksumMismatch)
        }
    }
}

/// Decides a PATCH: the claimed offset must equal the stored one (409), the request must fit
/// in `max_request` bytes (413) and not pass `length` (413). Returns the new offset.
///
/// An empty body at the right offset is valid and returns the same offset (clients use it to
/// probe); checks run in that order so a stale client learns about the offset first.
pub fn plan_patch(
    stored_offset: u64,
    length: u64,
    claimed_offset: u64,
    body_len: u64,
    max_request: u64,
) -> Result<u64, TusError> {
    if claimed_offset != stored_offset {
        return Err(TusError::OffsetMismatch {
            expected: stored_offset,
            got: claimed_offset,
        });
    }
    if body_len > max_request {
        return Err(TusError::TooLarge { max: max_request });
    }
    match stored_offset.checked_add(body_len) {
        Some(end) if end <= length => Ok(end),
        _ => Err(TusError::TooLarge { max: length }),
    }
}

/// Byte ranges of `body_len` split into rows of at most [`ROW_BYTES`].
pub fn row_ranges(body_len: usize) -> Vec<std::ops::Range<usize>> {
    (0..body_len)
        .step_by(ROW_BYTES)
        .map(|start| start..body_len.min(start + ROW_BYTES))
        .collect()
}

/// Session ids are Durable Object unique ids: exactly 64 lowercase hex digits. Anything else is
/// 404 without touching storage.
pub fn is_valid_session_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `Upload-Expires` value: an RFC 9110 HTTP-date, e.g. `Wed, 25 Jun 2025 16:00:00 GMT`.
pub fn http_date(at: Millis) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = at / 1000;
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, restricted to dates on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Headers for an OPTIONS response (204): Tus-Version, Tus-Extension, Tus-Max-Size,
/// Tus-Checksum-Algorithm, plus CORS preflight headers.
///
/// Complete on its own: it already carries the [`cors_headers`], so do not add them again
/// (a doubled `Access-Control-Allow-Origin` makes browsers reject the response).
pub fn options_headers(max_size: u64) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("Tus-Resumable", TUS_VERSION.to_owned()),
        ("Tus-Version", TUS_VERSION.to_owned()),
        ("Tus-Extension", TUS_EXTENSIONS.to_owned()),
        ("Tus-Max-Size", max_size.to_string()),
        ("Tus-Checksum-Algorithm", TUS_CHECKSUM_ALGORITHMS.to_owned()),
        ("Access-Control-Allow-Methods", ALLOW_METHODS.to_owned()),
        ("Access-Control-Allow-Headers", ALLOW_HEADERS.to_owned()),
        ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE_SECS.to_string()),
    ];
    headers.extend(cors_headers());
    headers
}

/// CORS headers every tus response carries so a browser can read Location, Upload-Offset,
/// Upload-Length, Upload-Expires and Tus-* (Access-Control-Expose-Headers).
///
/// Any origin may upload: the upload URL itself is the capability, there are no cookies.
pub fn cors_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Access-Control-Allow-Origin", "*".to_owned()),
        ("Access-Control-Expose-Headers", EXPOSE_HEADERS.to_owned()),
    ]
}

/// Headers of a HEAD answer (200) besides CORS: where the upload stands, what was declared
/// (`Upload-Length`, or `Upload-Defer-Length: 1` while the length is deferred), and when it
/// expires. `Cache-Control: no-store` because a cached offset would make a client resume
/// at the wrong place.
pub fn head_headers(
    upload: UploadProgress,
    meta: &UploadMeta,
    expires_at: Option<Millis>,
) -> Vec<(&'static str, String)> {
    let length = match upload.length {
        Some(length) => ("Upload-Length", length.to_string()),
        None => ("Upload-Defer-Length", "1".to_owned()),
    };
    let mut headers = vec![
        ("Tus-Resumable", TUS_VERSION.to_owned()),
        ("Upload-Offset", upload.offset.to_string()),
        length,
        ("Upload-Metadata", encode_metadata(meta)),
        ("Cache-Control", "no-store".to_owned()),
    ];
    headers.extend(expires_at.map(|at| ("Upload-Expires", http_date(at))));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_error_has_its_status() {
        let cases = [
            (TusError::UnsupportedVersion, 412),
            (TusError::BadRequest("x".into()), 400),
            (
                TusError::OffsetMismatch {
                    expected: 1,
                    got: 2,
                },
                409,
            ),
            (TusError::TooLarge { max: 1 }, 413),
            (TusError::UnsupportedMediaType("x".into()), 415),
            (TusError::NotFound, 404),
            (TusError::Gone, 410),
            (TusError::ChecksumMismatch, 460),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error:?}");
        }
    }

    #[test]
    fn version_must_be_exactly_1_0_0() {
        assert_eq!(check_version(Some("1.0.0")), Ok(()));
        assert_eq!(check_version(Some(" 1.0.0 ")), Ok(()));
        for bad in [
            None,
            Some(""),
            Some("0.2.2"),
            Some("1.0"),
            Some("1.0.0,0.2.2"),
        ] {
            assert_eq!(check_version(bad).unwrap_err().status(), 412, "{bad:?}");
        }
    }

    #[test]
    fn upload_length_within_the_limit() {
        assert_eq!(parse_upload_length(Some("1"), 100), Ok(1));
        assert_eq!(parse_upload_length(Some("100"), 100), Ok(100));
        assert_eq!(
            parse_upload_length(Some("101"), 100),
            Err(TusError::TooLarge { max: 100 })
        );
        assert_eq!(
            parse_upload_length(Some("99999999999999999999999"), 100),
            Err(TusError::TooLarge { max: 100 })
        );
    }

    #[test]
    fn upload_length_malformed_or_deferred_is_400() {
        for bad in [
            None,
            Some(""),
            Some("-1"),
            Some("+5"),
            Some("1e3"),
            Some("12a"),
            Some("1 2"),
        ] {
            assert_eq!(
                parse_upload_length(bad, u64::MAX).unwrap_err().status(),
                400,
                "{bad:?}"
            );
        }
        let missing = parse_upload_length(None, 10).unwrap_err().to_string();
        assert!(missing.contains("Upload-Defer-Length"), "{missing}");
    }

    #[test]
    fn an_empty_upload_is_400() {
        let empty = parse_upload_length(Some("0"), 100).unwrap_err();
        assert_eq!(empty.status(), 400);
        assert!(empty.to_string().contains("at least 1 byte"), "{empty}");
    }

    #[test]
    fn metadata_and_filename_are_bounded() {
        let video = b64("video/mp4");
        let name = |n: usize| format!("filetype {video},filename {}", b64(&"é".repeat(n / 2)));
        assert!(parse_metadata(Some(&name(MAX_FILENAME_BYTES - 1))).is_ok());
        let long = parse_metadata(Some(&name(MAX_FILENAME_BYTES + 1))).unwrap_err();
        assert_eq!(long.status(), 400);
        assert!(long.to_string().contains("longer than 255 bytes"), "{long}");

        let padded = format!("filetype {video},x {}", "A".repeat(MAX_METADATA_BYTES));
        let huge = parse_metadata(Some(&padded)).unwrap_err();
        assert_eq!(huge.status(), 400);
        assert!(
            huge.to_string().contains("longer than 4096 bytes"),
            "{huge}"
        );
        let fits = format!("filetype {video},x {}", "A".repeat(MAX_METADATA_BYTES - 40));
        assert!(parse_metadata(Some(&fits)).is_ok());
    }

    #[test]
    fn upload_offset_is_a_plain_integer() {
        assert_eq!(parse_upload_offset(Some("0")), Ok(0));
        assert_eq!(parse_upload_offset(Some("1048576")), Ok(1_048_576));
        for bad in [
            None,
            Some(""),
            Some("-1"),
            Some("0x10"),
            Some("99999999999999999999"),
        ] {
            assert_eq!(
                parse_upload_offset(bad).unwrap_err().status(),
                400,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn metadata_as_tus_js_client_sends_it() {
        let header = format!(
            "filename {},filetype {},locale {}",
            b64("cuisine été.mp4"),
            b64("video/mp4"),
            b64("fr-FR")
        );
        let meta = parse_metadata(Some(&header)).unwrap();
        assert_eq!(meta.filename.as_deref(), Some("cuisine été.mp4"));
        assert_eq!(meta.filetype, "video/mp4");
        assert_eq!(meta.locale, "fr-FR");
    }

    #[test]
    fn metadata_defaults_and_tolerances() {
        let header = format!(
            " filetype {} , is_confidential,relativePath {},filename ",
            b64("VIDEO/QuickTime").trim_end_matches('='),
            b64("null")
        );
        let meta = parse_metadata(Some(&header)).unwrap();
        assert_eq!(meta.filetype, "video/quicktime");
        assert_eq!(meta.locale, "fr");
        assert_eq!(meta.filename, None);
    }

    #[test]
    fn metadata_requires_a_video_filetype() {
        for filetype in [
            "image/png",
            "audio/mp4",
            "video/",
            "application/vnd.apple.mpegurl",
        ] {
            let header = format!("filetype {}", b64(filetype));
            assert_eq!(
                parse_metadata(Some(&header)).unwrap_err().status(),
                415,
                "{filetype}"
            );
        }
        assert_eq!(parse_metadata(None).unwrap_err().status(), 415);
        let no_type = format!("filename {}", b64("a.mp4"));
        assert_eq!(parse_metadata(Some(&no_type)).unwrap_err().status(), 415);
    }

    #[test]
    fn metadata_malformed_is_400() {
        let video = b64("video/mp4");
        let cases = [
            "filetype not*base64".to_owned(),
            format!("filetype {video},filetype {video}"),
            format!("filetype {video} extra"),
            format!("filetype {video},locale {}", b64("fr; DROP")),
            format!(
                "filetype {video},filename {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe])
            ),
        ];
        for header in cases {
            assert_eq!(
                parse_metadata(Some(&header)).unwrap_err().status(),
                400,
                "{header}"
            );
        }
    }

    #[test]
    fn metadata_round_trips_through_encode() {
        let meta = UploadMeta {
            filename: Some("salon, chambre.mov".into()),
            filetype: "video/quicktime".into(),
            locale: "en".into(),
        };
        assert_eq!(parse_metadata(Some(&encode_metadata(&meta))).unwrap(), meta);
    }

    #[test]
    fn content_type_must_be_offset_octet_stream() {
        assert_eq!(check_content_type(Some(OFFSET_OCTET_STREAM)), Ok(()));
        assert_eq!(
            check_content_type(Some("Application/Offset+Octet-Stream; x=1")),
            Ok(())
        );
        for bad in [
            None,
            Some(""),
            Some("application/octet-stream"),
            Some("video/mp4"),
        ] {
            assert_eq!(
                check_content_type(bad).unwrap_err().status(),
                415,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn checksum_sha1_verifies_the_body() {
        // sha1("hello") from the tus checksum extension's style of header.
        let checksum = Checksum::parse(Some("sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00="))
            .unwrap()
            .unwrap();
        assert_eq!(checksum.verify(b"hello"), Ok(()));
        assert_eq!(checksum.verify(b"hellp").unwrap_err().status(), 460);
        assert_eq!(Checksum::parse(None), Ok(None));
    }

    #[test]
    fn checksum_other_algorithms_or_bad_digests_are_400() {
        for bad in [
            "md5 XUFAKrxLKna5cZ2REBfFkg==",
            "sha256 LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            "sha1",
            "sha1 !!!!",
            "sha1 aGVsbG8=",
        ] {
            assert_eq!(
                Checksum::parse(Some(bad)).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn patch_appends_at_the_stored_offset() {
        assert_eq!(plan_patch(0, 10, 0, 4, 8), Ok(4));
        assert_eq!(plan_patch(4, 10, 4, 6, 8), Ok(10));
        assert_eq!(plan_patch(10, 10, 10, 0, 8), Ok(10));
    }

    #[test]
    fn patch_at_the_wrong_offset_is_409() {
        assert_eq!(
            plan_patch(4, 10, 0, 4, 8),
            Err(TusError::OffsetMismatch {
                expected: 4,
                got: 0
            })
        );
        // The offset is checked first, even when the body is also too large.
        assert_eq!(plan_patch(4, 10, 6, 100, 8).unwrap_err().status(), 409);
    }

    #[test]
    fn patch_too_big_or_past_the_length_is_413() {
        assert_eq!(
            plan_patch(0, 100, 0, 9, 8),
            Err(TusError::TooLarge { max: 8 })
        );
        assert_eq!(
            plan_patch(6, 10, 6, 5, 8),
            Err(TusError::TooLarge { max: 10 })
        );
        assert_eq!(
            plan_patch(u64::MAX - 1, u64::MAX, u64::MAX - 1, 5, 8)
                .unwrap_err()
                .status(),
            413
        );
    }

    #[test]
    fn rows_cover_the_body_in_mebibytes() {
        assert!(row_ranges(0).is_empty());
        assert_eq!(row_ranges(5), vec![0..5]);
        assert_eq!(row_ranges(ROW_BYTES), vec![0..ROW_BYTES]);
        assert_eq!(
            row_ranges(2 * ROW_BYTES + 1),
            vec![
                0..ROW_BYTES,
                ROW_BYTES..2 * ROW_BYTES,
                2 * ROW_BYTES..2 * ROW_BYTES + 1
            ]
        );
    }

    #[test]
    fn session_ids_are_64_lowercase_hex() {
        let id = "0123456789abcdef".repeat(4);
        assert!(is_valid_session_id(&id));
        assert!(!is_valid_session_id(&id.to_uppercase()));
        assert!(!is_valid_session_id(&id[1..]));
        assert!(!is_valid_session_id(&format!("{id}0")));
        assert!(!is_valid_session_id(&format!("{}g", &id[1..])));
        assert!(!is_valid_session_id("../../etc/passwd"));
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(1_750_867_200_000),
            "Wed, 25 Jun 2025 16:00:00 GMT"
        );
        assert_eq!(http_date(951_782_400_999), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            http_date(4_107_542_399_000),
            "Sun, 28 Feb 2100 23:59:59 GMT"
        );
        assert_eq!(
            http_date(4_107_542_400_000),
            "Mon, 01 Mar 2100 00:00:00 GMT"
        );
    }

    #[test]
    fn options_advertise_tus_and_answer_the_preflight() {
        let headers = options_headers(524_288_000);
        assert_eq!(header(&headers, "Tus-Version"), Some("1.0.0"));
        assert_eq!(header(&headers, "Tus-Max-Size"), Some("524288000"));
        assert_eq!(header(&headers, "Tus-Checksum-Algorithm"), Some("sha1"));
        let extensions = header(&headers, "Tus-Extension").unwrap();
        for ext in [
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "expiration",
            "termination",
            "checksum",
        ] {
            assert!(extensions.split(',').any(|e| e == ext), "{ext}");
        }
        let allowed = header(&headers, "Access-Control-Allow-Headers")
            .unwrap()
            .to_lowercase();
        for name in [
            "tus-resumable",
            "upload-offset",
            "upload-checksum",
            "content-type",
        ] {
            assert!(allowed.contains(name), "{name}");
        }
        assert!(header(&headers, "Access-Control-Allow-Methods")
            .unwrap()
            .contains("PATCH"));
        assert_eq!(
            headers
                .iter()
                .filter(|(n, _)| *n == "Access-Control-Allow-Origin")
                .count(),
            1
        );
    }

    #[test]
    fn cors_exposes_what_a_resuming_browser_reads() {
        let headers = cors_headers();
        assert_eq!(header(&headers, "Access-Control-Allow-Origin"), Some("*"));
        let exposed = header(&headers, "Access-Control-Expose-Headers").unwrap();
        for name in [
            "Location",
            "Upload-Offset",
            "Upload-Length",
            "Upload-Defer-Length",
            "Upload-Expires",
            "Tus-Resumable",
        ] {
            assert!(exposed.split(", ").any(|e| e == name), "{name}");
        }
    }

    #[test]
    fn head_reports_offset_metadata_and_expiry() {
        let meta = UploadMeta {
            filename: None,
            filetype: "video/mp4".into(),
            locale: "fr".into(),
        };
        let headers = head_headers(
            UploadProgress {
                offset: 3,
                length: Some(9),
            },
            &meta,
            Some(0),
        );
        assert_eq!(header(&headers, "Upload-Offset"), Some("3"));
        assert_eq!(header(&headers, "Upload-Length"), Some("9"));
        assert_eq!(header(&headers, "Upload-Defer-Length"), None);
        assert_eq!(header(&headers, "Cache-Control"), Some("no-store"));
        assert_eq!(
            header(&headers, "Upload-Expires"),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
        assert_eq!(
            parse_metadata(header(&headers, "Upload-Metadata")).unwrap(),
            meta
        );
        assert_eq!(
            header(
                &head_headers(Default::default(), &meta, None),
                "Upload-Expires"
            ),
            None
        );
    }

    #[test]
    fn head_of_a_deferred_upload_says_so_until_the_length_is_known() {
        let meta = UploadMeta {
            filename: None,
            filetype: "video/webm".into(),
            locale: "fr".into(),
        };
        let deferred = UploadProgress {
            offset: 5,
            length: None,
        };
        let headers = head_headers(deferred, &meta, None);
        assert_eq!(header(&headers, "Upload-Defer-Length"), Some("1"));
        assert_eq!(header(&headers, "Upload-Length"), None);
        assert_eq!(header(&headers, "Upload-Offset"), Some("5"));
    }

    #[test]
    fn creation_declares_a_length_or_defers_it() {
        assert_eq!(parse_creation_length(Some("10"), None, 100), Ok(Some(10)));
        assert_eq!(parse_creation_length(None, Some("1"), 100), Ok(None));
        assert_eq!(parse_creation_length(None, Some(" 1 "), 100), Ok(None));
        assert_eq!(
            parse_creation_length(Some("101"), None, 100),
            Err(TusError::TooLarge { max: 100 })
        );
        for (length, defer) in [
            (None, None),
            (None, Some("0")),
            (None, Some("2")),
            (None, Some("")),
            (None, Some("true")),
            (Some("10"), Some("1")),
            (Some("0"), None),
        ] {
            assert_eq!(
                parse_creation_length(length, defer, 100)
                    .unwrap_err()
                    .status(),
                400,
                "{length:?} {defer:?}"
            );
        }
        let both = parse_creation_length(Some("10"), Some("1"), 100).unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
    }

    #[test]
    fn a_deferred_upload_is_held_to_the_max_size_until_a_patch_declares_its_length() {
        let limit = |declare| PatchLength {
            limit: 100,
            declare,
        };
        // No header: the bytes may go up to Tus-Max-Size.
        assert_eq!(plan_length(None, None, 40, 40, 100), Ok(limit(None)));
        // The final PATCH declares it, a zero-byte one at the offset included.
        assert_eq!(
            plan_length(None, Some("70"), 40, 40, 100),
            Ok(PatchLength {
                limit: 70,
                declare: Some(70)
            })
        );
        assert_eq!(
            plan_length(None, Some("40"), 40, 40, 100),
            Ok(PatchLength {
                limit: 40,
                declare: Some(40)
            })
        );
        // Over the maximum, fewer bytes than received, empty or malformed.
        assert_eq!(
            plan_length(None, Some("101"), 40, 40, 100),
            Err(TusError::TooLarge { max: 100 })
        );
        let short = plan_length(None, Some("39"), 40, 40, 100).unwrap_err();
        assert_eq!(short.status(), 400);
        assert!(short.to_string().contains("already received"), "{short}");
        for bad in ["0", "", "-1", "7x"] {
            assert_eq!(
                plan_length(None, Some(bad), 0, 0, 100)
                    .unwrap_err()
                    .status(),
                400,
                "{bad}"
            );
        }
        // The offset is checked first.
        assert_eq!(
            plan_length(None, Some("39"), 40, 0, 100)
                .unwrap_err()
                .status(),
            409
        );
    }

    #[test]
    fn a_known_length_never_changes() {
        let known = PatchLength {
            limit: 70,
            declare: None,
        };
        assert_eq!(plan_length(Some(70), None, 10, 10, 100), Ok(known));
        // A retried final PATCH sends the same value again: nothing to declare.
        assert_eq!(plan_length(Some(70), Some("70"), 70, 70, 100), Ok(known));
        let changed = plan_length(Some(70), Some("80"), 10, 10, 100).unwrap_err();
        assert_eq!(changed.status(), 400);
        assert!(changed.to_string().contains("cannot change"), "{changed}");
    }

    /// The inverse of `civil_from_days`, written independently to check it.
    fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
        let days_in = |y: u64, m: u64| match m {
            2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut days = 0;
        for year in 1970..y {
            days += (1..=12).map(|m| days_in(year, m)).sum::<u64>();
        }
        days + (1..m).map(|m| days_in(y, m)).sum::<u64>() + d - 1
    }

    proptest! {
        #[test]
        fn tus_offsets_never_go_backwards(
            length in 0u64..10_000,
            max_request in 1u64..4_000,
            patches in prop::collection::vec((any::<bool>(), 0u64..5_000, 0u64..10_000), 0..40),
        ) {
            let mut offset = 0;
            for (honest, body_len, wrong_offset) in patches {
                let claimed = if honest { offset } else { wrong_offset };
                match plan_patch(offset, length, claimed, body_len, max_request) {
                    Ok(next) => {
                        prop_assert!(next >= offset && next <= length);
                        prop_assert_eq!(next, offset + body_len);
                        offset = next;
                    }
                    Err(TusError::OffsetMismatch { expected, got }) => {
                        prop_assert_eq!(expected, offset);
                        prop_assert_ne!(got, offset);
                    }
                    Err(e) => {
                        prop_assert_eq!(e.status(), 413);
                        prop_assert!(body_len > max_request || offset + body_len > length);
                    }
                }
            }
        }

        /// A deferred upload driven by any PATCHes (honest or not, with or without
        /// `Upload-Length`): the bytes never pass the maximum, the length is set at most once,
        /// never below the bytes received nor above the maximum, and once set the offset never
        /// passes it.
        #[test]
        fn a_deferred_length_is_declared_once_and_bounds_the_bytes(
            max_upload in 1u64..5_000,
            patches in prop::collection::vec(
                (any::<bool>(), 0u64..2_000, prop::option::of(0u64..6_000)),
                0..40,
            ),
        ) {
            let (mut offset, mut known) = (0u64, None);
            for (honest, body_len, header) in patches {
                let claimed = if honest { offset } else { offset + 1 };
                let header = header.map(|n| n.to_string());
                let Ok(length) = plan_length(known, header.as_deref(), offset, claimed, max_upload)
                else {
                    continue;
                };
                prop_assert!(length.limit <= max_upload);
                if let Some(declared) = length.declare {
                    prop_assert!(known.is_none() && declared >= offset);
                    known = Some(declared);
                }
                prop_assert_eq!(length.limit, known.unwrap_or(max_upload));
                if let Ok(next) = plan_patch(offset, length.limit, claimed, body_len, u64::MAX) {
                    offset = next;
                }
                prop_assert!(offset <= known.unwrap_or(max_upload));
            }
        }

        #[test]
        fn rows_partition_the_body(len in 0usize..(5 * ROW_BYTES)) {
            let rows = row_ranges(len);
            let mut next = 0;
            for row in &rows {
                prop_assert_eq!(row.start, next);
                prop_assert!(!row.is_empty() && row.len() <= ROW_BYTES);
                next = row.end;
            }
            prop_assert_eq!(next, len);
        }

        #[test]
        fn http_date_matches_the_calendar(secs in 0u64..253_402_300_800) {
            let (y, m, d) = civil_from_days(secs / 86_400);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            if secs < 4_200_000_000 {
                prop_assert_eq!(days_from_civil(y, m, d), secs / 86_400);
            }
            prop_assert_eq!(http_date(secs * 1000).len(), 29);
        }
    }
}
