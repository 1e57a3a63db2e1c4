//! AWS Signature Version 4 for S3, header form: the request's method, path, query and chosen
//! headers signed with a key derived from the secret, the date, the region and `s3`. Sans-IO:
//! the caller sends the headers this returns over the tool's own HTTP client.

use crate::util::io::Sha256;
use ring::hmac;

/// The payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The unreserved characters of RFC 3986 stay; everything else is `%XX` (`/` too unless it
/// separates path segments).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct Key<'a> {
    pub access_key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
}

/// What is signed: `path` already encoded, `query` as (name, value) unencoded, `headers` with
/// lowercase names (host and x-amz-date among them).
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub payload_sha256: &'a str,
    /// `YYYYmmddTHHMMSSZ`.
    pub amz_date: &'a str,
}

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, data.as_bytes()).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` header's value for `r`.
pub fn authorization(key: &Key, r: &Request) -> String {
    let mut query: Vec<(String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{signed}\n{}",
        r.method, r.path, r.payload_sha256
    );
    let date = &r.amz_date[..8];
    let scope = format!("{date}/{}/s3/aws4_request", key.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        r.amz_date,
        Sha256::of(canonical.as_bytes())
    );
    let k = mac(format!("AWS4{}", key.secret).as_bytes(), date);
    let k = mac(&k, key.region);
    let k = mac(&k, "s3");
    let k = mac(&k, "aws4_request");
    let signature = hex(&mac(&k, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        key.access_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's own worked example ("Signature Calculations for the Authorization Header",
    /// GET Object with a Range header).
    #[test]
    fn signs_aws_worked_example() {
        let h = |k: &str, v: &str| (k.to_string(), v.to_string());
        let headers = [
            h("host", "examplebucket.s3.amazonaws.com"),
            h("range", "bytes=0-9"),
            h("x-amz-content-sha256", EMPTY_SHA256),
            h("x-amz-date", "20130524T000000Z"),
        ];
        let auth = authorization(
            &Key {
                access_key: "AKIAIOSFODNN7EXAMPLE",
                secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                region: "us-east-1",
            },
            &Request {
                method: "GET",
                path: "/test.txt",
                query: &[],
                headers: &headers,
                payload_sha256: EMPTY_SHA256,
                amz_date: "20130524T000000Z",
            },
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn encodes_as_s3_expects() {
        assert_eq!(uri_encode("a b/c~d*", true), "a%20b/c~d%2A");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
