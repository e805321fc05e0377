//! YAML (and JSON, which is YAML) documents as trees that remember where every key and value
//! stands in the file, so that any error can name `file:line:column`.
//!
//! The tree is built from `saphyr-parser`'s event stream. Plain scalars are resolved with the YAML
//! 1.2 core schema (`null`, `true`, `42`, `1.5` ...), quoted scalars are always strings. Anchors
//! and aliases are expanded. Every field path (`spec.http[0].route[1].weight`) is indexed to the
//! position of its key, or of the item for sequence elements.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One value in a document, with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry: its key (always rendered as a string) and where the key stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    /// The value under `key` if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The string value of this node, if it is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Converts the tree to JSON for typed deserialization. Non-string keys become strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// One YAML document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: Node,
    /// Path → position of the key (or sequence item) it names.
    pub index: PathIndex,
}

/// Positions of every field path in a document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PathIndex {
    positions: HashMap<String, Pos>,
}

impl PathIndex {
    fn build(root: &Node) -> PathIndex {
        let mut index = PathIndex::default();
        index.walk(root, String::new());
        index
    }

    fn walk(&mut self, node: &Node, path: String) {
        match &node.value {
            Value::Map(entries) => {
                for e in entries {
                    let child = if path.is_empty() {
                        e.key.clone()
                    } else {
                        format!("{path}.{}", e.key)
                    };
                    self.positions.insert(child.clone(), e.key_pos);
                    self.walk(&e.value, child);
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let child = format!("{path}[{i}]");
                    self.positions.insert(child.clone(), item.pos);
                    self.walk(item, child);
                }
            }
            _ => {}
        }
    }

    /// The position of `path`, or of its nearest ancestor that exists in the document (a missing
    /// required field is reported where its parent stands).
    pub fn locate(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A syntax error in a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of a YAML (or JSON) text. Empty documents are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut builder = TreeBuilder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        builder.push(event, &span)?;
    }
    Ok(builder
        .documents
        .into_iter()
        .filter(|root| root.value != Value::Null)
        .map(|root| Document {
            index: PathIndex::build(&root),
            root,
        })
        .collect())
}

/// A container being filled while events arrive.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        pending_key: Option<(String, Pos)>,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
}

impl TreeBuilder {
    fn push(&mut self, event: Event<'_>, span: &Span) -> Result<(), SyntaxError> {
        let pos = Pos::from_span(span);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node {
                    pos,
                    value: resolve_scalar(&text, style),
                };
                self.remember(anchor, &node);
                self.add(node)
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let node = Node {
                        pos,
                        value: node.value.clone(),
                    };
                    self.add(node)
                }
                None => Err(SyntaxError {
                    pos,
                    message: "alias to an unknown anchor".to_string(),
                }),
            },
            Event::DocumentStart(_) => Ok(()),
            Event::DocumentEnd => {
                // A document with no content at all still ends: keep the count of documents
                // aligned only with real content.
                Ok(())
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(()),
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn close(&mut self) -> Result<(), SyntaxError> {
        let node = match self.stack.pop() {
            Some(Frame::Seq { pos, anchor, items }) => {
                let node = Node {
                    pos,
                    value: Value::Seq(items),
                };
                self.remember(anchor, &node);
                node
            }
            Some(Frame::Map {
                pos,
                anchor,
                entries,
                ..
            }) => {
                let node = Node {
                    pos,
                    value: Value::Map(entries),
                };
                self.remember(anchor, &node);
                node
            }
            None => return Ok(()),
        };
        self.add(node)
    }

    fn add(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => {
                self.documents.push(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => {
                match pending_key.take() {
                    Some((key, key_pos)) => {
                        if entries.iter().any(|e| e.key == key) {
                            return Err(SyntaxError {
                                pos: key_pos,
                                message: format!("duplicate key {key:?}"),
                            });
                        }
                        entries.push(Entry {
                            key,
                            key_pos,
                            value: node,
                        });
                    }
                    None => *pending_key = Some((key_text(&node), node.pos)),
                }
                Ok(())
            }
        }
    }
}

/// Renders a mapping key as a string (`8080` and `"8080"` are the same key).
fn key_text(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Seq(_) | Value::Map(_) => serde_json::to_string(&node.to_json()).unwrap_or_default(),
    }
}

/// Resolves a scalar with the YAML 1.2 core schema.
fn resolve_scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = parse_int(text) {
        return Value::Int(int);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn looks_like_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_items() {
        let text = "kind: VirtualService\nspec:\n  http:\n  - route:\n    - destination:\n        host: a\n      weight: -1\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 1);
        let idx = &docs[0].index;
        assert_eq!(
            idx.locate("spec.http[0].route[0].weight"),
            Some(Pos { line: 7, column: 7 })
        );
        assert_eq!(idx.locate("spec.http[0]"), Some(Pos { line: 4, column: 5 }));
        // A missing field is located at its nearest ancestor.
        assert_eq!(
            idx.locate("spec.http[0].route[0].destination.subset"),
            Some(Pos { line: 5, column: 7 })
        );
    }

    #[test]
    fn multi_document_and_scalars() {
        let text = "---\na: 1\nb: \"2\"\nc: 1.5\nd: true\ne: ~\n---\n---\nx: [1, 2]\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        let json = docs[0].root.to_json();
        assert_eq!(json["a"], 1);
        assert_eq!(json["b"], "2");
        assert_eq!(json["c"], 1.5);
        assert_eq!(json["d"], true);
        assert!(json["e"].is_null());
        assert_eq!(docs[1].root.to_json()["x"][1], 2);
    }

    #[test]
    fn json_is_yaml() {
        let docs = parse_documents("{\"kind\": \"Gateway\", \"spec\": {\"servers\": []}}").unwrap();
        assert_eq!(
            docs[0].root.get("kind").and_then(Node::as_str),
            Some("Gateway")
        );
    }

    #[test]
    fn anchors_and_aliases_expand() {
        let docs = parse_documents("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(docs[0].root.to_json()["b"]["k"], "v");
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_have_positions() {
        let err = parse_documents("a: [1, 2\n").unwrap_err();
        assert!(err.pos.line >= 1);
        let err = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
    }
}
