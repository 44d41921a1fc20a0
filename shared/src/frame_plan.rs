//! Which frames a whole-file extraction needs beside its keyframes-only pass.
//!
//! The origin decodes keyframes only and keeps the first one in each of `count` equal time
//! buckets. It reads the keyframes' times from the container first (packet flags, nothing
//! decoded), so this plan is known before that pass ends and its seeks run beside it. Phones
//! that write few keyframes leave buckets empty: an iPhone's HEVC MOV has one
//! every 7.5 s, so 4 of 12 buckets of a 60 s video get none. Decoding every frame to fill them
//! costs about 17× the keyframes pass; seeking to the start of each empty bucket decodes only
//! from the keyframe before it (the start is the point of the bucket closest to that keyframe,
//! so the cheapest one). When keyframes are so rare that the seeks together would decode more
//! than half the video (MediaRecorder WebM: one keyframe at the start), one full decode is
//! cheaper than the seeks, which each start again from a keyframe.

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
        .collect();
    if starts.is_empty() {
        return FramePlan::Complete;
    }
    // Each seek decodes from the keyframe before its time.
    let decoded: f64 = starts
        .iter()
        .map(|&start| {
            let from = keyframes
                .iter()
                .copied()
                .filter(|&t| t <= start)
                .fold(0.0, f64::max);
            start - from
        })
        .sum();
    if decoded > duration_s * MAX_SEEK_SHARE {
        FramePlan::DecodeAll
    } else {
        FramePlan::Seek(starts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_iphone_mov_seeks_to_its_four_empty_buckets() {
        let keyframes: Vec<f64> = (0..8).map(|k| k as f64 * 7.5).collect();
        assert_eq!(
            plan(&keyframes, 60.0, 12),
            FramePlan::Seek(vec![10.0, 25.0, 40.0, 55.0])
        );
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
        fn seeks_fill_exactly_the_empty_buckets((keyframes, duration, count) in keyframes()) {
            let filled = filled(&keyframes, duration, count);
            let bucket = bucket_seconds(duration, count);
            match plan(&keyframes, duration, count) {
                FramePlan::Complete => prop_assert_eq!(filled.len(), count as usize),
                FramePlan::Seek(times) => {
                    prop_assert_eq!(times.len() + filled.len(), count as usize);
                    prop_assert!(times.windows(2).all(|w| w[0] < w[1]));
                    for t in &times {
                        let b = (t / bucket).round() as u32;
                        prop_assert!((t - b as f64 * bucket).abs() < 1e-9, "a bucket start");
                        prop_assert!(!filled.contains(&b));
                    }
                }
                FramePlan::DecodeAll => prop_assert!(filled.len() < count as usize),
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
