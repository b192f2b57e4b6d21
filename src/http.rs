//! actix wiring, the only module that sees both `soap` and `service`: reads the body within its
//! limit, decodes the envelope, runs the operation on a blocking thread, encodes the answer.
//! [`dispatch`] is the one table from WSDL operation to service call.

pub mod health;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::service::{
    CallContext, ServiceError, SessionFilter, SessionPages, SessionService, SessionView,
};
use crate::soap::envelope::charset_is_utf8;
use crate::soap::wsdl::Description;
use crate::soap::{
    self, response, Fault, FaultCode, Items, Limits, Operation, Request, Response, SessionInfoItem,
    SessionItem, SoapVersion,
};

/// What every request handler shares.
pub struct AppState {
    pub service: Arc<SessionService>,
    pub public_url: Option<String>,
    pub max_body_size: usize,
    pub trusted_proxies: Vec<IpAddr>,
    /// Answer validateSession on the HTTP worker itself: right for SQLite, where the read is
    /// microseconds in-process; wrong for PostgreSQL, where it is a network round trip that
    /// would hold up every other request on that worker.
    pub inline_validate: bool,
    /// Password checks let onto a blocking thread at once. The rest wait here, on no thread,
    /// so a login flood cannot fill the blocking pool that every other operation needs.
    pub logins: tokio::sync::Semaphore,
    /// How long a login waits for its turn before SERVICE_UNAVAILABLE.
    pub login_wait: Duration,
    /// How long the body may take to arrive once the headers are in (actix bounds only the
    /// headers): a client that stalls mid-body is answered 408 and its connection closed.
    pub client_timeout: Duration,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

/// Mounts the endpoint at each path: POST for SOAP, GET for the WSDL.
pub fn routes(paths: Vec<String>) -> impl Fn(&mut web::ServiceConfig) {
    move |cfg| {
        for path in &paths {
            cfg.service(
                web::resource(path.as_str())
                    .route(web::post().to(soap_endpoint))
                    .route(web::get().to(wsdl_endpoint)),
            );
        }
        #[cfg(feature = "bench-baseline")]
        cfg.route("/bench/baseline", web::post().to(baseline));
    }
}

/// The benchmark's yardstick: reads the body like the endpoint does, answers a fixed
/// validateSession response, and does nothing else.
#[cfg(feature = "bench-baseline")]
async fn baseline(payload: web::Payload) -> HttpResponse {
    const ANSWER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope \
        xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soap:Body>\
        <tns:validateSessionResponse xmlns:tns=\"urn:sessiond:session:1\"><tns:valid>true</tns:valid>\
        </tns:validateSessionResponse></soap:Body></soap:Envelope>";
    let _ = payload.to_bytes_limited(1024 * 1024).await;
    HttpResponse::Ok()
        .content_type(SoapVersion::V11.content_type())
        .body(ANSWER)
}

fn fault_response(version: SoapVersion, fault: &Fault) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(fault.http_status(version))
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status)
        .content_type(version.content_type())
        .body(fault.encode(version));
    // For the request metrics (see `soap_endpoint`). MustUnderstand and VersionMismatch carry
    // no code of the contract; they are a client's malformed request all the same.
    response
        .extensions_mut()
        .insert(fault.code().unwrap_or(FaultCode::InvalidRequest));
    response
}

fn fault_of(e: &ServiceError) -> Fault {
    let code = match e {
        ServiceError::AuthenticationFailed => FaultCode::AuthenticationFailed,
        ServiceError::AccountLocked => FaultCode::AccountLocked,
        ServiceError::InvalidSession => FaultCode::InvalidSession,
        ServiceError::AccessDenied => FaultCode::AccessDenied,
        ServiceError::SessionNotFound => FaultCode::SessionNotFound,
        ServiceError::InvalidRequest(_) => FaultCode::InvalidRequest,
        ServiceError::Unavailable => FaultCode::ServiceUnavailable,
        ServiceError::Internal => FaultCode::InternalError,
    };
    Fault::new(code, e.to_string())
}

