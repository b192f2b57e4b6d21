//! What the console's forms and links send: query strings and POST bodies, parsed into the
//! service's types. Empty fields mean "no filter"; anything malformed is a 400 with a reason.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::errors::ConsoleError;
use crate::domain::UserId;
use crate::service::console::{Direction, Key, Seek, SortKey};

const KEY_TIME: &str = "%Y-%m-%dT%H:%M:%S%.f";
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// A page key in a link: `TIME~ID` (session IDs are URL-safe and never hold `~`).
pub fn encode_key(key: &Key) -> String {
    format!("{}~{}", key.0.format(KEY_TIME), key.1)
}

fn decode_key(text: &str) -> Result<Key, ConsoleError> {
    let bad = || ConsoleError::BadRequest("malformed page key; start from the first page".into());
    let (time, id) = text.split_once('~').ok_or_else(bad)?;
    let time = NaiveDateTime::parse_from_str(time, KEY_TIME).map_err(|_| bad())?;
    Ok((time, id.to_owned()))
}

/// 400 when a field holds a NUL: no stored value has one (IDs and client types refuse control
/// characters), and PostgreSQL refuses it in a query parameter, which would be a 500.
fn no_nul(fields: &[&Option<String>]) -> Result<(), ConsoleError> {
    if fields
        .iter()
        .any(|f| f.as_deref().is_some_and(|v| v.contains('\0')))
    {
        return Err(ConsoleError::BadRequest(
            "a filter or page key must not contain a NUL character".into(),
        ));
    }
    Ok(())
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The query of the sessions page (its filter form and its page links).
// skip_serializing_none: an empty filter is left out of the page links rather than sent as `x=`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub struct SessionsParams {
    pub user: Option<String>,
    pub client_type: Option<String>,
    pub location: Option<String>,
    pub state: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub size: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
    #[serde(skip_serializing)]
    pub done: Option<String>,
    #[serde(skip_serializing)]
    pub n: Option<String>,
}

impl SessionsParams {
    /// Refuses what no session could match and the database would choke on.
    pub fn check(&self) -> Result<(), ConsoleError> {
        no_nul(&[
            &self.user,
            &self.client_type,
            &self.location,
            &self.after,
            &self.before,
        ])
    }

    pub fn user(&self) -> Option<String> {
        given(&self.user)
    }
    pub fn client_type(&self) -> Option<String> {
        given(&self.client_type)
    }
    pub fn location(&self) -> Option<String> {
        given(&self.location)
    }

    /// `"active"` (the default), `"expired"` or `"all"`.
    pub fn state(&self) -> Result<(&'static str, Option<bool>), ConsoleError> {
        match given(&self.state).as_deref() {
            None | Some("active") => Ok(("active", Some(false))),
            Some("expired") => Ok(("expired", Some(true))),
            Some("all") => Ok(("all", None)),
            Some(_) => Err(ConsoleError::BadRequest(
                "state must be active, expired or all".into(),
            )),
        }
    }

    pub fn sort(&self) -> Result<(&'static str, SortKey), ConsoleError> {
        match given(&self.sort).as_deref() {
            None | Some("created") => Ok(("created", SortKey::Created)),
            Some("activity") => Ok(("activity", SortKey::LastActivity)),
            Some(_) => Err(ConsoleError::BadRequest(
                "sort must be created or activity".into(),
            )),
        }
    }

    /// Newest first unless asked otherwise.
    pub fn order(&self) -> Result<(&'static str, Direction), ConsoleError> {
        match given(&self.order).as_deref() {
            None | Some("desc") => Ok(("desc", Direction::Descending)),
            Some("asc") => Ok(("asc", Direction::Ascending)),
            Some(_) => Err(ConsoleError::BadRequest("order must be asc or desc".into())),
        }
    }

    pub fn size(&self) -> Result<i64, ConsoleError> {
        page_size(&self.size)
    }

    pub fn seek(&self) -> Result<Seek, ConsoleError> {
        seek(&self.after, &self.before)
    }

    /// The same query without its page key: the first page of the same list.
    pub fn without_key(&self) -> Self {
        Self {
            after: None,
            before: None,
            ..self.clone()
        }
    }

    pub fn with_key(&self, after: Option<&Key>, before: Option<&Key>) -> Self {
        Self {
            after: after.map(encode_key),
            before: before.map(encode_key),
            ..self.clone()
        }
    }
}

fn page_size(size: &Option<String>) -> Result<i64, ConsoleError> {
    match given(size) {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(ConsoleError::BadRequest(format!(
                "size must be a number from 1 to {MAX_PAGE_SIZE}"
            ))),
        },
    }
}

