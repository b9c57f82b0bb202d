//! JSONPath as ASL uses it.
//!
//! A *reference path* (`$.a.b`, `$['x y'][0]`) names one node and is what ResultPath requires.
//! Any other JSONPath (wildcards, filters, slices, recursive descent) is a query whose result is
//! the array of every match, as the Jayway implementation behind Step Functions returns it.
//! A path starting with `$$` reads the context object instead of the state's input.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Which document a path reads: the state's data (`$`) or the context object (`$$`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Data,
    Context,
}

#[derive(Debug, Clone)]
pub enum PathKind {
    Reference(Vec<Segment>),
    Query(serde_json_path::JsonPath),
}

#[derive(Debug, Clone)]
pub struct Path {
    pub text: String,
    pub root: Root,
    pub kind: PathKind,
}

impl Path {
    /// Parses any ASL path.
    pub fn parse(text: &str) -> Result<Path, String> {
        let (root, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (Root::Context, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (Root::Data, rest)
        } else {
            return Err(format!("path {text:?} must start with '$'"));
        };
        if let Some(segments) = parse_reference(rest) {
            return Ok(Path {
                text: text.to_string(),
                root,
                kind: PathKind::Reference(segments),
            });
        }
        let query = serde_json_path::JsonPath::parse(&format!("${rest}"))
            .map_err(|e| format!("invalid JSONPath {text:?}: {e}"))?;
        Ok(Path {
            text: text.to_string(),
            root,
            kind: PathKind::Query(query),
        })
    }

    /// Parses a path that must name exactly one node (ResultPath, ErrorPath, ...).
    pub fn parse_reference(text: &str) -> Result<Path, String> {
        let path = Path::parse(text)?;
        match path.kind {
            PathKind::Reference(_) => Ok(path),
            PathKind::Query(_) => Err(format!(
                "{text:?} is not a reference path (no wildcards, filters or slices allowed)"
            )),
        }
    }

    pub fn is_reference(&self) -> bool {
        matches!(self.kind, PathKind::Reference(_))
    }

    /// The value the path selects, or `None` when a reference path names nothing.
    /// A query always yields an array (possibly empty).
    pub fn select(&self, data: &Value, context: &Value) -> Option<Value> {
        let doc = match self.root {
            Root::Data => data,
            Root::Context => context,
        };
        match &self.kind {
            PathKind::Reference(segments) => get(doc, segments).cloned(),
            PathKind::Query(query) => Some(Value::Array(
                query.query(doc).all().into_iter().cloned().collect(),
            )),
        }
    }

    /// Writes `value` at this reference path inside `target`, creating objects on the way,
    /// as ResultPath does. Fails when the path runs through a non-object or is a query.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), String> {
        let segments = match &self.kind {
            PathKind::Reference(s) => s,
            PathKind::Query(_) => return Err(format!("{:?} is not a reference path", self.text)),
        };
        let mut node = target;
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            match seg {
                Segment::Key(k) => {
                    let obj = match node {
                        Value::Object(o) => o,
                        other => {
                            return Err(format!(
                                "cannot set field {k:?} of {} at {:?}",
                                kind_name(other),
                                self.text
                            ))
                        }
                    };
                    if last {
                        obj.insert(k.clone(), value);
                        return Ok(());
                    }
                    node = obj
                        .entry(k.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                }
                Segment::Index(n) => {
                    let arr = match node {
                        Value::Array(a) if *n < a.len() => a,
                        _ => return Err(format!("no array element [{n}] at {:?}", self.text)),
                    };
                    if last {
                        arr[*n] = value;
                        return Ok(());
                    }
                    node = &mut arr[*n];
                }
            }
        }
        *node = value;
        Ok(())
    }
}

pub fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn get<'a>(mut v: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    for seg in segments {
        v = match (seg, v) {
            (Segment::Key(k), Value::Object(o)) => o.get(k)?,
            (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Parses the part after `$`/`$$` as a chain of names and indexes; `None` when it is anything else.
fn parse_reference(rest: &str) -> Option<Vec<Segment>> {
    let b = rest.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                let name = &rest[start..j];
                if name.is_empty()
                    || name.contains(['*', '?', '(', ')', '@', ',', ':', ']', '\'', '"'])
                {
                    return None;
                }
                out.push(Segment::Key(name.to_string()));
                i = j;
            }
            b'[' => {
                let close = rest[i..].find(']')? + i;
                let inner = rest[i + 1..close].trim();
                if let Ok(n) = inner.parse::<usize>() {
                    out.push(Segment::Index(n));
                } else if inner.len() >= 2
                    && ((inner.starts_with('\'') && inner.ends_with('\''))
                        || (inner.starts_with('"') && inner.ends_with('"')))
                {
                    let name = &inner[1..inner.len() - 1];
                    if name.contains(['\'', '"', '\\']) {
                        return None;
                    }
                    out.push(Segment::Key(name.to_string()));
                } else {
                    return None;
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_paths_select_one_node() {
        let v = json!({"a": {"b c": [1, {"d": true}]}});
        let p = Path::parse("$.a['b c'][1].d").unwrap();
        assert!(p.is_reference());
        assert_eq!(p.select(&v, &Value::Null), Some(json!(true)));
        assert_eq!(Path::parse("$.a.x").unwrap().select(&v, &Value::Null), None);
        assert_eq!(
            Path::parse("$").unwrap().select(&v, &Value::Null),
            Some(v.clone())
        );
    }

    #[test]
    fn queries_yield_arrays() {
        let v = json!({"items": [{"n": 1}, {"n": 2}]});
        let p = Path::parse("$.items[*].n").unwrap();
        assert!(!p.is_reference());
        assert_eq!(p.select(&v, &Value::Null), Some(json!([1, 2])));
        let f = Path::parse("$.items[?(@.n > 1)]").unwrap();
        assert_eq!(f.select(&v, &Value::Null), Some(json!([{"n": 2}])));
    }

    #[test]
    fn context_root() {
        let ctx = json!({"Execution": {"Name": "x"}});
        assert_eq!(
            Path::parse("$$.Execution.Name")
                .unwrap()
                .select(&Value::Null, &ctx),
            Some(json!("x"))
        );
    }

    #[test]
    fn set_creates_objects_and_refuses_non_objects() {
        let mut v = json!({"a": 1});
        Path::parse("$.b.c").unwrap().set(&mut v, json!(2)).unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"c": 2}}));
        assert!(Path::parse("$.a.x").unwrap().set(&mut v, json!(3)).is_err());
        let mut root = json!(1);
        Path::parse("$")
            .unwrap()
            .set(&mut root, json!({"k": 1}))
            .unwrap();
        assert_eq!(root, json!({"k": 1}));
    }

    #[test]
    fn invalid_paths_are_rejected() {
        assert!(Path::parse("a.b").is_err());
        assert!(Path::parse("$.[").is_err());
        assert!(Path::parse_reference("$.a[*]").is_err());
    }
}
