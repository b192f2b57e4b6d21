//! The console's pages and actions, one handler per route of [`super::config`]: each reads
//! its query or form, asks the service on a blocking thread and renders a page or redirects.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::{Department, Password, Right, SessionId, UserId};
use crate::http::origin::client_host;
use crate::service::console::{HistoryFilters, SessionFilters, SessionsQuery, SortKey, UserChange};
use crate::service::{CallContext, ServiceError};
use crate::telemetry::SECURITY;

use super::forms::{self, HistoryParams, Notice, SessionsParams, SignInForm};
use super::pages::{self, SessionLine};
use super::{chart, cookies, csrf, now, query_string, render, Console, ConsoleError, Page};
use super::{END_REASONS, STYLESHEET};

pub(super) async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .body(STYLESHEET)
}

pub(super) async fn sign_in_form(
    req: HttpRequest,
    console: web::Data<Console>,
    notice: web::Query<Notice>,
) -> Page {
    if console.user(&req).await.is_ok() {
        return Ok(console.redirect(""));
    }
    render(pages::SignInPage {
        base: console.base.clone(),
        user: String::new(),
        error: None,
        notice: forms::notice(notice.done.as_deref(), notice.n.as_deref()),
    })
}

pub(super) async fn sign_in(
    req: HttpRequest,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Page {
    if !csrf::same_origin(&req, &console.trusted_proxies, false) {
        log::warn!(
            target: SECURITY,
            event = "console_sign_in_refused",
            host = client_host(&req, &console.trusted_proxies).as_deref().unwrap_or("-");
            "console: refused a sign-in from another origin"
        );
        return Err(ConsoleError::Forbidden(
            "the request came from another site",
        ));
    }
    let form: SignInForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ConsoleError::BadRequest("the form could not be read".into()))?;
    // The caller's address as SOAP records it: a trusted proxy's X-Forwarded-For, else the peer.
    let ctx = CallContext {
        host: client_host(&req, &console.trusted_proxies),
    };
    // What could name no user or be no password still goes through the check (and costs a
    // hash), so that it answers like a wrong password.
    let user = UserId::parse(&form.user).ok();
    let password = Password::parse(form.password).ok();
    let service = console.service.clone();
    // The same gate as getSession: a flood of sign-ins waits here, on no thread.
    let turn = service
        .login_turn()
        .await
        .map_err(|e| ConsoleError::from_service(e, &console.sign_in_url()))?;
    let outcome = web::block(move || {
        turn.hold_while(|| service.console_sign_in(user.as_ref(), password.as_ref(), &ctx))
    })
    .await;
    let refused = |status: actix_web::http::StatusCode, error: &str| {
        let page = pages::SignInPage {
            base: console.base.clone(),
            user: form.user.clone(),
            error: Some(error.to_owned()),
            notice: None,
        };
        let mut response = render(page)?;
        *response.status_mut() = status;
        Ok(response)
    };
    match outcome {
        Ok(Ok((me, _))) => {
            let cookie = cookies::signed_in(
                &req,
                &console.trusted_proxies,
                &console.base,
                me.session_id(),
            );
            let mut response = console.redirect("");
            response
                .add_cookie(&cookie)
                .map_err(|_| ConsoleError::Internal)?;
            Ok(response)
        }
        Ok(Err(ServiceError::AuthenticationFailed)) => refused(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "Sign-in failed: unknown user, wrong password, or no right to use the console.",
        ),
        Ok(Err(ServiceError::SessionLimitReached)) => refused(
            actix_web::http::StatusCode::FORBIDDEN,
            "Sign-in refused: this user already has the most sessions allowed.",
        ),
        Ok(Err(ServiceError::AccountLocked)) => refused(
            actix_web::http::StatusCode::FORBIDDEN,
            "This account is locked after too many failed password checks. Try again later.",
        ),
        Ok(Err(e)) => Err(ConsoleError::from_service(e, &console.sign_in_url())),
        Err(e) => {
            log::error!("console sign-in did not complete: {e}");
            Err(ConsoleError::Internal)
        }
    }
}

