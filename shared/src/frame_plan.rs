//! Which frames a whole-file extraction needs beside its keyframes-only pass.
//!
//! The origin decodes keyframes only and keeps the first one in each of `count` equal time
//! buckets. It reads the keyframes' times from the container first (packet flags, nothing
//! decoded), so this plan is known before that pass ends and its seeks run beside it.
//!
//! Phones that write few keyframes leave buckets empty: an iPhone's HEVC MOV has one every
//! 7.5 s, so 4 of 12 buckets of a 60 s video get none. Filling a bucket costs decoding from the
//! keyframe before it — 2.5 s of video for each of those four, three times the whole keyframes
//! pass together — and buys little: keyframes [`MAX_KEYFRAME_GAP_S`] apart already show the
//! walk-through every few steps. So an empty bucket is filled by a seek to its start (the point
//! closest to the keyframe before it, so the cheapest) when that seek is cheap (at most
//! [`CHEAP_SEEK_S`] of video to decode) or when the keyframes around the bucket are further
//! apart than that (or than a [`MIN_VIEWS`]th of a short video). When keyframes are so rare
//! that the seeks together would decode more than half the video (MediaRecorder WebM: one
//! keyframe at the start), one full decode is cheaper than the seeks, which each start again
//! from a keyframe.

/// Keyframes at most this far apart cover the video without costly seeks (the iPhone's 7.5 s).
pub const MAX_KEYFRAME_GAP_S: f64 = 8.0;

/// A seek decoding at most this much video is always worth it (a fraction of the keyframes pass).
pub const CHEAP_SEEK_S: f64 = 1.0;

/// A short video still gets about this many views: its gaps may be at most this share of it.
pub const MIN_VIEWS: f64 = 4.0;

/// The widest gap between keyframes that needs no costly seek in a video of `duration_s`.
pub fn tolerated_gap(duration_s: f64) -> f64 {
    MAX_KEYFRAME_GAP_S.min(duration_s / MIN_VIEWS)
}

/// At most this share of the video may be decoded by seeks before a full decode is cheaper.
pub const MAX_SEEK_SHARE: f64 = 0.5;

#[derive(Clone, Debug, PartialEq)]
pub enum FramePlan {
    /// Every bucket has its keyframe.
    Complete,
    /// Seek to these times (seconds, ascending): the starts of the empty buckets.
    Seek(Vec<f64>),
    /// Decode every frame with the same buckets.
    DecodeAll,
}

/// The length of one of `count` buckets over `duration_s` (never zero).
pub fn bucket_seconds(duration_s: f64, count: u32) -> f64 {
    (duration_s / count.max(1) as f64).max(0.001)
}

/// The bucket a time falls in, as ffmpeg's `floor(t / bucket)`, within `0..count`.
fn bucket_of(t: f64, bucket: f64, count: u32) -> u32 {
    ((t / bucket).floor().max(0.0) as u32).min(count.max(1) - 1)
}

/// Decides from the video's keyframe times (seconds, any order).
pub fn plan(keyframes: &[f64], duration_s: f64, count: u32) -> FramePlan {
    let bucket = bucket_seconds(duration_s, count);
    let filled: Vec<u32> = keyframes
        .iter()
        .map(|&t| bucket_of(t, bucket, count))
        .collect();
    let starts: Vec<f64> = (0..count)
        .filter(|b| !filled.contains(b))
        .map(|b| b as f64 * bucket)
        .filter(|&start| needs_seek(keyframes, start, start + bucket, duration_s))
        .collect();
    if starts.is_empty() {
        return FramePlan::Complete;
    }
    // Each seek decodes from the keyframe before its time.
    let decoded: f64 = starts
        .iter()
        .map(|&start| start - keyframe_before(keyframes, start))
        .sum();
    if decoded > duration_s * MAX_SEEK_SHARE {
        FramePlan::DecodeAll
    } else {
        FramePlan::Seek(starts)
    }
}

/// The last keyframe at or before `t`, or the video's start.
fn keyframe_before(keyframes: &[f64], t: f64) -> f64 {
    keyframes
        .iter()
        .copied()
        .filter(|&k| k <= t)
        .fold(0.0, f64::max)
}

/// Whether the empty bucket `from..to` is worth a seek (see the module docs).
fn needs_seek(keyframes: &[f64], from: f64, to: f64, duration_s: f64) -> bool {
    from - keyframe_before(keyframes, from) <= CHEAP_SEEK_S
        || gap_around(keyframes, from, to, duration_s) > tolerated_gap(duration_s)
}

