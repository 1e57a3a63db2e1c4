//! The fetcher against an HTTP server in this process that fails on purpose: what is retried, what
//! fails at once, what is resumed, what is cut off. No root, no network namespace.

use super::*;
use crate::util::testserver::{Handler, Request, Response, Server};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const BODY_LEN: usize = 300_000;

fn body() -> Vec<u8> {
    (0..BODY_LEN).map(|i| (i % 251) as u8).collect()
}

fn quick(attempts: u32) -> Retry {
    Retry {
        attempts,
        max_time: Duration::from_secs(30),
        read_timeout: Duration::from_secs(2),
        first_wait: Duration::from_millis(10),
    }
}

fn fetcher(attempts: u32) -> Fetcher {
    let hints = Hints {
        ca_file: "the_ca_setting",
        not_found: "check the_url_setting",
    };
    Fetcher::with_retry(None, quick(attempts), hints).unwrap()
}

/// A server whose handler sees the request number (from 1).
fn serve(
    f: impl Fn(usize, &Request) -> Response + Send + Sync + 'static,
) -> (Server, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let h: Handler = Arc::new(move |r| f(count.fetch_add(1, Ordering::SeqCst) + 1, r));
    (Server::start("127.0.0.1:0", None, h).unwrap(), n)
}

/// Downloads `url` into a temp file; the digest and size, or the error's text.
fn download(f: &Fetcher, url: &str, cap: u64) -> std::result::Result<(Sha256, u64), String> {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("t");
    let file = File::create(&path).unwrap();
    f.download(url, file, &path, cap, &mut |_| true)
        .map_err(|e| format!("{e:#}"))
}

fn whole() -> (Sha256, u64) {
    (Sha256::of(&body()), BODY_LEN as u64)
}

