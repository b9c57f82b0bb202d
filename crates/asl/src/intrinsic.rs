//! Intrinsic functions of the JSONPath query language: `States.Format('Hello {}', $.name)` and
//! the rest of the `States.*` family, as the Step Functions developer guide describes them
//! ("Intrinsic functions for JSONPath states").
//!
//! A call is parsed once ([`Intrinsic::parse`]) into a small tree and evaluated against the
//! state's data and the context object ([`Intrinsic::eval`]). Arguments are string literals in
//! single quotes (escapes `\'`, `\{`, `\}`, `\\`), numbers, `true`, `false`, `null`, paths
//! (`$.x`, `$$.Execution.Id`, `$`) and nested calls.
//!
//! Every misuse found while evaluating (wrong type, value out of range, a path that selects
//! nothing) is a `States.IntrinsicFailure` whose cause starts with the function's name.

use std::collections::HashSet;
use std::fmt::Write as _;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Number, Value};

use crate::error::StatesError;
use crate::path::{kind_name, Path, Root};

/// Input limit of States.Base64Encode, States.Base64Decode and States.Hash, in characters.
const MAX_ENCODING_INPUT_CHARS: usize = 10_000;
/// Largest array States.ArrayRange may build.
const MAX_RANGE_ITEMS: i128 = 1000;
/// Guard against pathological nesting while parsing (AWS itself allows about 10 nested calls).
const MAX_PARSE_DEPTH: usize = 64;
/// States.MathAdd accepts 32-bit signed integers only.
const MATH_ADD_MIN: i64 = i32::MIN as i64;
const MATH_ADD_MAX: i64 = i32::MAX as i64;

/// Base64 decoding as Java's decoder does it: the trailing `=` padding is optional.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A parsed intrinsic function call, with its (possibly nested) arguments.
#[derive(Debug, Clone)]
pub struct Intrinsic {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Func {
    const ALL: [Func; 18] = [
        Func::Format,
        Func::StringToJson,
        Func::JsonToString,
        Func::Array,
        Func::ArrayPartition,
        Func::ArrayContains,
        Func::ArrayRange,
        Func::ArrayGetItem,
        Func::ArrayLength,
        Func::ArrayUnique,
        Func::Base64Encode,
        Func::Base64Decode,
        Func::Hash,
        Func::JsonMerge,
        Func::MathRandom,
        Func::MathAdd,
        Func::StringSplit,
        Func::Uuid,
    ];

    fn name(self) -> &'static str {
        match self {
            Func::Format => "States.Format",
            Func::StringToJson => "States.StringToJson",
            Func::JsonToString => "States.JsonToString",
            Func::Array => "States.Array",
            Func::ArrayPartition => "States.ArrayPartition",
            Func::ArrayContains => "States.ArrayContains",
            Func::ArrayRange => "States.ArrayRange",
            Func::ArrayGetItem => "States.ArrayGetItem",
            Func::ArrayLength => "States.ArrayLength",
            Func::ArrayUnique => "States.ArrayUnique",
            Func::Base64Encode => "States.Base64Encode",
            Func::Base64Decode => "States.Base64Decode",
            Func::Hash => "States.Hash",
            Func::JsonMerge => "States.JsonMerge",
            Func::MathRandom => "States.MathRandom",
            Func::MathAdd => "States.MathAdd",
            Func::StringSplit => "States.StringSplit",
            Func::Uuid => "States.UUID",
        }
    }

    fn from_name(name: &str) -> Option<Func> {
        Func::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Smallest and largest argument count (`None`: no upper bound).
    fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Format => (1, None),
            Func::Array => (0, None),
            Func::Uuid => (0, Some(0)),
            Func::StringToJson
            | Func::JsonToString
            | Func::ArrayLength
            | Func::ArrayUnique
            | Func::Base64Encode
            | Func::Base64Decode => (1, Some(1)),
            Func::ArrayPartition
            | Func::ArrayContains
            | Func::ArrayGetItem
            | Func::Hash
            | Func::MathAdd
            | Func::StringSplit => (2, Some(2)),
            Func::ArrayRange | Func::JsonMerge => (3, Some(3)),
            Func::MathRandom => (2, Some(3)),
        }
    }
}

#[derive(Debug, Clone)]
enum Arg {
    /// A quoted string literal.
    Str(StrLit),
    /// A number, `true`, `false` or `null`.
    Literal(Value),
    Path(Path),
    Call(Box<Intrinsic>),
}

#[derive(Debug, Clone)]
struct StrLit {
    /// The unescaped text.
    value: String,
    /// Byte offsets in `value` of each unescaped `{}` (States.Format placeholders); an escaped
    /// `\{\}` yields the same text but is not a placeholder.
    placeholders: Vec<usize>,
}

impl Intrinsic {
    /// True when a string is written as an intrinsic call (starts with "States.").
    pub fn looks_like_call(text: &str) -> bool {
        text.starts_with("States.")
    }

    /// Parses e.g. "States.Format('Hello {}', $.name)"; nested calls allowed as arguments.
    /// Errors name the problem (unknown function, wrong arity where fixed, bad literal, bad
    /// path, unbalanced quotes/parens).
    pub fn parse(text: &str) -> Result<Intrinsic, String> {
        let mut parser = Parser { src: text, pos: 0 };
        parser.skip_ws();
        let call = parser.call(0)?;
        parser.skip_ws();
        if parser.pos < text.len() {
            let rest = parser.rest();
            let what = if rest.starts_with(')') {
                "unbalanced parentheses: unexpected ')'"
            } else {
                "unexpected text"
            };
            return Err(format!(
                "{what} after the end of the call at offset {} in {text:?}",
                parser.pos
            ));
        }
        Ok(call)
    }

