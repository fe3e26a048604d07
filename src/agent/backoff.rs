//! Retry delays: exponential with jitter, capped, and jittered intervals.

use std::time::Duration;

/// The first delay after a failure.
const FIRST: Duration = Duration::from_millis(500);

/// The delay before retry number `failures` (1 for the first failure):
/// `FIRST·2^(failures-1)`, capped at `max`, then a random share of up to
/// a fifth taken off, so that many failing loops do not retry together.
pub fn delay(failures: u32, max: Duration) -> Duration {
    let exp = FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    jitter(exp.min(max))
}

/// `interval` less a random share of up to a fifth of it.
pub fn jitter(interval: Duration) -> Duration {
    let off = interval.mul_f64(fastrand::f64() * 0.2);
    interval.saturating_sub(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stops_at_the_cap() {
        let max = Duration::from_secs(10);
        for failures in 1..40 {
            let d = delay(failures, max);
            let full = FIRST.saturating_mul(1 << (failures - 1).min(20)).min(max);
            assert!(d <= full && d >= full.mul_f64(0.8), "{failures}: {d:?}");
        }
        assert!(delay(30, max) >= Duration::from_secs(8));
    }
}
