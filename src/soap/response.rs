//! Writing a response envelope: the operation's `…Response` element in the contract namespace,
//! children qualified (the schema says elementFormDefault="qualified").

use std::fmt::Write;

use chrono::NaiveDateTime;
use quick_xml::escape::partial_escape;

use super::request::Operation;
use super::{SoapVersion, NS, XSI};

/// The contract's `SessionInfo`, and its `Session`: the legacy arrays' element, which carries
/// the first few of the same values (see [`Body::session`]).
#[derive(Debug, Clone)]
pub struct SessionItem {
    pub session_id: String,
    pub user_id: String,
    pub client_type: String,
    pub client_name: Option<String>,
    pub host: Option<String>,
    pub location: String,
    pub creation_time: NaiveDateTime,
    pub last_activity_time: NaiveDateTime,
    pub expiration_time: NaiveDateTime,
    pub end_time: Option<NaiveDateTime>,
    pub end_reason: Option<String>,
    pub created_by: Option<String>,
    pub is_current: bool,
    pub is_remote: bool,
}

/// What an operation answers, the shape of its response element's content.
#[derive(Debug, Clone)]
pub enum Answer {
    /// getSession, getBWSession.
    SessionId(String),
    /// closeSession, closeClientlessSession.
    Closed(bool),
    Valid(bool),
    /// deleteSessionId: an empty response element.
    Empty,
    DeletedCount(i32),
    /// An array result whole (getExpiredSessionIds, listActiveSessionIds, getSessions);
    /// nil-terminated unless the caller is `bw`. Long ones are sent in parts: see [`Items`].
    List {
        items: Items,
        nil_terminated: bool,
    },
    /// startSession, getSessionInfo, getCurrentSession.
    SessionInfo(Box<SessionItem>),
    UserId(String),
    ExpirationTime(NaiveDateTime),
    Confirmed(bool),
    ClientlessSessionId(String),
}

/// One operation's result: the answer, in the operation's response element.
#[derive(Debug, Clone)]
pub struct Response {
    pub operation: Operation,
    pub answer: Answer,
}

/// Elements of an array result: `Session`s for the legacy lists, `SessionInfo`s for getSessions.
#[derive(Debug, Clone)]
pub enum Items {
    Sessions(Vec<SessionItem>),
    Infos(Vec<SessionItem>),
}

impl Items {
    /// The elements, for the middle of a response that [`list_open`] began.
    pub fn encode(&self) -> String {
        let mut b = Body(String::with_capacity(512));
        match self {
            Items::Sessions(items) => items.iter().for_each(|s| b.session("session", s)),
            Items::Infos(items) => items.iter().for_each(|s| b.session_info("session", s)),
        }
        b.0
    }
}

fn envelope_open(version: SoapVersion, op: Operation) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soap:Envelope xmlns:soap=\"{}\" xmlns:xsi=\"{XSI}\"><soap:Body>\
         <tns:{} xmlns:tns=\"{NS}\">",
        version.envelope_ns(),
        op.response_name()
    )
}

fn envelope_close(op: Operation) -> String {
    format!("</tns:{}></soap:Body></soap:Envelope>", op.response_name())
}

/// The start of an array response sent in parts: envelope, Body, the response element.
pub fn list_open(version: SoapVersion, operation: Operation) -> String {
    envelope_open(version, operation)
}

/// The end of an array response sent in parts: the nil element if due, then the closing tags.
pub fn list_close(operation: Operation, nil_terminated: bool) -> String {
    let nil = if nil_terminated {
        "<tns:session xsi:nil=\"true\"/>"
    } else {
        ""
    };
    format!("{nil}{}", envelope_close(operation))
}

/// The four validateSession answers, built on first use.
fn valid_answer(version: SoapVersion, valid: bool) -> &'static String {
    static ANSWERS: std::sync::OnceLock<[String; 4]> = std::sync::OnceLock::new();
    let answers = ANSWERS.get_or_init(|| {
        let build = |version: SoapVersion, valid: bool| {
            let op = Operation::ValidateSession;
            let mut b = Body(envelope_open(version, op));
            b.boolean("valid", valid);
            b.0 + &envelope_close(op)
        };
        [
            build(SoapVersion::V11, false),
            build(SoapVersion::V11, true),
            build(SoapVersion::V12, false),
            build(SoapVersion::V12, true),
        ]
    });
    let index = match version {
        SoapVersion::V11 => 0,
        SoapVersion::V12 => 2,
    } + usize::from(valid);
    &answers[index]
}

/// xs:dateTime in UTC with milliseconds, the form every generated client parses.
fn date_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

struct Body(String);

impl Body {
    fn text(&mut self, name: &str, value: &str) {
        let _ = write!(self.0, "<tns:{name}>{}</tns:{name}>", partial_escape(value));
    }

