//! The page's recorder rules: the bitrate cap, the backlog, and stepping the frame rate down when
//! the uplink cannot keep up.
//!
//! The recording is uploaded while it is filmed, so an uplink slower than the recording's byte
//! rate shows as a backlog that keeps growing. MediaRecorder's bitrate cannot be changed once it
//! records, but the camera track's frame rate can (`applyConstraints`), and measured in Chromium
//! (VP9 in MP4 and in WebM, 1.5 Mbit/s cap, 720p) it lowers the bytes per second while the
//! recording stays one stream: 30 → 15 fps about −30 %, 30 → 10 fps about −44 % (lowering the
//! resolution did not lower them). The inventory needs a frame every second or two, not 30, so
//! the [`Pacer`] steps the frame rate down a tier each time the backlog has grown for a while.

use std::collections::VecDeque;

/// The video bitrate cap for a recording of `height` lines: about 2.5 Mbit/s at 1080p and
/// 1.5 Mbit/s at 720p and below, against the 8–17 Mbit/s of a phone's own camera, so a mobile
/// uplink keeps up while filming (frames for the inventory need no more).
pub fn bitrate_for_height(height: u32) -> u32 {
    if height >= 1000 {
        2_500_000
    } else {
        1_500_000
    }
}

/// How far the upload lags behind the camera, in seconds of video at `bits_per_second`.
pub fn backlog_seconds(recorded: u64, uploaded: u64, bits_per_second: u32) -> f64 {
    if bits_per_second == 0 {
        return 0.0;
    }
    recorded.saturating_sub(uploaded) as f64 * 8.0 / f64::from(bits_per_second)
}

/// The frame rates the recorder steps down through, after the camera's own.
pub const FRAME_RATE_TIERS: [u32; 2] = [15, 10];

/// A backlog under this is the upload's normal lag (a recorder chunk every ~2 s at a keyframe,
/// a 256 KiB PATCH ≈ 1.4 s at 1.5 Mbit/s): never a reason to step down.
pub const BACKLOG_FLOOR_S: f64 = 3.0;

/// How long the backlog must have grown before a step, and again between two steps (the bytes
/// per second settle within a few seconds of a change).
pub const GROWTH_WINDOW_MS: u64 = 8_000;

/// How much it must have grown over that window: a steady rise of 0.25 s per second, the lag of
/// an uplink at 80 % of the recording's rate, not the PATCHes' saw-tooth.
pub const GROWTH_S: f64 = 2.0;

/// Watches the backlog while recording and says when to lower the frame rate.
#[derive(Debug, Default, Clone)]
pub struct Pacer {
    /// Tiers taken so far (0: the camera's own rate).
    steps: usize,
    /// `(now_ms, backlog_s)`, oldest first; the first one at or before the window's start.
    samples: VecDeque<(u64, f64)>,
}

