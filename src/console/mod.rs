//! The admin console (SPEC 8): an operator's web page, rendered on the server, mounted at the
//! console path with [`config`]. It owns its routes, forms, CSRF token, cookie and templates;
//! the rules (rights, lock-out, what ending a session means) stay in the service.
//!
//! Templates are askama's: they are compiled into the binary and checked by the compiler, so a
//! typo in a field name fails the build instead of a page in production, nothing is read from
//! disk at run time, and every value is HTML-escaped unless a template says otherwise (none
//! does). maud would check as much, but askama keeps the pages as HTML a reviewer can read.
//!
//! Every page and asset is served by sessiond itself (no CDN, works offline), every action is
//! a plain form POST answered with a redirect (no script needed), and every response carries a
//! strict Content-Security-Policy, `nosniff`, `Referrer-Policy: same-origin` and, on pages,
//! `Cache-Control: no-store`.

mod chart;
mod cookies;
mod csrf;
mod errors;
mod forms;
mod pages;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::domain::{Password, Right, SessionId, UserId};
use crate::service::console::{
    ConsoleUser, HistoryFilters, SessionFilters, SessionsQuery, SortKey, UserChange,
};
use crate::service::{CallContext, ServiceError, SessionService};

use errors::ConsoleError;
use forms::{ActionForm, HistoryParams, Notice, SessionsParams, SignInForm};
use pages::{Chrome, SessionLine};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
const STYLESHEET: &str = include_str!("static/console.css");
/// End reasons the history page filters by.
const END_REASONS: &[&str] = &[
    "closed",
    "deleted",
    "expired",
    "user-disabled",
    "evicted",
    "password-changed",
];

/// Where the console is served and what it serves from.
#[derive(Clone)]
pub struct ConsoleSettings {
    /// Starts and ends with `/`, e.g. `/admin/`.
    pub path: String,
    pub service: Arc<SessionService>,
}

struct Console {
    base: String,
    service: Arc<SessionService>,
}

type Page = Result<HttpResponse, ConsoleError>;

/// Mounts the console, or nothing when it is turned off.
pub fn config(settings: Option<ConsoleSettings>) -> impl Fn(&mut web::ServiceConfig) {
    move |cfg| {
        let Some(settings) = &settings else { return };
        let base = settings.path.clone();
        let scope_path = base.trim_end_matches('/').to_owned();
        let state = web::Data::new(Console {
            base: base.clone(),
            service: settings.service.clone(),
        });
        let headers = DefaultHeaders::new()
            .add((header::CONTENT_SECURITY_POLICY, CSP))
            .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .add((header::REFERRER_POLICY, "same-origin"))
            .add((header::X_FRAME_OPTIONS, "DENY"))
            .add((header::CACHE_CONTROL, "no-store"));
        if !scope_path.is_empty() {
            // `/admin` without its slash: send the browser to the console's real path, where
            // the cookie (Path=/admin/) is sent.
            let to = base.clone();
            cfg.route(
                &scope_path,
                web::get().to(move || {
                    let to = to.clone();
                    async move {
                        HttpResponse::PermanentRedirect()
                            .insert_header((header::LOCATION, to))
                            .finish()
                    }
                }),
            );
        }
        cfg.service(
            web::scope(&scope_path)
                .app_data(state)
                .wrap(headers)
                .route("/", web::get().to(overview))
                .route("/console.css", web::get().to(stylesheet))
                .route("/sign-in", web::get().to(sign_in_form))
                .route("/sign-in", web::post().to(sign_in))
                .route("/sign-out", web::post().to(sign_out))
                .route("/sessions", web::get().to(sessions))
                .route("/sessions/{id}", web::get().to(session))
                .route("/sessions/{id}/end", web::post().to(end_session))
                .route("/expired/remove", web::post().to(remove_expired))
                .route("/users", web::get().to(users))
                .route("/users/change", web::post().to(change_user))
                .route("/users/end-sessions", web::post().to(end_user_sessions))
                .route("/history", web::get().to(history)),
        );
    }
}

impl Console {
    fn sign_in_url(&self) -> String {
        format!("{}sign-in", self.base)
    }

    /// Runs a service call on a blocking thread (it may wait for the database or Argon2).
    async fn run<T, F>(&self, f: F) -> Result<T, ConsoleError>
    where
        T: Send + 'static,
        F: FnOnce(&SessionService) -> Result<T, ServiceError> + Send + 'static,
    {
        let service = self.service.clone();
        match web::block(move || f(&service)).await {
            Ok(result) => result.map_err(|e| ConsoleError::from_service(e, &self.sign_in_url())),
            Err(e) => {
                log::error!("console request did not complete: {e}");
                Err(ConsoleError::Internal)
            }
        }
    }

