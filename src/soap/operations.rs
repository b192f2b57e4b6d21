//! The operation table: the operations of the contract (seventeen), declared once.
//!
//! Each row gives the WSDL name, the handler method, whether the operation checks a password
//! (and so waits at the login gate), which items its array answer carries, and the request's
//! child elements with the domain type each is read into. From the table come the
//! [`Operation`] enum and its lookups, the decoded [`Request`], decoding a request's fields,
//! and the [`Handler`] trait whose one method per operation the HTTP layer implements; the
//! compiler then refuses a table row without a handler. `tests/api/contract.rs` holds the
//! table to the served WSDL.
//!
//! Adding an operation: a row here, its method in `http/dispatch.rs` (and the service call it
//! makes), and the WSDL.

use super::fault::Fault;
use super::request::Fields;
use crate::domain::{ClientName, ClientType, Password, SessionId, UserId};

/// What an array answer's elements are: the contract's `Session`, or its `SessionInfo`. An
/// operation that answers no array has none ([`Operation::array_of`] is `None`), so no caller
/// can mistake "not an array" for one kind of element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayOf {
    Session,
    SessionInfo,
}

/// A table row's `array:` as [`Operation::array_of`] gives it.
macro_rules! array_of {
    (Nothing) => {
        None
    };
    ($kind:ident) => {
        Some(ArrayOf::$kind)
    };
}

macro_rules! operations {
    ($(
        $variant:ident = $name:literal, $method:ident, password: $password:literal,
        array: $array:ident {
            $( $field:ident : $ty:ty = $read:ident ( $xml:literal ) ),* $(,)?
        }
    )*) => {
        /// Every operation of the contract, in the WSDL's order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $( $variant, )*
        }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$( Operation::$variant, )*];

            /// The request element's name, which is also the WSDL operation's name.
            pub fn name(self) -> &'static str {
                match self {
                    $( Operation::$variant => $name, )*
                }
            }

            /// The response element's name.
            pub fn response_name(self) -> &'static str {
                match self {
                    $( Operation::$variant => concat!($name, "Response"), )*
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $name => Some(Operation::$variant), )*
                    _ => None,
                }
            }

            /// The operations that run Argon2 (slow on purpose), whose number in flight the
            /// login gate bounds.
            pub fn checks_a_password(self) -> bool {
                match self {
                    $( Operation::$variant => $password, )*
                }
            }

            /// What the elements of its array answer are; `None` when it answers no array.
            pub fn array_of(self) -> Option<ArrayOf> {
                match self {
                    $( Operation::$variant => array_of!($array), )*
                }
            }

            /// The request's child elements, in the order the table (and the WSDL) gives them.
            pub fn request_fields(self) -> &'static [&'static str] {
                match self {
                    $( Operation::$variant => &[$( $xml ),*], )*
                }
            }
        }

        /// A decoded request, its values already domain types. No Debug: passwords are in here.
        #[derive(Clone)]
        pub enum Request {
            $( $variant { $( $field: $ty ),* }, )*
        }

        impl Request {
            pub fn from_fields(op: Operation, f: &Fields) -> Result<Self, Fault> {
                Ok(match op {
                    $( Operation::$variant => Request::$variant {
                        $( $field: f.$read($xml)? ),*
                    }, )*
                })
            }

            pub fn operation(&self) -> Operation {
                match self {
                    $( Request::$variant { .. } => Operation::$variant, )*
                }
            }

            /// Hands the request's values to the handler method of its operation.
            pub fn handle<H: Handler>(self, h: &H) -> Result<H::Output, H::Error> {
                match self {
                    $( Request::$variant { $( $field ),* } => h.$method($( $field ),*), )*
                }
            }
        }

        /// One method per operation, named as the WSDL names it (`getSession` ⇄
        /// `get_session`), taking the request's values in the table's order.
        pub trait Handler {
            type Output;
            type Error;
            // The request's children are the arguments; getSessions has seven.
            $(
                #[allow(clippy::too_many_arguments)]
                fn $method(&self, $( $field: $ty ),*) -> Result<Self::Output, Self::Error>;
            )*
        }
    };
}

