//! Printing answers: aligned tables and fields for people, or the
//! endpoint's JSON as is.

use std::fmt::Write;

use serde_json::Value;

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for (i, cell) in cells.enumerate() {
            let _ = write!(text, " {cell:<width$}", width = widths[i]);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

/// `name  value` lines, the names aligned; rows whose value is empty are
/// left out.
pub fn fields(title: &str, rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = format!("{title}:\n");
    for (name, value) in rows {
        if !value.is_empty() {
            let _ = writeln!(out, "  {name:<width$}  {value}");
        }
    }
    out
}

/// A JSON value as one short line: strings without quotes, others as
/// compact JSON, cut at `max` characters.
pub fn short(value: &Value, max: usize) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The endpoint's JSON, pretty-printed.
pub fn json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}
