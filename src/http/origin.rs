//! Where a request came from and by which URL: the caller's address, the scheme and the host.
//!
//! A client's own headers decide none of it. `X-Forwarded-For`, `Forwarded`,
//! `X-Forwarded-Host` and `X-Forwarded-Proto` are read only when the peer is one of
//! `SESSIOND_TRUSTED_PROXIES`; otherwise the scheme is the listener's (TLS or not) and the host
//! is the request target's authority when the client sent the absolute form (RFC 9112 section
//! 3.2.2: it wins over `Host`), else `Host`. actix's `connection_info` believes every client's
//! forwarding headers, so it is not used for any of this.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::HttpRequest;

/// True when the peer is a proxy we were told to trust.
fn via_trusted_proxy(req: &HttpRequest, trusted: &[IpAddr]) -> bool {
    req.peer_addr().is_some_and(|a| trusted.contains(&a.ip()))
}

/// The caller's address: the peer, or what X-Forwarded-For says when the peer is a proxy we
/// were told to trust (the last address in the chain that is not one of ours).
pub fn client_host(req: &HttpRequest, trusted: &[IpAddr]) -> Option<String> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    if !trusted.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded = req
        .headers()
        .get_all("X-Forwarded-For")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    let client = forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer);
    Some(client.to_string())
}

/// True when this listener speaks TLS.
pub fn listener_is_tls(req: &HttpRequest) -> bool {
    req.app_config().secure()
}

/// A parameter of the first `Forwarded` element (`host`, `proto`), unquoted.
fn forwarded_param(req: &HttpRequest, name: &str) -> Option<String> {
    let value = req.headers().get(header::FORWARDED)?.to_str().ok()?;
    let first = value.split(',').next()?;
    first.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn first_value(req: &HttpRequest, name: &str) -> Option<String> {
    let v = req.headers().get(name)?.to_str().ok()?;
    let v = v.split(',').next()?.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// `https` or `http`: the listener's, or a trusted proxy's word for what its client used.
pub fn scheme(req: &HttpRequest, trusted: &[IpAddr]) -> &'static str {
    if listener_is_tls(req) {
        return "https";
    }
    if via_trusted_proxy(req, trusted) {
        let said = forwarded_param(req, "proto").or_else(|| first_value(req, "X-Forwarded-Proto"));
        if said.is_some_and(|p| p.eq_ignore_ascii_case("https")) {
            return "https";
        }
    }
    "http"
}

/// The host (and port) the client addressed.
pub fn host(req: &HttpRequest, trusted: &[IpAddr]) -> String {
    if via_trusted_proxy(req, trusted) {
        if let Some(h) =
            forwarded_param(req, "host").or_else(|| first_value(req, "X-Forwarded-Host"))
        {
            return h;
        }
    }
    if let Some(authority) = req.uri().authority() {
        return authority.as_str().to_owned();
    }
    if let Some(h) = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
    {
        return h.to_owned();
    }
    req.app_config().host().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn from(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::get()
            .uri("/services/SessionService?wsdl")
            .peer_addr(format!("{peer}:40000").parse().unwrap())
            .insert_header(("Host", "sessions.example:8080"));
        for (k, v) in headers {
            req = req.append_header((*k, *v));
        }
        req.to_http_request()
    }

    const PROXY: &str = "10.0.0.2";

    fn trusted() -> Vec<IpAddr> {
        vec![PROXY.parse().unwrap()]
    }

    const FORWARDED: &[(&str, &str)] = &[
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-For", "203.0.113.9"),
    ];

    #[test]
    fn a_clients_own_forwarding_headers_change_nothing() {
        let req = from("198.51.100.7", FORWARDED);
        assert_eq!(host(&req, &trusted()), "sessions.example:8080");
        assert_eq!(scheme(&req, &trusted()), "http");
        assert_eq!(client_host(&req, &trusted()).unwrap(), "198.51.100.7");
    }

    #[test]
    fn a_trusted_proxys_forwarding_headers_are_believed_forwarded_first() {
        let req = from(PROXY, FORWARDED);
        assert_eq!(host(&req, &trusted()), "evil.example");
        assert_eq!(scheme(&req, &trusted()), "https");
        assert_eq!(client_host(&req, &trusted()).unwrap(), "203.0.113.9");
        let req = from(
            PROXY,
            &[
                (
                    "Forwarded",
                    "for=1.2.3.4;host=\"a.example\";proto=https, host=b",
                ),
                ("X-Forwarded-Host", "c.example"),
            ],
        );
        assert_eq!(host(&req, &trusted()), "a.example");
        assert_eq!(scheme(&req, &trusted()), "https");
    }
}
