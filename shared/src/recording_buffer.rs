//! What the page keeps of a recording while it is uploaded, so that a reload finishes it.
//!
//! A recording is uploaded as it is filmed (a deferred-length tus upload). MediaRecorder dies
//! with the page, so a reload ends the recording; what was filmed up to there can still become
//! an inventory if the page kept the bytes the server has not acknowledged. The page stores
//! each recorder chunk (IndexedDB) *before* handing it to the upload, so the server never holds
//! a byte the page did not keep, and releases chunks as the server acknowledges them. After a
//! reload it asks the server's offset (tus HEAD) and sends the kept bytes from there, then
//! declares the length: the end of the last chunk.
//!
//! The rules, kept apart from the storage: which chunks an acknowledgement releases
//! ([`released`]), whether the kept chunks can finish the upload from a server's offset
//! ([`resume`]), and which parts of which chunks make up a range to send ([`pieces`]). The last
//! chunk is never released, even acknowledged: it is how the page knows where the recording
//! ends when everything else was acknowledged.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One kept chunk: bytes `[offset, offset + len)` of the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub offset: u64,
    pub len: u64,
}

impl Span {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// The offsets of the chunks the server's acknowledgement of `acknowledged` bytes releases:
/// every chunk that ends at or before it, except the last one. `spans` are in offset order.
pub fn released(spans: &[Span], acknowledged: u64) -> Vec<u64> {
    let Some((_, earlier)) = spans.split_last() else {
        return Vec::new();
    };
    earlier
        .iter()
        .filter(|span| span.end() <= acknowledged)
        .map(|span| span.offset)
        .collect()
}

/// How an upload cut by a reload is finished: send `[from, length)`, then declare `length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Resume {
    pub from: u64,
    pub length: u64,
}

/// Why the kept chunks cannot finish the upload (the page then deletes the session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// Nothing was kept (storage refused, or the browser cleared it).
    #[error("nothing of the recording was kept")]
    Empty,
    /// The kept bytes start after the server's offset: the bytes in between are lost.
    #[error("the kept bytes start at {kept_from}, after the server's offset {server}")]
    Released { kept_from: u64, server: u64 },
    /// The server holds more than was kept (should not happen: chunks are kept before they are sent).
    #[error("the server holds {server} bytes, more than the {kept_to} kept")]
    Short { kept_to: u64, server: u64 },
    /// A chunk between the server's offset and the end is missing (a store that failed).
    #[error("the kept bytes miss a chunk at {at}")]
    Gap { at: u64 },
}

/// Whether the kept chunks (in offset order) can finish an upload the server holds `server`
/// bytes of: every byte from `server` to the end of the last chunk must be kept, in one piece.
pub fn resume(spans: &[Span], server: u64) -> Result<Resume, Refusal> {
    let (first, last) = match (spans.first(), spans.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Err(Refusal::Empty),
    };
    if server < first.offset {
        return Err(Refusal::Released {
            kept_from: first.offset,
            server,
        });
    }
    if server > last.end() {
        return Err(Refusal::Short {
            kept_to: last.end(),
            server,
        });
    }
    // From the server's offset on, each chunk must start where the bytes so far end.
    let mut at = server;
    for span in spans.iter().filter(|span| span.end() > server) {
        let joins = if at == server {
            span.offset <= at
        } else {
            span.offset == at
        };
        if !joins {
            return Err(Refusal::Gap { at });
        }
        at = span.end();
    }
    Ok(Resume {
        from: server,
        length: last.end(),
    })
}

/// One part of a kept chunk: `take` bytes from `skip` into the chunk stored at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub offset: u64,
    pub skip: u64,
    pub take: u64,
}

