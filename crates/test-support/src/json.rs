//! The tests' view of the programs' `--json` output: serde_json parses it into [`Json`], whose
//! objects keep their keys in the order written (so that tests can check a documented key order),
//! and [`Json`] gives the tests short accessors that fail the test, naming what was missing,
//! instead of returning options.
//!
//! The order is kept by [`Json`]'s own `Deserialize`, not by serde_json's `preserve_order`
//! feature: cargo would turn that feature on for the programs too whenever they are built with
//! this crate, and the programs' `json!` objects would then be written in another order in the
//! tests than in a release.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};

/// A JSON value, as serde_json read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in the order written.
    Object(Vec<(String, Json)>),
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] from what serde_json reads, object members in the order written.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Json>()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

impl Json {
    /// Parses one JSON document (surrounding white space allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The member `key` of an object; fails the test when there is none.
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(members) => members
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key:?} in {self:?}")),
            other => panic!("not an object, looking for {key:?}: {other:?}"),
        }
    }

    /// The keys of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Object(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    /// The elements of an array.
    pub fn items(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    /// A non-negative integer.
    pub fn u64(&self) -> u64 {
        match self {
            Json::Number(n) => n.as_u64().unwrap_or_else(|| panic!("not a u64: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }

    /// An integer, negative or not.
    pub fn i64(&self) -> i64 {
        match self {
            Json::Number(n) => n.as_i64().unwrap_or_else(|| panic!("not an i64: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }

    /// A number, as a float.
    pub fn f64(&self) -> f64 {
        match self {
            Json::Number(n) => n.as_f64().unwrap_or_else(|| panic!("not an f64: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }

    /// A string.
    pub fn str(&self) -> &str {
        match self {
            Json::String(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn objects_keep_the_order_written() {
        let json = Json::parse(r#" {"zeta":1,"alpha":{"b":null,"a":true},"mid":["x",2]} "#)
            .expect("valid");
        assert_eq!(json.keys(), ["zeta", "alpha", "mid"]);
        assert_eq!(json.get("alpha").keys(), ["b", "a"]);
        assert_eq!(json.get("zeta").u64(), 1);
        assert_eq!(json.get("mid").items()[0].str(), "x");
        assert_eq!(json.get("alpha").get("a"), &Json::Bool(true));
    }

    #[test]
    fn what_is_not_one_document_is_an_error() {
        for bad in ["", "{", "{} {}", "[1,]", "{\"a\" 1}", "\"\\x\""] {
            assert!(Json::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
