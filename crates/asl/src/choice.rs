//! Choice rules (JSONPath query language), as the Choice state evaluates them.
//!
//! A rule is either a comparison — a `Variable` path plus exactly one operator — or a boolean
//! combination (`And`, `Or`, `Not`) of nested rules. Top-level rules of a Choice state also carry
//! `Next`; nested rules must not.
//!
//! Evaluation follows Step Functions:
//! - a value whose type does not fit the operator (StringEquals on a number, NumericEquals on a
//!   string, a TimestampX on a string that is no timestamp, ...) makes the comparison false;
//! - a `Variable` that selects nothing is a `States.Runtime` error, except for `IsPresent`;
//! - the operand path of a `...Path` operator that selects nothing is a `States.Runtime` error;
//! - `And`/`Or` short-circuit, so `IsPresent` can guard a later comparison.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::error::StatesError;
use crate::path::{kind_name, Path};

/// One Choice rule (top-level rules also carry `Next`, see [`Branch`]).
#[derive(Debug, Clone)]
pub struct ChoiceRule {
    pub kind: RuleKind,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    And(Vec<ChoiceRule>),
    Or(Vec<ChoiceRule>),
    Not(Box<ChoiceRule>),
    /// `Variable` plus one operator.
    Test {
        variable: Path,
        test: Test,
    },
}

/// What a comparison rule checks about the value its `Variable` selects.
#[derive(Debug, Clone)]
pub enum Test {
    /// StringX / NumericX / BooleanEquals / TimestampX and their `...Path` twins.
    Compare {
        ty: ValueType,
        cmp: Cmp,
        operand: Operand,
    },
    /// StringMatches (there is no `StringMatchesPath` in ASL).
    Matches(Pattern),
    /// IsPresent: whether the Variable selects anything.
    IsPresent(bool),
    /// IsNull / IsNumeric / IsString / IsBoolean / IsTimestamp.
    IsType(TypeCheck, bool),
}

/// The value type an operator family compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeCheck {
    Null,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

/// The right-hand side of a comparison: a literal from the definition or a path (`...Path`).
#[derive(Debug, Clone)]
pub enum Operand {
    Literal(Typed),
    Path(Path),
}

/// A value already checked against its operator's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    String(String),
    Number(f64),
    Boolean(bool),
    Timestamp(DateTime<FixedOffset>),
}

/// A compiled StringMatches pattern: `*` matches any run of characters (including none),
/// `\*` is a literal star and `\\` a literal backslash.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    Star,
}

/// A top-level Choice: rule + Next.
#[derive(Debug, Clone)]
pub struct Branch {
    pub rule: ChoiceRule,
    pub next: String,
}

impl Branch {
    /// Parses one element of a Choice state's `Choices`: a rule that must carry a string `Next`.
    pub fn parse(rule: &Value) -> Result<Branch, String> {
        let obj = rule
            .as_object()
            .ok_or_else(|| format!("a Choice rule must be an object, got {}", kind_name(rule)))?;
        let next = match obj.get("Next") {
            None => return Err("a top-level Choice rule needs a \"Next\" field".to_string()),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) => return Err("\"Next\" must not be empty".to_string()),
            Some(other) => {
                return Err(format!(
                    "\"Next\" must be a string, got {}",
                    kind_name(other)
                ))
            }
        };
        let rule = parse_rule(obj, true)?;
        Ok(Branch { rule, next })
    }
}

impl ChoiceRule {
    /// Parses a rule object: a comparison (Variable + exactly one operator) or And/Or/Not, nested.
    /// A `Next` is tolerated on the rule itself (it is the top level) but not on nested rules;
    /// use [`Branch::parse`] to require it.
    pub fn parse(rule: &Value) -> Result<ChoiceRule, String> {
        let obj = rule
            .as_object()
            .ok_or_else(|| format!("a Choice rule must be an object, got {}", kind_name(rule)))?;
        parse_rule(obj, true)
    }

