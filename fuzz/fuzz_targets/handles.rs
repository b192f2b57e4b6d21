//! Listed handles, the console's CSRF tokens and look-alike user IDs over arbitrary text:
//! `service::handles` is hand-written (SIV on HMAC-SHA256), so it is fuzzed on its own.
//!
//! Input: a secret, a NUL byte, then the text tried as a session ID, as a handle and as a
//! user ID. Properties:
//! - `resolve` never panics and names nothing for text that no `handle` call made;
//! - a handle is target-shaped (it passes `SessionId::parse`), at most 64 characters, and
//!   resolves back to the ID it was made from, when that ID is one (short enough);
//! - a handle made under one secret names nothing under another;
//! - the look-alike checks answer for any text, and an ID and its ASCII upper case share a
//!   skeleton (full Unicode case folding is a documented limit: `ß` is not `SS` here).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond::domain::lookalike;
use sessiond::domain::SessionId;
use sessiond::service::handles::Keys;

fuzz_target!(|data: &[u8]| {
    let Ok(data) = std::str::from_utf8(data) else {
        return;
    };
    let (secret, text) = data.split_once('\0').unwrap_or(("fuzz", data));
    let keys = Keys::from_secret(secret.as_bytes());
    let other = Keys::from_secret(format!("{secret}!").as_bytes());

    // Arbitrary text as a handle: it names something only if it came from `handle`, which
    // means it resolves to an ID whose handle is this very text.
    if let Some(id) = keys.resolve(text) {
        assert_eq!(keys.handle(&id), text, "a handle that is not its ID's handle");
    }

    // Arbitrary text as a session ID.
    if let Ok(id) = SessionId::parse(text) {
        let h = keys.handle(id.as_str());
        assert!(h.len() <= 64, "handle of {} chars", h.len());
        assert!(SessionId::parse(&h).is_ok(), "handle {h:?} is not target-shaped");
        if let Some(back) = keys.resolve(&h) {
            assert_eq!(back, id.as_str(), "a handle names another ID");
        } else {
            // Only an ID too long to carry in 64 characters gets a handle naming nothing.
            assert!(id.as_str().len() >= 36, "short ID {:?} lost", id.as_str());
        }
        assert_eq!(other.resolve(&h), None, "a handle resolved under another secret");
        assert_ne!(keys.csrf_token(id.as_str()), other.csrf_token(id.as_str()));
    }

    // Arbitrary text as a new user's ID.
    let _ = lookalike::suspicious(text);
    let skeleton = lookalike::skeleton(text);
    assert_eq!(
        lookalike::skeleton(&text.to_ascii_uppercase()),
        skeleton,
        "an ID and its upper case look different"
    );
});