fn seek(after: &Option<String>, before: &Option<String>) -> Result<Seek, ConsoleError> {
    match (given(after), given(before)) {
        (Some(a), None) => Ok(Seek::After(decode_key(&a)?)),
        (None, Some(b)) => Ok(Seek::Before(decode_key(&b)?)),
        (None, None) => Ok(Seek::First),
        (Some(_), Some(_)) => Err(ConsoleError::BadRequest(
            "a page has either an after or a before key".into(),
        )),
    }
}

/// The query of the history page.
#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub struct HistoryParams {
    pub user: Option<String>,
    pub reason: Option<String>,
    pub size: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
}

impl HistoryParams {
    /// Refuses what no session could match and the database would choke on.
    pub fn check(&self) -> Result<(), ConsoleError> {
        no_nul(&[&self.user, &self.reason, &self.after, &self.before])
    }

    pub fn user(&self) -> Option<String> {
        given(&self.user)
    }
    pub fn reason(&self) -> Option<String> {
        given(&self.reason)
    }
    pub fn size(&self) -> Result<i64, ConsoleError> {
        page_size(&self.size)
    }
    pub fn seek(&self) -> Result<Seek, ConsoleError> {
        seek(&self.after, &self.before)
    }
    pub fn with_key(&self, after: Option<&Key>, before: Option<&Key>) -> Self {
        Self {
            after: after.map(encode_key),
            before: before.map(encode_key),
            ..self.clone()
        }
    }
}

/// The outcome shown after an action's redirect: a fixed message per code, so a link cannot
/// make the console say anything else.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    #[serde(default)]
    pub done: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
}

pub fn notice(done: Option<&str>, n: Option<&str>) -> Option<String> {
    let n: i64 = n.and_then(|n| n.parse().ok()).unwrap_or(0);
    let text = match done? {
        "ended" => "The session was ended.".to_owned(),
        "ended-user" => format!("Ended {} of the user.", count(n, "session", "sessions")),
        "removed" => format!(
            "Removed {}.",
            count(n, "expired session", "expired sessions")
        ),
        "changed" => "The user was changed.".to_owned(),
        "added" => "The user was added; grant it a right to let it call.".to_owned(),
        "signed-out" => "You are signed out.".to_owned(),
        _ => return None,
    };
    Some(text)
}

/// "1 session", "1,200 sessions".
fn count(n: i64, one: &str, many: &str) -> String {
    let noun = if n == 1 { one } else { many };
    format!("{} {noun}", super::pages::number(n))
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub password: String,
}

/// Every POST but the sign-in: its token, and what the action needs.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub csrf: Option<String>,
    #[serde(default)]
    pub back: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub right: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
}

impl ActionForm {
    pub fn parse(body: &[u8]) -> Result<Self, ConsoleError> {
        serde_urlencoded::from_bytes(body)
            .map_err(|_| ConsoleError::BadRequest("the form could not be read".into()))
    }

    pub fn user(&self) -> Result<UserId, ConsoleError> {
        let user =
            given(&self.user).ok_or_else(|| ConsoleError::BadRequest("no user given".into()))?;
        UserId::parse(&user).map_err(|e| ConsoleError::BadRequest(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_key_survives_a_link() {
        let key = (
            NaiveDateTime::parse_from_str("2026-12-01 10:00:00.123456", "%Y-%m-%d %H:%M:%S%.f")
                .unwrap(),
            "ab-_CD".to_owned(),
        );
        assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
        assert!(decode_key("nonsense").is_err());
    }

    #[test]
    fn notices_are_fixed_texts() {
        assert_eq!(
            notice(Some("removed"), Some("1200")).as_deref(),
            Some("Removed 1,200 expired sessions.")
        );
        assert_eq!(
            notice(Some("ended-user"), Some("1")).as_deref(),
            Some("Ended 1 session of the user.")
        );
        assert_eq!(
            notice(Some("removed"), Some("1")).as_deref(),
            Some("Removed 1 expired session.")
        );
        assert_eq!(notice(Some("<script>"), None), None);
    }

    #[test]
    fn page_links_leave_out_what_is_not_given_and_never_carry_the_notice() {
        let params = SessionsParams {
            user: Some("alice".into()),
            done: Some("ended".into()),
            n: Some("3".into()),
            ..Default::default()
        };
        assert_eq!(serde_urlencoded::to_string(&params).unwrap(), "user=alice");
        let parsed: HistoryParams = serde_urlencoded::from_str("reason=closed").unwrap();
        assert_eq!(parsed.reason.as_deref(), Some("closed"));
        assert_eq!(
            serde_urlencoded::to_string(&parsed).unwrap(),
            "reason=closed"
        );
    }
}
