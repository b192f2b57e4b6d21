//! A request's values as the envelope gives them ([`Fields`]), and the readers that turn each
//! child element into the domain type the operation table says it is.

use super::fault::{Fault, FaultCode};
use crate::domain::{ClientName, ClientType, Password, SessionId, UserId};

pub use super::operations::{Operation, Request};

/// One child element of the operation element: its local name and text, `None` when nil.
#[derive(Clone)]
pub struct Field {
    pub name: String,
    pub value: Option<String>,
}

/// The children of the operation element, in document order.
#[derive(Clone, Default)]
pub struct Fields(pub Vec<Field>);

fn invalid(message: impl Into<String>) -> Fault {
    Fault::new(FaultCode::InvalidRequest, message)
}

impl Fields {
    /// The first element of that name that is not nil (docs/behaviour.md §1: a nil optional is
    /// absent).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.as_deref())
    }

    fn required(&self, name: &str) -> Result<&str, Fault> {
        self.get(name)
            .ok_or_else(|| invalid(format!("missing element {name}")))
    }

    /// A session ID; surrounding whitespace, as pretty-printing clients send, is not part of
    /// it. `None` when it could name no session: to the rules that is an unknown one.
    pub(super) fn session_id(&self, name: &str) -> Result<Option<SessionId>, Fault> {
        Ok(SessionId::parse(self.required(name)?.trim()).ok())
    }

    /// A user ID; `None` when no user can have it (the login still costs a hash).
    pub(super) fn user_id(&self, name: &str) -> Result<Option<UserId>, Fault> {
        Ok(UserId::parse(self.required(name)?).ok())
    }

    /// A password; `None` when no user can have it (the check still costs a hash).
    pub(super) fn password(&self, name: &str) -> Result<Option<Password>, Fault> {
        Ok(Password::parse(self.required(name)?.to_owned()).ok())
    }

    pub(super) fn client_type(&self, name: &str) -> Result<Option<ClientType>, Fault> {
        self.get(name)
            .map(|t| ClientType::parse(t).map_err(|e| invalid(e.to_string())))
            .transpose()
    }

    pub(super) fn client_name(&self, name: &str) -> Result<Option<ClientName>, Fault> {
        self.get(name)
            .map(|t| ClientName::parse(t).map_err(|e| invalid(e.to_string())))
            .transpose()
    }

    pub(super) fn optional(&self, name: &str) -> Result<Option<String>, Fault> {
        Ok(self.get(name).map(str::to_owned))
    }

    /// An identifier to filter by, without surrounding whitespace.
    pub(super) fn optional_id(&self, name: &str) -> Result<Option<String>, Fault> {
        Ok(self.get(name).map(|s| s.trim().to_owned()))
    }

    /// xs:boolean: true, false, 1, 0, with whitespace collapsed.
    pub(super) fn optional_bool(&self, name: &str) -> Result<Option<bool>, Fault> {
        self.get(name)
            .map(|s| match s.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(invalid(format!("{name} must be a boolean, not '{other}'"))),
            })
            .transpose()
    }

    /// xs:int.
    pub(super) fn optional_int(&self, name: &str) -> Result<Option<i32>, Fault> {
        self.get(name)
            .map(|s| {
                let s = s.trim();
                s.strip_prefix('+')
                    .unwrap_or(s)
                    .parse::<i32>()
                    .map_err(|_| invalid(format!("{name} must be an xs:int, not '{s}'")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, value: Option<&str>) -> Field {
        Field {
            name: name.into(),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn a_nil_optional_is_absent_and_a_nil_required_is_missing() {
        let fields = Fields(vec![field("sessionId", None), field("limit", None)]);
        assert!(Request::from_fields(Operation::GetSessions, &fields).is_err());
        let fields = Fields(vec![
            field("sessionId", Some(" abc ")),
            field("limit", None),
            field("offset", Some(" +3 ")),
        ]);
        match Request::from_fields(Operation::GetSessions, &fields)
            .ok()
            .unwrap()
        {
            Request::GetSessions {
                session_id,
                limit,
                offset,
                ..
            } => {
                assert_eq!(session_id.unwrap().as_str(), "abc");
                assert_eq!(limit, None);
                assert_eq!(offset, Some(3));
            }
            _ => panic!("wrong request"),
        }
    }

    #[test]
    fn a_session_id_that_can_name_no_session_is_read_as_none_not_refused() {
        let fields = Fields(vec![field("sessionId", Some("not an id!"))]);
        match Request::from_fields(Operation::ValidateSession, &fields).ok() {
            Some(Request::ValidateSession { session_id }) => assert!(session_id.is_none()),
            _ => panic!("refused"),
        }
    }

    #[test]
    fn a_bad_client_type_is_an_invalid_request() {
        let fields = Fields(vec![
            field("userId", Some("alice")),
            field("password", Some("pw")),
            field("clientType", Some(&"x".repeat(65))),
        ]);
        let fault = Request::from_fields(Operation::StartSession, &fields)
            .err()
            .unwrap();
        assert_eq!(fault.code(), Some(FaultCode::InvalidRequest));
    }
}
