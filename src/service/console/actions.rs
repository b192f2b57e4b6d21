//! The console's operations: sign-in and out, the pages' reads, and the actions, each with the
//! rights of docs/behaviour.md §2 checked here and logged with the console user.

use super::*;

impl SessionService {
    /// Checks the password as getSession does (a failure counts toward the lock-out) and opens
    /// a `console` session for a user holding any right. A user without one gets the same
    /// `AuthenticationFailed` as a wrong password.
    pub fn console_sign_in(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        ctx: &CallContext,
    ) -> Result<(ConsoleUser, SessionView)> {
        let checked = self.check_password(user_id, password, ctx.host.as_deref());
        self.login_counts.record(self.now(), checked.is_ok());
        let user = checked?;
        if !has_any_right(&user) {
            log::warn!(
                "console sign-in refused for {}: the user holds no right",
                user.user_id
            );
            return Err(ServiceError::AuthenticationFailed);
        }
        let client_type = ClientType::parse(CONSOLE_CLIENT_TYPE).map_err(ServiceError::internal)?;
        let (id, row) = self.new_session(&user.user_id, client_type, None, ctx, None)?;
        // Within the user's cap like any login: a console session is a session.
        if !self.store_session(&row)? {
            log::warn!(
                "console sign-in of {} refused: disabled meanwhile",
                row.record.user_id
            );
            return Err(ServiceError::AuthenticationFailed);
        }
        log::info!(
            target: SECURITY,
            event = "console_sign_in",
            user = row.record.user_id.as_str(),
            actor = row.record.user_id.as_str(),
            client_type = row.record.client_type.as_str(),
            host = row.record.host.as_deref().unwrap_or("-"),
            session:% = id;
            "console sign-in succeeded"
        );
        let caller = Caller { session: row, user };
        let current = caller.session.record.session_id.clone();
        let me = ConsoleUser::of(&caller, self.keys()?.csrf_token(&current));
        Ok((me, self.view(caller.session, Some(&current))))
    }