    /// Evaluates against the state's data and the context object. `rng` drives
    /// States.MathRandom (when no seed argument) and States.UUID.
    pub fn eval(
        &self,
        data: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        let f = self.func;
        let mut values = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            values.push(arg.eval(f, data, context, rng)?);
        }
        match f {
            Func::Format => self.format(values),
            Func::StringToJson => {
                let text = string_arg(f, "the argument", &values[0])?;
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(text)
                    .map_err(|e| fail(f, format!("the string is not valid JSON: {e}")))
            }
            Func::JsonToString => serde_json::to_string(&values[0])
                .map(Value::String)
                .map_err(|e| fail(f, format!("cannot serialize the value: {e}"))),
            Func::Array => Ok(Value::Array(values)),
            Func::ArrayPartition => {
                let array = array_arg(f, "the first argument", &values[0])?;
                let size = integer_arg(f, "the chunk size", &values[1])?;
                if size <= 0 {
                    return Err(fail(
                        f,
                        format!("the chunk size must be a positive, non-zero integer, got {size}"),
                    ));
                }
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                Ok(Value::Array(
                    array
                        .chunks(size)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            Func::ArrayContains => {
                let array = array_arg(f, "the first argument", &values[0])?;
                let needle = canonical(&values[1]);
                Ok(Value::Bool(
                    array.iter().any(|item| canonical(item) == needle),
                ))
            }
            Func::ArrayRange => {
                let start = integer_arg(f, "the first argument (start)", &values[0])?;
                let end = integer_arg(f, "the second argument (end)", &values[1])?;
                let step = integer_arg(f, "the third argument (step)", &values[2])?;
                if step == 0 {
                    return Err(fail(f, "the step (third argument) must not be 0"));
                }
                let (start, end, step) = (start as i128, end as i128, step as i128);
                let count = if (step > 0 && end < start) || (step < 0 && end > start) {
                    0
                } else {
                    (end - start) / step + 1
                };
                if count > MAX_RANGE_ITEMS {
                    return Err(fail(
                        f,
                        format!(
                            "the range would have {count} items; an array can't contain more than {MAX_RANGE_ITEMS}"
                        ),
                    ));
                }
                Ok(Value::Array(
                    (0..count)
                        .map(|i| Value::from((start + i * step) as i64))
                        .collect(),
                ))
            }
            Func::ArrayGetItem => {
                let array = array_arg(f, "the first argument", &values[0])?;
                let index = index_arg(f, &values[1])?;
                array.get(index).cloned().ok_or_else(|| {
                    fail(
                        f,
                        format!(
                            "index {index} is out of bounds for an array of length {}",
                            array.len()
                        ),
                    )
                })
            }
            Func::ArrayLength => Ok(Value::from(array_arg(f, "the argument", &values[0])?.len())),
            Func::ArrayUnique => {
                let array = array_arg(f, "the argument", &values[0])?;
                let mut seen = HashSet::new();
                Ok(Value::Array(
                    array
                        .iter()
                        .filter(|item| seen.insert(canonical(item)))
                        .cloned()
                        .collect(),
                ))
            }
            Func::Base64Encode => {
                let text = limited_string_arg(f, "the input", &values[0])?;
                Ok(Value::String(STANDARD.encode(text.as_bytes())))
            }
            Func::Base64Decode => {
                let text = limited_string_arg(f, "the input", &values[0])?;
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                let bytes = BASE64_LENIENT
                    .decode(compact.as_bytes())
                    .map_err(|e| fail(f, format!("the input is not valid Base64: {e}")))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| fail(f, "the decoded data is not a valid UTF-8 string"))
            }
            Func::Hash => {
                let text = limited_string_arg(f, "the data (first argument)", &values[0])?;
                let algorithm = string_arg(f, "the algorithm (second argument)", &values[1])?;
                let digest = hash(algorithm, text.as_bytes()).ok_or_else(|| {
                    fail(
                        f,
                        format!(
                            "unknown hash algorithm {algorithm:?}; use one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
                        ),
                    )
                })?;
                Ok(Value::String(digest))
            }
            Func::JsonMerge => {
                let deep = match &values[2] {
                    Value::Bool(b) => *b,
                    other => {
                        return Err(fail(
                            f,
                            format!(
                                "the third argument (deep merge) must be the boolean false, got {}",
                                describe(other)
                            ),
                        ))
                    }
                };
                if deep {
                    return Err(fail(
                        f,
                        "deep merging is not supported: Step Functions only supports the shallow mode, so the third argument must be false",
                    ));
                }
                let mut merged = object_arg(f, "the first argument", &values[0])?.clone();
                for (key, value) in object_arg(f, "the second argument", &values[1])? {
                    merged.insert(key.clone(), value.clone());
                }
                Ok(Value::Object(merged))
            }
            Func::MathRandom => {
                let start = integer_arg(f, "the start (first argument)", &values[0])?;
                let end = integer_arg(f, "the end (second argument)", &values[1])?;
                if end <= start {
                    return Err(fail(
                        f,
                        format!("the end ({end}, exclusive) must be greater than the start ({start}, inclusive)"),
                    ));
                }
                let n = match values.get(2) {
                    Some(seed) => {
                        let seed = integer_arg(f, "the seed (third argument)", seed)?;
                        rand_chacha::ChaCha8Rng::seed_from_u64(seed as u64).gen_range(start..end)
                    }
                    None => rng.gen_range(start..end),
                };
                Ok(Value::from(n))
            }
            Func::MathAdd => {
                let a = math_add_operand(f, "the first argument", &values[0])?;
                let b = math_add_operand(f, "the second argument", &values[1])?;
                Ok(Value::from(a + b))
            }
            Func::StringSplit => {
                let text = string_arg(f, "the first argument", &values[0])?;
                let delimiters = string_arg(f, "the delimiter (second argument)", &values[1])?;
                let parts: Vec<Value> = if delimiters.is_empty() {
                    if text.is_empty() {
                        Vec::new()
                    } else {
                        vec![Value::String(text.to_string())]
                    }
                } else {
                    text.split(|c| delimiters.contains(c))
                        .filter(|part| !part.is_empty())
                        .map(|part| Value::String(part.to_string()))
                        .collect()
                };
                Ok(Value::Array(parts))
            }
            Func::Uuid => {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                Ok(Value::String(
                    uuid::Builder::from_random_bytes(bytes)
                        .into_uuid()
                        .to_string(),
                ))
            }
        }
    }

    fn format(&self, values: Vec<Value>) -> Result<Value, StatesError> {
        let f = Func::Format;
        let mut values = values.into_iter();
        let template = match values.next() {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(fail(
                    f,
                    format!(
                        "the template (first argument) must be a string, got {}",
                        describe(&other)
                    ),
                ))
            }
            None => return Err(fail(f, "missing the template argument")),
        };
        let placeholders: Vec<usize> = match self.args.first() {
            Some(Arg::Str(lit)) => lit.placeholders.clone(),
            _ => template.match_indices("{}").map(|(i, _)| i).collect(),
        };
        let args: Vec<Value> = values.collect();
        if placeholders.len() != args.len() {
            return Err(fail(
                f,
                format!(
                    "the template has {} '{{}}' placeholder(s) but {} value argument(s) were given",
                    placeholders.len(),
                    args.len()
                ),
            ));
        }
        let mut out = String::with_capacity(template.len());
        let mut last = 0;
        for (&at, value) in placeholders.iter().zip(&args) {
            out.push_str(&template[last..at]);
            match value {
                Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            }
            last = at + 2;
        }
        out.push_str(&template[last..]);
        Ok(Value::String(out))
    }
}

impl Arg {
    fn eval(
        &self,
        f: Func,
        data: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        match self {
            Arg::Str(lit) => Ok(Value::String(lit.value.clone())),
            Arg::Literal(v) => Ok(v.clone()),
            Arg::Path(path) => path.select(data, context).ok_or_else(|| {
                let doc = match path.root {
                    Root::Data => "the state's input",
                    Root::Context => "the context object",
                };
                fail(
                    f,
                    format!("the JSONPath {:?} could not be found in {doc}", path.text),
                )
            }),
            Arg::Call(call) => call.eval(data, context, rng),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn at(&self, pos: usize, msg: impl std::fmt::Display) -> String {
        format!("{msg} at offset {pos} in {:?}", self.src)
    }

    /// `States.Name(arg, ...)`
    fn call(&mut self, depth: usize) -> Result<Intrinsic, String> {
        if depth > MAX_PARSE_DEPTH {
            return Err(self.at(
                self.pos,
                format!("intrinsic calls are nested more than {MAX_PARSE_DEPTH} deep"),
            ));
        }
        let start = self.pos;
        if !self.rest().starts_with("States.") {
            return Err(self.at(
                start,
                "expected an intrinsic function call like States.Format(...)",
            ));
        }
        self.pos += "States.".len();
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.bump();
        }
        let name = &self.src[start..self.pos];
        let func = Func::from_name(name)
            .ok_or_else(|| format!("unknown intrinsic function {name:?} in {:?}", self.src))?;
        if self.peek() != Some('(') {
            return Err(self.at(self.pos, format!("expected '(' after {name}")));
        }
        let open = self.pos;
        self.bump();
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.bump();
        } else {
            loop {
                args.push(self.arg(depth, open)?);
                self.skip_ws();
                let here = self.pos;
                match self.bump() {
                    Some(',') => {}
                    Some(')') => break,
                    Some(c) => {
                        return Err(self.at(
                            here,
                            format!("expected ',' or ')' in the arguments of {name}, found {c:?}"),
                        ))
                    }
                    None => {
                        return Err(self.at(
                            open,
                            format!("unbalanced parentheses: the '(' of {name} is never closed"),
                        ))
                    }
                }
            }
        }
        check_arity(func, &args)?;
        Ok(Intrinsic { func, args })
    }