#[test]
fn a_plain_download_streams_and_hashes() {
    let (s, n) = serve(|_, _| Response::new(200, body()));
    assert_eq!(download(&fetcher(1), &s.url("http"), 1 << 30), Ok(whole()));
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[test]
fn server_errors_are_retried_and_a_404_fails_at_once_with_the_caller_s_hint() {
    let (s, n) = serve(|i, _| {
        if i <= 2 {
            Response::new(503, "busy")
        } else {
            Response::new(200, body())
        }
    });
    assert_eq!(download(&fetcher(5), &s.url("http"), 1 << 30), Ok(whole()));
    assert_eq!(n.load(Ordering::SeqCst), 3);
    let (s, n) = serve(|_, _| Response::new(404, "no"));
    let e = download(&fetcher(5), &s.url("http"), 1 << 30).unwrap_err();
    assert!(
        e.contains("the server answered 404") && e.contains("check the_url_setting"),
        "{e}"
    );
    assert_eq!(n.load(Ordering::SeqCst), 1, "a 404 is not retried");
}

#[test]
fn request_timeout_and_too_many_requests_are_retried_other_4xx_are_not() {
    for code in [408, 429] {
        let (s, n) = serve(move |i, _| {
            if i == 1 {
                Response::new(code, "later")
            } else {
                Response::new(200, body())
            }
        });
        assert_eq!(
            download(&fetcher(3), &s.url("http"), 1 << 30),
            Ok(whole()),
            "{code}"
        );
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }
    let (s, n) = serve(|_, _| Response::new(403, "no"));
    assert!(download(&fetcher(3), &s.url("http"), 1 << 30).is_err());
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[test]
fn a_cut_body_resumes_with_range_where_the_server_allows_it() {
    let (s, n) = serve(|i, r| {
        let all = body();
        match (i, r.header("range")) {
            (1, _) => Response {
                cut_at: Some(BODY_LEN / 3),
                ..Response::new(200, all)
            },
            (_, Some(range)) => {
                let from: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                Response::new(206, all[from..].to_vec()).header(
                    "Content-Range",
                    &format!("bytes {from}-{}/{BODY_LEN}", BODY_LEN - 1),
                )
            }
            _ => Response::new(500, "expected a Range request"),
        }
    });
    assert_eq!(download(&fetcher(3), &s.url("http"), 1 << 30), Ok(whole()));
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[test]
fn a_server_ignoring_range_restarts_the_download_and_tells_the_tee() {
    let (s, _) = serve(|i, _| Response {
        cut_at: (i == 1).then_some(1000),
        ..Response::new(200, body())
    });
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("t");
    let (mut seen, mut restarts) = (0usize, 0);
    let got = fetcher(3)
        .download(
            &s.url("http"),
            File::create(&path).unwrap(),
            &path,
            1 << 30,
            &mut |t| {
                match t {
                    Tee::Bytes(b) => seen += b.len(),
                    Tee::Restart => {
                        restarts += 1;
                        seen = 0;
                    }
                }
                true
            },
        )
        .unwrap();
    assert_eq!(got, whole());
    assert_eq!((restarts, seen), (1, BODY_LEN));
    assert_eq!(std::fs::read(&path).unwrap(), body());
}

#[test]
fn a_body_past_the_cap_is_refused_announced_or_not() {
    let (s, n) = serve(|_, _| Response::new(200, body()));
    let e = download(&fetcher(3), &s.url("http"), 1000).unwrap_err();
    assert!(e.contains("is larger than 1000 bytes"), "{e}");
    assert_eq!(n.load(Ordering::SeqCst), 1, "not retried");
    let (s, _) = serve(|_, _| Response {
        endless: true,
        ..Response::new(200, vec![])
    });
    let e = download(&fetcher(1), &s.url("http"), 1 << 20).unwrap_err();
    assert!(e.contains("is larger than 1 MiB"), "{e}");
}

#[test]
fn a_tee_that_refuses_stops_the_download_at_once() {
    let (s, n) = serve(|_, _| Response {
        endless: true,
        ..Response::new(200, vec![])
    });
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("t");
    let mut chunks = 0;
    let e = fetcher(3)
        .download(
            &s.url("http"),
            File::create(&path).unwrap(),
            &path,
            1 << 30,
            &mut |_| {
                chunks += 1;
                chunks < 3
            },
        )
        .unwrap_err();
    assert!(e.chain().any(|c| c.is::<Stopped>()), "{e:#}");
    assert_eq!(chunks, 3);
    assert_eq!(n.load(Ordering::SeqCst), 1, "a refusal is not retried");
}

#[test]
fn a_stall_is_cut_by_the_read_timeout_and_retried() {
    let (s, n) = serve(|i, _| Response {
        delay: if i == 1 {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        },
        ..Response::new(200, body())
    });
    let start = std::time::Instant::now();
    assert_eq!(download(&fetcher(2), &s.url("http"), 1 << 30), Ok(whole()));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[test]
fn a_refused_connection_is_retried_then_given_up_naming_the_attempts() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/x");
    let e = download(&fetcher(2), &url, 1 << 30).unwrap_err();
    assert!(
        e.contains(&format!("giving up on {url} after 2 attempt(s)")),
        "{e}"
    );
}

#[test]
fn small_documents_are_capped_and_must_arrive_whole() {
    let (s, _) = serve(|_, _| Response::new(200, "abc"));
    assert_eq!(fetcher(1).fetch_small(&s.url("http"), 10).unwrap(), b"abc");
    let e = fetcher(1).fetch_small(&s.url("http"), 2).unwrap_err();
    assert!(format!("{e:#}").contains("is larger than 2 bytes"), "{e:#}");
    let (s, n) = serve(|i, _| Response {
        cut_at: (i == 1).then_some(1),
        ..Response::new(200, "abc")
    });
    assert_eq!(fetcher(2).fetch_small(&s.url("http"), 10).unwrap(), b"abc");
    assert_eq!(n.load(Ordering::SeqCst), 2, "a short body is tried again");
}

#[test]
fn a_file_url_is_read_and_only_http_file_and_https_are_fetched() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("doc");
    std::fs::write(&p, "text").unwrap();
    let f = fetcher(1);
    assert_eq!(
        f.fetch_small(&format!("file://{}", p.display()), 10)
            .unwrap(),
        b"text"
    );
    let e = f.fetch_small("ftp://example.org/x", 10).unwrap_err();
    assert!(format!("{e:#}").contains("unsupported URL"), "{e:#}");
}

#[test]
fn a_ca_file_that_holds_no_certificate_is_named_as_the_caller_names_it() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ca.pem");
    std::fs::write(&p, "not a certificate").unwrap();
    let hints = Hints {
        ca_file: "the_ca_setting",
        not_found: "",
    };
    let e = Fetcher::with_retry(Some(&p), quick(1), hints)
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("the_ca_setting"), "{e:#}");
}

/// `max_time` bounds the retries: no new attempt starts after it, however many are left.
#[test]
fn no_attempt_starts_after_the_max_time() {
    let (s, n) = serve(|_, _| Response::new(503, "busy"));
    let f = Fetcher::with_retry(
        None,
        Retry {
            attempts: 1000,
            max_time: Duration::from_millis(300),
            read_timeout: Duration::from_secs(2),
            first_wait: Duration::from_millis(50),
        },
        Hints::default(),
    )
    .unwrap();
    let e = download(&f, &s.url("http"), 1 << 30).unwrap_err();
    assert!(e.contains("giving up on"), "{e}");
    let tries = n.load(Ordering::SeqCst);
    assert!((2..10).contains(&tries), "{tries} attempts within 300 ms");
}
