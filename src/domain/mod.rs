//! Newtypes that cannot hold a bad value: a value of one of these types has passed its `parse`.
//!
//! Everything the service stores or compares goes through here, so the rules of docs/behaviour.md
//! §§2 and 3 (ID lengths, the set of rights, end reasons) live in one place.

use std::fmt;
use std::str::FromStr;

use base64::Engine;

pub mod lookalike;
mod settings;
pub use settings::{Backend, DatabaseUrl, LogFormat};

/// Longest user ID, session ID, client type or department we accept.
pub const MAX_ID_LEN: usize = 64;

/// Bytes of OS randomness in a new session ID: 256 bits, twice the floor of docs/behaviour.md §3.
const SESSION_ID_RANDOM_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{what} must be 1 to {MAX_ID_LEN} characters")]
    Length { what: &'static str },
    #[error("{what} must not contain control characters")]
    Control { what: &'static str },
    #[error("{what} must not contain spaces or other whitespace")]
    Whitespace { what: &'static str },
    #[error("session IDs are URL-safe base64 characters")]
    SessionIdAlphabet,
    #[error(
        "unknown right '{0}' (expected AdministratorRight, UpdateSessionRight or ViewSessionRight)"
    )]
    UnknownRight(String),
    #[error("the random source failed: {0}")]
    Random(String),
    #[error("the password must not be empty")]
    EmptyPassword,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    LongPassword,
    #[error("clientName must be at most {MAX_CLIENT_NAME_CHARS} printable characters")]
    ClientName,
    #[error("unknown session limit policy '{0}' (expected deny or evict-oldest)")]
    UnknownLimitPolicy(String),
    #[error("unknown listed IDs mode '{0}' (expected legacy or handles)")]
    UnknownListedIds(String),
}

/// Longest password accepted, in bytes: Argon2 takes any length, a flood of megabyte passwords
/// should not.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Longest client name, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 256;

fn check_text(what: &'static str, value: &str) -> Result<(), DomainError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_ID_LEN {
        return Err(DomainError::Length { what });
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::Control { what });
    }
    Ok(())
}

/// A session ID: URL-safe, at most 64 characters. New ones carry 256 bits from the OS.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.is_empty() || value.len() > MAX_ID_LEN {
            return Err(DomainError::Length {
                what: "a session ID",
            });
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(DomainError::SessionIdAlphabet);
        }
        Ok(Self(value.to_owned()))
    }

    /// A fresh ID from the operating system's random source.
    pub fn generate() -> Result<Self, DomainError> {
        let mut bytes = [0u8; SESSION_ID_RANDOM_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| DomainError::Random(e.to_string()))?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first characters only: enough to tell sessions apart in a log, too few to use one.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

// Never print a whole session ID by accident: Debug and Display both redact.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.redacted())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The first six characters of a session ID and an ellipsis: how logs name a session.
pub fn redact(session_id: &str) -> String {
    let end = session_id
        .char_indices()
        .nth(6)
        .map_or(session_id.len(), |(i, _)| i);
    format!("{}…", &session_id[..end])
}

/// A user ID: 1 to 64 characters, no control characters and no whitespace (which a script's
/// quoting, or a log line, would split or hide).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        check_text("a user ID", value)?;
        if value.chars().any(char::is_whitespace) {
            return Err(DomainError::Whitespace { what: "a user ID" });
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A department name: 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department(String);

impl Department {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        check_text("a department", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The client type of a session: `standard`, `bw`, `clientless` or what startSession was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientType(String);

impl ClientType {
    pub const STANDARD: &'static str = "standard";
    pub const BW: &'static str = "bw";
    pub const CLIENTLESS: &'static str = "clientless";

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        check_text("a client type", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn standard() -> Self {
        Self(Self::STANDARD.to_owned())
    }

    pub fn bw() -> Self {
        Self(Self::BW.to_owned())
    }

    pub fn clientless() -> Self {
        Self(Self::CLIENTLESS.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Array results to a `bw` session carry no trailing nil element (docs/behaviour.md §4).
    pub fn is_bw(value: &str) -> bool {
        value == Self::BW
    }
}

/// A client's name for itself (startSession, openClientlessSession): at most 256 printable
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

impl ClientName {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.chars().count() > MAX_CLIENT_NAME_CHARS || value.chars().any(char::is_control) {
            return Err(DomainError::ClientName);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A right a user may hold (docs/behaviour.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Right {
    Administrator,
    UpdateSession,
    ViewSession,
}

impl Right {
    pub const ALL: [Right; 3] = [
        Right::Administrator,
        Right::UpdateSession,
        Right::ViewSession,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Right::Administrator => "AdministratorRight",
            Right::UpdateSession => "UpdateSessionRight",
            Right::ViewSession => "ViewSessionRight",
        }
    }
}

impl FromStr for Right {
    type Err = DomainError;

    /// Accepts the contract's names in any letter case, so `viewsessionright` works on a CLI.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Right::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| DomainError::UnknownRight(value.to_owned()))
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares [`EndReason`] from one list: the variants, their stored names and [`EndReason::ALL`].
macro_rules! end_reasons {
    ($($variant:ident => $text:literal,)*) => {
        /// Why a session ended; stored in its history record.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EndReason {
            $($variant,)*
        }

        impl EndReason {
            pub const ALL: &'static [EndReason] = &[$(EndReason::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EndReason::$variant => $text,)*
                }
            }
        }
    };
}

// One line per reason (docs/behaviour.md §3).
end_reasons! {
    Closed => "closed",
    Deleted => "deleted",
    Expired => "expired",
    UserDisabled => "user-disabled",
    Evicted => "evicted",
    PasswordChanged => "password-changed",
}

/// What a login does when its user already has the most active sessions allowed (docs/behaviour.md
/// §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitPolicy {
    /// The new login is refused (`SESSION_LIMIT_REACHED`).
    Deny,
    /// The user's least recently active session ends (reason `evicted`); the login succeeds.
    EvictOldest,
}

impl LimitPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitPolicy::Deny => "deny",
            LimitPolicy::EvictOldest => "evict-oldest",
        }
    }
}

impl FromStr for LimitPolicy {
    type Err = DomainError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [LimitPolicy::Deny, LimitPolicy::EvictOldest]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| DomainError::UnknownLimitPolicy(value.to_owned()))
    }
}

/// A password in memory. Debug never shows it, so it cannot reach a log by `{:?}`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// 1 to 1024 bytes. A login whose password does not parse can match no one's: the service
    /// still spends a hash on it, so it costs what a wrong password does.
    pub fn parse(value: String) -> Result<Self, DomainError> {
        if value.is_empty() {
            return Err(DomainError::EmptyPassword);
        }
        if value.len() > MAX_PASSWORD_BYTES {
            return Err(DomainError::LongPassword);
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests;

/// What listings and session details show of each session (docs/behaviour.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedIds {
    /// The legacy contract: the session's ID, which is also its bearer secret (console
    /// sessions excepted, which are always shown by their handle).
    Legacy,
    /// A stable handle that names the session as a target and authenticates nothing.
    Handles,
}

impl ListedIds {
    pub fn as_str(self) -> &'static str {
        match self {
            ListedIds::Legacy => "legacy",
            ListedIds::Handles => "handles",
        }
    }
}

impl FromStr for ListedIds {
    type Err = DomainError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [ListedIds::Legacy, ListedIds::Handles]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| DomainError::UnknownListedIds(value.to_owned()))
    }
}
