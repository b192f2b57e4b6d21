//! The seventeen operations of the contract and their requests as plain values.

use super::fault::{Fault, FaultCode};
use super::NS;

/// Every operation of the contract, in the WSDL's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    GetSession,
    GetBWSession,
    CloseSession,
    ValidateSession,
    DeleteSessionId,
    DeleteExpiredSessionIds,
    GetExpiredSessionIds,
    ListActiveSessionIds,
    StartSession,
    GetSessions,
    GetSessionInfo,
    GetSessionUser,
    GetCurrentSession,
    ExtendSession,
    ConfirmId,
    OpenClientlessSession,
    CloseClientlessSession,
}

impl Operation {
    pub const ALL: [Operation; 17] = [
        Operation::GetSession,
        Operation::GetBWSession,
        Operation::CloseSession,
        Operation::ValidateSession,
        Operation::DeleteSessionId,
        Operation::DeleteExpiredSessionIds,
        Operation::GetExpiredSessionIds,
        Operation::ListActiveSessionIds,
        Operation::StartSession,
        Operation::GetSessions,
        Operation::GetSessionInfo,
        Operation::GetSessionUser,
        Operation::GetCurrentSession,
        Operation::ExtendSession,
        Operation::ConfirmId,
        Operation::OpenClientlessSession,
        Operation::CloseClientlessSession,
    ];

    /// The request element's name, which is also the WSDL operation's name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetSession => "getSession",
            Operation::GetBWSession => "getBWSession",
            Operation::CloseSession => "closeSession",
            Operation::ValidateSession => "validateSession",
            Operation::DeleteSessionId => "deleteSessionId",
            Operation::DeleteExpiredSessionIds => "deleteExpiredSessionIds",
            Operation::GetExpiredSessionIds => "getExpiredSessionIds",
            Operation::ListActiveSessionIds => "listActiveSessionIds",
            Operation::StartSession => "startSession",
            Operation::GetSessions => "getSessions",
            Operation::GetSessionInfo => "getSessionInfo",
            Operation::GetSessionUser => "getSessionUser",
            Operation::GetCurrentSession => "getCurrentSession",
            Operation::ExtendSession => "extendSession",
            Operation::ConfirmId => "confirmId",
            Operation::OpenClientlessSession => "openClientlessSession",
            Operation::CloseClientlessSession => "closeClientlessSession",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The operation a SOAPAction names, if it names one of ours: the WSDL's
    /// `urn:sessiond:session:1/NAME`, or the bare operation name some clients send.
    pub fn from_action(action: &str) -> Option<Self> {
        let action = action.trim().trim_matches('"');
        let name = action
            .strip_prefix(NS)
            .and_then(|rest| rest.strip_prefix(['/', '#']))
            .unwrap_or(action);
        Self::from_name(name)
    }
}

/// One child element of the operation element: its local name and text, `None` when nil.
#[derive(Clone)]
pub struct Field {
    pub name: String,
    pub value: Option<String>,
}

/// The children of the operation element, in document order.
#[derive(Clone, Default)]
pub struct Fields(pub Vec<Field>);

impl Fields {
    /// The first element of that name that is not nil (SPEC 1: a nil optional is absent).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.as_deref())
    }

    fn required(&self, name: &str) -> Result<String, Fault> {
        self.get(name).map(str::to_owned).ok_or_else(|| {
            Fault::client(FaultCode::InvalidRequest, format!("missing element {name}"))
        })
    }

    /// An identifier: surrounding whitespace, as pretty-printing clients send, is not part of it.
    fn required_id(&self, name: &str) -> Result<String, Fault> {
        self.required(name).map(|s| s.trim().to_owned())
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    fn optional_id(&self, name: &str) -> Option<String> {
        self.get(name).map(|s| s.trim().to_owned())
    }

    /// xs:boolean: true, false, 1, 0, with whitespace collapsed.
    fn optional_bool(&self, name: &str) -> Result<Option<bool>, Fault> {
        self.get(name)
            .map(|s| match s.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(Fault::client(
                    FaultCode::InvalidRequest,
                    format!("{name} must be a boolean, not '{other}'"),
                )),
            })
            .transpose()
    }

    /// xs:int.
    fn optional_int(&self, name: &str) -> Result<Option<i32>, Fault> {
        self.get(name)
            .map(|s| {
                let s = s.trim();
                s.strip_prefix('+')
                    .unwrap_or(s)
                    .parse::<i32>()
                    .map_err(|_| {
                        Fault::client(
                            FaultCode::InvalidRequest,
                            format!("{name} must be an xs:int, not '{s}'"),
                        )
                    })
            })
            .transpose()
    }
}

/// A decoded request. No Debug: passwords are in here.
#[derive(Clone)]
pub enum Request {
    GetSession {
        user_id: String,
        password: String,
    },
    GetBWSession {
        user_id: String,
        password: String,
    },
    CloseSession {
        session_id: String,
    },
    ValidateSession {
        session_id: String,
    },
    DeleteSessionId {
        session_id: String,
        target_session_id: String,
    },
    DeleteExpiredSessionIds {
        session_id: String,
    },
    GetExpiredSessionIds {
        session_id: String,
    },
    ListActiveSessionIds {
        session_id: String,
    },
    StartSession {
        user_id: String,
        password: String,
        client_type: Option<String>,
        client_name: Option<String>,
    },
    GetSessions {
        session_id: String,
        filter_session_id: Option<String>,
        filter_user_id: Option<String>,
        filter_client_type: Option<String>,
        include_expired: Option<bool>,
        offset: Option<i32>,
        limit: Option<i32>,
    },
    GetSessionInfo {
        session_id: String,
        target_session_id: String,
    },
    GetSessionUser {
        session_id: String,
        target_session_id: String,
    },
    GetCurrentSession {
        session_id: String,
    },
    ExtendSession {
        session_id: String,
    },
    ConfirmId {
        session_id: String,
        password: String,
    },
    OpenClientlessSession {
        session_id: String,
        user_id: String,
        client_name: Option<String>,
    },
    CloseClientlessSession {
        session_id: String,
        clientless_session_id: String,
    },
}

