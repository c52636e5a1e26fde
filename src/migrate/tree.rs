//! A loose YAML tree with the position of every value: what `migrate` reads another exporter's
//! config file into.
//!
//! Their schemas grow with every release and this command must not refuse a setting it does not
//! know (it reports it instead), so the file is read into this tree rather than into strict
//! structs; `blackbox` and `ssl_exporter` take the settings they know out of each mapping
//! (`Fields`) and report what is left. Parsing limits and syntax errors (with line and column)
//! are `config::parse_as`'s.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::config::Problem;

/// One value and where it is written (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) line: u64,
    pub(crate) column: u64,
}

/// A YAML value, as loose as the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; keys that are not strings are written as text.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The problem "`field`: `message`" at this node's position.
    pub(crate) fn problem(&self, field: &str, message: impl Into<String>) -> Problem {
        Problem {
            line: self.line,
            column: self.column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The text of a scalar (strings as they are, numbers and booleans as written); `None` for
    /// null, sequences and mappings.
    pub(crate) fn scalar(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A string, or a problem naming `field`.
    pub(crate) fn string(&self, field: &str) -> Result<String, Problem> {
        match &self.value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.problem(field, format!("expected a string, found {}", self.kind()))),
        }
    }

    /// A boolean, or a problem naming `field`.
    pub(crate) fn boolean(&self, field: &str) -> Result<bool, Problem> {
        match &self.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.problem(
                field,
                format!("expected true or false, found {}", self.kind()),
            )),
        }
    }

    /// The entries of a mapping (null reads as an empty one), or a problem naming `field`.
    pub(crate) fn fields(&self, field: &str) -> Result<Fields, Problem> {
        match &self.value {
            Value::Map(entries) => Ok(Fields {
                path: field.to_string(),
                entries: entries.clone(),
            }),
            Value::Null => Ok(Fields {
                path: field.to_string(),
                entries: Vec::new(),
            }),
            _ => Err(self.problem(field, format!("expected a mapping, found {}", self.kind()))),
        }
    }

    /// The items of a sequence (null reads as an empty one), or a problem naming `field`.
    pub(crate) fn items(&self, field: &str) -> Result<&[Node], Problem> {
        match &self.value {
            Value::Seq(items) => Ok(items),
            Value::Null => Ok(&[]),
            _ => Err(self.problem(field, format!("expected a list, found {}", self.kind()))),
        }
    }

    /// What kind of value this is, for messages.
    fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// The value in YAML flow style (`[200, 201]`, `{Host: a}`), cut to a readable length, for
/// comments that quote a setting.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LIMIT: usize = 60;
        let mut text = String::new();
        flow(self, &mut text);
        if text.chars().count() > LIMIT {
            let cut: String = text.chars().take(LIMIT).collect();
            write!(f, "{cut}…")
        } else {
            f.write_str(&text)
        }
    }
}

fn flow(node: &Node, out: &mut String) {
    match &node.value {
        Value::Null => out.push_str("null"),
        Value::Str(s) => out.push_str(&super::profile::scalar(s)),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&super::profile::scalar(key));
                out.push_str(": ");
                flow(value, out);
            }
            out.push('}');
        }
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            out.push_str(&node.scalar().unwrap_or_default());
        }
    }
}

/// The entries of one mapping, taken out one by one as they are mapped; what is left at the end
/// has no equivalent (or is unknown) and is reported.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    /// Where the mapping is (`modules.http_2xx.http`), for messages and comments.
    pub(crate) path: String,
    entries: Vec<(String, Node)>,
}

impl Fields {
    /// No entries, at `path`: a section that is absent.
    pub(crate) fn empty(path: String) -> Fields {
        Fields {
            path,
            entries: Vec::new(),
        }
    }

    /// Takes the value of `key` out, if it is there.
    pub(crate) fn take(&mut self, key: &str) -> Option<Node> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// The path of `key` in this mapping (`modules.http_2xx.http.headers`).
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Takes a string out, or a problem when it is of another kind.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, Problem> {
        let path = self.path_of(key);
        self.take(key).map(|n| n.string(&path)).transpose()
    }

    /// Takes a boolean out, or a problem when it is of another kind.
    pub(crate) fn boolean(&mut self, key: &str) -> Result<Option<bool>, Problem> {
        let path = self.path_of(key);
        self.take(key).map(|n| n.boolean(&path)).transpose()
    }

    /// Takes a mapping out, or a problem when it is of another kind.
    pub(crate) fn fields(&mut self, key: &str) -> Result<Option<Fields>, Problem> {
        let path = self.path_of(key);
        self.take(key).map(|n| n.fields(&path)).transpose()
    }

    /// The entries not taken, in file order.
    pub(crate) fn rest(self) -> Vec<(String, Node)> {
        self.entries
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Value>()? {
            let key = match key {
                Value::Str(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Null => "null".to_string(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom("a mapping key must be a scalar"))
                }
            };
            entries.push((key, map.next_value::<Node>()?));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        crate::config::parse_as::<Node>(text, "").expect("parses")
    }

    #[test]
    fn every_value_keeps_its_line_and_column() {
        let root = parse("modules:\n  a:\n    timeout: 5s\n    codes: [200, 201]\n");
        let mut top = root.fields("").expect("mapping");
        let mut modules = top.fields("modules").expect("ok").expect("present");
        let mut a = modules.fields("a").expect("ok").expect("present");
        let timeout = a.take("timeout").expect("present");
        assert_eq!((timeout.line, timeout.column), (3, 14));
        assert_eq!(timeout.value, Value::Str("5s".to_string()));
        let codes = a.take("codes").expect("present");
        assert_eq!(codes.to_string(), "[200, 201]");
        assert_eq!((codes.line, codes.column), (4, 12));
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_a_problem_at_its_position() {
        let root = parse("timeout: [1]\n");
        let mut top = root.fields("modules.a").expect("mapping");
        let p = top.string("timeout").expect_err("a list is not a string");
        assert_eq!(
            p.to_string(),
            "1:10: modules.a.timeout: expected a string, found a list"
        );
    }

    #[test]
    fn long_values_are_cut_in_comments() {
        let root = parse(&format!("a: {}\n", "x".repeat(100)));
        let mut top = root.fields("").expect("mapping");
        let a = top.take("a").expect("present");
        assert_eq!(a.to_string().chars().count(), 61);
    }
}
