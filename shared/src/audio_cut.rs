//! Where a live recording's audio is cut into segments transcribed while it goes on.
//!
//! The narration is transcribed in pieces so that at the stop only the last one remains. A cut
//! in the middle of a word loses or garbles it, so a segment ends at the quietest
//! [`WINDOW_MS`] window between [`MIN_SEGMENT_S`] and [`MAX_SEGMENT_S`] after its start (the
//! middle of that window), and only once [`MAX_SEGMENT_S`] of audio exist past the start, so the
//! whole range of possible cuts is known. Windows are compared on a [`STEP_MS`] grid by their
//! energy (sum of squared samples); the earliest wins a tie.

/// Samples per second of the PCM the origin extracts (mono s16le).
pub const RATE: u32 = 16_000;
/// A segment is at least this long…
pub const MIN_SEGMENT_S: u32 = 20;
/// …and at most this long.
pub const MAX_SEGMENT_S: u32 = 30;
/// The quiet window looked for.
pub const WINDOW_MS: u32 = 200;
/// The grid windows start on.
pub const STEP_MS: u32 = 10;

/// The end (in samples from the start of `pcm`) of the segment starting at `pcm[0]`, or `None`
/// while fewer than [`MAX_SEGMENT_S`] of audio exist.
pub fn next_cut(pcm: &[i16], rate: u32) -> Option<usize> {
    let at = |ms: u32| (rate as u64 * ms as u64 / 1000) as usize;
    let (min, max, window, step) = (
        at(MIN_SEGMENT_S * 1000),
        at(MAX_SEGMENT_S * 1000),
        at(WINDOW_MS),
        at(STEP_MS).max(1),
    );
    if pcm.len() < max || window == 0 || max < min + window {
        return None;
    }
    let quietest = (min..=max - window)
        .step_by(step)
        .min_by_key(|&start| (energy(&pcm[start..start + window]), start))?;
    Some(quietest + window / 2)
}

/// Sum of squared samples (fits: a window of 2^24 full-scale samples stays below 2^54).
pub fn energy(samples: &[i16]) -> u64 {
    samples.iter().map(|&s| (s as i64 * s as i64) as u64).sum()
}

/// Cuts all of `pcm` into segment lengths: every full segment by [`next_cut`], then the rest
/// (which is shorter than [`MAX_SEGMENT_S`]) when non-empty.
pub fn segments(pcm: &[i16], rate: u32) -> Vec<usize> {
    let mut lengths = Vec::new();
    let mut from = 0;
    while let Some(cut) = next_cut(&pcm[from..], rate) {
        lengths.push(cut);
        from += cut;
    }
    if from < pcm.len() {
        lengths.push(pcm.len() - from);
    }
    lengths
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small rate keeps the property tests fast; the rule scales with it.
    const TEST_RATE: u32 = 400;

    fn loud(len: usize, seed: u64) -> Vec<i16> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x as i16 / 4).saturating_add(8000)
            })
            .collect()
    }

    #[test]
    fn the_cut_lands_in_the_silence() {
        let mut pcm = loud(RATE as usize * 31, 7);
        let quiet = RATE as usize * 23;
        pcm[quiet..quiet + 4000].fill(0);
        let cut = next_cut(&pcm, RATE).unwrap();
        assert!(cut >= quiet && cut <= quiet + 4000, "{cut}");
        assert_eq!(next_cut(&pcm[..RATE as usize * 29], RATE), None);
    }

    proptest! {
        /// No cut before the maximum exists; a cut is between the minimum and the maximum, at
        /// the middle of a window no other grid window is quieter than.
        #[test]
        fn cuts_are_bounded_and_quietest(
            len in 0usize..(TEST_RATE as usize * 40),
            seed in any::<u64>(),
            hush in prop::collection::vec((0usize..(TEST_RATE as usize * 40), 1usize..200), 0..4),
        ) {
            let mut pcm = loud(len, seed);
            for (at, n) in hush {
                let end = (at + n).min(pcm.len());
                if at < end { pcm[at..end].fill(0); }
            }
            let rate = TEST_RATE as usize;
            let (min, max, window) = (rate * 20, rate * 30, rate / 5);
            let cut = next_cut(&pcm, TEST_RATE);
            prop_assert_eq!(cut.is_some(), len >= max);
            prop_assert_eq!(cut, next_cut(&pcm, TEST_RATE));
            if let Some(cut) = cut {
                let start = cut - window / 2;
                prop_assert!(start >= min && start + window <= max);
                let chosen = energy(&pcm[start..start + window]);
                for other in (min..=max - window).step_by(rate / 100) {
                    prop_assert!(chosen <= energy(&pcm[other..other + window]));
                }
            }
        }

        /// Segments tile the audio exactly, each full one between the bounds, the last shorter
        /// than the maximum.
        #[test]
        fn segments_tile_the_audio(len in 0usize..(TEST_RATE as usize * 100), seed in any::<u64>()) {
            let pcm = loud(len, seed);
            let rate = TEST_RATE as usize;
            let lengths = segments(&pcm, TEST_RATE);
            prop_assert_eq!(lengths.iter().sum::<usize>(), len);
            prop_assert!(lengths.iter().all(|&l| l > 0 && l < rate * 30));
            if let Some((_, full)) = lengths.split_last() {
                prop_assert!(full.iter().all(|&l| l >= rate * 20));
            }
        }
    }
}