pub(super) async fn sign_out(
    req: HttpRequest,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Page {
    let (me, _) = console.posted(&req, &body).await?;
    console.run(move |s| s.console_sign_out(&me)).await?;
    let mut response = console.redirect("sign-in?done=signed-out");
    response
        .add_cookie(&cookies::signed_out(
            &req,
            &console.trusted_proxies,
            &console.base,
        ))
        .map_err(|_| ConsoleError::Internal)?;
    Ok(response)
}

pub(super) async fn overview(
    req: HttpRequest,
    console: web::Data<Console>,
    notice: web::Query<Notice>,
) -> Page {
    let me = console.user(&req).await?;
    let who = me.clone();
    let o = console.run(move |s| s.console_overview(&who)).await?;
    let now = now();
    render(pages::OverviewPage {
        chrome: console.chrome(
            &me,
            "overview",
            forms::notice(notice.done.as_deref(), notice.n.as_deref()),
        ),
        active: pages::count(o.active),
        expired: pages::count(o.expired),
        by_client_type: o
            .by_client_type
            .into_iter()
            .map(|(k, n)| (k, pages::count(n)))
            .collect(),
        by_location: o
            .by_location
            .into_iter()
            .map(|(k, n)| (k, pages::count(n)))
            .collect(),
        chart: chart::Chart::new(&o.logins),
        recently_ended: o
            .recently_ended
            .iter()
            .map(|v| SessionLine::of(v, now))
            .collect(),
    })
}

pub(super) async fn sessions(
    req: HttpRequest,
    console: web::Data<Console>,
    params: web::Query<SessionsParams>,
) -> Page {
    let me = console.user(&req).await?;
    let params = params.into_inner();
    params.check()?;
    let (state_name, expired) = params.state()?;
    let (_, sort) = params.sort()?;
    let (order_name, direction) = params.order()?;
    let size = params.size()?;
    let seek = params.seek()?;
    let query = SessionsQuery {
        expired,
        filters: SessionFilters {
            user_id: params.user(),
            client_type: params.client_type(),
            location: params.location(),
        },
        sort,
        direction,
    };
    let who = me.clone();
    let result = console
        .run(move |s| s.console_sessions(&who, &query, &seek, size))
        .await?;
    // Links keep the order the page is really in, which the form shows too.
    let mut params = params;
    let sort_name = match result.sort {
        SortKey::Created => "created",
        SortKey::LastActivity => "activity",
    };
    let sort_note = (result.sort != sort).then(|| {
        format!(
            "Sorted by {}: with these filters that order is the one an index serves.",
            if result.sort == SortKey::Created {
                "creation time"
            } else {
                "last activity"
            }
        )
    });
    params.sort = Some(sort_name.to_owned());
    let url = |p: &SessionsParams| format!("{}sessions?{}", console.base, query_string(p));
    let first = params.without_key();
    let now = now();
    render(pages::SessionsPage {
        chrome: console.chrome(
            &me,
            "sessions",
            forms::notice(params.done.as_deref(), params.n.as_deref()),
        ),
        form: pages::SessionsForm {
            user: params.user().unwrap_or_default(),
            client_type: params.client_type().unwrap_or_default(),
            location: params.location().unwrap_or_default(),
            state: state_name.into(),
            sort: sort_name.into(),
            order: order_name.into(),
            size,
        },
        total: pages::count(result.total),
        sort_note,
        rows: result
            .page
            .rows
            .iter()
            .map(|v| SessionLine::of(v, now))
            .collect(),
        first_url: result.page.previous.as_ref().map(|_| url(&first)),
        previous_url: result
            .page
            .previous
            .as_ref()
            .map(|k| url(&params.with_key(None, Some(k)))),
        next_url: result
            .page
            .next
            .as_ref()
            .map(|k| url(&params.with_key(Some(k), None))),
        back: query_string(&params),
    })
}

pub(super) async fn session(
    req: HttpRequest,
    console: web::Data<Console>,
    id: web::Path<String>,
    notice: web::Query<Notice>,
) -> Page {
    let me = console.user(&req).await?;
    let who = me.clone();
    let id = SessionId::parse(&id).ok();
    let detail = console
        .run(move |s| s.console_session(&who, id.as_ref()))
        .await?;
    let now = now();
    render(pages::SessionPage {
        chrome: console.chrome(
            &me,
            "sessions",
            forms::notice(notice.done.as_deref(), notice.n.as_deref()),
        ),
        session: SessionLine::of(&detail.session, now),
        user_history: detail
            .user_history
            .iter()
            .map(|v| SessionLine::of(v, now))
            .collect(),
    })
}

/// A `back` query from the sessions page, if it is one (it only ever follows `sessions?`).
fn back_to(back: Option<&str>) -> Option<String> {
    let back = back?;
    serde_urlencoded::from_str::<SessionsParams>(back).ok()?;
    Some(back.to_owned())
}

pub(super) async fn end_session(
    req: HttpRequest,
    console: web::Data<Console>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let (me, form) = console.posted(&req, &body).await?;
    let id = id.into_inner();
    let target = SessionId::parse(&id).ok();
    console
        .run(move |s| s.console_end_session(&me, target.as_ref()))
        .await?;
    Ok(match back_to(form.back.as_deref()) {
        Some(back) if back.is_empty() => console.redirect("sessions?done=ended"),
        Some(back) => console.redirect(&format!("sessions?{back}&done=ended")),
        None => console.redirect(&format!("sessions/{id}?done=ended")),
    })
}

pub(super) async fn end_user_sessions(
    req: HttpRequest,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Page {
    let (me, form) = console.posted(&req, &body).await?;
    let user = form.user()?;
    let target = user.clone();
    let n = console
        .run(move |s| s.console_end_user_sessions(&me, &target))
        .await?;
    let q = query_string(&[("user", user.as_str())]);
    Ok(console.redirect(&format!("sessions?{q}&done=ended-user&n={n}")))
}

pub(super) async fn remove_expired(
    req: HttpRequest,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Page {
    let (me, _) = console.posted(&req, &body).await?;
    let n = console.run(move |s| s.console_remove_expired(&me)).await?;
    Ok(console.redirect(&format!("sessions?state=expired&done=removed&n={n}")))
}

pub(super) async fn users(
    req: HttpRequest,
    console: web::Data<Console>,
    notice: web::Query<Notice>,
) -> Page {
    let me = console.user(&req).await?;
    let who = me.clone();
    let list = console.run(move |s| s.console_users(&who)).await?;
    render(pages::UsersPage {
        chrome: console.chrome(
            &me,
            "users",
            forms::notice(notice.done.as_deref(), notice.n.as_deref()),
        ),
        users: list.iter().map(pages::UserLine::of).collect(),
    })
}

pub(super) async fn change_user(
    req: HttpRequest,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Page {
    let (me, form) = console.posted(&req, &body).await?;
    let user = form.user()?;
    let right = || -> Result<Right, ConsoleError> {
        form.right
            .as_deref()
            .unwrap_or("")
            .parse::<Right>()
            .map_err(|e| ConsoleError::BadRequest(e.to_string()))
    };
    let change = match form.action.as_deref() {
        Some("disable") => UserChange::Disable,
        Some("enable") => UserChange::Enable,
        Some("unlock") => UserChange::Unlock,
        Some("grant") => UserChange::Grant(right()?),
        Some("revoke") => UserChange::Revoke(right()?),
        Some("password") => UserChange::SetPassword(
            Password::parse(form.password.clone().unwrap_or_default())
                .map_err(|e| ConsoleError::BadRequest(e.to_string()))?,
        ),
        _ => return Err(ConsoleError::BadRequest("unknown action".into())),
    };
    console
        .run(move |s| s.console_change_user(&me, &user, &change))
        .await?;
    Ok(console.redirect("users?done=changed"))
}

/// The users page's "Add a user" form: a local user with a password and, if given, a
/// department; rights are granted afterwards, as with `sessiond user add`.
pub(super) async fn add_user(
    req: HttpRequest,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Page {
    let (me, form) = console.posted(&req, &body).await?;
    let user = form.user()?;
    let bad = |e: crate::domain::DomainError| ConsoleError::BadRequest(e.to_string());
    let password = Password::parse(form.password.clone().unwrap_or_default()).map_err(bad)?;
    let department = match form.department.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(Department::parse(d).map_err(bad)?),
    };
    console
        .run(move |s| s.console_add_user(&me, &user, &password, department.as_ref()))
        .await?;
    Ok(console.redirect("users?done=added"))
}

pub(super) async fn history(
    req: HttpRequest,
    console: web::Data<Console>,
    params: web::Query<HistoryParams>,
) -> Page {
    let me = console.user(&req).await?;
    let params = params.into_inner();
    params.check()?;
    let size = params.size()?;
    let seek = params.seek()?;
    let filters = HistoryFilters {
        user_id: params.user(),
        end_reason: params.reason(),
    };
    let who = me.clone();
    let page = console
        .run(move |s| s.console_history(&who, &filters, &seek, size))
        .await?;
    let url = |p: &HistoryParams| format!("{}history?{}", console.base, query_string(p));
    let now = now();
    render(pages::HistoryPage {
        chrome: console.chrome(&me, "history", None),
        user: params.user().unwrap_or_default(),
        reason: params.reason().unwrap_or_default(),
        reasons: END_REASONS,
        rows: page.rows.iter().map(|v| SessionLine::of(v, now)).collect(),
        first_url: page
            .previous
            .as_ref()
            .map(|_| url(&params.with_key(None, None))),
        previous_url: page
            .previous
            .as_ref()
            .map(|k| url(&params.with_key(None, Some(k)))),
        next_url: page
            .next
            .as_ref()
            .map(|k| url(&params.with_key(Some(k), None))),
    })
}