    fn arg(&mut self, depth: usize, open: usize) -> Result<Arg, String> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => Err(self.at(open, "unbalanced parentheses: the '(' is never closed")),
            Some('\'') => self.string().map(Arg::Str),
            Some('$') => self.path().map(Arg::Path),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(',') | Some(')') => Err(self.at(start, "missing argument")),
            Some(_) if self.rest().starts_with("States.") => {
                Ok(Arg::Call(Box::new(self.call(depth + 1)?)))
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| !c.is_whitespace() && !matches!(c, ',' | ')' | '(' | '\''))
                {
                    self.bump();
                }
                if self.pos == start {
                    self.bump();
                }
                match &self.src[start..self.pos] {
                    "true" => Ok(Arg::Literal(Value::Bool(true))),
                    "false" => Ok(Arg::Literal(Value::Bool(false))),
                    "null" => Ok(Arg::Literal(Value::Null)),
                    word => Err(self.at(
                        start,
                        format!(
                            "bad literal {word:?}: expected a 'quoted string', a number, true, false, null, a path or a States.* call"
                        ),
                    )),
                }
            }
        }
    }

    /// `'text'` with the escapes `\'`, `\{`, `\}` and `\\`.
    fn string(&mut self) -> Result<StrLit, String> {
        let open = self.pos;
        self.bump();
        let mut value = String::new();
        let mut placeholders = Vec::new();
        loop {
            let here = self.pos;
            match self.bump() {
                None => return Err(self.at(open, "unbalanced quotes: the string literal is never closed")),
                Some('\'') => return Ok(StrLit { value, placeholders }),
                Some('\\') => match self.bump() {
                    Some(c @ ('\'' | '{' | '}' | '\\')) => value.push(c),
                    Some(c) => {
                        return Err(self.at(
                            here,
                            format!(
                                "invalid escape \\{c} in a string literal (only \\', \\{{, \\}} and \\\\ are allowed)"
                            ),
                        ))
                    }
                    None => {
                        return Err(self.at(here, "unbalanced quotes: the string literal ends in an open escape '\\'"))
                    }
                },
                Some('{') if self.peek() == Some('}') => {
                    self.bump();
                    placeholders.push(value.len());
                    value.push_str("{}");
                }
                Some(c) => value.push(c),
            }
        }
    }

    /// A path runs up to the `,` or `)` (or white space) that ends the argument; brackets and
    /// quotes inside brackets (`$['a, b']`, `$.x[?(@.n > 1)]`) are skipped over.
    fn path(&mut self) -> Result<Path, String> {
        let start = self.pos;
        let mut brackets = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            if let Some(q) = quote {
                self.bump();
                if c == '\\' {
                    self.bump();
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '[' => brackets += 1,
                ']' if brackets > 0 => brackets -= 1,
                '\'' | '"' if brackets > 0 => quote = Some(c),
                ',' | ')' if brackets == 0 => break,
                c if c.is_whitespace() && brackets == 0 => break,
                _ => {}
            }
            self.bump();
        }
        let text = &self.src[start..self.pos];
        if quote.is_some() {
            return Err(self.at(start, format!("bad path {text:?}: unbalanced quotes")));
        }
        if brackets > 0 {
            return Err(self.at(start, format!("bad path {text:?}: unbalanced brackets")));
        }
        Path::parse(text).map_err(|e| self.at(start, format!("bad path {text:?}: {e}")))
    }

    fn number(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.bump();
        }
        let text = &self.src[start..self.pos];
        let n: Number = serde_json::from_str(text)
            .map_err(|_| self.at(start, format!("bad number literal {text:?}")))?;
        Ok(Arg::Literal(Value::Number(n)))
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "1 was" / "3 were"
fn were(n: usize) -> String {
    if n == 1 {
        "1 was".to_string()
    } else {
        format!("{n} were")
    }
}

fn check_arity(func: Func, args: &[Arg]) -> Result<(), String> {
    let n = args.len();
    let (min, max) = func.arity();
    if n < min || max.is_some_and(|max| n > max) {
        let expected = match max {
            Some(max) if max == min => plural(min, "argument"),
            Some(max) => format!("{min} to {max} arguments"),
            None => format!("at least {}", plural(min, "argument")),
        };
        return Err(format!(
            "{} takes {expected}, but {} given",
            func.name(),
            were(n)
        ));
    }
    if func == Func::Format {
        match &args[0] {
            Arg::Str(lit) if lit.placeholders.len() != n - 1 => {
                return Err(format!(
                    "States.Format: the template has {} but {} given",
                    plural(lit.placeholders.len(), "'{}' placeholder"),
                    were(n - 1),
                ));
            }
            Arg::Literal(v) => {
                return Err(format!(
                    "States.Format: the template (first argument) must be a string, not {}",
                    kind_name(v)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Argument checks shared by the functions

fn fail(f: Func, msg: impl std::fmt::Display) -> StatesError {
    StatesError::intrinsic(format!("{}: {msg}", f.name()))
}

/// "a string \"abc\"", shortened for long values.
fn describe(v: &Value) -> String {
    let mut text = v.to_string();
    if text.len() > 60 {
        let mut cut = 57;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    format!("{} {text}", kind_name(v))
}

fn string_arg<'v>(f: Func, what: &str, v: &'v Value) -> Result<&'v str, StatesError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(fail(
            f,
            format!("{what} must be a string, got {}", describe(other)),
        )),
    }
}

fn limited_string_arg<'v>(f: Func, what: &str, v: &'v Value) -> Result<&'v str, StatesError> {
    let s = string_arg(f, what, v)?;
    let chars = s.chars().count();
    if chars > MAX_ENCODING_INPUT_CHARS {
        return Err(fail(
            f,
            format!("{what} has {chars} characters; the limit is {MAX_ENCODING_INPUT_CHARS}"),
        ));
    }
    Ok(s)
}

fn array_arg<'v>(f: Func, what: &str, v: &'v Value) -> Result<&'v Vec<Value>, StatesError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(fail(
            f,
            format!("{what} must be an array, got {}", describe(other)),
        )),
    }
}

fn object_arg<'v>(
    f: Func,
    what: &str,
    v: &'v Value,
) -> Result<&'v serde_json::Map<String, Value>, StatesError> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(fail(
            f,
            format!("{what} must be a JSON object, got {}", describe(other)),
        )),
    }
}