/// The parts of the kept chunks (in offset order, contiguous as [`resume`] checked) that make
/// up `[start, end)`, cut at the end of the last chunk; in order, none empty.
pub fn pieces(spans: &[Span], start: u64, end: u64) -> Vec<Piece> {
    spans
        .iter()
        .filter(|span| span.end() > start && span.offset < end)
        .map(|span| {
            let from = start.max(span.offset);
            let to = end.min(span.end());
            Piece {
                offset: span.offset,
                skip: from - span.offset,
                take: to - from,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spans(lens: &[u64]) -> Vec<Span> {
        let mut offset = 0;
        lens.iter()
            .map(|&len| {
                let span = Span { offset, len };
                offset += len;
                span
            })
            .collect()
    }

    fn bytes_of(data: &[u8], spans: &[Span], pieces: &[Piece]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|piece| {
                let span = spans.iter().find(|s| s.offset == piece.offset).unwrap();
                let chunk = &data[span.offset as usize..span.end() as usize];
                chunk[piece.skip as usize..(piece.skip + piece.take) as usize].to_vec()
            })
            .collect()
    }

    #[test]
    fn an_acknowledgement_releases_the_chunks_it_covers_but_the_last() {
        let kept = spans(&[10, 10, 10]);
        assert_eq!(released(&kept, 0), Vec::<u64>::new());
        assert_eq!(released(&kept, 15), vec![0]);
        assert_eq!(released(&kept, 20), vec![0, 10]);
        assert_eq!(
            released(&kept, 30),
            vec![0, 10],
            "the last chunk tells the length"
        );
        assert_eq!(released(&[], 30), Vec::<u64>::new());
    }

    #[test]
    fn the_resume_cases() {
        let kept = spans(&[10, 10, 10]);
        assert_eq!(
            resume(&kept, 12),
            Ok(Resume {
                from: 12,
                length: 30
            })
        );
        assert_eq!(
            resume(&kept, 30),
            Ok(Resume {
                from: 30,
                length: 30
            })
        );
        assert_eq!(resume(&[], 0), Err(Refusal::Empty));
        assert_eq!(
            resume(&kept[1..], 5),
            Err(Refusal::Released {
                kept_from: 10,
                server: 5
            })
        );
        assert_eq!(
            resume(&kept, 31),
            Err(Refusal::Short {
                kept_to: 30,
                server: 31
            })
        );
        let holed = [kept[0], kept[2]];
        assert_eq!(resume(&holed, 5), Err(Refusal::Gap { at: 10 }));
        assert_eq!(
            resume(&holed, 25),
            Ok(Resume {
                from: 25,
                length: 30
            }),
            "a hole behind the server's offset does not matter"
        );
    }

    #[test]
    fn pieces_cut_the_straddling_chunks() {
        let kept = spans(&[10, 10, 10]);
        assert_eq!(
            pieces(&kept, 15, 25),
            vec![
                Piece {
                    offset: 10,
                    skip: 5,
                    take: 5
                },
                Piece {
                    offset: 20,
                    skip: 0,
                    take: 5
                }
            ]
        );
        assert_eq!(
            pieces(&kept, 25, 1000),
            vec![Piece {
                offset: 20,
                skip: 5,
                take: 5
            }]
        );
        assert_eq!(pieces(&kept, 30, 40), Vec::<Piece>::new());
    }

    proptest! {
        /// However the recording is cut into chunks and whatever the server acknowledges on the
        /// way (never more than it holds, never more than was kept), the chunks left after the
        /// releases finish the upload from the server's offset: the same length as recorded,
        /// and the pieces sent are exactly the recording's bytes from there.
        #[test]
        fn what_is_kept_always_finishes_the_upload(
            data in prop::collection::vec(any::<u8>(), 1..400),
            cuts in prop::collection::vec(1u64..60, 1..30),
            acks in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
            server_pick in any::<prop::sample::Index>(),
            chunk in 1u64..100,
        ) {
            let mut lens = Vec::new();
            let mut left = data.len() as u64;
            for cut in cuts.into_iter().chain(std::iter::once(u64::MAX)) {
                if left == 0 { break; }
                let len = cut.min(left);
                lens.push(len);
                left -= len;
            }
            let all = spans(&lens);
            let total = data.len() as u64;
            let mut kept = Vec::new();
            let mut acknowledged = 0u64;
            for (i, span) in all.iter().enumerate() {
                kept.push(*span);
                // The server holds at most what was kept so far; acknowledgements only grow.
                if let Some(pick) = acks.get(i) {
                    acknowledged = acknowledged.max(pick.index(span.end() as usize + 1) as u64);
                }
                let gone = released(&kept, acknowledged);
                prop_assert!(gone.iter().all(|o| all.iter().any(|s| s.offset == *o && s.end() <= acknowledged)));
                kept.retain(|s| !gone.contains(&s.offset));
                prop_assert_eq!(kept.last(), Some(span), "the last chunk stays");
            }
            // The server holds at least what it acknowledged, and at most everything.
            let server = acknowledged + server_pick.index((total - acknowledged) as usize + 1) as u64;
            let plan = resume(&kept, server);
            prop_assert_eq!(plan, Ok(Resume { from: server, length: total }));
            let mut sent = Vec::new();
            let mut at = server;
            while at < total {
                let part = pieces(&kept, at, at + chunk);
                prop_assert!(part.iter().all(|p| p.take > 0));
                sent.extend(bytes_of(&data, &kept, &part));
                at = (at + chunk).min(total);
            }
            prop_assert_eq!(&sent[..], &data[server as usize..]);
        }

        /// A chunk the server still needs, once dropped, is always noticed: the resume is refused
        /// rather than sending a recording with bytes missing.
        #[test]
        fn a_missing_needed_chunk_is_refused(
            lens in prop::collection::vec(1u64..50, 2..20),
            drop_pick in any::<prop::sample::Index>(),
            server_pick in any::<prop::sample::Index>(),
        ) {
            let all = spans(&lens);
            let total = all.last().unwrap().end();
            let dropped = drop_pick.index(all.len() - 1); // not the last one
            let server = server_pick.index(all[dropped].end() as usize) as u64; // needs the dropped chunk
            let kept: Vec<Span> = all.iter().enumerate().filter(|(i, _)| *i != dropped).map(|(_, s)| *s).collect();
            prop_assert!(resume(&kept, server).is_err());
            prop_assert_eq!(resume(&all, server), Ok(Resume { from: server, length: total }));
        }
    }
}
