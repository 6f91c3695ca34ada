//! A JSON object whose keys must be unique. serde_json's own maps keep the last of two equal keys,
//! which would let a hostile header say two different things about one tensor; here the second
//! occurrence is an error.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;

/// The entries of a JSON object in file order, keys unique.
pub(crate) struct UniqueObject(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueObject, A::Error> {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("the key `{key}` appears twice")));
                    }
                    out.push((key, value));
                }
                Ok(UniqueObject(out))
            }
        }
        d.deserialize_map(V)
    }
}
