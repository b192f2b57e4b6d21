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
