//! The few XML answers S3 gives, read by tag: no XML parser in the static binary for them.

/// The text of the first `<name>…</name>`, unescaped.
pub fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(unescape(&xml[start..end]))
}

/// The insides of every `<name>…</name>`.
pub(super) fn blocks<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_listings_and_errors() {
        let x = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key><Size>3</Size></Contents>\
                 <Contents><Key>c</Key><Size>4</Size></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        let b = blocks(x, "Contents");
        assert_eq!(b.len(), 2);
        assert_eq!(tag(b[0], "Key").as_deref(), Some("a&b"));
        assert_eq!(tag(x, "NextContinuationToken").as_deref(), Some("t1"));
        assert_eq!(tag(x, "Missing"), None);
        assert_eq!(escape("\"e\""), "&quot;e&quot;");
    }
}
