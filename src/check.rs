//! `nodewright check`: GET each URL and succeed only if every one answers 2xx (and, with
//! `--expect`, its body holds the expected text); otherwise exit non-zero saying which URL failed
//! and why. The chart's `helm test` pod runs it in the nodewright image itself, which has no shell
//! and no curl. Judging a response is pure ([`judge`], [`Target::parse`]); only [`get`] does I/O.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Arguments of `nodewright check`.
#[derive(clap::Args)]
pub struct Args {
    /// A URL to GET, plain `http://host[:port]/path` (the admin ports serve plain HTTP); repeat
    /// for several. Each must answer 2xx.
    #[arg(long = "url", required = true, value_name = "URL")]
    urls: Vec<String>,
    /// Text every body must contain (e.g. a metric name on /metrics); repeat for several.
    #[arg(long = "expect", value_name = "TEXT")]
    expect: Vec<String>,
    /// Keep trying a failing URL once a second for up to this many seconds before giving up.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    wait: u64,
    /// Seconds one request (connect, answer and body) may take.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    timeout: u64,
}

/// Why a URL failed the check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    /// The URL is not one this command can GET.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No answer: refused, unreachable, timed out or cut off.
    #[error("GET {url}: no answer: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What the connection or request reported.
        reason: String,
    },
    /// An answer that is not 2xx.
    #[error("GET {url}: answered {status}{}", excerpt_suffix(.body))]
    Status {
        /// The URL.
        url: String,
        /// The status line's code and reason, e.g. `503 Service Unavailable`.
        status: String,
        /// The start of the body (a readiness endpoint says what it waits for).
        body: String,
    },
    /// A 2xx answer whose body lacks an expected text.
    #[error("GET {url}: answered {status}, but the body does not contain {missing:?}")]
    Missing {
        /// The URL.
        url: String,
        /// The status.
        status: String,
        /// The expected text not found.
        missing: String,
    },
}

fn excerpt_suffix(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        format!(": {}", excerpt(body))
    }
}

/// The first line of `body`, at most 200 characters: enough to say why, never a whole page.
fn excerpt(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default();
    let mut cut: String = line.chars().take(200).collect();
    if cut.len() < line.len() || body.lines().nth(1).is_some() {
        cut.push('…');
    }
    cut
}

/// Where to send a GET: the parsed form of a `--url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given, for messages.
    pub url: String,
    /// Host name or address.
    pub host: String,
    /// Port (80 unless given).
    pub port: u16,
    /// The `Host` header: host, and the port if the URL gave one.
    pub authority: String,
    /// Path and query (`/` if empty).
    pub path_and_query: String,
}

