//! Human output shared by the commands that run executions.

use serde_json::Value;
use std::borrow::Cow;
use std::io::Write;

/// A user-supplied or stored field as one line of text can show it: control characters
/// escaped, so that a reason or a name can never forge a line or a terminal sequence.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().flat_map(char::escape_default).collect())
}

/// The line for one history event, or `None` for events not worth a line. Events carry ids
/// and names only; no value can reach this output.
pub fn event_line(event: &Value) -> Option<String> {
    let ty = event["type"].as_str().unwrap_or_default();
    let at = event["timestamp"].as_str().unwrap_or_default();
    if let Some(d) = event.get("stateEnteredEventDetails") {
        return Some(format!(
            "{at}  -> {} ({})",
            d["name"].as_str().unwrap_or_default(),
            ty.trim_end_matches("StateEntered")
        ));
    }
    if let Some(d) = event.get("stateExitedEventDetails") {
        return Some(format!(
            "{at}  <- {}",
            d["name"].as_str().unwrap_or_default()
        ));
    }
    if ty.ends_with("Failed") || ty.ends_with("TimedOut") {
        let details = event.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.ends_with("EventDetails"))
                .map(|(_, v)| v)
        });
        let error = details
            .and_then(|d| d["error"].as_str())
            .unwrap_or_default();
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
