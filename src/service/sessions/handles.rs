//! Listed handles and console CSRF tokens: what a ViewSessionRight holder may see of a session
//! without being able to act as it (docs/behaviour.md section 3, "Listed IDs").
//!
//! A handle is a deterministic encryption of the session ID under a key every instance shares
//! (stored once in the database), so it is the same on every instance, needs no table to be
//! turned back into the ID, and reveals nothing of the ID to whoever lacks the key. It is the
//! SIV construction of RFC 5297 with HMAC-SHA256 as its pseudo-random function: a 96-bit tag
//! `T = HMAC(k1, plaintext)` is both the handle's check and the nonce of a counter-mode key
//! stream `HMAC(k2, T || i)` that hides the plaintext. Hand-written on top of ring's HMAC
//! because no SIV crate is in the dependency tree and ring offers no raw stream cipher; the
//! composition is short and tested below. Handles stay within the session-ID alphabet and 64
//! characters, so they pass every check a target ID passes.
//!
//! A handle authenticates nothing: no session has it as its ID, so as a caller's session it is
//! simply unknown.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use subtle::ConstantTimeEq;

/// Bytes of the tag: the handle's check and its key-stream nonce.
const TAG: usize = 12;
/// Longest plaintext (with its format byte) that keeps a handle within 64 characters.
const MAX_PLAIN: usize = 36;
/// Plaintext formats: a canonical base64url ID decoded (every generated ID), or the ID's text.
const DECODED: u8 = 0;
const TEXT: u8 = 1;
/// The name of the shared secret in the database.
pub const SECRET_NAME: &str = "session-handles-v1";

/// The keys derived from the shared secret.
pub struct Keys {
    tag: hmac::Key,
    stream: hmac::Key,
    csrf: hmac::Key,
}

impl Keys {
    pub fn from_secret(secret: &[u8]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive =
            |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&root, label).as_ref());
        Self {
            tag: derive(b"sessiond listed handle: tag"),
            stream: derive(b"sessiond listed handle: stream"),
            csrf: derive(b"sessiond console csrf"),
        }
    }

    fn key_stream(&self, tag: &[u8], data: &mut [u8]) {
        for (i, chunk) in data.chunks_mut(32).enumerate() {
            let mut ctx = hmac::Context::with_key(&self.stream);
            ctx.update(tag);
            ctx.update(&[i as u8]);
            let block = ctx.sign();
            for (d, k) in chunk.iter_mut().zip(block.as_ref()) {
                *d ^= k;
            }
        }
    }

    /// The handle listed for a session ID. An ID too long for an invertible handle (only a
    /// hand-made one could be: generated IDs always fit) gets a handle that names nothing.
    pub fn handle(&self, id: &str) -> String {
        let decoded = URL_SAFE_NO_PAD
            .decode(id)
            .ok()
            .filter(|b| b.len() < MAX_PLAIN && URL_SAFE_NO_PAD.encode(b) == id);
        let mut plain = Vec::with_capacity(MAX_PLAIN);
        match decoded {
            Some(bytes) => {
                plain.push(DECODED);
                plain.extend_from_slice(&bytes);
            }
            None if id.len() < MAX_PLAIN => {
                plain.push(TEXT);
                plain.extend_from_slice(id.as_bytes());
            }
            None => {
                // Tagged as if it were the whole ID but carrying one byte: it never verifies.
                let tag = hmac::sign(&self.tag, id.as_bytes());
                let mut out = tag.as_ref()[..TAG].to_vec();
                out.push(TEXT);
                return URL_SAFE_NO_PAD.encode(out);
            }
        }
        let tag = hmac::sign(&self.tag, &plain);
        let tag = &tag.as_ref()[..TAG];
        self.key_stream(tag, &mut plain);
        let mut out = tag.to_vec();
        out.extend_from_slice(&plain);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The session ID a handle names, or `None` when the text is no handle made with these keys.
    pub fn resolve(&self, handle: &str) -> Option<String> {
        let raw = URL_SAFE_NO_PAD.decode(handle).ok()?;
        if raw.len() <= TAG || raw.len() > TAG + MAX_PLAIN {
            return None;
        }
        let (tag, sealed) = raw.split_at(TAG);
        let mut plain = sealed.to_vec();
        self.key_stream(tag, &mut plain);
        let expected = hmac::sign(&self.tag, &plain);
        if !bool::from(expected.as_ref()[..TAG].ct_eq(tag)) {
            return None;
        }
        match plain.split_first()? {
            (&DECODED, bytes) => Some(URL_SAFE_NO_PAD.encode(bytes)),
            (&TEXT, text) => String::from_utf8(text.to_vec()).ok(),
            _ => None,
        }
    }

    /// The console's CSRF token for a console session: keyed with the shared secret, so it
    /// cannot be computed from anything a listing shows.
    pub fn csrf_token(&self, session_id: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.csrf);
        ctx.update(session_id.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }
}

/// A fresh shared secret: 256 bits from the operating system.
pub fn fresh_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionId;

    fn keys(secret: &str) -> Keys {
        Keys::from_secret(secret.as_bytes())
    }

    #[test]
    fn a_generated_id_round_trips_through_its_handle_which_is_a_valid_target_text() {
        let k = keys("one");
        for _ in 0..200 {
            let id = SessionId::generate().unwrap();
            let h = k.handle(id.as_str());
            assert_ne!(h, id.as_str());
            assert!(SessionId::parse(&h).is_ok(), "{h} is not target-shaped");
            assert_eq!(k.resolve(&h).as_deref(), Some(id.as_str()));
        }
    }

    #[test]
    fn a_handle_is_the_same_for_the_same_secret_and_useless_under_another() {
        let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(keys("s").handle(id), keys("s").handle(id));
        assert_ne!(keys("s").handle(id), keys("t").handle(id));
        assert_eq!(keys("t").resolve(&keys("s").handle(id)), None);
    }

    #[test]
    fn hand_made_ids_round_trip_and_an_id_is_never_taken_for_a_handle() {
        let k = keys("x");
        for id in ["s1", "legacy-session-0001", "ABC", "a_b-c"] {
            assert_eq!(k.resolve(&k.handle(id)).as_deref(), Some(id));
            assert_eq!(k.resolve(id), None);
        }
        let long = "a".repeat(64);
        assert_eq!(k.resolve(&k.handle(&long)), None);
        assert!(SessionId::parse(&k.handle(&long)).is_ok());
    }

    #[test]
    fn a_tampered_handle_names_nothing() {
        let k = keys("x");
        let h = k.handle("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let mut bytes = URL_SAFE_NO_PAD.decode(&h).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(k.resolve(&URL_SAFE_NO_PAD.encode(bytes)), None);
    }

    #[test]
    fn a_csrf_token_depends_on_the_secret_and_the_session() {
        assert_ne!(keys("a").csrf_token("s"), keys("b").csrf_token("s"));
        assert_ne!(keys("a").csrf_token("s"), keys("a").csrf_token("t"));
        assert_eq!(keys("a").csrf_token("s"), keys("a").csrf_token("s"));
    }
}
