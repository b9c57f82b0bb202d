//! Human output shared by the commands: [`clean`] for every stored or user-supplied field a text
//! line prints, and the live event lines of the commands that run executions.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

/// `s` as a text line or table cell may print it: every character that could end the line,
/// move the cursor, start a terminal escape or reorder what is shown is written as an escape,
/// so a field (a `--reason`, `--requested-by`, tag, name, or an error cause that echoes one)
/// can neither add a line of its own nor drive the terminal:
///
/// * C0 controls, DEL and C1 controls (`char::is_control`): `\n`, `\r`, `\t`, else `\x1b` style
///   below U+0080 and `\u{9b}` style above;
/// * the line and paragraph separators U+2028 and U+2029, and the bidirectional formatting
///   characters (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069): `\u{202e}` style.
///
/// Everything else, backslashes included, is kept as it is; a field without any of these comes
/// back borrowed. JSON output needs none of this (serde escapes control characters).
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// [`clean`] of a JSON string field (`""` when absent or not a string).
fn field(v: &Value) -> Cow<'_, str> {
    clean(v.as_str().unwrap_or_default())
}

/// The line for one history event, or `None` for events not worth a line. Events carry ids
/// and names only; no value can reach this output. Every field is [`clean`]ed: state names and
/// errors come from a definition and from what Tasks threw.
pub fn event_line(event: &Value) -> Option<String> {
    let ty = field(&event["type"]);
    let at = field(&event["timestamp"]);
    if let Some(d) = event.get("stateEnteredEventDetails") {
        return Some(format!(
            "{at}  -> {} ({})",
            field(&d["name"]),
            ty.trim_end_matches("StateEntered")
        ));
    }
    if let Some(d) = event.get("stateExitedEventDetails") {
        return Some(format!("{at}  <- {}", field(&d["name"])));
    }
    if ty.ends_with("Failed") || ty.ends_with("TimedOut") {
        let details = event.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.ends_with("EventDetails"))
                .map(|(_, v)| v)
        });
        let error = details.map(|d| field(&d["error"])).unwrap_or_default();
        return Some(format!("{at}     {ty} {error}"));
    }
    None
}

/// One line per state transition, as it happens.
pub fn print_event(event: &Value) {
    if let Some(line) = event_line(event) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clean_escapes_controls_separators_and_bidi_and_keeps_the_rest() {
        assert!(matches!(clean("prod/openai quarterly"), Cow::Borrowed(_)));
        assert_eq!(clean("café \\n ünïcode"), "café \\n ünïcode");
        assert_eq!(
            clean("quarterly\n2026-01-01 rotated prod/x by admin"),
            "quarterly\\n2026-01-01 rotated prod/x by admin"
        );
        assert_eq!(clean("a\r\tb\0"), "a\\r\\tb\\x00");
        assert_eq!(clean("\x1b[2J\x07\x7f"), "\\x1b[2J\\x07\\x7f");
        assert_eq!(clean("\u{9b}2J\u{85}"), "\\u{9b}2J\\u{85}");
        assert_eq!(clean("x\u{2028}y\u{202e}z"), "x\\u{2028}y\\u{202e}z");
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let cleaned = clean(&c.to_string()).into_owned();
            assert!(!cleaned.chars().any(needs_escape), "{c:?} -> {cleaned:?}");
        }
    }

    #[test]
    fn event_lines_are_one_line() {
        let e = json!({
            "type": "TaskFailed",
            "timestamp": "t",
            "taskFailedEventDetails": {"error": "Boom\n2026 forged\u{1b}[2J"},
        });
        assert_eq!(
            event_line(&e).unwrap(),
            "t     TaskFailed Boom\\n2026 forged\\x1b[2J"
        );
        let e = json!({"type": "TaskStateEntered", "timestamp": "t",
                       "stateEnteredEventDetails": {"name": "A\rB"}});
        assert_eq!(event_line(&e).unwrap(), "t  -> A\\rB (Task)");
    }
}
