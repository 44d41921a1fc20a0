//! The cluster-wide model budget: requests and tokens per minute, as the provider limits them.
//!
//! Replicas add CPU and memory, not provider quota: every replica draws from one budget (in
//! Redis; in memory mode the same rule locally). A job reserves its *expected* usage at
//! admission — before its video is read — in a sliding one-minute window; a forward that does
//! not fit is answered like a busy replica (503 + Retry-After), with the wait until enough of
//! the window has slid past. The reservation is an estimate and is not corrected afterwards:
//! it errs high (every job counted with narration, output at its usual ceiling), so the fleet
//! stays under the provider's limits instead of meeting them as 429s mid-job.

use std::time::Duration;

use crate::config::{FfmpegConfig, ModelBudget};

/// The sliding window of the budget.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Calls per job: vision, and with narration transcription + directives.
const REQUESTS_PER_JOB: u64 = 3;
/// System prompts, schemas and per-frame captions of the vision and directives calls.
const TEXT_TOKENS: u64 = 2_500;
/// Output of the vision and directives calls (a full inventory, directives).
const OUTPUT_TOKENS: u64 = 2_000;
/// Frames are 16:9 or 9:16 in practice; the short side follows from the long one.
const SHORT_SIDE_RATIO: f64 = 9.0 / 16.0;

/// What one job is expected to draw from the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    pub requests: u64,
    pub tokens: u64,
}

/// The expected usage of one job, from how many frames of which size it sends.
pub fn expected_draw(ffmpeg: &FfmpegConfig) -> Draw {
    let long = ffmpeg.long_side as usize;
    let short = (ffmpeg.long_side as f64 * SHORT_SIDE_RATIO).ceil() as usize;
    Draw {
        requests: REQUESTS_PER_JOB,
        tokens: ffmpeg.frame_count as u64 * image_tokens(long, short) + TEXT_TOKENS + OUTPUT_TOKENS,
    }
}

/// Patch-based image tokens of the gpt-4.1-mini family: 32 px patches (at most 1536), ×1.62.
pub fn image_tokens(w: usize, h: usize) -> u64 {
    let patches = w.div_ceil(32) * h.div_ceil(32);
    (patches.min(1536) as f64 * 1.62).ceil() as u64
}

/// One reservation in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved {
    pub at_ms: u64,
    pub draw: Draw,
}

/// Whether `draw` fits at `now_ms` in `window` (reservations in time order, all younger than
/// [`WINDOW`]); if not, how long until it would. A draw larger than a whole limit fits only in
/// an empty window, so one oversized job still runs, alone. Redis runs the same rule in Lua
/// (`store/redis.rs`, `TAKE_BUDGET`).
pub fn decide(
    window: &[Reserved],
    now_ms: u64,
    draw: Draw,
    limits: ModelBudget,
) -> Result<(), Duration> {
    let fits = |requests: u64, tokens: u64| {
        within(requests + draw.requests, limits.requests_per_minute)
            && within(tokens + draw.tokens, limits.tokens_per_minute)
    };
    let mut requests: u64 = window.iter().map(|r| r.draw.requests).sum();
    let mut tokens: u64 = window.iter().map(|r| r.draw.tokens).sum();
    if window.is_empty() || fits(requests, tokens) {
        return Ok(());
    }
    let window_ms = WINDOW.as_millis() as u64;
    for (i, r) in window.iter().enumerate() {
        requests -= r.draw.requests;
        tokens -= r.draw.tokens;
        if i + 1 == window.len() || fits(requests, tokens) {
            let free_at = r.at_ms + window_ms;
            return Err(Duration::from_millis(free_at.saturating_sub(now_ms).max(1)));
        }
    }
    unreachable!("the last reservation always ends the loop")
}

fn within(value: u64, limit: u64) -> bool {
    limit == 0 || value <= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ModelBudget = ModelBudget {
        requests_per_minute: 10,
        tokens_per_minute: 1000,
    };

    fn at(at_ms: u64, requests: u64, tokens: u64) -> Reserved {
        Reserved {
            at_ms,
            draw: Draw { requests, tokens },
        }
    }

    #[test]
    fn fits_until_a_limit_is_reached() {
        let draw = Draw {
            requests: 3,
            tokens: 300,
        };
        assert_eq!(decide(&[], 0, draw, LIMITS), Ok(()));
        let window = [at(0, 3, 300), at(1000, 3, 300)];
        assert_eq!(decide(&window, 2000, draw, LIMITS), Ok(()));
        let window = [at(0, 3, 300), at(1000, 3, 300), at(2000, 3, 300)];
        // Tokens would be 1200 > 1000: wait until the first reservation leaves the window.
        assert_eq!(
            decide(&window, 5000, draw, LIMITS),
            Err(Duration::from_millis(55_000))
        );
    }

    #[test]
    fn requests_limit_too() {
        let draw = Draw {
            requests: 6,
            tokens: 1,
        };
        let window = [at(0, 3, 1), at(10_000, 3, 1)];
        assert_eq!(
            decide(&window, 20_000, draw, LIMITS),
            Err(Duration::from_millis(40_000))
        );
    }

    #[test]
    fn an_oversized_draw_runs_alone() {
        let huge = Draw {
            requests: 1,
            tokens: 5000,
        };
        assert_eq!(decide(&[], 0, huge, LIMITS), Ok(()));
        assert_eq!(
            decide(&[at(0, 1, 10), at(30_000, 1, 10)], 40_000, huge, LIMITS),
            Err(Duration::from_millis(50_000)),
            "until the window is empty"
        );
    }

    #[test]
    fn zero_disables_a_limit() {
        let unlimited = ModelBudget {
            requests_per_minute: 0,
            tokens_per_minute: 0,
        };
        let window: Vec<_> = (0..100).map(|i| at(i, 100, 100_000)).collect();
        let draw = Draw {
            requests: 100,
            tokens: 100_000,
        };
        assert_eq!(decide(&window, 200, draw, unlimited), Ok(()));
    }

    #[test]
    fn the_default_job_matches_the_simulators_token_count() {
        // 12 frames at 768x432: 24x14 patches each, as the simulator bills them.
        assert_eq!(
            image_tokens(768, 432),
            (24.0 * 14.0 * 1.62f64).ceil() as u64
        );
    }
}