/// The most a body buffer reserves before the bytes are there.
const BODY_RESERVE: usize = 8 * 1024;
/// A body this large (or of unknown length) leaves memory to give back once it is freed.
const LARGE_BODY: usize = 256 * 1024;
/// Set when a large body has been freed since the last [`return_freed_memory`].
static LARGE_BODY_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Gives the memory of freed request bodies back to the system. glibc keeps what a thread's
/// arena once held unless the free space is at the arena's very top: 400 stalled 1 MiB bodies
/// left ~450 MiB resident after they were gone. `malloc_trim` releases every free page; it
/// walks the arenas under their locks, so it runs on a background tick and only after a large
/// body, never per request. No crate offers this; it is one libc call.
pub fn return_freed_memory() {
    if LARGE_BODY_SEEN.swap(false, std::sync::atomic::Ordering::Relaxed) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

enum BodyError {
    TooLarge,
    Read(String),
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Marks, when dropped, that a large body has been freed: declared before the body, it is
/// dropped after it, so the next trim comes after the memory is free.
struct LargeBodyFreed(bool);

impl LargeBodyFreed {
    fn of(req: &HttpRequest) -> Self {
        Self(declared_length(req).is_none_or(|n| n >= LARGE_BODY))
    }
}

impl Drop for LargeBodyFreed {
    fn drop(&mut self) {
        if self.0 {
            LARGE_BODY_SEEN.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Reads the body, stopping at `limit` bytes: a larger one is never held in memory.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let declared = declared_length(req);
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    // Grown as bytes arrive, not reserved from Content-Length: a client that announces a
    // megabyte and sends nothing must not cost a megabyte.
    let mut body =
        web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit).min(BODY_RESERVE));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A request's media type: essence and parameters, names in lower case, quotes removed.
///
/// Parsed by hand: the `mime` crate refuses what SOAP 1.2 stacks really send, such as an
/// unquoted `action=urn:sessiond:session:1/getSession` (':' is not a token character), and a
/// refusal there would silently drop the action and charset checks.
struct MediaType {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    fn of(req: &HttpRequest) -> Option<Self> {
        let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        let mut parts = split_unquoted(value, ';').into_iter();
        let essence = parts.next()?.trim().to_ascii_lowercase();
        let params = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Some((k.trim().to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        Some(Self { essence, params })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The SOAPAction a request carries: the SOAP 1.1 header, or SOAP 1.2's `action` parameter.
fn actions<'a>(req: &'a HttpRequest, media: Option<&'a MediaType>) -> Vec<&'a str> {
    let mut found = Vec::new();
    if let Some(v) = req
        .headers()
        .get("SOAPAction")
        .and_then(|v| v.to_str().ok())
    {
        found.push(v);
    }
    if let Some(action) = media.and_then(|m| m.param("action")) {
        found.push(action);
    }
    found
}

/// Answers a SOAP request and counts it: by the operation the body held (if it got that
/// far) and the fault code the answer carries, or `ok`.
async fn soap_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let response = answer(req.clone(), payload, state.clone()).await;
    let fault = response.extensions().get::<FaultCode>().copied();
    // A body that never arrived (408) got no answer to count.
    if fault.is_some() || response.status().is_success() {
        let operation = req.extensions().get::<Operation>().copied();
        health::record(&state.telemetry, operation, fault, started);
    }
    response
}

async fn answer(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let media = MediaType::of(&req);
    let hint = media.as_ref().map_or(SoapVersion::V11, |m| {
        SoapVersion::from_media_type(&m.essence)
    });
    let charset = media
        .as_ref()
        .and_then(|m| m.param("charset"))
        .map(str::to_owned);
    if !charset_is_utf8(charset.as_deref()) {
        let fault = Fault::client(
            FaultCode::InvalidRequest,
            format!(
                "charset '{}' is not supported, send UTF-8",
                charset.unwrap_or_default()
            ),
        );
        return fault_response(hint, &fault);
    }
    let _freed = LargeBodyFreed::of(&req);
    let body = match tokio::time::timeout(
        state.client_timeout,
        read_body(&req, payload, state.max_body_size),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Err(_) => {
            log::info!(
                "request body not received within {}; connection closed",
                humantime::format_duration(state.client_timeout)
            );
            return HttpResponse::RequestTimeout()
                .force_close()
                .content_type("text/plain; charset=utf-8")
                .body("the request body did not arrive in time\n");
        }
        Ok(Err(BodyError::TooLarge)) => {
            let message = format!("the request is larger than {} bytes", state.max_body_size);
            return fault_response(hint, &Fault::client(FaultCode::InvalidRequest, message));
        }
        Ok(Err(BodyError::Read(e))) => {
            let message = format!("the request body could not be read: {e}");
            return fault_response(hint, &Fault::client(FaultCode::InvalidRequest, message));
        }
    };
    let decoded = match soap::decode(&body, hint, Limits::default()) {
        Ok(d) => d,
        Err(rejected) => {
            log::debug!("rejected request: {}", rejected.fault.message);
            return fault_response(rejected.version, &rejected.fault);
        }
    };
    let version = decoded.version;
    let operation = decoded.request.operation();
    req.extensions_mut().insert(operation);
    for action in actions(&req, media.as_ref()) {
        if let Some(named) = Operation::from_action(action) {
            if named != operation {
                let message = format!(
                    "SOAPAction names {} but the Body holds {}",
                    named.name(),
                    operation.name()
                );
                return fault_response(version, &Fault::client(FaultCode::InvalidRequest, message));
            }
        }
    }
    let service = state.service.clone();
    let request = decoded.request;
    let result = match &request {
        // The hot path runs here, on the worker: one primary-key read is cheaper than the hop
        // to a blocking thread and back, and it needs no caller address.
        Request::ValidateSession { session_id } if state.inline_validate => Ok(service
            .validate_session(session_id)
            .map(|valid| Outcome::Done(Response::Valid(valid)))),
        _ => {
            let _turn = if checks_a_password(&request) {
                match tokio::time::timeout(state.login_wait, state.logins.acquire()).await {
                    Ok(Ok(permit)) => Some(permit),
                    _ => {
                        let busy = Fault::new(
                            FaultCode::ServiceUnavailable,
                            "too many logins at once; try again",
                        );
                        return fault_response(version, &busy);
                    }
                }
            } else {
                None
            };
            let ctx = CallContext {
                host: client_host(&req, &state.trusted_proxies),
            };
            web::block(move || dispatch(&service, request, &ctx)).await
        }
    };
    match result {
        Ok(Ok(Outcome::Done(response))) => HttpResponse::Ok()
            .content_type(version.content_type())
            .body(response.encode(version)),
        Ok(Ok(Outcome::Listing(listing))) => listing_response(version, listing, &state),
        Ok(Err(e)) => fault_response(version, &fault_of(&e)),
        Err(e) => {
            log::error!("{} did not complete: {e}", operation.name());
            fault_response(
                version,
                &Fault::new(FaultCode::InternalError, "internal error"),
            )
        }
    }
}

/// The operations that run Argon2 (slow on purpose), whose number in flight is bounded.
fn checks_a_password(request: &Request) -> bool {
    matches!(
        request,
        Request::GetSession { .. }
            | Request::GetBWSession { .. }
            | Request::StartSession { .. }
            | Request::ConfirmId { .. }
    )
}

/// An array result: whole, with a Content-Length, when it fits in one page; otherwise streamed
/// (chunked) a page at a time, so memory stays flat however many sessions there are.
fn listing_response(version: SoapVersion, listing: Listing, state: &AppState) -> HttpResponse {
    let Listing {
        operation,
        first,
        pages,
    } = listing;
    let ok = || {
        let mut r = HttpResponse::Ok();
        r.content_type(version.content_type());
        r
    };
    if pages.is_done() {
        let response = Response::List {
            operation,
            items: first,
            nil_terminated: pages.nil_terminated,
        };
        return ok().body(response.encode(version));
    }
    let head = web::Bytes::from(response::list_open(version, operation) + &first.encode());
    let service = state.service.clone();
    let rest = futures_util::stream::unfold(Some(pages), move |pages| {
        let service = service.clone();
        async move {
            let mut pages = pages?;
            if pages.is_done() {
                let tail = response::list_close(operation, pages.nil_terminated);
                return Some((Ok(web::Bytes::from(tail)), None));
            }
            let page = web::block(move || {
                let views = service.next_page(&mut pages)?;
                Ok::<_, ServiceError>((items(operation, views).encode(), pages))
            })
            .await;
            match page {
                Ok(Ok((chunk, pages))) => Some((Ok(web::Bytes::from(chunk)), Some(pages))),
                // The status line is gone already: all that is left is to cut the response
                // short, which the client sees as a broken one rather than a partial list.
                Ok(Err(e)) => Some((Err(StreamCut(e.to_string())), None)),
                Err(e) => Some((Err(StreamCut(e.to_string())), None)),
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok(head) }).chain(rest);
    ok().streaming(body)
}

/// Why a streamed array response was cut short.
#[derive(Debug, thiserror::Error)]
#[error("array response cut short: {0}")]
struct StreamCut(String);

/// The caller's address: the peer, or what X-Forwarded-For says when the peer is a proxy we
/// were told to trust (the last address in the chain that is not one of ours).
fn client_host(req: &HttpRequest, trusted: &[IpAddr]) -> Option<String> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    if !trusted.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded = req
        .headers()
        .get_all("X-Forwarded-For")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    let client = forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer);
    Some(client.to_string())
}

async fn wsdl_endpoint(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(description) = Description::from_query(req.query_string()) else {
        return HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "sessiond SOAP endpoint: POST SOAP 1.1 or 1.2 requests here. \
             Description: {0}?wsdl (SOAP 1.1), {0}?wsdl=soap12 (SOAP 1.1 and 1.2)\n",
                req.path()
            ));
    };
    let address = match &state.public_url {
        Some(base) => format!("{base}{}", req.path()),
        None => {
            let info = req.connection_info();
            format!("{}://{}{}", info.scheme(), info.host(), req.path())
        }
    };
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        ))
        .body(description.render(&address))
}

fn session_item(v: SessionView) -> SessionItem {
    SessionItem {
        session_id: v.session_id,
        user_id: v.user_id,
        client_type: v.client_type,
        host: v.host,
        creation_time: v.created_at,
        last_activity_time: v.last_activity,
        expiration_time: v.expires_at,
    }
}

fn session_info_item(v: SessionView) -> SessionInfoItem {
    SessionInfoItem {
        session_id: v.session_id,
        user_id: v.user_id,
        client_type: v.client_type,
        client_name: v.client_name,
        host: v.host,
        location: v.location,
        creation_time: v.created_at,
        last_activity_time: v.last_activity,
        expiration_time: v.expires_at,
        end_time: v.ended_at,
        end_reason: v.end_reason,
        created_by: v.created_by,
        is_current: v.is_current,
        is_remote: v.is_remote,
    }
}

/// What an operation produced: a whole response, or an array result with its first page read
/// and the rest still to read.
pub enum Outcome {
    Done(Response),
    Listing(Listing),
}

pub struct Listing {
    operation: Operation,
    first: Items,
    pages: SessionPages,
}

fn listing(
    s: &SessionService,
    operation: Operation,
    mut pages: SessionPages,
) -> Result<Outcome, ServiceError> {
    let first = items(operation, s.next_page(&mut pages)?);
    Ok(Outcome::Listing(Listing {
        operation,
        first,
        pages,
    }))
}

/// The elements an array operation carries: `Session` for the legacy lists, `SessionInfo` for
/// getSessions.
fn items(operation: Operation, views: Vec<SessionView>) -> Items {
    match operation {
        Operation::GetSessions => Items::Infos(views.into_iter().map(session_info_item).collect()),
        _ => Items::Sessions(views.into_iter().map(session_item).collect()),
    }
}

/// Each WSDL operation and the service call that answers it.
pub fn dispatch(
    s: &SessionService,
    request: Request,
    ctx: &CallContext,
) -> Result<Outcome, ServiceError> {
    use crate::domain::Password;
    use Operation as O;
    Ok(Outcome::Done(match request {
        Request::GetSession { user_id, password } => {
            let v = s.get_session(&user_id, &Password::new(password), ctx)?;
            Response::SessionId(O::GetSession, v.session_id)
        }
        Request::GetBWSession { user_id, password } => {
            let v = s.get_bw_session(&user_id, &Password::new(password), ctx)?;
            Response::SessionId(O::GetBWSession, v.session_id)
        }
        Request::CloseSession { session_id } => {
            Response::Closed(O::CloseSession, s.close_session(&session_id)?)
        }
        Request::ValidateSession { session_id } => {
            Response::Valid(s.validate_session(&session_id)?)
        }
        Request::DeleteSessionId {
            session_id,
            target_session_id,
        } => {
            s.delete_session_id(&session_id, &target_session_id)?;
            Response::Deleted
        }
        Request::DeleteExpiredSessionIds { session_id } => {
            let n = s.delete_expired_session_ids(&session_id)?;
            Response::DeletedCount(i32::try_from(n).unwrap_or(i32::MAX))
        }
        Request::GetExpiredSessionIds { session_id } => {
            let pages = s.get_expired_session_ids(&session_id)?;
            return listing(s, O::GetExpiredSessionIds, pages);
        }
        Request::ListActiveSessionIds { session_id } => {
            let pages = s.list_active_session_ids(&session_id)?;
            return listing(s, O::ListActiveSessionIds, pages);
        }
        Request::StartSession {
            user_id,
            password,
            client_type,
            client_name,
        } => {
            let v = s.start_session(
                &user_id,
                &Password::new(password),
                client_type.as_deref(),
                client_name.as_deref(),
                ctx,
            )?;
            Response::SessionInfo(O::StartSession, Box::new(session_info_item(v)))
        }
        Request::GetSessions {
            session_id,
            filter_session_id,
            filter_user_id,
            filter_client_type,
            include_expired,
            offset,
            limit,
        } => {
            let filter = SessionFilter {
                session_id: filter_session_id,
                user_id: filter_user_id,
                client_type: filter_client_type,
                include_expired: include_expired.unwrap_or(false),
                offset,
                limit,
            };
            let pages = s.get_sessions(&session_id, &filter)?;
            return listing(s, O::GetSessions, pages);
        }
        Request::GetSessionInfo {
            session_id,
            target_session_id,
        } => {
            let v = s.get_session_info(&session_id, &target_session_id)?;
            Response::SessionInfo(O::GetSessionInfo, Box::new(session_info_item(v)))
        }
        Request::GetSessionUser {
            session_id,
            target_session_id,
        } => Response::UserId(s.get_session_user(&session_id, &target_session_id)?),
        Request::GetCurrentSession { session_id } => {
            let v = s.get_current_session(&session_id)?;
            Response::SessionInfo(O::GetCurrentSession, Box::new(session_info_item(v)))
        }
        Request::ExtendSession { session_id } => {
            Response::ExpirationTime(s.extend_session(&session_id)?)
        }
        Request::ConfirmId {
            session_id,
            password,
        } => Response::Confirmed(s.confirm_id(&session_id, &Password::new(password))?),
        Request::OpenClientlessSession {
            session_id,
            user_id,
            client_name,
        } => {
            let id =
                s.open_clientless_session(&session_id, &user_id, client_name.as_deref(), ctx)?;
            Response::ClientlessSessionId(id)
        }
        Request::CloseClientlessSession {
            session_id,
            clientless_session_id,
        } => Response::Closed(
            O::CloseClientlessSession,
            s.close_clientless_session(&session_id, &clientless_session_id)?,
        ),
    }))
}
