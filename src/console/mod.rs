//! The admin console (docs/behaviour.md §8): an operator's web page, rendered on the server,
//! mounted at the console path with [`config`]. It owns its routes, forms, CSRF token, cookie and
//! templates; the rules (rights, lock-out, what ending a session means) stay in the service.
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
mod handlers;
mod pages;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::header;
use actix_web::middleware::{from_fn, DefaultHeaders, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::domain::SessionId;
use crate::service::console::ConsoleUser;
use crate::service::{ServiceError, SessionService};

use errors::ConsoleError;
use forms::ActionForm;
use handlers::{
    add_user, change_user, end_session, end_user_sessions, history, overview, remove_expired,
    session, sessions, sign_in, sign_in_form, sign_out, stylesheet, users,
};
use pages::Chrome;

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
    /// Proxies whose forwarding headers are believed (client address, scheme, host).
    pub trusted_proxies: Vec<IpAddr>,
    /// `Strict-Transport-Security` max-age on pages served over TLS, or none.
    pub hsts: Option<Duration>,
}

struct Console {
    base: String,
    service: Arc<SessionService>,
    trusted_proxies: Vec<IpAddr>,
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
            trusted_proxies: settings.trusted_proxies.clone(),
        });
        let hsts = settings.hsts.map(|d| format!("max-age={}", d.as_secs()));
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
                .wrap(from_fn(move |req: ServiceRequest, next: Next<_>| {
                    let hsts = hsts.clone();
                    async move {
                        // Only over TLS: a browser ignores it on plain HTTP anyway (RFC 6797
                        // section 7.2), and the listener, not a client's header, says which.
                        let tls = req.app_config().secure();
                        let mut res = next.call(req).await?;
                        if let (true, Some(v)) = (tls, hsts) {
                            if let Ok(v) = header::HeaderValue::from_str(&v) {
                                res.headers_mut()
                                    .insert(header::STRICT_TRANSPORT_SECURITY, v);
                            }
                        }
                        Ok::<_, actix_web::Error>(res)
                    }
                }))
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
                .route("/users/add", web::post().to(add_user))
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
        if !csrf::same_origin(req, &self.trusted_proxies, true) {
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
        if !me.csrf_matches(form.csrf.as_deref()) {
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
            csrf: me.csrf_token().to_owned(),
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