    /// Evaluates the rule against the state's effective input and the context object.
    pub fn eval(&self, data: &Value, context: &Value) -> Result<bool, StatesError> {
        match &self.kind {
            RuleKind::And(rules) => {
                for rule in rules {
                    if !rule.eval(data, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            RuleKind::Or(rules) => {
                for rule in rules {
                    if rule.eval(data, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            RuleKind::Not(rule) => Ok(!rule.eval(data, context)?),
            RuleKind::Test { variable, test } => {
                let value = variable.select(data, context);
                if let Test::IsPresent(expected) = test {
                    return Ok(value.is_some() == *expected);
                }
                let value = value.ok_or_else(|| invalid_path(variable))?;
                match test {
                    Test::IsPresent(_) => unreachable!("handled above"),
                    Test::IsType(check, expected) => Ok(check.holds(&value) == *expected),
                    Test::Matches(pattern) => {
                        Ok(matches!(&value, Value::String(s) if pattern.matches(s)))
                    }
                    Test::Compare { ty, cmp, operand } => {
                        let right = match operand {
                            Operand::Literal(lit) => lit.clone(),
                            Operand::Path(path) => {
                                let v = path
                                    .select(data, context)
                                    .ok_or_else(|| invalid_path(path))?;
                                match typed(*ty, &v) {
                                    Some(t) => t,
                                    None => return Ok(false),
                                }
                            }
                        };
                        let Some(left) = typed(*ty, &value) else {
                            return Ok(false);
                        };
                        Ok(compare(&left, &right).is_some_and(|o| cmp.holds(o)))
                    }
                }
            }
        }
    }
}

fn invalid_path(path: &Path) -> StatesError {
    StatesError::runtime(format!(
        "Invalid path '{}': The choice state's condition path references an invalid value.",
        path.text
    ))
}

impl Cmp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Equals => o == Ordering::Equal,
            Cmp::LessThan => o == Ordering::Less,
            Cmp::GreaterThan => o == Ordering::Greater,
            Cmp::LessThanEquals => o != Ordering::Greater,
            Cmp::GreaterThanEquals => o != Ordering::Less,
        }
    }
}

impl TypeCheck {
    fn holds(self, v: &Value) -> bool {
        match self {
            TypeCheck::Null => v.is_null(),
            TypeCheck::Numeric => v.is_number(),
            TypeCheck::String => v.is_string(),
            TypeCheck::Boolean => v.is_boolean(),
            TypeCheck::Timestamp => v.as_str().and_then(parse_timestamp).is_some(),
        }
    }
}

/// The value as the type an operator compares, or `None` when it is of another type.
fn typed(ty: ValueType, v: &Value) -> Option<Typed> {
    match (ty, v) {
        (ValueType::String, Value::String(s)) => Some(Typed::String(s.clone())),
        (ValueType::Numeric, Value::Number(n)) => n.as_f64().map(Typed::Number),
        (ValueType::Boolean, Value::Bool(b)) => Some(Typed::Boolean(*b)),
        (ValueType::Timestamp, Value::String(s)) => parse_timestamp(s).map(Typed::Timestamp),
        _ => None,
    }
}

fn compare(a: &Typed, b: &Typed) -> Option<Ordering> {
    match (a, b) {
        // Java (behind Step Functions) orders strings by UTF-16 code units.
        (Typed::String(a), Typed::String(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
        (Typed::Number(a), Typed::Number(b)) => a.partial_cmp(b),
        (Typed::Boolean(a), Typed::Boolean(b)) => Some(a.cmp(b)),
        (Typed::Timestamp(a), Typed::Timestamp(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// An RFC 3339 timestamp as Step Functions accepts it: uppercase `T` between date and time,
/// uppercase `Z` or a numeric offset.
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.as_bytes().get(10) != Some(&b'T') || s.contains(['t', 'z', ' ']) {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

impl Pattern {
    pub fn parse(text: &str) -> Pattern {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&e @ ('*' | '\\')) => {
                        chars.next();
                        tokens.push(Token::Char(e));
                    }
                    // A backslash escaping nothing special stands for itself.
                    _ => tokens.push(Token::Char('\\')),
                },
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                c => tokens.push(Token::Char(c)),
            }
        }
        Pattern {
            text: text.to_string(),
            tokens,
        }
    }

    /// Whether the whole of `s` matches the pattern.
    pub fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let toks = &self.tokens;
        let (mut p, mut i) = (0usize, 0usize);
        // Position of the last star seen and the input position it is currently matched up to.
        let mut backtrack: Option<(usize, usize)> = None;
        while i < s.len() {
            match toks.get(p) {
                Some(Token::Star) => {
                    backtrack = Some((p, i));
                    p += 1;
                    continue;
                }
                Some(Token::Char(c)) if *c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            match backtrack {
                Some((sp, si)) => {
                    backtrack = Some((sp, si + 1));
                    p = sp + 1;
                    i = si + 1;
                }
                None => return false,
            }
        }
        toks[p..].iter().all(|t| *t == Token::Star)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// What an operator name stands for.
enum OpSpec {
    Compare(ValueType, Cmp, bool),
    Matches,
    IsPresent,
    IsType(TypeCheck),
}

fn operator(name: &str) -> Option<OpSpec> {
    let (base, is_path) = match name.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let cmp_of = |rest: &str| match rest {
        "Equals" => Some(Cmp::Equals),
        "LessThan" => Some(Cmp::LessThan),
        "GreaterThan" => Some(Cmp::GreaterThan),
        "LessThanEquals" => Some(Cmp::LessThanEquals),
        "GreaterThanEquals" => Some(Cmp::GreaterThanEquals),
        _ => None,
    };
    if let Some(rest) = base.strip_prefix("String") {
        if rest == "Matches" {
            return (!is_path).then_some(OpSpec::Matches);
        }
        return cmp_of(rest).map(|c| OpSpec::Compare(ValueType::String, c, is_path));
    }
    if let Some(rest) = base.strip_prefix("Numeric") {
        return cmp_of(rest).map(|c| OpSpec::Compare(ValueType::Numeric, c, is_path));
    }
    if let Some(rest) = base.strip_prefix("Timestamp") {
        return cmp_of(rest).map(|c| OpSpec::Compare(ValueType::Timestamp, c, is_path));
    }
    if base == "BooleanEquals" {
        return Some(OpSpec::Compare(ValueType::Boolean, Cmp::Equals, is_path));
    }
    if is_path {
        return None;
    }
    Some(match name {
        "IsPresent" => OpSpec::IsPresent,
        "IsNull" => OpSpec::IsType(TypeCheck::Null),
        "IsNumeric" => OpSpec::IsType(TypeCheck::Numeric),
        "IsString" => OpSpec::IsType(TypeCheck::String),
        "IsBoolean" => OpSpec::IsType(TypeCheck::Boolean),
        "IsTimestamp" => OpSpec::IsType(TypeCheck::Timestamp),
        _ => return None,
    })
}

const COMBINATORS: [&str; 3] = ["And", "Or", "Not"];

fn parse_rule(obj: &Map<String, Value>, top_level: bool) -> Result<ChoiceRule, String> {
    let mut ops: Vec<&str> = Vec::new();
    for (key, value) in obj {
        match key.as_str() {
            "Variable" => {}
            "Next" if top_level => {}
            "Next" => {
                return Err(
                    "\"Next\" is only allowed on top-level Choice rules, not inside And/Or/Not"
                        .to_string(),
                )
            }
            "Comment" => {
                if !value.is_string() {
                    return Err(format!(
                        "\"Comment\" must be a string, got {}",
                        kind_name(value)
                    ));
                }
            }
            k if COMBINATORS.contains(&k) || operator(k).is_some() => ops.push(k),
            k => return Err(format!("unknown Choice rule field or operator {k:?}")),
        }
    }
    let op = match ops.as_slice() {
        [] => {
            return Err(
                "a Choice rule needs one comparison operator (with \"Variable\") or And/Or/Not"
                    .to_string(),
            )
        }
        [one] => *one,
        several => {
            return Err(format!(
                "a Choice rule must have exactly one operator, found {}",
                several
                    .iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    };
    let operand = &obj[op];

    if COMBINATORS.contains(&op) {
        if obj.contains_key("Variable") {
            return Err(format!("\"Variable\" cannot be combined with {op:?}"));
        }
        let kind = if op == "Not" {
            let inner = operand.as_object().ok_or_else(|| {
                format!(
                    "\"Not\" must be a Choice rule object, got {}",
                    kind_name(operand)
                )
            })?;
            RuleKind::Not(Box::new(
                parse_rule(inner, false).map_err(|e| format!("Not: {e}"))?,
            ))
        } else {
            let items = operand.as_array().ok_or_else(|| {
                format!(
                    "{op:?} must be an array of Choice rules, got {}",
                    kind_name(operand)
                )
            })?;
            if items.is_empty() {
                return Err(format!("{op:?} must not be empty"));
            }
            let rules = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let inner = item.as_object().ok_or_else(|| {
                        format!(
                            "{op}[{i}]: a Choice rule must be an object, got {}",
                            kind_name(item)
                        )
                    })?;
                    parse_rule(inner, false).map_err(|e| format!("{op}[{i}]: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if op == "And" {
                RuleKind::And(rules)
            } else {
                RuleKind::Or(rules)
            }
        };
        return Ok(ChoiceRule { kind });
    }

    let variable = match obj.get("Variable") {
        None => return Err(format!("{op:?} needs a \"Variable\" field")),
        Some(Value::String(text)) => parse_path("Variable", text)?,
        Some(other) => {
            return Err(format!(
                "\"Variable\" must be a string path, got {}",
                kind_name(other)
            ))
        }
    };
    let test = match operator(op).expect("checked above") {
        OpSpec::IsPresent => Test::IsPresent(expect_bool(op, operand)?),
        OpSpec::IsType(check) => Test::IsType(check, expect_bool(op, operand)?),
        OpSpec::Matches => match operand {
            Value::String(s) => Test::Matches(Pattern::parse(s)),
            other => return Err(format!("{op:?} must be a string, got {}", kind_name(other))),
        },
        OpSpec::Compare(ty, cmp, true) => match operand {
            Value::String(text) => Test::Compare {
                ty,
                cmp,
                operand: Operand::Path(parse_path(op, text)?),
            },
            other => {
                return Err(format!(
                    "{op:?} must be a string path, got {}",
                    kind_name(other)
                ))
            }
        },
        OpSpec::Compare(ty, cmp, false) => Test::Compare {
            ty,
            cmp,
            operand: Operand::Literal(literal(op, ty, operand)?),
        },
    };
    Ok(ChoiceRule {
        kind: RuleKind::Test { variable, test },
    })
}

fn parse_path(field: &str, text: &str) -> Result<Path, String> {
    Path::parse_reference(text).map_err(|e| format!("{field:?} is not a valid reference path: {e}"))
}

fn expect_bool(op: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{op:?} must be a boolean, got {}", kind_name(v)))
}

fn literal(op: &str, ty: ValueType, v: &Value) -> Result<Typed, String> {
    let wanted = match ty {
        ValueType::String => "a string",
        ValueType::Numeric => "a number",
        ValueType::Boolean => "a boolean",
        ValueType::Timestamp => "a timestamp string",
    };
    if let (ValueType::Timestamp, Value::String(s)) = (ty, v) {
        return parse_timestamp(s).map(Typed::Timestamp).ok_or_else(|| {
            format!("{op:?}: {s:?} is not an RFC 3339 timestamp such as \"2016-08-18T17:33:00Z\"")
        });
    }
    typed(ty, v).ok_or_else(|| format!("{op:?} must be {wanted}, got {}", kind_name(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> ChoiceRule {
        ChoiceRule::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn eval(r: Value, data: Value) -> bool {
        rule(r).eval(&data, &Value::Null).unwrap()
    }

    fn parse_err(v: Value) -> String {
        match ChoiceRule::parse(&v) {
            Ok(r) => panic!("{v} parsed: {r:?}"),
            Err(e) => e,
        }
    }

    fn eval_err(r: Value, data: Value) -> StatesError {
        rule(r).eval(&data, &Value::Null).unwrap_err()
    }

    /// Evaluates `op` with the literal `operand` and again as the `...Path` twin reading the
    /// operand from the data; both must agree with `expected`.
    fn both(op: &str, var: Value, operand: Value, expected: bool) {
        let data = json!({"v": var, "o": operand});
        let lit = json!({"Variable": "$.v", op: operand});
        assert_eq!(eval(lit.clone(), data.clone()), expected, "{lit} on {data}");
        let path_op = format!("{op}Path");
        let p = json!({"Variable": "$.v", path_op: "$.o"});
        assert_eq!(eval(p.clone(), data.clone()), expected, "{p} on {data}");
    }

    // ----- string operators -----

    #[test]
    fn string_equals() {
        both("StringEquals", json!("abc"), json!("abc"), true);
        both("StringEquals", json!("abc"), json!("abd"), false);
        both("StringEquals", json!(""), json!(""), true);
        both("StringEquals", json!("ABC"), json!("abc"), false);
    }

    #[test]
    fn string_ordering() {
        both("StringLessThan", json!("abc"), json!("abd"), true);
        both("StringLessThan", json!("abc"), json!("abc"), false);
        both("StringLessThan", json!("ab"), json!("abc"), true);
        both("StringGreaterThan", json!("b"), json!("abc"), true);
        both("StringGreaterThan", json!("abc"), json!("abc"), false);
        both("StringLessThanEquals", json!("abc"), json!("abc"), true);
        both("StringLessThanEquals", json!("abd"), json!("abc"), false);
        both("StringGreaterThanEquals", json!("abc"), json!("abc"), true);
        both("StringGreaterThanEquals", json!("abb"), json!("abc"), false);
        // Uppercase sorts before lowercase (code unit order).
        both("StringLessThan", json!("Z"), json!("a"), true);
    }

    #[test]
    fn string_order_is_utf16() {
        // U+FF61 is one UTF-16 unit 0xFF61; U+1F600 is the surrogate pair 0xD83D 0xDE00.
        // Java orders the emoji first; byte/code-point order would put it last.
        both(
            "StringLessThan",
            json!("\u{1F600}"),
            json!("\u{FF61}"),
            true,
        );
    }

    #[test]
    fn string_operators_on_other_types_are_false() {
        for v in [
            json!(1),
            json!(true),
            json!(null),
            json!(["a"]),
            json!({"a": "a"}),
        ] {
            both("StringEquals", v.clone(), json!("a"), false);
            both("StringLessThan", v.clone(), json!("zzz"), false);
            both("StringGreaterThanEquals", v.clone(), json!(""), false);
            assert!(!eval(
                json!({"Variable": "$.v", "StringMatches": "*"}),
                json!({"v": v})
            ));
        }
        // A ...Path operand of the wrong type is false too.
        let data = json!({"v": "1", "o": 1});
        assert!(!eval(
            json!({"Variable": "$.v", "StringEqualsPath": "$.o"}),
            data
        ));
    }

    #[test]
    fn string_matches() {
        let m = |pattern: &str, s: &str| {
            eval(
                json!({"Variable": "$.v", "StringMatches": pattern}),
                json!({"v": s}),
            )
        };
        assert!(m("log-*.txt", "log-2024.txt"));
        assert!(m("log-*.txt", "log-.txt"));
        assert!(!m("log-*.txt", "log-2024.txt.bak"));
        assert!(!m("log-*.txt", "xlog-1.txt"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exactly"));
        assert!(m("*.log", "a.b.log"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("**ab", "aab"));
        assert!(m("*a*a*a*", "banana and"));
        assert!(!m("*a*a*a*a*", "banana"));
        // Escapes: \* is a literal star, \\ a literal backslash.
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "aXb"));
        assert!(m(r"a\\b", r"a\b"));
        assert!(!m(r"a\\b", r"a\\b"));
        assert!(m(r"a\\*", r"a\anything"));
        assert!(m(r"*\*", "five*"));
        assert!(!m(r"*\*", "five"));
        // A backslash before anything else stands for itself.
        assert!(m(r"a\b", r"a\b"));
        assert!(m(r"end\", r"end\"));
        // Non-ASCII characters are single characters.
        assert!(m("h*é", "héééé"));
        assert!(m("ü?", "ü?"));
        assert!(!m("?", "x"));
    }

    #[test]
    fn string_matches_has_no_path_twin() {
        let e = parse_err(json!({"Variable": "$.v", "StringMatchesPath": "$.p"}));
        assert!(e.contains("StringMatchesPath"), "{e}");
    }

    // ----- numeric operators -----

    #[test]
    fn numeric_equals() {
        both("NumericEquals", json!(1), json!(1), true);
        both("NumericEquals", json!(1), json!(1.0), true);
        both("NumericEquals", json!(1.5), json!(1.5), true);
        both("NumericEquals", json!(-3), json!(3), false);
        both("NumericEquals", json!(0), json!(-0.0), true);
        both("NumericEquals", json!(u64::MAX), json!(u64::MAX), true);
    }

    #[test]
    fn numeric_ordering() {
        both("NumericLessThan", json!(1), json!(2), true);
        both("NumericLessThan", json!(2), json!(2), false);
        both("NumericLessThan", json!(1.99), json!(2), true);
        both("NumericLessThan", json!(-5), json!(3u64), true);
        both("NumericGreaterThan", json!(2.5), json!(2), true);
        both("NumericGreaterThan", json!(2), json!(2.0), false);
        both("NumericLessThanEquals", json!(2), json!(2.0), true);
        both("NumericLessThanEquals", json!(2.01), json!(2), false);
        both("NumericGreaterThanEquals", json!(2), json!(2), true);
        both("NumericGreaterThanEquals", json!(-1), json!(0), false);
        both("NumericGreaterThan", json!(1e300), json!(i64::MAX), true);
    }

    #[test]
    fn numeric_operators_on_other_types_are_false() {
        for v in [
            json!("1"),
            json!(true),
            json!(null),
            json!([1]),
            json!({"n": 1}),
        ] {
            both("NumericEquals", v.clone(), json!(1), false);
            both("NumericLessThan", v.clone(), json!(100), false);
            both("NumericGreaterThanEquals", v.clone(), json!(-100), false);
        }
        let data = json!({"v": 1, "o": "1"});
        assert!(!eval(
            json!({"Variable": "$.v", "NumericEqualsPath": "$.o"}),
            data
        ));
    }

    // ----- boolean -----

    #[test]
    fn boolean_equals() {
        both("BooleanEquals", json!(true), json!(true), true);
        both("BooleanEquals", json!(false), json!(false), true);
        both("BooleanEquals", json!(true), json!(false), false);
        both("BooleanEquals", json!(false), json!(true), false);
        both("BooleanEquals", json!("true"), json!(true), false);
        both("BooleanEquals", json!(1), json!(true), false);
        both("BooleanEquals", json!(null), json!(false), false);
        let data = json!({"v": true, "o": "true"});
        assert!(!eval(
            json!({"Variable": "$.v", "BooleanEqualsPath": "$.o"}),
            data
        ));
    }

    // ----- timestamps -----

    #[test]
    fn timestamp_equals_compares_instants() {
        both(
            "TimestampEquals",
            json!("2016-08-18T17:33:00Z"),
            json!("2016-08-18T17:33:00Z"),
            true,
        );
        both(
            "TimestampEquals",
            json!("2016-08-18T17:33:00Z"),
            json!("2016-08-18T19:33:00+02:00"),
            true,
        );
        both(
            "TimestampEquals",
            json!("2016-08-18T17:33:00.000Z"),
            json!("2016-08-18T17:33:00Z"),
            true,
        );
        both(
            "TimestampEquals",
            json!("2016-08-18T17:33:00Z"),
            json!("2016-08-18T17:33:01Z"),
            false,
        );
    }

    #[test]
    fn timestamp_ordering() {
        let (a, b) = (
            json!("2016-08-18T17:33:00Z"),
            json!("2016-08-18T17:33:00.5Z"),
        );
        both("TimestampLessThan", a.clone(), b.clone(), true);
        both("TimestampLessThan", b.clone(), a.clone(), false);
        both("TimestampLessThan", a.clone(), a.clone(), false);
        both("TimestampGreaterThan", b.clone(), a.clone(), true);
        both("TimestampGreaterThan", a.clone(), a.clone(), false);
        both("TimestampLessThanEquals", a.clone(), a.clone(), true);
        both("TimestampLessThanEquals", b.clone(), a.clone(), false);
        both("TimestampGreaterThanEquals", a.clone(), a.clone(), true);
        both("TimestampGreaterThanEquals", a.clone(), b.clone(), false);
        // Offsets: 18:00+02:00 is 16:00Z, earlier than 17:00Z even though it reads later.
        both(
            "TimestampLessThan",
            json!("2016-08-18T18:00:00+02:00"),
            json!("2016-08-18T17:00:00Z"),
            true,
        );
        both(
            "TimestampGreaterThan",
            json!("2016-08-18T12:00:00-08:00"),
            json!("2016-08-18T17:00:00Z"),
            true,
        );
    }

    #[test]
    fn timestamp_operators_on_non_timestamps_are_false() {
        let t = json!("2016-08-18T17:33:00Z");
        for v in [
            json!("2016-08-18"),
            json!("not a date"),
            json!("2016-08-18t17:33:00z"),
            json!("2016-08-18 17:33:00Z"),
            json!("2016-08-18T17:33:00"),
            json!(1471541580),
            json!(null),
            json!(true),
        ] {
            both("TimestampEquals", v.clone(), t.clone(), false);
            both(
                "TimestampLessThan",
                v.clone(),
                json!("2999-01-01T00:00:00Z"),
                false,
            );
            both(
                "TimestampGreaterThanEquals",
                v.clone(),
                json!("1970-01-01T00:00:00Z"),
                false,
            );
        }
        let data = json!({"v": "2016-08-18T17:33:00Z", "o": "yesterday"});
        assert!(!eval(
            json!({"Variable": "$.v", "TimestampEqualsPath": "$.o"}),
            data
        ));
    }

    // ----- type tests -----

    #[test]
    fn is_null_numeric_string_boolean() {
        let check = |op: &str, v: Value, expect: bool| {
            let data = json!({ "v": v });
            assert_eq!(
                eval(json!({"Variable": "$.v", op: true}), data.clone()),
                expect,
                "{op} {data}"
            );
            assert_eq!(
                eval(json!({"Variable": "$.v", op: false}), data.clone()),
                !expect,
                "{op}=false {data}"
            );
        };
        check("IsNull", json!(null), true);
        check("IsNull", json!(0), false);
        check("IsNull", json!(""), false);
        check("IsNull", json!("null"), false);
        check("IsNumeric", json!(1), true);
        check("IsNumeric", json!(-1.5), true);
        check("IsNumeric", json!("1"), false);
        check("IsNumeric", json!(null), false);
        check("IsString", json!(""), true);
        check("IsString", json!("x"), true);
        check("IsString", json!(1), false);
        check("IsString", json!(["x"]), false);
        check("IsBoolean", json!(false), true);
        check("IsBoolean", json!(true), true);
        check("IsBoolean", json!("true"), false);
        check("IsBoolean", json!(0), false);
        check("IsTimestamp", json!("2016-08-18T17:33:00Z"), true);
        check(
            "IsTimestamp",
            json!("2016-08-18T17:33:00.123456+05:30"),
            true,
        );
        check("IsTimestamp", json!("2016-08-18T17:33:00-00:00"), true);
        check("IsTimestamp", json!("2016-08-18"), false);
        check("IsTimestamp", json!("2016-08-18T17:33:00"), false);
        check("IsTimestamp", json!("2016-08-18t17:33:00Z"), false);
        check("IsTimestamp", json!("2016-08-18T17:33:00z"), false);
        check("IsTimestamp", json!("2016-13-18T17:33:00Z"), false);
        check("IsTimestamp", json!(1471541580), false);
        check("IsTimestamp", json!(null), false);
    }

    #[test]
    fn is_present() {
        let data = json!({"a": {"b": null}, "arr": [1]});
        assert!(eval(
            json!({"Variable": "$.a.b", "IsPresent": true}),
            data.clone()
        ));
        assert!(!eval(
            json!({"Variable": "$.a.c", "IsPresent": true}),
            data.clone()
        ));
        assert!(eval(
            json!({"Variable": "$.a.c", "IsPresent": false}),
            data.clone()
        ));
        assert!(!eval(
            json!({"Variable": "$.a.b", "IsPresent": false}),
            data.clone()
        ));
        assert!(!eval(
            json!({"Variable": "$.a.b.c", "IsPresent": true}),
            data.clone()
        ));
        assert!(eval(
            json!({"Variable": "$.arr[0]", "IsPresent": true}),
            data.clone()
        ));
        assert!(!eval(
            json!({"Variable": "$.arr[1]", "IsPresent": true}),
            data.clone()
        ));
        assert!(eval(json!({"Variable": "$", "IsPresent": true}), data));
    }

    #[test]
    fn type_tests_on_missing_variable_are_runtime_errors() {
        for op in [
            "IsNull",
            "IsNumeric",
            "IsString",
            "IsBoolean",
            "IsTimestamp",
        ] {
            let e = eval_err(json!({"Variable": "$.missing", op: false}), json!({}));
            assert_eq!(e.error, "States.Runtime", "{op}");
        }
    }

    // ----- paths -----

    #[test]
    fn variable_and_operand_paths_read_the_context() {
        let data = json!({"name": "exec-1", "limit": 3});
        let ctx = json!({"Execution": {"Name": "exec-1"}, "Map": {"Item": {"Index": 2}}});
        let r = rule(json!({"Variable": "$$.Execution.Name", "StringEqualsPath": "$.name"}));
        assert!(r.eval(&data, &ctx).unwrap());
        let r = rule(json!({"Variable": "$.limit", "NumericGreaterThanPath": "$$.Map.Item.Index"}));
        assert!(r.eval(&data, &ctx).unwrap());
        let r = rule(json!({"Variable": "$$.Map.Item.Index", "NumericEquals": 2}));
        assert!(r.eval(&data, &ctx).unwrap());
        let r = rule(json!({"Variable": "$$.Map.Item.Index", "NumericEquals": 3}));
        assert!(!r.eval(&data, &ctx).unwrap());
    }

    #[test]
    fn bracket_and_index_paths() {
        let data = json!({"a b": [{"c": "x"}, {"c": "y"}]});
        assert!(eval(
            json!({"Variable": "$['a b'][1].c", "StringEquals": "y"}),
            data.clone()
        ));
        assert!(eval(
            json!({"Variable": "$['a b'][0].c", "StringLessThanPath": "$['a b'][1].c"}),
            data
        ));
    }

    #[test]
    fn missing_variable_is_runtime_error() {
        let e = eval_err(
            json!({"Variable": "$.x", "StringEquals": "a"}),
            json!({"y": 1}),
        );
        assert_eq!(e.error, "States.Runtime");
        assert_eq!(
            e.cause,
            "Invalid path '$.x': The choice state's condition path references an invalid value."
        );
        assert!(e.is_terminal());
        // Also through a non-object and off the end of an array.
        let e = eval_err(
            json!({"Variable": "$.y.z", "NumericEquals": 1}),
            json!({"y": 1}),
        );
        assert!(e.cause.contains("'$.y.z'"), "{}", e.cause);
        let e = eval_err(
            json!({"Variable": "$.a[3]", "IsNull": true}),
            json!({"a": [1]}),
        );
        assert_eq!(e.error, "States.Runtime");
        let e = eval_err(json!({"Variable": "$.x", "StringMatches": "*"}), json!({}));
        assert_eq!(e.error, "States.Runtime");
        // A missing context path too.
        let r = rule(json!({"Variable": "$$.Map.Item.Value", "IsNull": false}));
        assert_eq!(
            r.eval(&json!({}), &json!({})).unwrap_err().error,
            "States.Runtime"
        );
    }

    #[test]
    fn missing_operand_path_is_runtime_error() {
        for op in [
            "StringEqualsPath",
            "StringLessThanPath",
            "NumericEqualsPath",
            "NumericGreaterThanEqualsPath",
            "BooleanEqualsPath",
            "TimestampLessThanPath",
        ] {
            let e = eval_err(json!({"Variable": "$.v", op: "$.nope"}), json!({"v": 1}));
            assert_eq!(e.error, "States.Runtime", "{op}");
            assert_eq!(
                e.cause,
                "Invalid path '$.nope': The choice state's condition path references an invalid value."
            );
        }
    }

    #[test]
    fn operand_path_to_null_is_false_not_error() {
        let data = json!({"v": "a", "o": null});
        assert!(!eval(
            json!({"Variable": "$.v", "StringEqualsPath": "$.o"}),
            data
        ));
    }

    // ----- And / Or / Not -----

    #[test]
    fn and_or_not() {
        let data = json!({"n": 5, "s": "x"});
        let gt = |n: i64| json!({"Variable": "$.n", "NumericGreaterThan": n});
        assert!(eval(json!({"And": [gt(1), gt(4)]}), data.clone()));
        assert!(!eval(json!({"And": [gt(1), gt(5)]}), data.clone()));
        assert!(eval(json!({"And": [gt(1)]}), data.clone()));
        assert!(eval(json!({"Or": [gt(9), gt(4)]}), data.clone()));
        assert!(!eval(json!({"Or": [gt(9), gt(5)]}), data.clone()));
        assert!(eval(json!({"Not": gt(5)}), data.clone()));
        assert!(!eval(json!({"Not": gt(4)}), data.clone()));
        assert!(eval(json!({"Not": {"Not": gt(4)}}), data.clone()));
    }

    #[test]
    fn deep_nesting() {
        let data = json!({"type": "Private", "value": 25, "tags": {"env": "prod"}});
        let r = json!({
            "And": [
                {"Not": {"Variable": "$.type", "StringEquals": "Public"}},
                {"Or": [
                    {"Variable": "$.value", "NumericLessThan": 0},
                    {"And": [
                        {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                        {"Variable": "$.value", "NumericLessThan": 30}
                    ]}
                ]},
                {"Variable": "$.tags.env", "StringMatches": "pr*"}
            ]
        });
        assert!(eval(r.clone(), data.clone()));
        let mut other = data.clone();
        other["value"] = json!(30);
        assert!(!eval(r.clone(), other));
        let mut public = data;
        public["type"] = json!("Public");
        assert!(!eval(r, public));
    }

    #[test]
    fn and_or_short_circuit_guards_missing_variables() {
        let guarded = json!({"And": [
            {"Variable": "$.x", "IsPresent": true},
            {"Variable": "$.x", "StringEquals": "a"}
        ]});
        assert!(!eval(guarded.clone(), json!({})));
        assert!(eval(guarded, json!({"x": "a"})));
        let either = json!({"Or": [
            {"Variable": "$.x", "IsPresent": false},
            {"Variable": "$.x", "NumericEquals": 1}
        ]});
        assert!(eval(either.clone(), json!({})));
        assert!(eval(either.clone(), json!({"x": 1})));
        assert!(!eval(either, json!({"x": 2})));
        // Without a guard the missing variable is an error, also inside Not.
        let e = eval_err(
            json!({"Not": {"Variable": "$.x", "StringEquals": "a"}}),
            json!({}),
        );
        assert_eq!(e.error, "States.Runtime");
        let e = eval_err(
            json!({"Or": [
                {"Variable": "$.y", "IsNull": true},
                {"Variable": "$.x", "StringEquals": "a"}
            ]}),
            json!({"y": 1}),
        );
        assert_eq!(e.error, "States.Runtime");
    }

    // ----- Branch / Next -----

    #[test]
    fn branch_requires_string_next() {
        let b = Branch::parse(&json!({"Variable": "$.a", "BooleanEquals": true, "Next": "Yes"}))
            .unwrap();
        assert_eq!(b.next, "Yes");
        assert!(b.rule.eval(&json!({"a": true}), &Value::Null).unwrap());
        let b = Branch::parse(
            &json!({"Not": {"Variable": "$.a", "IsNull": true}, "Next": "N", "Comment": "c"}),
        )
        .unwrap();
        assert_eq!(b.next, "N");
        let e = Branch::parse(&json!({"Variable": "$.a", "BooleanEquals": true})).unwrap_err();
        assert!(e.contains("Next"), "{e}");
        let e = Branch::parse(&json!({"Variable": "$.a", "BooleanEquals": true, "Next": 1}))
            .unwrap_err();
        assert!(e.contains("Next"), "{e}");
        let e = Branch::parse(&json!({"Variable": "$.a", "BooleanEquals": true, "Next": ""}))
            .unwrap_err();
        assert!(e.contains("Next"), "{e}");
        let e = Branch::parse(&json!("StringEquals")).unwrap_err();
        assert!(e.contains("object"), "{e}");
        // Rule errors surface through Branch::parse too.
        let e = Branch::parse(&json!({"Variable": "$.a", "NumericEquals": "1", "Next": "X"}))
            .unwrap_err();
        assert!(e.contains("NumericEquals"), "{e}");
    }

    #[test]
    fn nested_rules_must_not_have_next() {
        let e = Branch::parse(&json!({
            "And": [{"Variable": "$.a", "IsNull": true, "Next": "X"}],
            "Next": "Y"
        }))
        .unwrap_err();
        assert!(e.contains("Next") && e.contains("And[0]"), "{e}");
        let e = parse_err(json!({"Not": {"Variable": "$.a", "IsNull": true, "Next": "X"}}));
        assert!(e.contains("Next") && e.contains("Not"), "{e}");
        // ChoiceRule::parse tolerates Next on the rule it is given.
        assert!(
            ChoiceRule::parse(&json!({"Variable": "$.a", "IsNull": true, "Next": "X"})).is_ok()
        );
    }

    // ----- parse errors -----

    #[test]
    fn unknown_operator() {
        let e = parse_err(json!({"Variable": "$.a", "StringContains": "x"}));
        assert!(e.contains("StringContains"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "IsNullPath": "$.b"}));
        assert!(e.contains("IsNullPath"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "NumericEquals": 1, "Extra": 1}));
        assert!(e.contains("Extra"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "stringequals": "x"}));
        assert!(e.contains("stringequals"), "{e}");
    }

    #[test]
    fn no_or_several_operators() {
        let e = parse_err(json!({"Variable": "$.a"}));
        assert!(e.contains("operator"), "{e}");
        let e = parse_err(json!({}));
        assert!(e.contains("operator"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "StringEquals": "x", "StringLessThan": "y"}));
        assert!(
            e.contains("StringEquals") && e.contains("StringLessThan"),
            "{e}"
        );
        let e =
            parse_err(json!({"Variable": "$.a", "NumericEquals": 1, "NumericEqualsPath": "$.b"}));
        assert!(
            e.contains("NumericEquals") && e.contains("NumericEqualsPath"),
            "{e}"
        );
        let e = parse_err(
            json!({"And": [{"Variable": "$.a", "IsNull": true}], "Or": [{"Variable": "$.a", "IsNull": true}]}),
        );
        assert!(e.contains("And") && e.contains("Or"), "{e}");
        let e = parse_err(
            json!({"Variable": "$.a", "IsNull": true, "Not": {"Variable": "$.a", "IsNull": true}}),
        );
        assert!(e.contains("IsNull") && e.contains("Not"), "{e}");
    }

    #[test]
    fn missing_or_bad_variable() {
        let e = parse_err(json!({"StringEquals": "x"}));
        assert!(e.contains("Variable") && e.contains("StringEquals"), "{e}");
        let e = parse_err(json!({"Variable": 3, "StringEquals": "x"}));
        assert!(e.contains("Variable"), "{e}");
        let e = parse_err(json!({"Variable": "a.b", "StringEquals": "x"}));
        assert!(e.contains("Variable"), "{e}");
        let e = parse_err(json!({"Variable": "$.[", "StringEquals": "x"}));
        assert!(e.contains("Variable"), "{e}");
        // Variable must be a reference path, not a query.
        let e = parse_err(json!({"Variable": "$.items[*].n", "NumericEquals": 1}));
        assert!(e.contains("Variable") && e.contains("reference"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "And": [{"Variable": "$.a", "IsNull": true}]}));
        assert!(e.contains("Variable") && e.contains("And"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "Not": {"Variable": "$.a", "IsNull": true}}));
        assert!(e.contains("Variable") && e.contains("Not"), "{e}");
    }

    #[test]
    fn invalid_operand_path() {
        let e = parse_err(json!({"Variable": "$.a", "StringEqualsPath": "b"}));
        assert!(e.contains("StringEqualsPath"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "NumericLessThanPath": "$..x"}));
        assert!(e.contains("NumericLessThanPath"), "{e}");
        let e = parse_err(json!({"Variable": "$.a", "TimestampEqualsPath": 5}));
        assert!(
            e.contains("TimestampEqualsPath") && e.contains("string"),
            "{e}"
        );
    }

    #[test]
    fn wrong_operand_types() {
        let cases = [
            ("StringEquals", json!(1)),
            ("StringLessThan", json!(null)),
            ("StringGreaterThanEquals", json!(true)),
            ("StringMatches", json!(5)),
            ("NumericEquals", json!("1")),
            ("NumericLessThan", json!(true)),
            ("NumericGreaterThanEquals", json!([1])),
            ("BooleanEquals", json!("true")),
            ("BooleanEquals", json!(1)),
            ("TimestampEquals", json!(1471541580)),
            ("TimestampLessThan", json!(null)),
            ("IsNull", json!("true")),
            ("IsPresent", json!(1)),
            ("IsNumeric", json!(null)),
            ("IsString", json!("yes")),
            ("IsBoolean", json!(0)),
            ("IsTimestamp", json!("2016-08-18T17:33:00Z")),
        ];
        for (op, operand) in cases {
            let e = parse_err(json!({"Variable": "$.a", op: operand}));
            assert!(e.contains(op), "{op}: {e}");
        }
    }

    #[test]
    fn invalid_timestamp_literals() {
        for bad in [
            "2016-08-18",
            "2016-08-18T17:33:00",
            "2016-08-18 17:33:00Z",
            "2016-08-18t17:33:00Z",
            "2016-08-18T17:33:00z",
            "2016-02-30T00:00:00Z",
            "18/08/2016",
            "",
        ] {
            for op in [
                "TimestampEquals",
                "TimestampGreaterThan",
                "TimestampLessThanEquals",
            ] {
                let e = parse_err(json!({"Variable": "$.a", op: bad}));
                assert!(
                    e.contains(op) && e.contains("timestamp"),
                    "{op} {bad:?}: {e}"
                );
            }
        }
    }

    #[test]
    fn bad_and_or_not() {
        let e = parse_err(json!({"And": []}));
        assert!(e.contains("And") && e.contains("empty"), "{e}");
        let e = parse_err(json!({"Or": []}));
        assert!(e.contains("Or") && e.contains("empty"), "{e}");
        let e = parse_err(json!({"And": {"Variable": "$.a", "IsNull": true}}));
        assert!(e.contains("And") && e.contains("array"), "{e}");
        let e = parse_err(json!({"Or": ["x"]}));
        assert!(e.contains("Or[0]"), "{e}");
        let e = parse_err(json!({"Not": [{"Variable": "$.a", "IsNull": true}]}));
        assert!(e.contains("Not"), "{e}");
        // Errors deep inside name where they are.
        let e = parse_err(json!({"Or": [
            {"Variable": "$.a", "IsNull": true},
            {"And": [{"Variable": "$.a", "NumericEquals": "one"}]}
        ]}));
        assert!(
            e.starts_with("Or[1]: And[0]:") && e.contains("NumericEquals"),
            "{e}"
        );
    }

    #[test]
    fn non_object_rules_and_bad_comment() {
        assert!(parse_err(json!("x")).contains("object"));
        assert!(parse_err(json!(null)).contains("object"));
        let e = parse_err(json!({"Variable": "$.a", "IsNull": true, "Comment": 1}));
        assert!(e.contains("Comment"), "{e}");
        assert!(
            ChoiceRule::parse(&json!({"Variable": "$.a", "IsNull": true, "Comment": "ok"})).is_ok()
        );
    }

    #[test]
    fn every_operator_is_accepted() {
        let lits = [
            ("StringEquals", json!("a")),
            ("StringLessThan", json!("a")),
            ("StringGreaterThan", json!("a")),
            ("StringLessThanEquals", json!("a")),
            ("StringGreaterThanEquals", json!("a")),
            ("StringMatches", json!("a*")),
            ("NumericEquals", json!(1)),
            ("NumericLessThan", json!(1)),
            ("NumericGreaterThan", json!(1.5)),
            ("NumericLessThanEquals", json!(-1)),
            ("NumericGreaterThanEquals", json!(0)),
            ("BooleanEquals", json!(false)),
            ("TimestampEquals", json!("2016-08-18T17:33:00Z")),
            ("TimestampLessThan", json!("2016-08-18T17:33:00Z")),
            ("TimestampGreaterThan", json!("2016-08-18T17:33:00Z")),
            ("TimestampLessThanEquals", json!("2016-08-18T17:33:00Z")),
            ("TimestampGreaterThanEquals", json!("2016-08-18T17:33:00Z")),
            ("IsNull", json!(true)),
            ("IsPresent", json!(true)),
            ("IsNumeric", json!(true)),
            ("IsString", json!(true)),
            ("IsBoolean", json!(true)),
            ("IsTimestamp", json!(true)),
        ];
        for (op, v) in lits {
            rule(json!({"Variable": "$.a", op: v}));
            let is_type = op.starts_with("Is");
            let path_ok =
                ChoiceRule::parse(&json!({"Variable": "$.a", format!("{op}Path"): "$.b"})).is_ok();
            assert_eq!(path_ok, !is_type && op != "StringMatches", "{op}Path");
        }
    }
}
