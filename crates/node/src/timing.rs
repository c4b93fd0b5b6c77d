//! Whether two kinds of request take the same time: two series measured
//! interleaved in one run, compared against the noise of that run, so that
//! a loaded machine widens the tolerance instead of making a difference
//! out of nothing. Used by the test that a denied read and a missing read
//! cannot be told apart by their timing, and by `hygeia bench fhir
//! --denied-vs-missing` over HTTP.

use std::time::Duration;

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn quartiles(samples: &[Duration]) -> (Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    (sorted[sorted.len() / 4], sorted[sorted.len() * 3 / 4])
}

/// The share of (denied, missing) pairs in which the denied one took
/// longer (ties count half): 0.5 when neither is systematically slower.
fn superiority(a: &[Duration], b: &[Duration]) -> f64 {
    let mut wins = 0.0;
    for x in a {
        for y in b {
            if x > y {
                wins += 1.0;
            } else if x == y {
                wins += 0.5;
            }
        }
    }
    wins / (a.len() * b.len()) as f64
}

/// What the comparison found.
pub struct Verdict {
    /// Medians, spreads, the difference, the tolerance and the share, in words.
    pub report: String,
    /// Whether the two series are alike within this run's noise.
    pub same: bool,
    /// The medians of the first series and of the second.
    pub medians: (Duration, Duration),
    /// The largest difference of the medians this run's noise explains.
    pub tolerance: Duration,
    /// The share of pairs in which a request of the first series took
    /// longer than one of the second.
    pub first_slower: f64,
}

/// Compares two interleaved series. They differ when the difference of
/// the medians exceeds the noise measured in this run — the spread of each
/// side (a quarter of the smaller interquartile range), the disagreement
/// between the medians of each side's odd and even requests (twice it),
/// and 100 µs for a quiet machine — *and* one side is systematically
/// slower: a random request of one kind outlasts one of the other in more
/// than 60 % (or less than 40 %) of pairs, where sampling noise moves that
/// share by about 2.5 points. A path that does less work (no decision, no
/// durable log) differs by a whole commit, far beyond both. Two criteria,
/// because commit times are often bimodal (a median may jump between the
/// modes by chance) and a loaded machine widens every spread.
pub fn compare(denied: &[Duration], missing: &[Duration]) -> Verdict {
    let halves = |s: &[Duration]| {
        let mut odd: Vec<Duration> = s.iter().skip(1).step_by(2).copied().collect();
        let mut even: Vec<Duration> = s.iter().step_by(2).copied().collect();
        let (a, b) = (median(&mut odd), median(&mut even));
        a.abs_diff(b)
    };
    let (mut d, mut m) = (denied.to_vec(), missing.to_vec());
    let (md, mm) = (median(&mut d), median(&mut m));
    let ((d1, d3), (m1, m3)) = (quartiles(denied), quartiles(missing));
    let spread = (d3 - d1).min(m3 - m1);
    let split = halves(denied).max(halves(missing));
    let tolerance = (spread / 4).max(split * 2).max(Duration::from_micros(100));
    let difference = md.abs_diff(mm);
    let p = superiority(denied, missing);
    Verdict {
        report: format!(
            "denied median {md:?} (IQR {d1:?}–{d3:?}), missing median {mm:?} (IQR {m1:?}–{m3:?}); \
             difference {difference:?}, tolerance {tolerance:?} (spread/4 {:?}, 2×split-half {:?}); \
             P(denied slower) {p:.2}",
            spread / 4,
            split * 2
        ),
        same: difference <= tolerance || (p - 0.5).abs() <= 0.1,
        medians: (md, mm),
        tolerance,
        first_slower: p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: usize = 240;

    #[test]
    fn the_comparison_tells_a_commit_apart_from_noise() {
        // Two series with the same distribution (a jittery 2 ms) agree; one
        // with an extra millisecond does not.
        let series = |base: u64, seed: u64| -> Vec<Duration> {
            let mut x = seed;
            (0..SAMPLES)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    Duration::from_micros(base + (x >> 33) % 600)
                })
                .collect()
        };
        assert!(compare(&series(2000, 1), &series(2000, 2)).same);
        assert!(!compare(&series(3000, 1), &series(2000, 2)).same);
    }
}
