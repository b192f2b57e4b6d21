//! The console's one cookie: the console session's ID.
//!
//! `HttpOnly` (no script reads it, so the CSRF token cannot be derived by one), `SameSite=Strict`
//! (no cross-site request carries it), `Path` the console's own path (SOAP and the other routes
//! never see it), and `Secure` when the listener speaks TLS (or a trusted proxy says its client
//! used HTTPS); a client's own `X-Forwarded-Proto` never drops it. No expiry: the session's own
//! idle timeout ends it on the server, and the browser drops the cookie when it closes.

use actix_web::cookie::{Cookie, SameSite};
use std::net::IpAddr;

use actix_web::HttpRequest;

use crate::http::origin;

pub const NAME: &str = "sessiond_console";

/// The session ID the request's cookie carries, if any.
pub fn session_id(req: &HttpRequest) -> Option<String> {
    req.cookie(NAME)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

fn secure(req: &HttpRequest, trusted: &[IpAddr]) -> bool {
    origin::scheme(req, trusted) == "https"
}

pub fn signed_in(
    req: &HttpRequest,
    trusted: &[IpAddr],
    path: &str,
    session_id: &str,
) -> Cookie<'static> {
    Cookie::build(NAME, session_id.to_owned())
        .path(path.to_owned())
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req, trusted))
        .finish()
}

/// A cookie that tells the browser to forget the session.
pub fn signed_out(req: &HttpRequest, trusted: &[IpAddr], path: &str) -> Cookie<'static> {
    let mut c = signed_in(req, trusted, path, "");
    c.make_removal();
    c
}
