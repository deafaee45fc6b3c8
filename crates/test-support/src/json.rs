//! The tests' view of the programs' `--json` output: serde_json parses it (with
//! `preserve_order`, so that objects keep their keys in the order written and tests can check a
//! documented key order), and [`Json`] gives the tests short accessors that fail the test, naming
//! what was missing, instead of returning options.

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

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Json {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Number(n) => Json::Number(n),
            Value::String(s) => Json::String(s),
            Value::Array(items) => Json::Array(items.into_iter().map(Json::from).collect()),
            Value::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k, Json::from(v)))
                    .collect(),
            ),
        }
    }
}

impl Json {
    /// Parses one JSON document (surrounding white space allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        serde_json::from_str::<serde_json::Value>(text)
            .map(Json::from)
            .map_err(|e| e.to_string())
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