/// An integer argument. AWS: "If you specify a non-integer value ... Step Functions will round
/// it off to the nearest integer"; halves round up, as Java's `Math.round` does.
fn integer_arg(f: Func, what: &str, v: &Value) -> Result<i64, StatesError> {
    let n = match v {
        Value::Number(n) => n,
        other => {
            return Err(fail(
                f,
                format!("{what} must be an integer, got {}", describe(other)),
            ))
        }
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    let x = n.as_f64().unwrap_or(f64::NAN);
    let rounded = (x + 0.5).floor();
    if !rounded.is_finite() || rounded < i64::MIN as f64 || rounded >= i64::MAX as f64 {
        return Err(fail(f, format!("{what} is out of the integer range: {n}")));
    }
    Ok(rounded as i64)
}

/// An array index: a non-negative integer (not rounded).
fn index_arg(f: Func, v: &Value) -> Result<usize, StatesError> {
    let bad = || {
        fail(
            f,
            format!(
                "the index (second argument) must be a non-negative integer, got {}",
                describe(v)
            ),
        )
    };
    let Value::Number(n) = v else {
        return Err(bad());
    };
    if let Some(u) = n.as_u64() {
        return Ok(usize::try_from(u).unwrap_or(usize::MAX));
    }
    match n.as_f64() {
        Some(x) if x >= 0.0 && x.fract() == 0.0 && x < u64::MAX as f64 => Ok(x as usize),
        _ => Err(bad()),
    }
}

fn math_add_operand(f: Func, what: &str, v: &Value) -> Result<i64, StatesError> {
    let i = integer_arg(f, what, v)?;
    if !(MATH_ADD_MIN..=MATH_ADD_MAX).contains(&i) {
        return Err(fail(
            f,
            format!("{what} ({i}) must be in the range {MATH_ADD_MIN} to {MATH_ADD_MAX}"),
        ));
    }
    Ok(i)
}

/// A text form under which JSON-equal values are equal: object keys sorted, and numbers
/// compared by value (`1` equals `1.0`).
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    let _ = write!(out, "{i}");
                } else if let Some(u) = n.as_u64() {
                    let _ = write!(out, "{u}");
                } else {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    if x.fract() == 0.0 && x.abs() < 9.0e15 {
                        let _ = write!(out, "{}", x as i64);
                    } else {
                        let _ = write!(out, "{x:?}");
                    }
                }
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Lowercase hex digest, or `None` for an algorithm Step Functions does not offer.
fn hash(algorithm: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    Some(match algorithm {
        "MD5" => hex(&md5::Md5::digest(data)),
        "SHA-1" => hex(&sha1::Sha1::digest(data)),
        "SHA-256" => hex(&sha2::Sha256::digest(data)),
        "SHA-384" => hex(&sha2::Sha384::digest(data)),
        "SHA-512" => hex(&sha2::Sha512::digest(data)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    fn eval_with(text: &str, data: &Value, context: &Value) -> Result<Value, StatesError> {
        let call = Intrinsic::parse(text).unwrap_or_else(|e| panic!("{text} should parse: {e}"));
        call.eval(data, context, &mut rng())
    }

    fn eval(text: &str, data: Value) -> Value {
        eval_with(text, &data, &Value::Null).unwrap_or_else(|e| panic!("{text} failed: {e}"))
    }

    /// Evaluation must fail with States.IntrinsicFailure; returns the cause.
    fn eval_err(text: &str, data: Value) -> String {
        let err = eval_with(text, &data, &Value::Null).expect_err(text);
        assert_eq!(err.error, "States.IntrinsicFailure", "{text}: {err}");
        err.cause
    }

    fn parse_err(text: &str) -> String {
        Intrinsic::parse(text).expect_err(text)
    }

    fn assert_contains(haystack: &str, needles: &[&str]) {
        for needle in needles {
            assert!(
                haystack.contains(needle),
                "{haystack:?} should mention {needle:?}"
            );
        }
    }

    // --- recognising and parsing -------------------------------------------------------------

    #[test]
    fn looks_like_call_checks_the_prefix() {
        assert!(Intrinsic::looks_like_call("States.Format('x')"));
        assert!(Intrinsic::looks_like_call("States.UUID()"));
        assert!(!Intrinsic::looks_like_call("$.a"));
        assert!(!Intrinsic::looks_like_call("states.Format('x')"));
        assert!(!Intrinsic::looks_like_call("Format('x')"));
    }

    #[test]
    fn parses_every_argument_kind() {
        let v = eval(
            "States.Array('a b', 1, -2.5, 1e3, true, false, null, $.x, $, States.Array())",
            json!({"x": {"y": 1}}),
        );
        assert_eq!(
            v,
            json!(["a b", 1, -2.5, 1000.0, true, false, null, {"y": 1}, {"x": {"y": 1}}, []])
        );
        assert!(v[1].is_i64());
    }

    #[test]
    fn whitespace_between_arguments_is_allowed() {
        assert_eq!(
            eval("  States.Array(  1 ,\n 'x'\t, $.a  )  ", json!({"a": 2})),
            json!([1, "x", 2])
        );
        assert_eq!(eval("States.Array( )", json!({})), json!([]));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            eval(r"States.Array('it\'s', '\{\}', 'back\\slash')", json!({})),
            json!(["it's", "{}", "back\\slash"])
        );
        assert_eq!(
            eval("States.Array('a,b)c', 'ünï')", json!({})),
            json!(["a,b)c", "ünï"])
        );
        assert_contains(
            &parse_err(r"States.Array('a\nb')"),
            &["invalid escape", "\\n"],
        );
    }

    #[test]
    fn unknown_function_is_rejected() {
        assert_contains(
            &parse_err("States.Nope(1)"),
            &["unknown intrinsic function", "States.Nope"],
        );
        assert_contains(
            &parse_err("States.format('x')"),
            &["unknown intrinsic function"],
        );
        assert_contains(&parse_err("States.Array(States.Foo())"), &["States.Foo"]);
        assert!(parse_err("Foo(1)").contains("expected an intrinsic function call"));
    }

    #[test]
    fn fixed_arities_are_checked_at_parse_time() {
        assert_contains(
            &parse_err("States.ArrayLength()"),
            &["States.ArrayLength", "takes 1 argument", "0 were given"],
        );
        assert_contains(
            &parse_err("States.MathAdd(1)"),
            &["States.MathAdd", "takes 2 arguments", "1 was given"],
        );
        assert_contains(
            &parse_err("States.ArrayRange(1, 2)"),
            &["takes 3 arguments"],
        );
        assert_contains(
            &parse_err("States.MathRandom(1, 2, 3, 4)"),
            &["2 to 3 arguments"],
        );
        assert_contains(&parse_err("States.UUID(1)"), &["takes 0 arguments"]);
        assert_contains(&parse_err("States.Format()"), &["at least 1 argument"]);
        assert_contains(
            &parse_err("States.JsonMerge($.a, $.b)"),
            &["States.JsonMerge", "takes 3 arguments"],
        );
        for ok in [
            "States.StringToJson($.a)",
            "States.JsonToString($.a)",
            "States.ArrayPartition($.a, 2)",
            "States.ArrayContains($.a, 2)",
            "States.ArrayGetItem($.a, 0)",
            "States.ArrayUnique($.a)",
            "States.Base64Encode($.a)",
            "States.Base64Decode($.a)",
            "States.Hash($.a, 'MD5')",
            "States.MathRandom(1, 2)",
            "States.MathRandom(1, 2, 3)",
            "States.StringSplit($.a, ',')",
            "States.UUID()",
            "States.Array()",
        ] {
            Intrinsic::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn bad_literals_are_rejected() {
        assert_contains(&parse_err("States.Array(foo)"), &["bad literal", "foo"]);
        assert_contains(&parse_err("States.Array(True)"), &["bad literal"]);
        assert_contains(&parse_err("States.Array(\"double\")"), &["bad literal"]);
        assert_contains(&parse_err("States.Array(1.)"), &["bad number literal"]);
        assert_contains(&parse_err("States.Array(-)"), &["bad number literal"]);
        assert_contains(&parse_err("States.Array(12abc)"), &["expected ',' or ')'"]);
        assert_contains(&parse_err("States.Array(1,)"), &["missing argument"]);
        assert_contains(&parse_err("States.Array(,1)"), &["missing argument"]);
        assert_contains(&parse_err("States.Array(1 2)"), &["expected ',' or ')'"]);
    }

    #[test]
    fn bad_paths_are_rejected() {
        assert_contains(
            &parse_err("States.Array($.a[)"),
            &["bad path", "unbalanced brackets"],
        );
        assert_contains(&parse_err("States.Array($.[)"), &["bad path"]);
        assert_contains(&parse_err("States.Array($..)"), &["bad path"]);
        assert_contains(
            &parse_err("States.Array($['a)"),
            &["bad path", "unbalanced quotes"],
        );
    }

    #[test]
    fn unbalanced_quotes_and_parentheses_are_rejected() {
        assert_contains(&parse_err("States.Format('abc)"), &["unbalanced quotes"]);
        assert_contains(&parse_err("States.Format('abc\\"), &["unbalanced quotes"]);
        assert_contains(&parse_err("States.Array(1"), &["unbalanced parentheses"]);
        assert_contains(
            &parse_err("States.Array(States.Array(1)"),
            &["unbalanced parentheses"],
        );
        assert_contains(&parse_err("States.Array("), &["unbalanced parentheses"]);
        assert_contains(
            &parse_err("States.Array(1))"),
            &["unbalanced parentheses", "unexpected ')'"],
        );
        assert_contains(&parse_err("States.Array(1) x"), &["unexpected text"]);
        assert_contains(&parse_err("States.Array"), &["expected '('"]);
        assert_contains(&parse_err("States.Array (1)"), &["expected '('"]);
    }

    #[test]
    fn absurd_nesting_is_refused_not_overflowed() {
        let deep = "States.Array(".repeat(500) + &")".repeat(500);
        assert_contains(&parse_err(&deep), &["nested"]);
    }

    // --- paths ---------------------------------------------------------------------------------

    #[test]
    fn paths_read_data_and_context() {
        let data = json!({"a b": 1, "items": [{"n": 1}, {"n": 2}]});
        let ctx = json!({"Execution": {"Id": "arn:exec"}});
        let v = eval_with(
            "States.Array($$.Execution.Id, $['a b'], $.items[*].n, $.items[1].n, $$)",
            &data,
            &ctx,
        )
        .unwrap();
        assert_eq!(v, json!(["arn:exec", 1, [1, 2], 2, ctx]));
        let v = eval_with(
            "States.Array($.items[?(@.n > 1)], $['x, y'])",
            &json!({"items": [{"n": 1}, {"n": 2}], "x, y": 3}),
            &ctx,
        )
        .unwrap();
        assert_eq!(v, json!([[{"n": 2}], 3]));
    }

    #[test]
    fn a_path_that_selects_nothing_is_an_intrinsic_failure() {
        assert_contains(
            &eval_err("States.Array($.missing)", json!({})),
            &["States.Array", "$.missing", "input"],
        );
        let err = eval_with(
            "States.Format('{}', $$.Execution.Nope)",
            &json!({}),
            &json!({"Execution": {}}),
        )
        .unwrap_err();
        assert_eq!(err.error, "States.IntrinsicFailure");
        assert_contains(&err.cause, &["$$.Execution.Nope", "context object"]);
        // inside a nested call the failure names the inner function
        assert_contains(
            &eval_err("States.Format('{}', States.ArrayLength($.nope))", json!({})),
            &["States.ArrayLength", "$.nope"],
        );
    }

    // --- States.Format -------------------------------------------------------------------------

    #[test]
    fn format_fills_placeholders() {
        let data = json!({"name": "Arnav", "template": "Hello, my name is {}."});
        assert_eq!(
            eval(
                "States.Format('Hello, my name is {}.', $.name)",
                data.clone()
            ),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            eval("States.Format($.template, $.name)", data),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            eval("States.Format('no placeholders')", json!({})),
            json!("no placeholders")
        );
        assert_eq!(
            eval("States.Format('{}{}-{}', 'a', 'b', 'c')", json!({})),
            json!("ab-c")
        );
    }

    #[test]
    fn format_renders_non_strings_as_json() {
        let v = eval(
            "States.Format('{} {} {} {} {} {}', 42, 1.5, true, null, $.o, $.a)",
            json!({"o": {"k": "v", "n": 1}, "a": [1, "x"]}),
        );
        assert_eq!(v, json!(r#"42 1.5 true null {"k":"v","n":1} [1,"x"]"#));
    }

    #[test]
    fn format_escaped_braces_are_not_placeholders() {
        assert_eq!(
            eval(r"States.Format('\{\} {} \{x\}', 'v')", json!({})),
            json!("{} v {x}")
        );
        assert_eq!(
            eval(r"States.Format('it\'s {}', 'me')", json!({})),
            json!("it's me")
        );
        // escaped braces do not count towards the arity check either
        assert_contains(
            &parse_err(r"States.Format('\{\}', 'v')"),
            &["0 '{}' placeholders", "1 was given"],
        );
    }

    #[test]
    fn format_argument_count_must_match() {
        assert_contains(
            &parse_err("States.Format('{} {}', 'a')"),
            &["States.Format", "2 '{}' placeholders", "1 was given"],
        );
        assert_contains(
            &parse_err("States.Format('x', 'a')"),
            &["0 '{}' placeholders"],
        );
        // with a template read from the input the check happens at evaluation
        assert_contains(
            &eval_err("States.Format($.t, 1, 2)", json!({"t": "{}"})),
            &["States.Format", "1 '{}' placeholder(s)", "2 value"],
        );
    }

    #[test]
    fn format_template_must_be_a_string() {
        assert_contains(&parse_err("States.Format(1, 2)"), &["must be a string"]);
        assert_contains(
            &eval_err("States.Format($.t)", json!({"t": 5})),
            &["States.Format", "must be a string", "number"],
        );
    }

    #[test]
    fn format_with_nested_calls() {
        assert_eq!(
            eval(
                "States.Format('{}', States.ArrayLength($.a))",
                json!({"a": [1, 2, 3]})
            ),
            json!("3")
        );
        assert_eq!(
            eval(
                "States.Format('{} has {} items', $.name, States.ArrayLength(States.ArrayUnique($.a)))",
                json!({"name": "x", "a": [1, 1, 2]})
            ),
            json!("x has 2 items")
        );
    }

    #[test]
    fn documented_nine_level_nesting_example() {
        let text = "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))";
        let data = json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/my-recipe/1.2.3"}});
        // "1.2.3" split on '.' gives 1 and 2; the template has three placeholders but only two values
        assert!(Intrinsic::parse(text).is_err());
        let two = text.replacen("'{}.{}.{}'", "'{}.{}'", 1);
        assert_eq!(eval(&two, data), json!("1.2"));
    }

    // --- JSON ------------------------------------------------------------------------------------

    #[test]
    fn string_to_json_parses() {
        assert_eq!(
            eval(
                "States.StringToJson($.s)",
                json!({"s": "{\"foo\": \"bar\"}"})
            ),
            json!({"foo": "bar"})
        );
        assert_eq!(
            eval("States.StringToJson('[1, 2.5, \"x\"]')", json!({})),
            json!([1, 2.5, "x"])
        );
        assert_eq!(eval("States.StringToJson('42')", json!({})), json!(42));
        assert_eq!(eval("States.StringToJson('  ')", json!({})), Value::Null);
        assert_contains(
            &eval_err("States.StringToJson('{oops')", json!({})),
            &["States.StringToJson", "not valid JSON"],
        );
        assert_contains(
            &eval_err("States.StringToJson($.n)", json!({"n": 1})),
            &["States.StringToJson", "must be a string"],
        );
    }

    #[test]
    fn json_to_string_serializes_compactly() {
        assert_eq!(
            eval(
                "States.JsonToString($.o)",
                json!({"o": {"foo": "bar", "n": [1, 2]}})
            ),
            json!(r#"{"foo":"bar","n":[1,2]}"#)
        );
        assert_eq!(
            eval("States.JsonToString($.s)", json!({"s": "x"})),
            json!("\"x\"")
        );
        assert_eq!(
            eval("States.JsonToString(States.Array(1, 'a'))", json!({})),
            json!(r#"[1,"a"]"#)
        );
        // round trip, keeping key order
        let o = json!({"z": 1, "a": {"m": null}});
        assert_eq!(
            eval("States.StringToJson(States.JsonToString($))", o.clone()),
            o
        );
        assert_contains(
            &eval_err("States.JsonToString($.nope)", json!({})),
            &["States.JsonToString", "$.nope"],
        );
    }

    #[test]
    fn json_merge_is_shallow() {
        let data = json!({
            "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
            "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}
        });
        let v = eval("States.JsonMerge($.json1, $.json2, false)", data);
        assert_eq!(v, json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    #[test]
    fn json_merge_errors() {
        let data = json!({"o": {"a": 1}, "n": 1});
        assert_contains(
            &eval_err("States.JsonMerge($.o, $.o, true)", data.clone()),
            &["States.JsonMerge", "shallow", "false"],
        );
        assert_contains(
            &eval_err("States.JsonMerge($.o, $.o, 'false')", data.clone()),
            &["States.JsonMerge", "boolean"],
        );
        assert_contains(
            &eval_err("States.JsonMerge($.n, $.o, false)", data.clone()),
            &["first argument", "JSON object"],
        );
        assert_contains(
            &eval_err("States.JsonMerge($.o, States.Array(), false)", data),
            &["second argument", "JSON object"],
        );
    }

    // --- arrays ----------------------------------------------------------------------------------

    #[test]
    fn array_builds_from_arguments() {
        assert_eq!(
            eval("States.Array($.Id)", json!({"Id": 123456})),
            json!([123456])
        );
        assert_eq!(eval("States.Array()", json!({})), json!([]));
        assert_eq!(
            eval("States.Array(States.Array(1), 'x')", json!({})),
            json!([[1], "x"])
        );
    }

    #[test]
    fn array_partition_chunks() {
        let data = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]});
        assert_eq!(
            eval("States.ArrayPartition($.inputArray,4)", data.clone()),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
        );
        assert_eq!(
            eval("States.ArrayPartition($.inputArray, 3)", data.clone()),
            json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        );
        assert_eq!(
            eval("States.ArrayPartition($.inputArray, 100)", data.clone()),
            json!([[1, 2, 3, 4, 5, 6, 7, 8, 9]])
        );
        assert_eq!(
            eval("States.ArrayPartition(States.Array(), 2)", json!({})),
            json!([])
        );
        // a non-integer chunk size is rounded to the nearest integer
        assert_eq!(
            eval("States.ArrayPartition($.inputArray, 4.6)", data),
            json!([[1, 2, 3, 4, 5], [6, 7, 8, 9]])
        );
    }

    #[test]
    fn array_partition_errors() {
        let data = json!({"a": [1, 2], "s": "x"});
        assert_contains(
            &eval_err("States.ArrayPartition($.a, 0)", data.clone()),
            &["States.ArrayPartition", "positive"],
        );
        assert_contains(
            &eval_err("States.ArrayPartition($.a, -1)", data.clone()),
            &["positive"],
        );
        assert_contains(
            &eval_err("States.ArrayPartition($.a, 0.4)", data.clone()),
            &["positive"],
        );
        assert_contains(
            &eval_err("States.ArrayPartition($.a, '2')", data.clone()),
            &["must be an integer"],
        );
        assert_contains(
            &eval_err("States.ArrayPartition($.s, 2)", data),
            &["States.ArrayPartition", "must be an array", "string"],
        );
    }

    #[test]
    fn array_contains_compares_json_values() {
        let data = json!({"inputArray": [1, 2, 3, {"k": [1, {"x": null}]}, "s"], "lookingFor": 5});
        assert_eq!(
            eval(
                "States.ArrayContains($.inputArray, $.lookingFor)",
                data.clone()
            ),
            json!(false)
        );
        assert_eq!(
            eval("States.ArrayContains($.inputArray, 3)", data.clone()),
            json!(true)
        );
        assert_eq!(
            eval("States.ArrayContains($.inputArray, 3.0)", data.clone()),
            json!(true)
        );
        assert_eq!(
            eval("States.ArrayContains($.inputArray, '3')", data.clone()),
            json!(false)
        );
        assert_eq!(
            eval("States.ArrayContains($.inputArray, 's')", data.clone()),
            json!(true)
        );
        assert_eq!(
            eval("States.ArrayContains($.inputArray, States.StringToJson('{\"k\":[1,{\"x\":null}]}'))", data.clone()),
            json!(true)
        );
        assert_eq!(
            eval("States.ArrayContains(States.Array(), null)", data.clone()),
            json!(false)
        );
        assert_contains(
            &eval_err("States.ArrayContains($.lookingFor, 5)", data),
            &["States.ArrayContains", "must be an array"],
        );
    }

    #[test]
    fn array_range_builds_ranges() {
        assert_eq!(
            eval("States.ArrayRange(1, 9, 2)", json!({})),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            eval("States.ArrayRange(1, 10, 2)", json!({})),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            eval("States.ArrayRange(5, 1, -2)", json!({})),
            json!([5, 3, 1])
        );
        assert_eq!(
            eval("States.ArrayRange(-2, 2, 1)", json!({})),
            json!([-2, -1, 0, 1, 2])
        );
        assert_eq!(eval("States.ArrayRange(3, 3, 5)", json!({})), json!([3]));
        // the step points away from the end: nothing to produce
        assert_eq!(eval("States.ArrayRange(1, 9, -1)", json!({})), json!([]));
        // non-integers are rounded to the nearest integer
        assert_eq!(
            eval("States.ArrayRange(0.6, 3.4, 1.5)", json!({})),
            json!([1, 3])
        );
        let v = eval(
            "States.ArrayRange($.a, $.b, $.c)",
            json!({"a": 0, "b": 4, "c": 2}),
        );
        assert_eq!(v, json!([0, 2, 4]));
        assert!(v[1].is_i64());
    }

    #[test]
    fn array_range_limits() {
        assert_eq!(
            eval("States.ArrayRange(1, 1000, 1)", json!({}))
                .as_array()
                .unwrap()
                .len(),
            1000
        );
        assert_contains(
            &eval_err("States.ArrayRange(0, 1000, 1)", json!({})),
            &["States.ArrayRange", "1001", "1000"],
        );
        assert_contains(
            &eval_err("States.ArrayRange(0, 9223372036854775807, 1)", json!({})),
            &["1000"],
        );
        assert_contains(
            &eval_err("States.ArrayRange(1, 9, 0)", json!({})),
            &["States.ArrayRange", "step", "0"],
        );
        assert_contains(
            &eval_err("States.ArrayRange(1, 9, 0.2)", json!({})),
            &["step"],
        );
        assert_contains(
            &eval_err("States.ArrayRange('1', 9, 1)", json!({})),
            &["must be an integer"],
        );
    }

    #[test]
    fn array_get_item_indexes() {
        let data = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5});
        assert_eq!(
            eval("States.ArrayGetItem($.inputArray, $.index)", data.clone()),
            json!(6)
        );
        assert_eq!(
            eval("States.ArrayGetItem($.inputArray, 0)", data.clone()),
            json!(1)
        );
        assert_eq!(
            eval("States.ArrayGetItem($.inputArray, 8.0)", data.clone()),
            json!(9)
        );
        assert_contains(
            &eval_err("States.ArrayGetItem($.inputArray, 9)", data.clone()),
            &["States.ArrayGetItem", "out of bounds", "9"],
        );
        assert_contains(
            &eval_err("States.ArrayGetItem($.inputArray, -1)", data.clone()),
            &["non-negative integer"],
        );
        assert_contains(
            &eval_err("States.ArrayGetItem($.inputArray, 1.5)", data.clone()),
            &["non-negative integer"],
        );
        assert_contains(
            &eval_err("States.ArrayGetItem($.inputArray, '1')", data.clone()),
            &["non-negative integer"],
        );
        assert_contains(
            &eval_err("States.ArrayGetItem($.index, 0)", data),
            &["must be an array"],
        );
    }

    #[test]
    fn array_length_counts() {
        assert_eq!(
            eval(
                "States.ArrayLength($.inputArray)",
                json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
            ),
            json!(9)
        );
        assert_eq!(
            eval("States.ArrayLength(States.Array())", json!({})),
            json!(0)
        );
        assert_contains(
            &eval_err("States.ArrayLength($.o)", json!({"o": {}})),
            &["States.ArrayLength", "must be an array", "object"],
        );
    }

    #[test]
    fn array_unique_keeps_first_occurrences() {
        assert_eq!(
            eval(
                "States.ArrayUnique($.inputArray)",
                json!({"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]})
            ),
            json!([1, 2, 3, 4])
        );
        let v = eval(
            "States.ArrayUnique($.a)",
            json!({"a": [3, "3", 1, 3, {"x": 1, "y": 2}, {"y": 2, "x": 1}, [1], [1], null, null, 1.0]}),
        );
        assert_eq!(v, json!([3, "3", 1, {"x": 1, "y": 2}, [1], null]));
        assert_contains(
            &eval_err("States.ArrayUnique('abc')", json!({})),
            &["States.ArrayUnique", "must be an array"],
        );
    }

    // --- encoding and hashing ------------------------------------------------------------------

    #[test]
    fn base64_round_trip() {
        assert_eq!(
            eval(
                "States.Base64Encode($.input)",
                json!({"input": "Data to encode"})
            ),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            eval(
                "States.Base64Decode($.base64)",
                json!({"base64": "RGF0YSB0byBlbmNvZGU="})
            ),
            json!("Data to encode")
        );
        assert_eq!(
            eval(
                "States.Base64Decode(States.Base64Encode('héllo ✓'))",
                json!({})
            ),
            json!("héllo ✓")
        );
        assert_eq!(eval("States.Base64Encode('')", json!({})), json!(""));
        // padding is optional and MIME line breaks are ignored
        assert_eq!(
            eval("States.Base64Decode('RGF0YQ')", json!({})),
            json!("Data")
        );
        assert_eq!(
            eval("States.Base64Decode($.b)", json!({"b": "RGF0\r\nYQ=="})),
            json!("Data")
        );
    }

    #[test]
    fn base64_errors() {
        let long = "x".repeat(10_001);
        assert_eq!(
            eval("States.Base64Encode($.s)", json!({"s": "x".repeat(10_000)}))
                .as_str()
                .unwrap()
                .len(),
            13_336
        );
        assert_contains(
            &eval_err("States.Base64Encode($.s)", json!({"s": long})),
            &["States.Base64Encode", "10001", "10000"],
        );
        assert_contains(
            &eval_err(
                "States.Base64Decode($.s)",
                json!({"s": "QUJD".repeat(2_501)}),
            ),
            &["States.Base64Decode", "10000"],
        );
        assert_contains(
            &eval_err("States.Base64Decode('not base64!')", json!({})),
            &["States.Base64Decode", "not valid Base64"],
        );
        assert_contains(
            &eval_err("States.Base64Decode('/w==')", json!({})),
            &["UTF-8"],
        );
        assert_contains(
            &eval_err("States.Base64Encode(1)", json!({})),
            &["States.Base64Encode", "must be a string"],
        );
        assert_contains(
            &eval_err("States.Base64Decode(null)", json!({})),
            &["must be a string"],
        );
    }

    #[test]
    fn hash_algorithms() {
        let cases = [
            ("MD5", "900150983cd24fb0d6963f7d28e17f72"),
            ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            ("SHA-256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "SHA-384",
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                "SHA-512",
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (algorithm, digest) in cases {
            let v = eval(
                "States.Hash($.Data, $.Algorithm)",
                json!({"Data": "abc", "Algorithm": algorithm}),
            );
            assert_eq!(v, json!(digest), "{algorithm}");
        }
        assert_eq!(
            eval("States.Hash('', 'MD5')", json!({})),
            json!("d41d8cd98f00b204e9800998ecf8427e")
        );
    }

    #[test]
    fn hash_errors() {
        assert_contains(
            &eval_err("States.Hash('abc', 'SHA-3')", json!({})),
            &["States.Hash", "unknown hash algorithm", "SHA-3"],
        );
        assert_contains(
            &eval_err("States.Hash('abc', 'sha-256')", json!({})),
            &["unknown hash algorithm"],
        );
        assert_contains(
            &eval_err("States.Hash($.o, 'MD5')", json!({"o": {"a": 1}})),
            &["States.Hash", "must be a string"],
        );
        assert_contains(
            &eval_err("States.Hash('abc', 5)", json!({})),
            &["algorithm", "must be a string"],
        );
        assert_contains(
            &eval_err("States.Hash($.s, 'MD5')", json!({"s": "é".repeat(10_001)})),
            &["States.Hash", "10001"],
        );
        assert!(eval_with(
            "States.Hash($.s, 'MD5')",
            &json!({"s": "é".repeat(10_000)}),
            &Value::Null
        )
        .is_ok());
    }

    // --- math --------------------------------------------------------------------------------------

    #[test]
    fn math_add_keeps_integers_integral() {
        let v = eval("States.MathAdd(1, 2)", json!({}));
        assert_eq!(v, json!(3));
        assert!(v.is_i64());
        assert_eq!(
            eval(
                "States.MathAdd($.value1, $.step)",
                json!({"value1": 111, "step": -1})
            ),
            json!(110)
        );
        assert_eq!(
            eval("States.MathAdd(2147483647, -2147483648)", json!({})),
            json!(-1)
        );
        // non-integers are rounded to the nearest integer (halves up)
        let v = eval("States.MathAdd(1.5, 2.2)", json!({}));
        assert_eq!(v, json!(4));
        assert!(v.is_i64());
        assert_eq!(eval("States.MathAdd(-1.5, 0)", json!({})), json!(-1));
        assert_eq!(
            eval(
                "States.MathAdd(States.ArrayLength($.a), 1)",
                json!({"a": [1, 2]})
            ),
            json!(3)
        );
    }

    #[test]
    fn math_add_errors() {
        assert_contains(
            &eval_err("States.MathAdd(2147483648, 1)", json!({})),
            &["States.MathAdd", "-2147483648", "2147483647"],
        );
        assert_contains(
            &eval_err("States.MathAdd(1, -2147483649)", json!({})),
            &["second argument", "range"],
        );
        assert_contains(
            &eval_err("States.MathAdd('1', 2)", json!({})),
            &["States.MathAdd", "must be an integer", "string"],
        );
        assert_contains(
            &eval_err("States.MathAdd(1, null)", json!({})),
            &["must be an integer"],
        );
    }

    #[test]
    fn math_random_stays_in_range() {
        let call = Intrinsic::parse("States.MathRandom($.start, $.end)").unwrap();
        let data = json!({"start": 1, "end": 4});
        let mut r = rng();
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let v = call.eval(&data, &Value::Null, &mut r).unwrap();
            assert!(v.is_i64());
            let n = v.as_i64().unwrap();
            assert!((1..4).contains(&n), "{n}");
            seen.insert(n);
        }
        assert_eq!(seen.len(), 3, "start inclusive, end exclusive: {seen:?}");
        // end - start == 1 leaves a single choice; rounding applies to start and end
        assert_eq!(eval("States.MathRandom(-5, -4)", json!({})), json!(-5));
        assert_eq!(eval("States.MathRandom(0.6, 1.7)", json!({})), json!(1));
    }

    #[test]
    fn math_random_with_seed_is_deterministic() {
        let call = Intrinsic::parse("States.MathRandom(1, 1000000, 42)").unwrap();
        let a = call
            .eval(&json!({}), &Value::Null, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap();
        let b = call
            .eval(&json!({}), &Value::Null, &mut ChaCha8Rng::seed_from_u64(2))
            .unwrap();
        assert_eq!(a, b);
        let n = a.as_i64().unwrap();
        assert!((1..1_000_000).contains(&n));
        let other = eval("States.MathRandom(1, 1000000, 43)", json!({}));
        let again = eval("States.MathRandom(1, 1000000, $.seed)", json!({"seed": 42}));
        assert_eq!(again, a);
        assert_ne!(other, a);
    }

    #[test]
    fn math_random_without_seed_uses_the_given_rng() {
        let call = Intrinsic::parse("States.MathRandom(0, 1000000000)").unwrap();
        let a = call
            .eval(&json!({}), &Value::Null, &mut ChaCha8Rng::seed_from_u64(9))
            .unwrap();
        let b = call
            .eval(&json!({}), &Value::Null, &mut ChaCha8Rng::seed_from_u64(9))
            .unwrap();
        assert_eq!(a, b);
        let mut r = ChaCha8Rng::seed_from_u64(9);
        let first = call.eval(&json!({}), &Value::Null, &mut r).unwrap();
        let second = call.eval(&json!({}), &Value::Null, &mut r).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn math_random_errors() {
        assert_contains(
            &eval_err("States.MathRandom(5, 5)", json!({})),
            &["States.MathRandom", "greater than"],
        );
        assert_contains(
            &eval_err("States.MathRandom(5, 1)", json!({})),
            &["greater than"],
        );
        assert_contains(
            &eval_err("States.MathRandom('1', 5)", json!({})),
            &["start", "must be an integer"],
        );
        assert_contains(
            &eval_err("States.MathRandom(1, 5, 'seed')", json!({})),
            &["seed", "must be an integer"],
        );
    }

    // --- strings and identifiers -----------------------------------------------------------------

    #[test]
    fn string_split_on_any_delimiter_character() {
        assert_eq!(
            eval(
                "States.StringSplit($.inputString, $.splitter)",
                json!({"inputString": "1,2,3,4,5", "splitter": ","})
            ),
            json!(["1", "2", "3", "4", "5"])
        );
        assert_eq!(
            eval(
                "States.StringSplit($.inputString, $.splitter)",
                json!({"inputString": "This.is+a,test=string", "splitter": ".+,="})
            ),
            json!(["This", "is", "a", "test", "string"])
        );
        // empty pieces are dropped
        assert_eq!(
            eval("States.StringSplit(',a,,b,', ',')", json!({})),
            json!(["a", "b"])
        );
        assert_eq!(eval("States.StringSplit(',,,', ',')", json!({})), json!([]));
        assert_eq!(eval("States.StringSplit('', ',')", json!({})), json!([]));
        assert_eq!(
            eval("States.StringSplit('a b', '')", json!({})),
            json!(["a b"])
        );
        assert_eq!(
            eval("States.StringSplit('x→y→z', '→')", json!({})),
            json!(["x", "y", "z"])
        );
        assert_eq!(
            eval(r"States.StringSplit('a{b}c', '\{\}')", json!({})),
            json!(["a", "b", "c"])
        );
    }

    #[test]
    fn string_split_errors() {
        assert_contains(
            &eval_err("States.StringSplit(1, ',')", json!({})),
            &["States.StringSplit", "first argument", "must be a string"],
        );
        assert_contains(
            &eval_err("States.StringSplit('a', $.d)", json!({"d": [","]})),
            &["delimiter", "must be a string", "array"],
        );
    }

    #[test]
    fn uuid_is_a_random_v4() {
        let v = eval("States.UUID()", json!({}));
        let text = v.as_str().unwrap();
        let parsed = uuid::Uuid::parse_str(text).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.len(), 36);
        // deterministic for a given rng state, different on the next draw
        assert_eq!(eval("States.UUID()", json!({})), v);
        let call = Intrinsic::parse("States.UUID()").unwrap();
        let mut r = rng();
        let a = call.eval(&json!({}), &Value::Null, &mut r).unwrap();
        let b = call.eval(&json!({}), &Value::Null, &mut r).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            eval("States.Format('id-{}', States.UUID())", json!({})),
            json!(format!("id-{text}"))
        );
    }

    #[test]
    fn evaluation_errors_are_intrinsic_failures_naming_the_function() {
        let err = eval_with("States.ArrayLength($.a)", &json!({"a": 1}), &Value::Null).unwrap_err();
        assert_eq!(err.error, crate::error::names::INTRINSIC_FAILURE);
        assert!(
            err.cause.starts_with("States.ArrayLength: "),
            "{}",
            err.cause
        );
        assert!(!err.is_terminal());
        assert!(err.matched_by("States.ALL"));
    }
}
