//! The handlers of the operation table: one method per WSDL operation, each turning the
//! request's domain values into a service call and its result into an [`Answer`]. The table
//! (`soap::operations`) declares the methods; the compiler holds this file to it.

use crate::domain::{ClientName, ClientType, Password, SessionId, UserId};
use crate::service::SessionView;
use crate::service::{CallContext, ServiceError, SessionFilter, SessionPages, SessionService};
use crate::soap::response::SessionItem;
use crate::soap::{Answer, ArrayOf, Handler, Items};

/// What an operation produced: a whole answer, or an array result with its first page read
/// and the rest still to read.
pub(super) enum Outcome {
    Done(Answer),
    Listing {
        first: Vec<SessionView>,
        pages: SessionPages,
    },
}

/// One call's handlers: the service and what the transport knows of the caller.
pub(super) struct Calls<'a> {
    pub service: &'a SessionService,
    pub ctx: &'a CallContext,
}

type Done = Result<Outcome, ServiceError>;

impl Calls<'_> {
    fn listing(&self, mut pages: SessionPages) -> Done {
        let first = self.service.next_page(&mut pages)?;
        Ok(Outcome::Listing { first, pages })
    }
}

fn done(answer: Answer) -> Done {
    Ok(Outcome::Done(answer))
}

fn info(v: SessionView) -> Answer {
    Answer::SessionInfo(Box::new(session_item(v)))
}

impl Handler for Calls<'_> {
    type Output = Outcome;
    type Error = ServiceError;

    fn get_session(&self, user_id: Option<UserId>, password: Option<Password>) -> Done {
        let v = self
            .service
            .get_session(user_id.as_ref(), password.as_ref(), self.ctx)?;
        done(Answer::SessionId(v.record.session_id))
    }

    fn get_bw_session(&self, user_id: Option<UserId>, password: Option<Password>) -> Done {
        let v = self
            .service
            .get_bw_session(user_id.as_ref(), password.as_ref(), self.ctx)?;
        done(Answer::SessionId(v.record.session_id))
    }

    fn close_session(&self, session_id: Option<SessionId>) -> Done {
        done(Answer::Closed(
            self.service.close_session(session_id.as_ref())?,
        ))
    }

    fn validate_session(&self, session_id: Option<SessionId>) -> Done {
        done(Answer::Valid(
            self.service.validate_session(session_id.as_ref())?,
        ))
    }

    fn delete_session_id(
        &self,
        session_id: Option<SessionId>,
        target_session_id: Option<SessionId>,
    ) -> Done {
        self.service
            .delete_session_id(session_id.as_ref(), target_session_id.as_ref())?;
        done(Answer::Empty)
    }

    fn delete_expired_session_ids(&self, session_id: Option<SessionId>) -> Done {
        let n = self
            .service
            .delete_expired_session_ids(session_id.as_ref())?;
        done(Answer::DeletedCount(i32::try_from(n).unwrap_or(i32::MAX)))
    }

    fn get_expired_session_ids(&self, session_id: Option<SessionId>) -> Done {
        self.listing(self.service.get_expired_session_ids(session_id.as_ref())?)
    }

    fn list_active_session_ids(&self, session_id: Option<SessionId>) -> Done {
        self.listing(self.service.list_active_session_ids(session_id.as_ref())?)
    }

    fn start_session(
        &self,
        user_id: Option<UserId>,
        password: Option<Password>,
        client_type: Option<ClientType>,
        client_name: Option<ClientName>,
    ) -> Done {
        let v = self.service.start_session(
            user_id.as_ref(),
            password.as_ref(),
            client_type,
            client_name,
            self.ctx,
        )?;
        done(info(v))
    }

    #[allow(clippy::too_many_arguments)]
    fn get_sessions(
        &self,
        session_id: Option<SessionId>,
        filter_session_id: Option<String>,
        filter_user_id: Option<String>,
        filter_client_type: Option<String>,
        include_expired: Option<bool>,
        offset: Option<i32>,
        limit: Option<i32>,
    ) -> Done {
        let filter = SessionFilter {
            session_id: filter_session_id,
            user_id: filter_user_id,
            client_type: filter_client_type,
            include_expired: include_expired.unwrap_or(false),
            offset,
            limit,
        };
        self.listing(self.service.get_sessions(session_id.as_ref(), &filter)?)
    }

    fn get_session_info(
        &self,
        session_id: Option<SessionId>,
        target_session_id: Option<SessionId>,
    ) -> Done {
        let v = self
            .service
            .get_session_info(session_id.as_ref(), target_session_id.as_ref())?;
        done(info(v))
    }

    fn get_session_user(
        &self,
        session_id: Option<SessionId>,
        target_session_id: Option<SessionId>,
    ) -> Done {
        let user = self
            .service
            .get_session_user(session_id.as_ref(), target_session_id.as_ref())?;
        done(Answer::UserId(user))
    }

    fn get_current_session(&self, session_id: Option<SessionId>) -> Done {
        done(info(self.service.get_current_session(session_id.as_ref())?))
    }

    fn extend_session(&self, session_id: Option<SessionId>) -> Done {
        done(Answer::ExpirationTime(
            self.service.extend_session(session_id.as_ref())?,
        ))
    }

    fn confirm_id(&self, session_id: Option<SessionId>, password: Option<Password>) -> Done {
        done(Answer::Confirmed(
            self.service
                .confirm_id(session_id.as_ref(), password.as_ref())?,
        ))
    }

    fn open_clientless_session(
        &self,
        session_id: Option<SessionId>,
        user_id: Option<UserId>,
        client_name: Option<ClientName>,
    ) -> Done {
        let id = self.service.open_clientless_session(
            session_id.as_ref(),
            user_id.as_ref(),
            client_name,
            self.ctx,
        )?;
        done(Answer::ClientlessSessionId(id.as_str().to_owned()))
    }

    fn close_clientless_session(
        &self,
        session_id: Option<SessionId>,
        clientless_session_id: Option<SessionId>,
    ) -> Done {
        done(Answer::Closed(self.service.close_clientless_session(
            session_id.as_ref(),
            clientless_session_id.as_ref(),
        )?))
    }
}

/// An array operation's elements, of the kind the operation table says it carries.
pub(super) fn items(of: ArrayOf, views: Vec<SessionView>) -> Items {
    let items = views.into_iter().map(session_item).collect();
    match of {
        ArrayOf::SessionInfo => Items::Infos(items),
        ArrayOf::Session => Items::Sessions(items),
    }
}

/// A session as the encoders write it (`Session` or `SessionInfo`): the one mapping from
/// the service's view.
fn session_item(v: SessionView) -> SessionItem {
    let r = v.record;
    SessionItem {
        session_id: r.session_id,
        user_id: r.user_id,
        client_type: r.client_type,
        client_name: r.client_name,
        host: r.host,
        location: r.location,
        creation_time: r.created_at,
        last_activity_time: v.last_activity,
        expiration_time: v.expires_at,
        end_time: v.ended_at,
        end_reason: v.end_reason,
        created_by: r.created_by,
        is_current: v.is_current,
        is_remote: v.is_remote,
    }
}
