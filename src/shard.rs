//! Sharding a fleet across replicas without coordination: every replica reads the same config,
//! orders the targets by a stable hash of their names and keeps run I of N equal runs
//! (`--shard=I/N`). Exactly even (±1 target), and stable: adding or removing one target moves
//! at most N − 1 others to a neighbouring shard. Certificate files, known only by path as
//! each replica globs them, go by hash alone (`owns`).

use std::fmt;

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (0 ≤ I < N), or `auto/N` taking I from the trailing number of `hostname`
    /// (a StatefulSet pod `tls-exporter-2` is shard 2).
    pub fn parse(text: &str, hostname: Option<&str>) -> Result<Shard, String> {
        let bad = || format!("invalid shard {text:?}: expected I/N with 0 <= I < N, or auto/N");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let count: u64 = count.parse().map_err(|_| bad())?;
        let index: u64 = if index == "auto" {
            let host = hostname.unwrap_or_default();
            let digits: String = host
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect();
            let digits: String = digits.chars().rev().collect();
            digits
                .parse()
                .map_err(|_| format!("--shard=auto/{count}: hostname {host:?} does not end in a number (a StatefulSet pod name does)"))?
        } else {
            index.parse().map_err(|_| bad())?
        };
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// True when this shard reads the file at `path` (hash modulo N: roughly even).
    pub fn owns(&self, path: &str) -> bool {
        stable_hash(path) % self.count == self.index
    }

    /// Which of `items` (keyed by `key`, unique) this shard takes, in their order: all of them
    /// sorted by (stable hash, key) and cut into `count` runs whose lengths differ by at most
    /// one; this shard takes run `index`.
    pub fn mask<T>(&self, items: &[T], key: impl Fn(&T) -> &str) -> Vec<bool> {
        let mut order: Vec<(u64, &str, usize)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let k = key(item);
                (stable_hash(k), k, i)
            })
            .collect();
        order.sort_unstable();
        let n = items.len() as u128;
        let (index, count) = (u128::from(self.index), u128::from(self.count.max(1)));
        // Run boundaries at floor(n·i/N): exact in u128 for any realistic n.
        let (start, end) = (
            (n * index / count) as usize,
            (n * (index + 1) / count) as usize,
        );
        let mut mine = vec![false; items.len()];
        for (_, _, i) in order.get(start..end).unwrap_or_default() {
            if let Some(slot) = mine.get_mut(*i) {
                *slot = true;
            }
        }
        mine
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bit: stable across builds, platforms and Rust versions (unlike `DefaultHasher`).
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(names: &[String], count: u64) -> Vec<Vec<bool>> {
        (0..count)
            .map(|index| Shard { index, count }.mask(names, |n| n.as_str()))
            .collect()
    }

    #[test]
    fn every_name_belongs_to_exactly_one_shard() {
        let names: Vec<String> = (0..3000)
            .map(|n| format!("target-{n}.example:443"))
            .collect();
        let masks = split(&names, 3);
        let mut sizes = [0usize; 3];
        for (i, name) in names.iter().enumerate() {
            let owners: Vec<usize> = (0..3).filter(|&s| masks[s][i]).collect();
            assert_eq!(owners.len(), 1, "{name}");
            sizes[owners[0]] += 1;
        }
        assert!(
            sizes.iter().all(|s| (800..1200).contains(s)),
            "uneven split {sizes:?}"
        );
    }

    #[test]
    fn one_more_target_moves_at_most_count_minus_one_others() {
        let mut names: Vec<String> = (0..10_000).map(|n| format!("t{n:05}")).collect();
        let before = split(&names, 5);
        names.push("newcomer.example".to_string());
        let after = split(&names, 5);
        let owner = |m: &[Vec<bool>], i: usize| (0..5).find(|&s| m[s][i]);
        let moved = (0..10_000)
            .filter(|&i| owner(&before, i) != owner(&after, i))
            .count();
        assert!(moved <= 4, "{moved} targets changed shard");
    }

    #[test]
    fn fifty_thousand_names_split_within_two_percent_of_even() {
        // Three naming styles a fleet has: numbered, host names under zones, host:port.
        let styles: [fn(usize) -> String; 3] = [
            |n| format!("t{n:05}"),
            |n| format!("host-{}.zone-{}.example.com", n % 1000, n / 1000),
            |n| format!("10.{}.{}.{}:443", n / 65536, (n / 256) % 256, n % 256),
        ];
        for style in styles {
            let names: Vec<String> = (0..50_000).map(style).collect();
            for count in 2..=8u64 {
                let masks = split(&names, count);
                let sizes: Vec<usize> = masks
                    .iter()
                    .map(|m| m.iter().filter(|&&b| b).count())
                    .collect();
                assert_eq!(sizes.iter().sum::<usize>(), names.len());
                let even = names.len() as f64 / count as f64;
                let worst = sizes
                    .iter()
                    .map(|&s| (s as f64 - even).abs() / even)
                    .fold(0.0, f64::max);
                assert!(
                    worst <= 0.02,
                    "{} names over {count} shards: {sizes:?} (worst {:.2} % off even; {})",
                    names.len(),
                    worst * 100.0,
                    names[0]
                );
            }
        }
    }

    #[test]
    fn parses_explicit_and_auto_shards() {
        assert_eq!(Shard::parse("1/3", None), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(
            Shard::parse("auto/3", Some("tls-exporter-2")),
            Ok(Shard { index: 2, count: 3 })
        );
        for bad in ["3/3", "1/0", "x/3", "1", "-1/3"] {
            assert!(Shard::parse(bad, None).is_err(), "{bad}");
        }
        assert!(Shard::parse("auto/3", Some("tls-exporter-5")).is_err());
        assert!(Shard::parse("auto/3", Some("tls-exporter")).is_err());
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
