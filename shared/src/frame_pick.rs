//! Which candidate frames of a live recording go to the vision model.
//!
//! A recording's duration is unknown while it arrives, so the origin keeps a candidate about
//! every 2 s, each scored from its sharpness and how much it differs from the previous
//! candidate ([`score`]). When the recording ends, [`pick`] reduces them to the frame budget so
//! the whole walk-through is covered: the span from the first to the last candidate is cut into
//! `budget` equal time buckets and the best-scored candidate of each bucket is kept (the earliest
//! on a tie). A bucket without a candidate gives nothing, so the pick never exceeds the budget
//! and always includes the first and the last bucket.

/// One candidate: its time in the recording and its score (higher is better).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub t: f64,
    pub score: f64,
}

/// How much the difference from the previous candidate weighs against sharpness.
const DIFFERENCE_WEIGHT: f64 = 0.5;

/// A candidate's score from its sharpness (0 flat – 1 sharp) and its difference from the
/// previous candidate (0 identical – 1 entirely different); both clamped to [0, 1], NaN as 0.
pub fn score(sharpness: f64, difference: f64) -> f64 {
    let unit = |v: f64| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    unit(sharpness) + DIFFERENCE_WEIGHT * unit(difference)
}

/// The indices (into `candidates`, ascending by time) of at most `budget` candidates covering
/// the span. `candidates` must be in time order (as they arrive); non-finite times are skipped.
pub fn pick(candidates: &[Candidate], budget: usize) -> Vec<usize> {
    let valid: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].t.is_finite())
        .collect();
    let (Some(&first), Some(&last)) = (valid.first(), valid.last()) else {
        return Vec::new();
    };
    if budget == 0 {
        return Vec::new();
    }
    if valid.len() <= budget {
        return valid;
    }
    let start = candidates[first].t;
    let span = (candidates[last].t - start).max(0.0);
    let bucket_of = |t: f64| {
        if span == 0.0 {
            0
        } else {
            (((t - start) / span * budget as f64) as usize).min(budget - 1)
        }
    };
    let mut best: Vec<Option<usize>> = vec![None; budget];
    for i in valid {
        let slot = &mut best[bucket_of(candidates[i].t)];
        let better = match *slot {
            None => true,
            Some(kept) => candidates[i]
                .score
                .total_cmp(&candidates[kept].score)
                .is_gt(),
        };
        if better {
            *slot = Some(i);
        }
    }
    best.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(times: &[f64]) -> Vec<Candidate> {
        times.iter().map(|&t| Candidate { t, score: 0.5 }).collect()
    }

    #[test]
    fn few_candidates_are_all_kept() {
        assert_eq!(pick(&at(&[0.0, 2.0, 4.0]), 12), vec![0, 1, 2]);
        assert!(pick(&[], 12).is_empty());
        assert!(pick(&at(&[0.0]), 0).is_empty());
    }

    #[test]
    fn the_sharpest_of_each_bucket_wins() {
        let mut c = at(&[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        c[1].score = 0.9;
        c[4].score = 0.9;
        // Buckets of 5 s: [0, 5) holds 0, 2, 4; [5, 10] holds 6, 8, 10.
        assert_eq!(pick(&c, 2), vec![1, 4]);
    }

    #[test]
    fn scores_weigh_difference_below_sharpness() {
        assert_eq!(score(1.0, 0.0), 1.0);
        assert_eq!(score(0.0, 1.0), 0.5);
        assert_eq!(score(f64::NAN, 7.0), 0.5);
    }

    fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
        prop::collection::vec((0.0f64..30.0, 0.0f64..1.5), 0..120).prop_map(|steps| {
            let mut t = 0.0;
            steps
                .into_iter()
                .map(|(dt, score)| {
                    t += dt;
                    Candidate { t, score }
                })
                .collect()
        })
    }

    proptest! {
        /// At most the budget, in time order, the same answer every time, and the span covered:
        /// something from the first and from the last bucket, one pick per non-empty bucket.
        #[test]
        fn picks_cover_the_span_within_the_budget(c in candidates(), budget in 0usize..20) {
            let picked = pick(&c, budget);
            prop_assert!(picked.len() <= budget);
            prop_assert!(picked.windows(2).all(|w| w[0] < w[1] && c[w[0]].t <= c[w[1]].t));
            prop_assert_eq!(&picked, &pick(&c, budget));
            if c.is_empty() || budget == 0 {
                prop_assert!(picked.is_empty());
                return Ok(());
            }
            let (start, end) = (c[0].t, c[c.len() - 1].t);
            let width = (end - start) / budget as f64;
            let first = c[picked[0]].t;
            let last = c[picked[picked.len() - 1]].t;
            prop_assert!(first <= start + width + 1e-9, "first pick {first} past the first bucket");
            prop_assert!(last >= end - width - 1e-9, "last pick {last} before the last bucket");
            if c.len() > budget && end > start {
                let buckets: std::collections::BTreeSet<usize> = c
                    .iter()
                    .map(|x| (((x.t - start) / (end - start) * budget as f64) as usize).min(budget - 1))
                    .collect();
                prop_assert_eq!(picked.len(), buckets.len());
            }
        }

        /// No unpicked candidate of a bucket scores above the one picked there.
        #[test]
        fn each_pick_is_the_best_of_its_bucket(c in candidates(), budget in 1usize..20) {
            let picked = pick(&c, budget);
            if c.len() <= budget || c.is_empty() {
                prop_assert_eq!(picked.len(), c.len());
                return Ok(());
            }
            let (start, end) = (c[0].t, c[c.len() - 1].t);
            let bucket = |t: f64| if end == start { 0 } else {
                (((t - start) / (end - start) * budget as f64) as usize).min(budget - 1)
            };
            for &p in &picked {
                for x in c.iter().filter(|x| bucket(x.t) == bucket(c[p].t)) {
                    prop_assert!(x.score <= c[p].score);
                }
            }
        }
    }
}
