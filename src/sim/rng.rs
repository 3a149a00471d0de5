//! Seed-derived randomness that does not depend on scheduling order.
//!
//! A decision that must be stable while the rest of a run changes (the
//! latency of call #7 from the coordinator to Stripe, say) is a pure
//! function of `(seed, what, who, index)`: [`mix`]. Shrinking a fault plan
//! then changes only the faults removed, not every latency after them.
//! Sequences (swarm generation) use [`SimRng`] (ChaCha8: portable, stable).
//!
//! Not here: madsim's own scheduler RNG, which we never read directly.

use crate::trace::{fnv1a, FNV_OFFSET};
use rand::SeedableRng;

/// The seeded RNG for sequences (plan generation). Portable across machines.
pub type SimRng = rand_chacha::ChaCha8Rng;

/// A [`SimRng`] for one purpose of one seed.
pub fn rng_for(seed: u64, purpose: &str) -> SimRng {
    SimRng::seed_from_u64(mix(seed, &[fnv1a(FNV_OFFSET, purpose.as_bytes())]))
}

/// SplitMix64 finaliser: a good 64-bit bijective mixer.
#[inline]
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Mix a seed with any number of words into one well-distributed word.
#[inline]
pub fn mix(seed: u64, parts: &[u64]) -> u64 {
    let mut h = splitmix(seed);
    for p in parts {
        h = splitmix(h ^ *p);
    }
    h
}

/// A uniform number in `[0, 1)` from a mixed word.
#[inline]
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `[lo, hi]` (inclusive) from a mixed word.
#[inline]
pub fn between(h: u64, lo: u64, hi: u64) -> u64 {
    debug_assert!(lo <= hi);
    let span = hi - lo + 1;
    if span == 0 {
        return h; // full range
    }
    lo + h % span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_stable_and_sensitive() {
        // Fixed vectors: changing the mixer silently would change every trace.
        assert_eq!(mix(0, &[]), splitmix(0));
        assert_ne!(mix(1, &[2]), mix(2, &[1]));
        assert_ne!(mix(7, &[1, 2]), mix(7, &[2, 1]));
        assert_eq!(mix(42, &[1, 2, 3]), mix(42, &[1, 2, 3]));
    }

    #[test]
    fn unit_and_between_stay_in_range() {
        for i in 0..10_000u64 {
            let h = mix(9, &[i]);
            let u = unit(h);
            assert!((0.0..1.0).contains(&u));
            let b = between(h, 5, 9);
            assert!((5..=9).contains(&b));
        }
    }
}