    fn nillable(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => self.text(name, v),
            None => self.nil(name),
        }
    }

    fn nil(&mut self, name: &str) {
        let _ = write!(self.0, "<tns:{name} xsi:nil=\"true\"/>");
    }

    fn boolean(&mut self, name: &str, value: bool) {
        self.text(name, if value { "true" } else { "false" });
    }

    fn time(&mut self, name: &str, value: NaiveDateTime) {
        self.text(name, &date_time(value));
    }

    /// A `Session`: the values of a `SessionInfo` the legacy contract knows (ID, user, client
    /// type, host and the three instants).
    fn session(&mut self, name: &str, s: &SessionItem) {
        let _ = write!(self.0, "<tns:{name}>");
        self.text("sessionId", &s.session_id);
        self.text("userId", &s.user_id);
        self.text("clientType", &s.client_type);
        self.nillable("host", s.host.as_deref());
        self.time("creationTime", s.creation_time);
        self.time("lastActivityTime", s.last_activity_time);
        self.time("expirationTime", s.expiration_time);
        let _ = write!(self.0, "</tns:{name}>");
    }

    fn session_info(&mut self, name: &str, s: &SessionItem) {
        let _ = write!(self.0, "<tns:{name}>");
        self.text("sessionId", &s.session_id);
        self.text("userId", &s.user_id);
        self.text("clientType", &s.client_type);
        self.nillable("clientName", s.client_name.as_deref());
        self.nillable("host", s.host.as_deref());
        self.text("location", &s.location);
        self.time("creationTime", s.creation_time);
        self.time("lastActivityTime", s.last_activity_time);
        self.time("expirationTime", s.expiration_time);
        match s.end_time {
            Some(t) => self.time("endTime", t),
            None => self.nil("endTime"),
        }
        self.nillable("endReason", s.end_reason.as_deref());
        self.nillable("createdBy", s.created_by.as_deref());
        self.boolean("isCurrent", s.is_current);
        self.boolean("isRemote", s.is_remote);
        let _ = write!(self.0, "</tns:{name}>");
    }
}

impl Response {
    pub fn new(operation: Operation, answer: Answer) -> Self {
        Self { operation, answer }
    }

    pub fn encode(&self, version: SoapVersion) -> String {
        let op = self.operation;
        // validateSession is most of the traffic and has four possible answers: write them once.
        if let (Operation::ValidateSession, Answer::Valid(valid)) = (op, &self.answer) {
            return valid_answer(version, *valid).clone();
        }
        if let Answer::List {
            items,
            nil_terminated,
        } = &self.answer
        {
            return list_open(version, op) + &items.encode() + &list_close(op, *nil_terminated);
        }
        let mut b = Body(envelope_open(version, op));
        match &self.answer {
            Answer::SessionId(id) => b.text("sessionId", id),
            Answer::Closed(closed) => b.boolean("closed", *closed),
            Answer::Valid(valid) => b.boolean("valid", *valid),
            Answer::Empty | Answer::List { .. } => {}
            Answer::DeletedCount(n) => b.text("deletedCount", &n.to_string()),
            Answer::SessionInfo(s) => b.session_info("session", s),
            Answer::UserId(id) => b.text("userId", id),
            Answer::ExpirationTime(t) => b.time("expirationTime", *t),
            Answer::Confirmed(c) => b.boolean("confirmed", *c),
            Answer::ClientlessSessionId(id) => b.text("clientlessSessionId", id),
        }
        b.0.push_str(&envelope_close(op));
        b.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_is_one_nil_element_unless_bw() {
        let r = Response::new(
            Operation::ListActiveSessionIds,
            Answer::List {
                items: Items::Sessions(vec![]),
                nil_terminated: true,
            },
        );
        let xml = r.encode(SoapVersion::V11);
        assert!(xml.contains("<tns:listActiveSessionIdsResponse xmlns:tns=\"urn:sessiond:session:1\"><tns:session xsi:nil=\"true\"/></tns:listActiveSessionIdsResponse>"));
        let r = Response::new(
            Operation::ListActiveSessionIds,
            Answer::List {
                items: Items::Sessions(vec![]),
                nil_terminated: false,
            },
        );
        assert!(r.encode(SoapVersion::V12).contains("<tns:listActiveSessionIdsResponse xmlns:tns=\"urn:sessiond:session:1\"></tns:listActiveSessionIdsResponse>"));
    }

    #[test]
    fn date_times_are_utc_with_milliseconds() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_milli_opt(10, 5, 7, 42)
            .unwrap();
        assert_eq!(date_time(t), "2026-11-21T10:05:07.042Z");
    }
}