impl Target {
    /// Parses a plain `http://` URL; anything else is a [`CheckError::BadUrl`] saying what is wrong.
    pub fn parse(url: &str) -> Result<Target, CheckError> {
        let bad = |reason| CheckError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|_| bad("not a URL (expected http://host[:port]/path)"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => {
                return Err(bad(
                    "only http:// is supported (the admin ports serve plain HTTP)",
                ));
            }
            None => return Err(bad("no scheme (expected http://host[:port]/path)")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user information in a URL is not supported"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Target {
            url: url.to_owned(),
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// Judges one answer: 2xx, and every expected text in the body.
pub fn judge(url: &str, status: http::StatusCode, body: &str, expect: &[String]) -> Result<(), CheckError> {
    let status_text = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    if !status.is_success() {
        return Err(CheckError::Status {
            url: url.to_owned(),
            status: status_text,
            body: body.to_owned(),
        });
    }
    match expect.iter().find(|text| !body.contains(text.as_str())) {
        Some(missing) => Err(CheckError::Missing {
            url: url.to_owned(),
            status: status_text,
            missing: missing.clone(),
        }),
        None => Ok(()),
    }
}

/// One GET over plain HTTP/1.1: the status and the body, or why there was no answer.
async fn get(target: &Target, timeout: Duration) -> Result<(http::StatusCode, String), CheckError> {
    let unreachable = |reason: String| CheckError::Unreachable {
        url: target.url.clone(),
        reason,
    };
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let connection = tokio::spawn(connection);
        let request = http::Request::get(target.path_and_query.as_str())
            .header(http::header::HOST, target.authority.as_str())
            .header(
                http::header::USER_AGENT,
                concat!("nodewright-check/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| unreachable(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the body: {e}")))?
            .to_bytes();
        connection.abort();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(unreachable(format!("timed out after {} s", timeout.as_secs()))),
    }
}

/// Checks one URL, trying again once a second until `deadline` while it fails.
async fn check_one(target: &Target, args: &Args, deadline: Instant) -> Result<String, CheckError> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    loop {
        let outcome = match get(target, timeout).await {
            Ok((status, body)) => judge(&target.url, status, &body, &args.expect).map(|()| status),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(status) => return Ok(format!("ok: GET {}: {status}\n", target.url)),
            Err(e) if Instant::now() + Duration::from_secs(1) > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Runs `nodewright check`: every URL is checked (not only up to the first failure), each result
/// printed, and the command fails if any URL did.
pub fn run(args: Args) -> anyhow::Result<()> {
    let targets = args
        .urls
        .iter()
        .map(|url| Target::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut failures = Vec::new();
    for target in &targets {
        match runtime.block_on(check_one(target, &args, deadline)) {
            Ok(line) => crate::out(&line),
            Err(e) => failures.push(e.to_string()),
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(anyhow::anyhow!("check failed: {}", failures.join(""))),
        n => Err(anyhow::anyhow!(
            "check failed for {n} of {} URLs:\n  {}",
            targets.len(),
            failures.join("\n  ")
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_http_url_names_host_port_and_path() {
        assert_eq!(
            Target::parse("http://rel-bridge.ns.svc:8080/readyz"),
            Ok(Target {
                url: "http://rel-bridge.ns.svc:8080/readyz".into(),
                host: "rel-bridge.ns.svc".into(),
                port: 8080,
                authority: "rel-bridge.ns.svc:8080".into(),
                path_and_query: "/readyz".into(),
            })
        );
    }

    #[test]
    fn a_url_without_port_or_path_means_port_80_and_the_root() {
        let target = Target::parse("http://example.test").unwrap();
        assert_eq!((target.port, target.path_and_query.as_str()), (80, "/"));
    }

    #[test]
    fn an_ipv6_host_loses_its_brackets_for_the_connection() {
        let target = Target::parse("http://[::1]:9/metrics").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 9));
    }

    #[test]
    fn https_and_schemeless_and_garbage_urls_are_refused_with_the_reason() {
        let reason = |url| match Target::parse(url) {
            Err(CheckError::BadUrl { reason, .. }) => reason,
            other => unreachable!("{url}: {other:?}"),
        };
        assert!(reason("https://x/readyz").contains("only http://"));
        assert!(reason("/readyz").contains("no scheme"));
        assert!(reason("rel-bridge:8080").contains("no scheme"));
        assert!(reason("http://u:p@x/").contains("user information"));
        assert!(reason("not a url at all").contains("not a URL"));
    }

    #[test]
    fn a_2xx_answer_with_every_expected_text_passes() {
        let body = "# HELP nodewright_bridge_leader …\nnodewright_bridge_leader 1\n";
        assert_eq!(
            judge(
                "u",
                http::StatusCode::OK,
                body,
                &["nodewright_bridge_leader".into()]
            ),
            Ok(())
        );
    }

    #[test]
    fn a_non_2xx_answer_fails_with_its_status_and_the_first_line_of_the_body() {
        let err = judge(
            "http://b/readyz",
            http::StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first full list of: nodes\nmore",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET http://b/readyz: answered 503 Service Unavailable: waiting for the first full list of: nodes…"
        );
    }

    #[test]
    fn a_2xx_answer_missing_an_expected_text_fails_naming_the_text() {
        let err = judge(
            "http://b/metrics",
            http::StatusCode::OK,
            "up 1",
            &["up".into(), "leader".into()],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET http://b/metrics: answered 200 OK, but the body does not contain \"leader\""
        );
    }

    #[test]
    fn a_long_body_is_cut_to_two_hundred_characters() {
        assert_eq!(excerpt(&"x".repeat(500)).chars().count(), 201);
        assert_eq!(excerpt("short"), "short");
    }
}
