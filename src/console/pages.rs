//! One `#[derive(Template)]` struct per page, and the plain text values they show: every
//! value is formatted here, so the templates only place and escape it.

use askama::Template;
use chrono::NaiveDateTime;

use super::chart::Chart;
use crate::service::console::{Count, UserState};
use crate::service::SessionView;

/// What every signed-in page shows around its content.
pub struct Chrome {
    /// The console's path, ending in `/`.
    pub base: String,
    pub user: String,
    pub csrf: String,
    pub can_end: bool,
    pub can_manage_users: bool,
    /// Which navigation entry is the current page.
    pub nav: &'static str,
    /// The outcome of the action that led here, if any.
    pub notice: Option<String>,
}

pub fn time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// 1234567 as "1,234,567". Written here: a crate for one separator would be more than this.
pub fn number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

pub fn count(c: Count) -> String {
    match c {
        Count::Exact(n) => number(n),
        Count::MoreThan(n) => format!("more than {}", number(n)),
    }
}

/// A session as a table row or the detail page shows it.
pub struct SessionLine {
    pub id: String,
    /// The first characters, as logs name it.
    pub short: String,
    pub user: String,
    pub client_type: String,
    pub client_name: String,
    pub host: String,
    pub location: String,
    pub created: String,
    pub last_activity: String,
    pub expires: String,
    /// "active", "expired" or "ended".
    pub state: &'static str,
    pub current: bool,
    pub ended: String,
    pub end_reason: String,
    pub created_by: String,
}

impl SessionLine {
    pub fn of(v: &SessionView, now: NaiveDateTime) -> Self {
        let state = match v.ended_at {
            Some(_) => "ended",
            None if now > v.expires_at => "expired",
            None => "active",
        };
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "–".into());
        Self {
            id: v.record.session_id.clone(),
            short: crate::domain::redact(&v.record.session_id),
            user: v.record.user_id.clone(),
            client_type: v.record.client_type.clone(),
            client_name: dash(&v.record.client_name),
            host: dash(&v.record.host),
            location: v.record.location.clone(),
            created: time(v.record.created_at),
            last_activity: time(v.last_activity),
            expires: time(v.expires_at),
            state,
            current: v.is_current,
            ended: v.ended_at.map(time).unwrap_or_else(|| "–".into()),
            end_reason: dash(&v.end_reason),
            created_by: dash(&v.record.created_by),
        }
    }

    pub fn is_stored(&self) -> bool {
        self.state != "ended"
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub base: String,
    pub user: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    pub active: String,
    pub expired: String,
    pub by_client_type: Vec<(String, String)>,
    pub by_location: Vec<(String, String)>,
    pub chart: Chart,
    pub recently_ended: Vec<SessionLine>,
}

/// The sessions page's filter and order, as the form shows them back.
pub struct SessionsForm {
    pub user: String,
    pub client_type: String,
    pub location: String,
    /// "active", "expired" or "all".
    pub state: String,
    /// "created" or "activity".
    pub sort: String,
    /// "asc" or "desc".
    pub order: String,
    pub size: i64,
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    pub chrome: Chrome,
    pub form: SessionsForm,
    pub total: String,
    /// Said when the page is not in the order asked for.
    pub sort_note: Option<String>,
    pub rows: Vec<SessionLine>,
    pub first_url: Option<String>,
    pub previous_url: Option<String>,
    pub next_url: Option<String>,
    /// This page's query, so an action on it can come back here.
    pub back: String,
}

#[derive(Template)]
#[template(path = "session.html")]
pub struct SessionPage {
    pub chrome: Chrome,
    pub session: SessionLine,
    pub user_history: Vec<SessionLine>,
}

#[derive(Template)]
#[template(path = "history.html")]
pub struct HistoryPage {
    pub chrome: Chrome,
    pub user: String,
    pub reason: String,
    pub reasons: &'static [&'static str],
    pub rows: Vec<SessionLine>,
    pub first_url: Option<String>,
    pub previous_url: Option<String>,
    pub next_url: Option<String>,
}

pub struct UserLine {
    pub user: String,
    pub department: String,
    pub state: String,
    pub disabled: bool,
    pub locked: bool,
    pub failed_logins: i32,
    pub rights: String,
    pub missing: Vec<&'static str>,
    pub held: Vec<&'static str>,
    /// A directory user: its password, rights and department are the directory's.
    pub directory: bool,
    pub dn: String,
}

impl UserLine {
    pub fn of(u: &UserState) -> Self {
        let held: Vec<&'static str> = u.rights.iter().map(|r| r.as_str()).collect();
        let missing = crate::domain::Right::ALL
            .into_iter()
            .map(|r| r.as_str())
            .filter(|r| !held.contains(r))
            .collect();
        let state = match (u.disabled, u.locked_until) {
            (true, _) => "disabled".to_owned(),
            (false, Some(until)) => format!("locked until {}", time(until)),
            (false, None) => "enabled".to_owned(),
        };
        Self {
            user: u.user_id.clone(),
            department: u.department.clone().unwrap_or_else(|| "–".into()),
            state,
            disabled: u.disabled,
            locked: u.locked_until.is_some() || u.failed_logins > 0,
            failed_logins: u.failed_logins,
            rights: if held.is_empty() {
                "none".into()
            } else {
                held.join(", ")
            },
            missing,
            held,
            directory: u.source == "directory",
            dn: u.dn.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub users: Vec<UserLine>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1,000");
        assert_eq!(number(1234567), "1,234,567");
        assert_eq!(count(Count::MoreThan(10_000)), "more than 10,000");
    }
}