    /// The signed-in user, validated (and renewed) like any SOAP caller on every request.
    async fn user(&self, req: &HttpRequest) -> Result<ConsoleUser, ConsoleError> {
        let Some(id) = cookies::session_id(req) else {
            return Err(ConsoleError::SignedOut(self.sign_in_url()));
        };
        let id = SessionId::parse(&id).ok();
        self.run(move |s| s.console_user(id.as_ref())).await
    }

    /// A POST's user and form, once its origin and CSRF token are right; 403 otherwise, before
    /// anything is changed.
    async fn posted(
        &self,
        req: &HttpRequest,
        body: &[u8],
    ) -> Result<(ConsoleUser, ActionForm), ConsoleError> {
        if !csrf::same_origin(req) {
            log::warn!(
                "console: refused a POST to {} from another origin",
                req.path()
            );
            return Err(ConsoleError::Forbidden(
                "the request came from another site",
            ));
        }
        let me = self.user(req).await?;
        let form = ActionForm::parse(body).unwrap_or_default();
        if !csrf::verify(me.session_id(), form.csrf.as_deref()) {
            log::warn!(
                "console: refused a POST to {} by {} without a valid CSRF token",
                req.path(),
                me.user_id
            );
            return Err(ConsoleError::Forbidden(
                "the form's security token is missing or wrong; reload the page and try again",
            ));
        }
        Ok((me, ActionForm::parse(body)?))
    }

    fn chrome(&self, me: &ConsoleUser, nav: &'static str, notice: Option<String>) -> Chrome {
        Chrome {
            base: self.base.clone(),
            user: me.user_id.clone(),
            csrf: csrf::token(me.session_id()),
            can_end: me.can_end,
            can_manage_users: me.can_manage_users,
            nav,
            notice,
        }
    }

    fn redirect(&self, to: &str) -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("{}{to}", self.base)))
            .finish()
    }
}

fn render(page: impl Template) -> Page {
    let html = page.render().map_err(|e| {
        log::error!("console page did not render: {e}");
        ConsoleError::Internal
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn query_string<T: serde::Serialize>(params: &T) -> String {
    serde_urlencoded::to_string(params).unwrap_or_default()
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .body(STYLESHEET)
}

async fn sign_in_form(
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

async fn sign_in(req: HttpRequest, console: web::Data<Console>, body: web::Bytes) -> Page {
    if !csrf::same_origin(&req) {
        log::warn!("console: refused a sign-in from another origin");
        return Err(ConsoleError::Forbidden(
            "the request came from another site",
        ));
    }
    let form: SignInForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ConsoleError::BadRequest("the form could not be read".into()))?;
    let ctx = CallContext {
        host: req.peer_addr().map(|a| a.ip().to_string()),
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
        let _turn = turn;
        service.console_sign_in(user.as_ref(), password.as_ref(), &ctx)
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
            let cookie = cookies::signed_in(&req, &console.base, me.session_id());
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

async fn sign_out(req: HttpRequest, console: web::Data<Console>, body: web::Bytes) -> Page {
    let (me, _) = console.posted(&req, &body).await?;
    console.run(move |s| s.console_sign_out(&me)).await?;
    let mut response = console.redirect("sign-in?done=signed-out");
    response
        .add_cookie(&cookies::signed_out(&req, &console.base))
        .map_err(|_| ConsoleError::Internal)?;
    Ok(response)
}

async fn overview(
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

async fn sessions(
    req: HttpRequest,
    console: web::Data<Console>,
    params: web::Query<SessionsParams>,
) -> Page {
    let me = console.user(&req).await?;
    let params = params.into_inner();
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

async fn session(
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

async fn end_session(
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

async fn end_user_sessions(
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

async fn remove_expired(req: HttpRequest, console: web::Data<Console>, body: web::Bytes) -> Page {
    let (me, _) = console.posted(&req, &body).await?;
    let n = console.run(move |s| s.console_remove_expired(&me)).await?;
    Ok(console.redirect(&format!("sessions?state=expired&done=removed&n={n}")))
}

async fn users(req: HttpRequest, console: web::Data<Console>, notice: web::Query<Notice>) -> Page {
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

async fn change_user(req: HttpRequest, console: web::Data<Console>, body: web::Bytes) -> Page {
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

async fn history(
    req: HttpRequest,
    console: web::Data<Console>,
    params: web::Query<HistoryParams>,
) -> Page {
    let me = console.user(&req).await?;
    let params = params.into_inner();
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
