//! The origin check beside the CSRF token every console POST carries.
//!
//! The token itself is the service's (`ConsoleUser::csrf_token`): an HMAC of the console
//! session's ID under a secret the instances share in the database, so no listing, handle or
//! hash of one computes it.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::http::origin;

/// False when the browser says the POST came from a page of another origin. Browsers send
/// `Origin` on every form POST (the console's `Referrer-Policy: same-origin` keeps it real);
/// without one, `Referer` is asked the same. A request with neither (a script, not a browser
/// page) is left to the CSRF token. `Origin: null` (a sandboxed frame, a `data:` page) is
/// refused where there is no token to fall back on: the sign-in form, so another site cannot
/// sign a browser in to an account of its own choosing (login CSRF).
pub fn same_origin(req: &HttpRequest, trusted: &[IpAddr], null_allowed: bool) -> bool {
    let headers = req.headers();
    let Some(claimed) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
    else {
        return true;
    };
    // A value that is not text names no origin of ours.
    let Ok(claimed) = claimed.to_str() else {
        return false;
    };
    if claimed == "null" {
        return null_allowed;
    }
    let Some((_, rest)) = claimed.split_once("://") else {
        return false;
    };
    let claimed_host = rest.split('/').next().unwrap_or("");
    claimed_host.eq_ignore_ascii_case(&origin::host(req, trusted))
}