/// How far apart the keyframes around an empty bucket `from..to` are (the video's ends count).
fn gap_around(keyframes: &[f64], from: f64, to: f64, duration_s: f64) -> f64 {
    let next = keyframes
        .iter()
        .copied()
        .filter(|&k| k >= to)
        .fold(duration_s, f64::min);
    next - keyframe_before(keyframes, from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_iphone_mov_needs_only_its_keyframes() {
        let keyframes: Vec<f64> = (0..8).map(|k| k as f64 * 7.5).collect();
        assert_eq!(plan(&keyframes, 60.0, 12), FramePlan::Complete);
    }

    #[test]
    fn keyframes_further_apart_seek_to_the_empty_buckets_between_them() {
        let keyframes: Vec<f64> = (0..7).map(|k| k as f64 * 9.0).collect();
        // 10 and 55 are a second after a keyframe (cheap); 20, 30, 40 lie in 9 s gaps.
        assert_eq!(
            plan(&keyframes, 60.0, 12),
            FramePlan::Seek(vec![10.0, 20.0, 30.0, 40.0, 55.0])
        );
    }

    #[test]
    fn a_short_video_gets_its_views_however_few_its_keyframes() {
        let keyframes: Vec<f64> = (0..4).map(|k| k as f64 * 7.5).collect();
        assert_eq!(plan(&keyframes, 30.0, 12), FramePlan::Complete);
        assert_eq!(plan(&[0.0, 7.5], 15.0, 12), FramePlan::DecodeAll);
    }

    #[test]
    fn one_keyframe_decodes_everything() {
        assert_eq!(plan(&[0.0], 6.0, 12), FramePlan::DecodeAll);
        assert_eq!(plan(&[], 60.0, 12), FramePlan::DecodeAll);
    }

    #[test]
    fn a_keyframe_per_bucket_is_complete() {
        let times: Vec<f64> = (0..12).map(|b| b as f64 * 10.0 + 0.5).collect();
        assert_eq!(plan(&times, 120.0, 12), FramePlan::Complete);
    }

    fn keyframes() -> impl Strategy<Value = (Vec<f64>, f64, u32)> {
        (1.0f64..900.0, 1u32..=64).prop_flat_map(|(duration, count)| {
            (
                prop::collection::vec(0.0..duration, 0..80),
                Just(duration),
                Just(count),
            )
        })
    }

    /// The buckets that hold at least one keyframe.
    fn filled(keyframes: &[f64], duration: f64, count: u32) -> Vec<u32> {
        let bucket = bucket_seconds(duration, count);
        let mut filled: Vec<u32> = keyframes
            .iter()
            .map(|&t| bucket_of(t, bucket, count))
            .collect();
        filled.sort_unstable();
        filled.dedup();
        filled
    }

    proptest! {
        #[test]
        fn seeks_fill_the_empty_buckets_worth_a_seek((keyframes, duration, count) in keyframes()) {
            let filled = filled(&keyframes, duration, count);
            let bucket = bucket_seconds(duration, count);
            let worth = |b: u32| {
                let (from, to) = (b as f64 * bucket, (b + 1) as f64 * bucket);
                let before = keyframes.iter().copied().filter(|&k| k <= from).fold(0.0, f64::max);
                let after = keyframes.iter().copied().filter(|&k| k >= to).fold(duration, f64::min);
                from - before <= CHEAP_SEEK_S || after - before > tolerated_gap(duration)
            };
            let needed: Vec<u32> = (0..count).filter(|b| !filled.contains(b) && worth(*b)).collect();
            match plan(&keyframes, duration, count) {
                FramePlan::Complete => prop_assert!(needed.is_empty()),
                FramePlan::Seek(times) => {
                    let sought: Vec<u32> = times.iter().map(|t| (t / bucket).round() as u32).collect();
                    prop_assert_eq!(&sought, &needed);
                    for (t, b) in times.iter().zip(&sought) {
                        prop_assert!((t - *b as f64 * bucket).abs() < 1e-9, "a bucket start");
                    }
                }
                FramePlan::DecodeAll => prop_assert!(!needed.is_empty()),
            }
        }

        /// A complete plan leaves a bucket empty only inside a tolerated gap between keyframes.
        #[test]
        fn a_complete_plan_leaves_no_wide_gap_over_an_empty_bucket((keyframes, duration, count) in keyframes()) {
            if plan(&keyframes, duration, count) == FramePlan::Complete {
                let bucket = bucket_seconds(duration, count);
                let filled = filled(&keyframes, duration, count);
                for b in (0..count).filter(|b| !filled.contains(b)) {
                    let (from, to) = (b as f64 * bucket, (b + 1) as f64 * bucket);
                    let before = keyframes.iter().copied().filter(|&k| k <= from).fold(0.0, f64::max);
                    let after = keyframes.iter().copied().filter(|&k| k >= to).fold(duration, f64::min);
                    prop_assert!(after - before <= MAX_KEYFRAME_GAP_S + 1e-9);
                    prop_assert!(after - before <= duration / MIN_VIEWS + 1e-9);
                }
            }
        }

        #[test]
        fn seeks_never_decode_more_than_their_share((keyframes, duration, count) in keyframes()) {
            if let FramePlan::Seek(times) = plan(&keyframes, duration, count) {
                let decoded: f64 = times
                    .iter()
                    .map(|&t| t - keyframes.iter().copied().filter(|&k| k <= t).fold(0.0, f64::max))
                    .sum();
                prop_assert!(decoded <= duration * MAX_SEEK_SHARE + 1e-9);
            }
        }

        /// Keyframes at least once per bucket never cost a seek, however they are placed.
        #[test]
        fn dense_keyframes_are_complete(duration in 1.0f64..900.0, count in 1u32..=64, phase in 0.0f64..1.0) {
            let bucket = bucket_seconds(duration, count);
            let step = bucket / 2.0;
            let keyframes: Vec<f64> = (0..)
                .map(|i| (i as f64 + phase) * step)
                .take_while(|&t| t < duration)
                .collect();
            prop_assert_eq!(plan(&keyframes, duration, count), FramePlan::Complete);
        }
    }
}
