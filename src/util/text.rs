//! Showing text that came from outside (a member's name, a body it sent) on a terminal, in the
//! journal or in a unit: control characters are written as escapes, so nothing a member sends can
//! move the cursor, forge a line or end one.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1) written as an escape: `\r`, `\n`, `\t`, or
/// `\u{..}`. Text without any is returned as it is.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` made printable line by line: line breaks are kept (a message may span lines), every other
/// control character is escaped. What the logger writes to a terminal goes through this.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(s);
    }
    let lines: Vec<Cow<str>> = s.split('\n').map(printable).collect();
    Cow::Owned(lines.join("\n"))
}

/// `v` as one line of JSON with every control character escaped: serde_json escapes C0 only, so
/// DEL and C1 (U+009B is CSI to a terminal) a member sent would reach the terminal raw. They can
/// stand only inside strings, where `\u00XX` is the same character to a JSON reader.
pub fn json_line<T: serde::Serialize>(v: &T) -> serde_json::Result<String> {
    let text = serde_json::to_string(v)?;
    if !text.chars().any(char::is_control) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// At most `max` characters of `s`, made printable, with `…` where it was cut.
pub fn excerpt(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    let more = s.chars().nth(max).is_some();
    format!("{}{}", printable(&cut), if more { "…" } else { "" })
}

/// Whether `s` is one plain name: letters, digits, `-`, `_` and `.`, not starting with a dot, at
/// most 255 bytes. Member names, certificate file names and the like become file and directory
/// names: a name is never a path (no `/`, no `..`, nothing hidden, no control character).
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// What `is_plain_name` asks, in words, for error messages.
pub const PLAIN_NAME: &str =
    "a plain name (letters, digits, '-', '_' and '.', not starting with '.'; it becomes a file name)";

#[cfg(test)]
mod json_tests {
    #[test]
    fn json_output_escapes_del_and_c1_and_reads_back_the_same() {
        let v = serde_json::json!({"version": "3.5.1\u{9b}2J\u{7f}\u{1b}[0m", "ok": true});
        let line = super::json_line(&v).unwrap();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.contains("\\u009b") && line.contains("\\u007f"),
            "{line}"
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_never_a_path() {
        for ok in [
            "etcd-node1",
            "node_2.example.com",
            "ca-etcd.pem",
            "a",
            "x..y",
        ] {
            assert!(is_plain_name(ok), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            ".profile",
            "/some/dir",
            "../../x",
            "a/b",
            "a b",
            "a\rb",
            "näme",
            "*",
            long.as_str(),
        ] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert!(matches!(
            printable("etcd-node1"),
            Cow::Borrowed("etcd-node1")
        ));
        assert_eq!(printable("a\rb\nc\td"), "a\\rb\\nc\\td");
        assert_eq!(
            printable("\u{1b}[2J\u{7f}\u{9b}"),
            "\\u{1b}[2J\\u{7f}\\u{9b}"
        );
        assert_eq!(printable("ünïcode ok"), "ünïcode ok");
        assert_eq!(
            printable_lines("one\ntwo\u{1b}[1A\r"),
            "one\ntwo\\u{1b}[1A\\r"
        );
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("a\u{1b}", 5), "a\\u{1b}");
    }
}
