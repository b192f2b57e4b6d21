//! The CSRF token every console POST carries, and the origin check beside it.
//!
//! The token is base64url(SHA-256("sessiond-console-csrf\0" + session ID)): bound to one
//! console session, unguessable without the session ID (which lives in an HttpOnly cookie a
//! cross-site page cannot read), and the same on every instance with nothing stored and no
//! secret to share between them. A keyed HMAC would need a key kept in the database for that;
//! the hash of a 256-bit random ID is as unguessable, and reveals nothing of the ID itself.

use actix_web::HttpRequest;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const DOMAIN: &[u8] = b"sessiond-console-csrf\0";

/// The token for a console session.
pub fn token(session_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    hash.update(session_id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// True when `given` is the token of `session_id`, compared in constant time.
pub fn verify(session_id: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let expected = token(session_id);
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// False when the browser says the POST came from a page of another origin. Browsers send
/// `Origin` on every form POST (the console's `Referrer-Policy: same-origin` keeps it real
/// rather than `null`); its absence or `null` leaves the decision to the token. This also
/// covers the sign-in form, which has no session to bind a token to.
pub fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if origin == "null" {
        return true;
    }
    let info = req.connection_info();
    let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    host.eq_ignore_ascii_case(info.host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_for_its_own_session_only() {
        let t = token("session-a");
        assert!(verify("session-a", Some(&t)));
        assert!(!verify("session-b", Some(&t)));
        assert!(!verify("session-a", None));
        assert!(!verify("session-a", Some("")));
    }

    #[test]
    fn a_token_does_not_contain_the_session_id() {
        let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!token(id).contains(id));
        assert_eq!(token(id).len(), 43);
    }
}
