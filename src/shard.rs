//! Sharding a fleet across replicas without coordination: `--shard=I/N` keeps the targets whose
//! stable hash of `name` falls in shard I of N.

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

    /// True when this shard probes the target called `name`.
    pub fn owns(&self, name: &str) -> bool {
        stable_hash(name) % self.count == self.index
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

    #[test]
    fn every_name_belongs_to_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut sizes = [0usize; 3];
        for n in 0..3000 {
            let name = format!("target-{n}.example:443");
            let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(&name)).collect();
            assert_eq!(owners.len(), 1, "{name}");
            sizes[owners[0].index as usize] += 1;
        }
        assert!(
            sizes.iter().all(|s| (800..1200).contains(s)),
            "uneven split {sizes:?}"
        );
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
