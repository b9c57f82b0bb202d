//! Payload templates: `Parameters`, `ResultSelector`, `ItemSelector`.
//!
//! A key ending in `.$` takes its value from a path (into the data or, with `$$`, the context
//! object) or from an intrinsic function call; the `.$` is dropped from the key.

use crate::error::StatesError;
use crate::intrinsic::Intrinsic;
use crate::path::Path;
use rand::RngCore;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Path(Path),
    Intrinsic(Box<Intrinsic>),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

impl Template {
    pub fn parse(value: &Value) -> Result<Template, String> {
        Ok(match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    if let Some(name) = key.strip_suffix(".$") {
                        let text = v
                            .as_str()
                            .ok_or_else(|| format!("the value of {key:?} must be a path or an intrinsic function string"))?;
                        let t = if Intrinsic::looks_like_call(text) {
                            Template::Intrinsic(Box::new(
                                Intrinsic::parse(text).map_err(|e| format!("{key:?}: {e}"))?,
                            ))
                        } else {
                            Template::Path(Path::parse(text).map_err(|e| format!("{key:?}: {e}"))?)
                        };
                        fields.push((name.to_string(), t));
                    } else {
                        fields.push((key.clone(), Template::parse(v)?));
                    }
                }
                if fields
                    .iter()
                    .all(|(_, t)| matches!(t, Template::Literal(_)))
                {
                    Template::Literal(value.clone())
                } else {
                    Template::Object(fields)
                }
            }
            Value::Array(items) => {
                let parts = items
                    .iter()
                    .map(Template::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                if parts.iter().all(|t| matches!(t, Template::Literal(_))) {
                    Template::Literal(value.clone())
                } else {
                    Template::Array(parts)
                }
            }
            other => Template::Literal(other.clone()),
        })
    }

    /// Builds the payload. A `.$` path that selects nothing fails the state with
    /// States.Runtime and AWS's cause text: AWS and Step Functions Local report it that way
    /// (not as States.ParameterPathFailure), and moto agrees.
    pub fn render(
        &self,
        data: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        self.render_field(data, context, rng, "$")
    }

    fn render_field(
        &self,
        data: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
        key: &str,
    ) -> Result<Value, StatesError> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Path(p) => p.select(data, context).ok_or_else(|| {
                let doc = if p.text.starts_with("$$") { context } else { data };
                StatesError::runtime(format!(
                    "The JSONPath '{}' specified for the field '{key}.$' could not be found in the input '{doc}'",
                    p.text
                ))
            })?,
            Template::Intrinsic(f) => f.eval(data, context, rng)?,
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    out.insert(k.clone(), t.render_field(data, context, rng, k)?);
                }
                Value::Object(out)
            }
            Template::Array(items) => Value::Array(
                items.iter().map(|t| t.render_field(data, context, rng, key)).collect::<Result<_, _>>()?,
            ),
        })
    }
}