    /// The console user of a cookie's session: validated and renewed like a SOAP caller, and
    /// only for a `console` session whose user still holds a right.
    pub fn console_user(&self, session_id: Option<&SessionId>) -> Result<ConsoleUser> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        if caller.session.record.client_type != CONSOLE_CLIENT_TYPE || !has_any_right(&caller.user)
        {
            return Err(ServiceError::InvalidSession);
        }
        let csrf = self.keys()?.csrf_token(&caller.session.record.session_id);
        Ok(ConsoleUser::of(&caller, csrf))
    }

    /// Ends the console session (reason `closed`).
    pub fn console_sign_out(&self, me: &ConsoleUser) -> Result<()> {
        let id = SessionId::parse(&me.session_id).map_err(|_| ServiceError::InvalidSession)?;
        self.end(&mut *self.conn()?, &id, EndReason::Closed)?;
        console_event(me, "sign_out", None, "console sign-out");
        Ok(())
    }

    fn refuse(&self, me: &ConsoleUser, what: &str) -> ServiceError {
        log::warn!(
            target: SECURITY,
            event = "console_denied",
            actor = me.user_id.as_str(),
            session = redact(&me.session_id).as_str();
            "console: {} (session {}) was refused {what}: lacks the right",
            me.user_id,
            redact(&me.session_id)
        );
        ServiceError::AccessDenied
    }

    fn state_of(expired: Option<bool>) -> State {
        match expired {
            None => State::Any,
            Some(false) => State::Active,
            Some(true) => State::Expired,
        }
    }

    fn count(
        &self,
        conn: &mut crate::store::DbConnection,
        query: &queries::SessionQuery,
    ) -> Result<Count> {
        Ok(Count::of(queries::count_sessions(
            conn,
            query,
            COUNT_BOUND + 1,
        )?))
    }

    pub fn console_overview(&self, _me: &ConsoleUser) -> Result<Overview> {
        let mut conn = self.conn()?;
        self.store_pending_on(&mut conn)?;
        let now = self.now();
        let query = |state, filters| queries::SessionQuery {
            state,
            cutoffs: self.cutoffs(now),
            filters,
            sort: SortKey::Created,
            direction: Direction::Ascending,
            few: false,
        };
        let active = self.count(&mut conn, &query(State::Active, SessionFilters::default()))?;
        let expired = self.count(&mut conn, &query(State::Expired, SessionFilters::default()))?;
        let mut by_client_type = Vec::new();
        for kind in queries::distinct_values(&mut conn, Grouping::ClientType, GROUPS_SHOWN)? {
            let filters = SessionFilters {
                client_type: Some(kind.clone()),
                ..SessionFilters::default()
            };
            let n = self.count(&mut conn, &query(State::Active, filters))?;
            by_client_type.push((kind, n));
        }
        let mut by_location = Vec::new();
        for place in queries::distinct_values(&mut conn, Grouping::Location, GROUPS_SHOWN)? {
            let filters = SessionFilters {
                location: Some(place.clone()),
                ..SessionFilters::default()
            };
            let n = self.count(&mut conn, &query(State::Active, filters))?;
            by_location.push((place, n));
        }
        let recently_ended = queries::history_page(
            &mut conn,
            &HistoryFilters::default(),
            &Seek::First,
            RECENT_SHOWN,
        )?
        .into_iter()
        .map(|r| self.shown(self.view_ended(r, None)))
        .collect::<Result<_>>()?;
        Ok(Overview {
            active,
            expired,
            by_client_type,
            by_location,
            logins: self.login_counts.last_hour(now),
            recently_ended,
        })
    }

    /// A page of stored sessions and their (bounded) total.
    pub fn console_sessions(
        &self,
        me: &ConsoleUser,
        query: &SessionsQuery,
        seek: &Seek,
        limit: i64,
    ) -> Result<SessionsPage> {
        let mut conn = self.conn()?;
        // Pages judge expiry, and may sort by last activity, in the database.
        self.store_pending_on(&mut conn)?;
        let sort = query.effective_sort();
        let seek = &self.seek_by_id(seek)?;
        let mut q = queries::SessionQuery {
            state: Self::state_of(query.expired),
            cutoffs: self.cutoffs(self.now()),
            filters: query.filters.clone(),
            sort,
            direction: query.direction,
            few: false,
        };
        let total = self.count(&mut conn, &q)?;
        q.few = matches!(total, Count::Exact(_));
        let mut rows = queries::sessions_page(&mut conn, &q, seek, limit + 1)?;
        let mut seek = seek.clone();
        if rows.is_empty() && matches!(seek, Seek::Before(_)) {
            // Everything before the key has gone since: show the first page instead.
            seek = Seek::First;
            rows = queries::sessions_page(&mut conn, &q, &seek, limit + 1)?;
        }
        let page = paged(
            rows,
            &seek,
            limit,
            |r| {
                let at = match sort {
                    SortKey::Created => r.record.created_at,
                    SortKey::LastActivity => r.last_activity,
                };
                (at, r.record.session_id.clone())
            },
            |r| self.view(r, Some(&me.session_id)),
        );
        Ok(SessionsPage {
            page: self.shown_page(page)?,
            total,
            sort,
        })
    }

    /// A session, stored or ended, and its user's most recently ended sessions.
    pub fn console_session(
        &self,
        me: &ConsoleUser,
        session_id: Option<&SessionId>,
    ) -> Result<SessionDetail> {
        let mut conn = self.conn()?;
        let session = self.shown(self.find_any(&mut conn, session_id, &me.session_id)?)?;
        let filters = HistoryFilters {
            user_id: Some(session.record.user_id.clone()),
            end_reason: None,
        };
        let user_history = queries::history_page(&mut conn, &filters, &Seek::First, RECENT_SHOWN)?
            .into_iter()
            .map(|r| self.shown(self.view_ended(r, Some(&me.session_id))))
            .collect::<Result<_>>()?;
        Ok(SessionDetail {
            session,
            user_history,
        })
    }

    /// A page of ended sessions, newest first.
    pub fn console_history(
        &self,
        me: &ConsoleUser,
        filters: &HistoryFilters,
        seek: &Seek,
        limit: i64,
    ) -> Result<Page<SessionView>> {
        let mut conn = self.conn()?;
        let mut seek = self.seek_by_id(seek)?;
        let mut rows = queries::history_page(&mut conn, filters, &seek, limit + 1)?;
        if rows.is_empty() && matches!(seek, Seek::Before(_)) {
            seek = Seek::First;
            rows = queries::history_page(&mut conn, filters, &seek, limit + 1)?;
        }
        self.shown_page(paged(
            rows,
            &seek,
            limit,
            |r| (r.ended_at, r.record.session_id.clone()),
            |r| self.view_ended(r, Some(&me.session_id)),
        ))
    }

    /// A page as the console shows it: sessions by what listings show, keys by handle.
    fn shown_page(&self, page: Page<SessionView>) -> Result<Page<SessionView>> {
        let key = |k: Option<Key>| -> Result<Option<Key>> {
            k.map(|(at, id)| Ok((at, self.shown_key_id(&id)?)))
                .transpose()
        };
        Ok(Page {
            rows: page
                .rows
                .into_iter()
                .map(|v| self.shown(v))
                .collect::<Result<_>>()?,
            next: key(page.next)?,
            previous: key(page.previous)?,
        })
    }

    /// A page key from a link, its ID turned back from a handle.
    fn seek_by_id(&self, seek: &Seek) -> Result<Seek> {
        Ok(match seek {
            Seek::First => Seek::First,
            Seek::After((at, id)) => Seek::After((*at, self.key_id(id)?)),
            Seek::Before((at, id)) => Seek::Before((*at, self.key_id(id)?)),
        })
    }

    /// Ends one session (reason `deleted`): update right, or admin without department.
    pub fn console_end_session(
        &self,
        me: &ConsoleUser,
        session_id: Option<&SessionId>,
    ) -> Result<()> {
        if !me.can_end {
            return Err(self.refuse(me, "ending a session"));
        }
        let id = &self.target(session_id.ok_or(ServiceError::SessionNotFound)?)?;
        if !self.end(&mut *self.conn()?, id, EndReason::Deleted)? {
            return Err(ServiceError::SessionNotFound);
        }
        console_event(me, "end_session", None, &format!("ended session {id}"));
        Ok(())
    }

    /// Ends every session of a user (reason `deleted`); returns how many.
    pub fn console_end_user_sessions(&self, me: &ConsoleUser, user_id: &UserId) -> Result<usize> {
        if !me.can_end {
            return Err(self.refuse(me, "ending a user's sessions"));
        }
        let ids = self.end_sessions_of_user(user_id, EndReason::Deleted)?;
        console_event(
            me,
            "end_user_sessions",
            Some(user_id.as_str()),
            &format!("ended all {ids} sessions of the user (deleted)"),
        );
        Ok(ids)
    }

    /// Removes every expired session; returns how many.
    pub fn console_remove_expired(&self, me: &ConsoleUser) -> Result<usize> {
        if !me.can_end {
            return Err(self.refuse(me, "removing expired sessions"));
        }
        let n = self.remove_expired()?;
        console_event(
            me,
            "remove_expired",
            None,
            &format!("removed {n} expired sessions"),
        );
        Ok(n)
    }

    /// Every user: there are few, unlike sessions.
    pub fn console_users(&self, me: &ConsoleUser) -> Result<Vec<UserState>> {
        if !me.can_manage_users {
            return Err(self.refuse(me, "the users page"));
        }
        let now = self.now();
        Ok(users::list(&mut *self.conn()?)?
            .into_iter()
            .map(|u| UserState {
                rights: Right::ALL
                    .into_iter()
                    .filter(|r| match r {
                        Right::Administrator => u.admin_right,
                        Right::UpdateSession => u.update_right,
                        Right::ViewSession => u.view_right,
                    })
                    .collect(),
                locked_until: u.locked_until.filter(|t| *t > now),
                failed_logins: u.failed_logins,
                user_id: u.user_id,
                department: u.department,
                disabled: u.disabled,
                source: u.source,
                dn: u.dn,
            })
            .collect())
    }

    /// A new local user, with no rights until granted: admin without department only, with the
    /// CLI's `user add` rules (the password policy, a name not yet taken).
    pub fn console_add_user(
        &self,
        me: &ConsoleUser,
        user_id: &UserId,
        password: &Password,
        department: Option<&Department>,
    ) -> Result<()> {
        if !me.can_manage_users {
            return Err(self.refuse(me, "adding a user"));
        }
        self.add_user(user_id, password, department)?;
        console_event(
            me,
            "add_user",
            Some(user_id.as_str()),
            &format!("added {user_id}"),
        );
        Ok(())
    }

    /// One change to a user: admin without department only. The CLI's own verbs do the work,
    /// so the console and `sessiond user …` apply the same rules.
    pub fn console_change_user(
        &self,
        me: &ConsoleUser,
        user_id: &UserId,
        change: &UserChange,
    ) -> Result<()> {
        if !me.can_manage_users {
            return Err(self.refuse(me, "changing a user"));
        }
        match change {
            UserChange::Disable => {
                self.disable_user(user_id)?;
            }
            UserChange::Enable => self.enable_user(user_id)?,
            UserChange::Unlock => {
                self.unlock_user(user_id)?;
            }
            UserChange::Grant(r) => self.set_right(user_id, *r, true)?,
            UserChange::Revoke(r) => self.set_right(user_id, *r, false)?,
            UserChange::SetPassword(p) => {
                // docs/behaviour.md §7: a new password ends the user's sessions (reason
                // password-changed).
                self.set_password(user_id, p, false)?;
            }
        }
        console_event(
            me,
            change.action(),
            Some(user_id.as_str()),
            &format!("{} {user_id}", change.describe()),
        );
        Ok(())
    }
}

/// A console action as a security event, with the same fields as the CLI's (`event`,
/// `actor`, `action`, `user`), so that one query of the logs finds both.
fn console_event(me: &ConsoleUser, action: &str, user: Option<&str>, what: &str) {
    log::info!(
        target: SECURITY,
        event = "console_admin",
        actor = me.user_id.as_str(),
        action = action,
        user = user.unwrap_or("-"),
        session = redact(&me.session_id).as_str();
        "console: {} {what}",
        me.user_id
    );
}