// How each child is read (see `Fields`): `session_id` trims and gives `None` for an ID that
// can name no session; `user_id` and `password` give `None` for a value no user can have (the
// service still spends a hash on it); the optional readers give `None` when absent or nil.
operations! {
    GetSession = "getSession", get_session, password: true, array: Nothing {
        user_id: Option<UserId> = user_id("userId"),
        password: Option<Password> = password("password"),
    }
    GetBWSession = "getBWSession", get_bw_session, password: true, array: Nothing {
        user_id: Option<UserId> = user_id("userId"),
        password: Option<Password> = password("password"),
    }
    CloseSession = "closeSession", close_session, password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
    }
    ValidateSession = "validateSession", validate_session, password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
    }
    DeleteSessionId = "deleteSessionId", delete_session_id, password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
        target_session_id: Option<SessionId> = session_id("targetSessionId"),
    }
    DeleteExpiredSessionIds = "deleteExpiredSessionIds", delete_expired_session_ids,
    password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
    }
    GetExpiredSessionIds = "getExpiredSessionIds", get_expired_session_ids,
    password: false, array: Session {
        session_id: Option<SessionId> = session_id("sessionId"),
    }
    ListActiveSessionIds = "listActiveSessionIds", list_active_session_ids,
    password: false, array: Session {
        session_id: Option<SessionId> = session_id("sessionId"),
    }
    StartSession = "startSession", start_session, password: true, array: Nothing {
        user_id: Option<UserId> = user_id("userId"),
        password: Option<Password> = password("password"),
        client_type: Option<ClientType> = client_type("clientType"),
        client_name: Option<ClientName> = client_name("clientName"),
    }
    GetSessions = "getSessions", get_sessions, password: false, array: SessionInfo {
        session_id: Option<SessionId> = session_id("sessionId"),
        filter_session_id: Option<String> = optional_id("filterSessionId"),
        filter_user_id: Option<String> = optional("filterUserId"),
        filter_client_type: Option<String> = optional("filterClientType"),
        include_expired: Option<bool> = optional_bool("includeExpired"),
        offset: Option<i32> = optional_int("offset"),
        limit: Option<i32> = optional_int("limit"),
    }
    GetSessionInfo = "getSessionInfo", get_session_info, password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
        target_session_id: Option<SessionId> = session_id("targetSessionId"),
    }
    GetSessionUser = "getSessionUser", get_session_user, password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
        target_session_id: Option<SessionId> = session_id("targetSessionId"),
    }
    GetCurrentSession = "getCurrentSession", get_current_session,
    password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
    }
    ExtendSession = "extendSession", extend_session, password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
    }
    ConfirmId = "confirmId", confirm_id, password: true, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
        password: Option<Password> = password("password"),
    }
    OpenClientlessSession = "openClientlessSession", open_clientless_session,
    password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
        user_id: Option<UserId> = user_id("userId"),
        client_name: Option<ClientName> = client_name("clientName"),
    }
    CloseClientlessSession = "closeClientlessSession", close_clientless_session,
    password: false, array: Nothing {
        session_id: Option<SessionId> = session_id("sessionId"),
        clientless_session_id: Option<SessionId> = session_id("clientlessSessionId"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_operations_map_both_ways_for_every_row() {
        for &op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
            assert_eq!(op.response_name(), format!("{}Response", op.name()));
        }
        assert_eq!(Operation::from_name("GetSession"), None);
    }

    #[test]
    fn exactly_the_three_listings_answer_arrays_and_say_of_what() {
        let arrays: Vec<_> = Operation::ALL
            .iter()
            .filter_map(|op| op.array_of().map(|of| (op.name(), of)))
            .collect();
        assert_eq!(
            arrays,
            [
                ("getExpiredSessionIds", ArrayOf::Session),
                ("listActiveSessionIds", ArrayOf::Session),
                ("getSessions", ArrayOf::SessionInfo),
            ]
        );
    }

    #[test]
    fn exactly_the_four_logins_check_a_password() {
        let checking: Vec<_> = Operation::ALL
            .iter()
            .filter(|op| op.checks_a_password())
            .map(|op| op.name())
            .collect();
        assert_eq!(
            checking,
            ["getSession", "getBWSession", "startSession", "confirmId"]
        );
    }
}
