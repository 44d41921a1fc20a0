//! What the origin does with a range of a live recording (`POST /v1/jobs/{id}/stream`), given
//! the bytes it already holds: the rule of docs/PROTOCOL.md's "Forwarding while receiving".
//!
//! Ranges may be resent (a lost answer) or overlap (the edge resends from what it last heard),
//! so the answer depends only on where the range starts and ends against `held`: a range that
//! starts beyond it leaves a gap and is refused with `held` (the edge resends from there), one
//! that ends within it is a duplicate, and one that straddles it appends only what lies beyond.

/// The largest range the edge sends and the origin reads (`STREAM_RANGE_MAX`): the origin
/// refuses a longer one (413) before reading it.
pub const MAX_RANGE_BYTES: u64 = 8 * 1024 * 1024;

/// The decision for one range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// Append the range's bytes from `skip` on (`held - start`); then `held = start + len`.
    Append { skip: u64 },
    /// Already held entirely: nothing appended, answered with `held`.
    Duplicate,
    /// Starts past `held`: nothing appended, 409 with `held`.
    Gap,
}

/// The decision for the range `[start, start + len)` when `held` bytes are held.
pub fn decide(held: u64, start: u64, len: u64) -> Range {
    if start > held {
        Range::Gap
    } else if start.saturating_add(len) <= held {
        Range::Duplicate
    } else {
        Range::Append { skip: held - start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_protocol_cases() {
        assert_eq!(decide(0, 0, 10), Range::Append { skip: 0 });
        assert_eq!(decide(10, 10, 5), Range::Append { skip: 0 });
        assert_eq!(decide(10, 0, 10), Range::Duplicate);
        assert_eq!(decide(10, 4, 10), Range::Append { skip: 6 });
        assert_eq!(decide(10, 11, 5), Range::Gap);
        assert_eq!(decide(10, 10, 0), Range::Duplicate);
    }

    proptest! {
        /// Whatever ranges of one byte string arrive, in whatever order and overlap, what is
        /// held is always exactly its prefix, and it never shrinks.
        #[test]
        fn held_bytes_are_always_a_prefix(
            data in prop::collection::vec(any::<u8>(), 0..300),
            ranges in prop::collection::vec((0usize..300, 0usize..120), 0..40),
        ) {
            let mut held: Vec<u8> = Vec::new();
            for (start, len) in ranges {
                let start = start.min(data.len());
                let end = (start + len).min(data.len());
                let before = held.len();
                match decide(held.len() as u64, start as u64, (end - start) as u64) {
                    Range::Append { skip } => {
                        prop_assert!(start <= before && end > before);
                        held.extend_from_slice(&data[start + skip as usize..end]);
                        prop_assert_eq!(held.len(), end);
                    }
                    Range::Duplicate => prop_assert!(start <= before && end <= before),
                    Range::Gap => prop_assert!(start > before),
                }
                prop_assert!(held.len() >= before);
                prop_assert_eq!(&held[..], &data[..held.len()]);
            }
        }
    }
}