impl Pacer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The frame rate the recorder runs at now, or `None` for the camera's own.
    pub fn frame_rate(&self) -> Option<u32> {
        self.steps.checked_sub(1).map(|tier| FRAME_RATE_TIERS[tier])
    }

    /// One reading of the backlog at `now_ms` (non-decreasing). Returns the lower frame rate to
    /// switch to when the backlog stayed above the floor and grew by [`GROWTH_S`] over the last
    /// [`GROWTH_WINDOW_MS`]; the window then starts again at the new rate.
    pub fn observe(&mut self, now_ms: u64, backlog_s: f64) -> Option<u32> {
        if backlog_s < BACKLOG_FLOOR_S {
            self.samples.clear();
            return None;
        }
        self.samples.push_back((now_ms, backlog_s));
        let start = now_ms.saturating_sub(GROWTH_WINDOW_MS);
        while self.samples.get(1).is_some_and(|&(at, _)| at <= start) {
            self.samples.pop_front();
        }
        let &(first_at, first) = self.samples.front()?;
        let grew =
            now_ms.saturating_sub(first_at) >= GROWTH_WINDOW_MS && backlog_s - first >= GROWTH_S;
        if !grew || self.steps == FRAME_RATE_TIERS.len() {
            return None;
        }
        self.steps += 1;
        self.samples.clear();
        self.samples.push_back((now_ms, backlog_s));
        self.frame_rate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bitrate_and_backlog() {
        assert_eq!(bitrate_for_height(720), 1_500_000);
        assert_eq!(bitrate_for_height(1080), 2_500_000);
        assert_eq!(backlog_seconds(375_000, 0, 1_500_000), 2.0);
        assert_eq!(backlog_seconds(10, 20, 1_500_000), 0.0);
        assert_eq!(backlog_seconds(10, 0, 0), 0.0);
    }

    /// Readings every 500 ms of a backlog growing at `rate` s per s from `from`.
    fn growing(pacer: &mut Pacer, from: f64, rate: f64, seconds: u64) -> Vec<(u64, u32)> {
        (0..=seconds * 2)
            .filter_map(|i| {
                let now = i * 500;
                let step = pacer.observe(now, from + rate * now as f64 / 1000.0);
                step.map(|fps| (now, fps))
            })
            .collect()
    }

    #[test]
    fn a_steadily_growing_backlog_steps_down_each_window_then_stops() {
        let mut pacer = Pacer::new();
        assert_eq!(pacer.frame_rate(), None);
        let steps = growing(&mut pacer, 3.0, 0.5, 40);
        assert_eq!(steps, vec![(8_000, 15), (16_000, 10)]);
        assert_eq!(pacer.frame_rate(), Some(10));
    }

    #[test]
    fn a_slow_rise_or_a_low_backlog_does_not_step() {
        assert_eq!(growing(&mut Pacer::new(), 3.0, 0.2, 60), vec![]);
        assert_eq!(growing(&mut Pacer::new(), 0.0, 0.0, 60), vec![]);
        // Growing fast, but dipping under the floor restarts the window.
        let mut pacer = Pacer::new();
        assert_eq!(pacer.observe(0, 3.0), None);
        assert_eq!(pacer.observe(7_000, 2.0), None);
        assert_eq!(pacer.observe(8_000, 6.0), None);
        assert_eq!(pacer.observe(16_000, 8.0), Some(15));
    }

    proptest! {
        /// Whatever the readings, the frame rate only goes down, through the tiers in order, two
        /// steps at least a window apart, each after the backlog stayed above the floor.
        #[test]
        fn steps_only_go_down_and_are_spaced(
            readings in prop::collection::vec((0u64..3_000, 0.0f64..30.0), 0..200),
        ) {
            let mut pacer = Pacer::new();
            let mut now = 0;
            let mut last_step: Option<u64> = None;
            let mut taken = Vec::new();
            for (gap, backlog) in readings {
                now += gap;
                if let Some(fps) = pacer.observe(now, backlog) {
                    prop_assert!(backlog >= BACKLOG_FLOOR_S + GROWTH_S);
                    if let Some(previous) = last_step {
                        prop_assert!(now - previous >= GROWTH_WINDOW_MS);
                    }
                    last_step = Some(now);
                    taken.push(fps);
                    prop_assert_eq!(pacer.frame_rate(), Some(fps));
                }
            }
            prop_assert_eq!(&taken[..], &FRAME_RATE_TIERS[..taken.len()]);
        }

        /// A backlog that never grows (constant or shrinking, above the floor) never steps.
        #[test]
        fn a_backlog_that_does_not_grow_never_steps(
            start in 3.0f64..30.0,
            drops in prop::collection::vec((1u64..3_000, 0.0f64..1.0), 0..100),
        ) {
            let mut pacer = Pacer::new();
            let (mut now, mut backlog) = (0, start);
            for (gap, drop) in drops {
                now += gap;
                backlog = (backlog - drop).max(BACKLOG_FLOOR_S);
                prop_assert_eq!(pacer.observe(now, backlog), None);
            }
        }

        /// A backlog that grows faster than the threshold for long enough always steps down.
        #[test]
        fn a_backlog_that_keeps_growing_steps_down(start in 3.0f64..10.0, rate in 0.3f64..3.0) {
            let mut pacer = Pacer::new();
            let steps = growing(&mut pacer, start, rate, 2 * GROWTH_WINDOW_MS / 1000 + 2);
            prop_assert_eq!(steps.len(), FRAME_RATE_TIERS.len());
        }
    }
}
