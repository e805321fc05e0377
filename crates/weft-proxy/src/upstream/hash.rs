//! The consistent-hash ring behind `consistentHash` load balancing: every endpoint owns points
//! on a 64-bit ring in proportion to its weight, and a request hash goes to the owner of the
//! first point at or after it.
//!
//! Each endpoint gets [`POINTS_PER_WEIGHT`] points per unit of weight, placed by hashing
//! `"<ip:port>_<n>"`, so its points do not depend on the other endpoints: adding one of N+1
//! equal endpoints moves only the ~1/(N+1) of keys that land on its points, and removing (or
//! ejecting, or excluding) one moves only its own keys, to the next endpoint on the ring.
//! Envoy's ring hash instead resizes the ring to at least 1024 points (`minimumRingSize`),
//! which moves somewhat more keys on a change. Rings are capped at [`MAX_POINTS`]; beyond that
//! the points are scaled down and the stability holds only approximately.
//!
//! Point placement uses FNV-1a with a SplitMix64 finalizer: stable across processes and builds,
//! so every proxy maps a key to the same endpoint.

/// Ring points per unit of endpoint weight.
const POINTS_PER_WEIGHT: u64 = 256;
/// The most points a ring holds.
const MAX_POINTS: u64 = 1 << 17;

/// SplitMix64's finalizer: spreads any 64-bit value evenly over the ring.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where point `n` of the endpoint `authority` sits.
fn point(authority: &str, n: u64) -> u64 {
    let h = fnv1a(0xcbf2_9ce4_8422_2325, authority.as_bytes());
    let h = fnv1a(h, b"_");
    mix(fnv1a(h, &n.to_le_bytes()))
}

/// A built ring: points sorted by position, each naming a target index.
#[derive(Debug, Default)]
pub(super) struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// Builds the ring for endpoints given as `(authority, weight)`, in target order.
    pub(super) fn build(endpoints: &[(&str, u32)]) -> Ring {
        let wanted: u64 = endpoints
            .iter()
            .map(|(_, w)| u64::from(*w).saturating_mul(POINTS_PER_WEIGHT))
            .fold(0, u64::saturating_add);
        let scale = if wanted > MAX_POINTS {
            MAX_POINTS as f64 / wanted as f64
        } else {
            1.0
        };
        let mut points = Vec::new();
        for (idx, (authority, weight)) in endpoints.iter().enumerate() {
            let own = (u64::from(*weight) * POINTS_PER_WEIGHT) as f64 * scale;
            let own = (own.round() as u64).max(1);
            points.extend((0..own).map(|n| (point(authority, n), idx)));
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The first usable target at or after `hash` (already mixed by the caller or not: it is
    /// mixed again here so that weak key hashes still spread).
    pub(super) fn lookup(&self, hash: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.points.len();
        let at = mix(hash);
        let start = self.points.partition_point(|(p, _)| *p < at);
        (0..len)
            .filter_map(|k| self.points.get((start + k) % len))
            .map(|(_, idx)| *idx)
            .find(|idx| usable(*idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(names: &[&str]) -> Ring {
        let endpoints: Vec<(&str, u32)> = names.iter().map(|n| (*n, 1)).collect();
        Ring::build(&endpoints)
    }

    const KEYS: u64 = 20_000;

    fn assign(ring: &Ring, names: &[&str]) -> Vec<String> {
        (0..KEYS)
            .map(|k| {
                let idx = ring.lookup(k, |_| true).unwrap();
                names[idx].to_string()
            })
            .collect()
    }

    #[test]
    fn keys_spread_over_endpoints() {
        let names = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"];
        let owners = assign(&ring(&names), &names);
        for name in names {
            let share = owners.iter().filter(|o| *o == name).count() as f64 / KEYS as f64;
            // 256 points per endpoint: arc shares vary by roughly ±1/sqrt(256) relative.
            assert!((0.15..0.35).contains(&share), "{name}: {share}");
        }
    }

    #[test]
    fn adding_an_endpoint_moves_about_one_nth_of_keys_all_to_it() {
        let four = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"];
        let five = [
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "10.0.0.4:80",
            "10.0.0.5:80",
        ];
        let before = assign(&ring(&four), &four);
        let after = assign(&ring(&five), &five);
        let moved: Vec<usize> = (0..before.len())
            .filter(|i| before[*i] != after[*i])
            .collect();
        assert!(moved.iter().all(|i| after[*i] == "10.0.0.5:80"));
        let share = moved.len() as f64 / KEYS as f64;
        assert!((0.12..0.28).contains(&share), "moved {share}");
    }

    #[test]
    fn skipping_an_endpoint_moves_only_its_keys() {
        let names = ["a:1", "b:1", "c:1"];
        let r = ring(&names);
        for k in 0..2000 {
            let owner = r.lookup(k, |_| true).unwrap();
            let without_b = r.lookup(k, |i| i != 1).unwrap();
            if owner == 1 {
                assert_ne!(without_b, 1);
            } else {
                assert_eq!(without_b, owner);
            }
        }
        assert_eq!(r.lookup(7, |_| false), None);
        assert_eq!(Ring::default().lookup(7, |_| true), None);
    }

    #[test]
    fn weights_scale_points_and_big_rings_are_capped() {
        let r = Ring::build(&[("a:1", 1), ("b:1", 3)]);
        assert_eq!(r.points.len(), 4 * 256);
        let b = r.points.iter().filter(|(_, i)| *i == 1).count();
        assert_eq!(b, 3 * 256);
        let big = Ring::build(&[("a:1", u32::MAX), ("b:1", 1)]);
        assert!(big.points.len() as u64 <= MAX_POINTS + 1);
        assert!(big.points.iter().any(|(_, i)| *i == 1));
    }
}
