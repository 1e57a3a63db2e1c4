//! The size a seed takes once its YAML aliases are expanded, measured before anything is built:
//! a small text whose anchor is aliased thousands of times (a "billion laughs") is refused
//! instead of filling memory.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// No seed needs more, expanded.
pub const MAX_EXPANDED: usize = 8 * 1024 * 1024;

/// Counts bytes of every scalar and a few per node, failing past the limit.
struct Probe<'a> {
    used: &'a Cell<usize>,
}

impl Probe<'_> {
    fn add<E: de::Error>(&self, n: usize) -> Result<(), E> {
        let used = self.used.get().saturating_add(n + 8);
        self.used.set(used);
        if used > MAX_EXPANDED {
            return Err(E::custom(format!(
                "the seed expands to more than {} MiB (YAML aliases); a seed is a small file",
                MAX_EXPANDED / 1048576
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.add(1)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.add(8)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.add(8)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.add(8)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.add(v.len())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.add(0)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.add(0)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.add(0)?;
        while seq.next_element_seed(Probe { used: self.used })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.add(0)?;
        while map.next_key_seed(Probe { used: self.used })?.is_some() {
            map.next_value_seed(Probe { used: self.used })?;
        }
        Ok(())
    }
}

/// Fails when `text` expands past `MAX_EXPANDED`, or is not YAML.
pub fn check(text: &str) -> Result<(), serde_yaml::Error> {
    let used = Cell::new(0);
    for doc in serde_yaml::Deserializer::from_str(text) {
        Probe { used: &used }.deserialize(doc)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_seed_aliasing_a_big_anchor_is_refused() {
        // 100 KB anchored once, aliased 5,000 times: 120 KB of text, 500 MB expanded.
        let mut y = format!("a: &big \"{}\"\nb: [", "x".repeat(100_000));
        y.push_str(&vec!["*big"; 5000].join(", "));
        y.push_str("]\n");
        assert!(y.len() < 135_000, "{}", y.len());
        let e = super::check(&y).unwrap_err().to_string();
        assert!(e.contains("expands to more than 8 MiB"), "{e}");
        assert!(super::check("etcd_version: 3.5.1\n").is_ok());
    }
}
