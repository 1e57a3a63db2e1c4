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

/// At most `max` characters of `s`, made printable, with `…` where it was cut.
pub fn excerpt(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    let more = s.chars().nth(max).is_some();
    format!("{}{}", printable(&cut), if more { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("a\u{1b}", 5), "a\\u{1b}");
    }
}