impl Request {
    pub fn from_fields(op: Operation, f: &Fields) -> Result<Self, Fault> {
        use Operation as O;
        Ok(match op {
            O::GetSession => Request::GetSession {
                user_id: f.required("userId")?,
                password: f.required("password")?,
            },
            O::GetBWSession => Request::GetBWSession {
                user_id: f.required("userId")?,
                password: f.required("password")?,
            },
            O::CloseSession => Request::CloseSession {
                session_id: f.required_id("sessionId")?,
            },
            O::ValidateSession => Request::ValidateSession {
                session_id: f.required_id("sessionId")?,
            },
            O::DeleteSessionId => Request::DeleteSessionId {
                session_id: f.required_id("sessionId")?,
                target_session_id: f.required_id("targetSessionId")?,
            },
            O::DeleteExpiredSessionIds => Request::DeleteExpiredSessionIds {
                session_id: f.required_id("sessionId")?,
            },
            O::GetExpiredSessionIds => Request::GetExpiredSessionIds {
                session_id: f.required_id("sessionId")?,
            },
            O::ListActiveSessionIds => Request::ListActiveSessionIds {
                session_id: f.required_id("sessionId")?,
            },
            O::StartSession => Request::StartSession {
                user_id: f.required("userId")?,
                password: f.required("password")?,
                client_type: f.optional("clientType"),
                client_name: f.optional("clientName"),
            },
            O::GetSessions => Request::GetSessions {
                session_id: f.required_id("sessionId")?,
                filter_session_id: f.optional_id("filterSessionId"),
                filter_user_id: f.optional("filterUserId"),
                filter_client_type: f.optional("filterClientType"),
                include_expired: f.optional_bool("includeExpired")?,
                offset: f.optional_int("offset")?,
                limit: f.optional_int("limit")?,
            },
            O::GetSessionInfo => Request::GetSessionInfo {
                session_id: f.required_id("sessionId")?,
                target_session_id: f.required_id("targetSessionId")?,
            },
            O::GetSessionUser => Request::GetSessionUser {
                session_id: f.required_id("sessionId")?,
                target_session_id: f.required_id("targetSessionId")?,
            },
            O::GetCurrentSession => Request::GetCurrentSession {
                session_id: f.required_id("sessionId")?,
            },
            O::ExtendSession => Request::ExtendSession {
                session_id: f.required_id("sessionId")?,
            },
            O::ConfirmId => Request::ConfirmId {
                session_id: f.required_id("sessionId")?,
                password: f.required("password")?,
            },
            O::OpenClientlessSession => Request::OpenClientlessSession {
                session_id: f.required_id("sessionId")?,
                user_id: f.required("userId")?,
                client_name: f.optional("clientName"),
            },
            O::CloseClientlessSession => Request::CloseClientlessSession {
                session_id: f.required_id("sessionId")?,
                clientless_session_id: f.required_id("clientlessSessionId")?,
            },
        })
    }

    pub fn operation(&self) -> Operation {
        use Operation as O;
        match self {
            Request::GetSession { .. } => O::GetSession,
            Request::GetBWSession { .. } => O::GetBWSession,
            Request::CloseSession { .. } => O::CloseSession,
            Request::ValidateSession { .. } => O::ValidateSession,
            Request::DeleteSessionId { .. } => O::DeleteSessionId,
            Request::DeleteExpiredSessionIds { .. } => O::DeleteExpiredSessionIds,
            Request::GetExpiredSessionIds { .. } => O::GetExpiredSessionIds,
            Request::ListActiveSessionIds { .. } => O::ListActiveSessionIds,
            Request::StartSession { .. } => O::StartSession,
            Request::GetSessions { .. } => O::GetSessions,
            Request::GetSessionInfo { .. } => O::GetSessionInfo,
            Request::GetSessionUser { .. } => O::GetSessionUser,
            Request::GetCurrentSession { .. } => O::GetCurrentSession,
            Request::ExtendSession { .. } => O::ExtendSession,
            Request::ConfirmId { .. } => O::ConfirmId,
            Request::OpenClientlessSession { .. } => O::OpenClientlessSession,
            Request::CloseClientlessSession { .. } => O::CloseClientlessSession,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_operations_with_or_without_the_namespace() {
        assert_eq!(
            Operation::from_action("\"urn:sessiond:session:1/validateSession\""),
            Some(Operation::ValidateSession)
        );
        assert_eq!(
            Operation::from_action("getSession"),
            Some(Operation::GetSession)
        );
        assert_eq!(Operation::from_action(""), None);
        assert_eq!(Operation::from_action("urn:other/thing"), None);
    }

    #[test]
    fn a_nil_optional_is_absent_and_a_nil_required_is_missing() {
        let fields = Fields(vec![
            Field {
                name: "sessionId".into(),
                value: None,
            },
            Field {
                name: "limit".into(),
                value: None,
            },
        ]);
        assert!(Request::from_fields(Operation::GetSessions, &fields).is_err());
        let fields = Fields(vec![
            Field {
                name: "sessionId".into(),
                value: Some(" abc ".into()),
            },
            Field {
                name: "limit".into(),
                value: None,
            },
            Field {
                name: "offset".into(),
                value: Some(" +3 ".into()),
            },
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
                assert_eq!(session_id, "abc");
                assert_eq!(limit, None);
                assert_eq!(offset, Some(3));
            }
            _ => panic!("wrong request"),
        }
    }
}
