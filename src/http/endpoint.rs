//! `POST <endpoint>`: reads the body within its limit, applies the binding's rules, decodes
//! the envelope, takes a login turn for the operations that check a password, runs the
//! operation's handler on a blocking thread (validateSession inline when the service says it
//! is cheap), and encodes the answer or the fault.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::dispatch::{Calls, Outcome};
use super::health;
use super::streaming::listing_response;
use super::AppState;
use crate::service::{CallContext, ServiceError};
use crate::soap::binding::{self, MediaType};
use crate::soap::{
    self, Answer, Fault, FaultCode, Limits, Operation, Request, Response, SoapVersion,
};

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

/// A service kind as the contract's fault. The message is the kind's own, never a cause.
fn fault_of(e: &ServiceError) -> Fault {
    Fault::new(FaultCode::from(e), e.to_string())
}

/// The one mapping of service kinds onto the contract's codes; the console derives its pages
/// from it too (`console/errors.rs`).
impl From<&ServiceError> for FaultCode {
    fn from(e: &ServiceError) -> Self {
        match e {
            ServiceError::AuthenticationFailed => FaultCode::AuthenticationFailed,
            ServiceError::AccountLocked => FaultCode::AccountLocked,
            ServiceError::InvalidSession => FaultCode::InvalidSession,
            ServiceError::AccessDenied => FaultCode::AccessDenied,
            ServiceError::SessionNotFound => FaultCode::SessionNotFound,
            ServiceError::InvalidRequest(_) => FaultCode::InvalidRequest,
            ServiceError::SessionLimitReached => FaultCode::SessionLimitReached,
            ServiceError::Unavailable | ServiceError::LoginsBusy => FaultCode::ServiceUnavailable,
            ServiceError::Internal => FaultCode::InternalError,
        }
    }
}

/// The most a body buffer reserves before the bytes are there.
const BODY_RESERVE: usize = 8 * 1024;
/// A body this large (or of unknown length) leaves memory to give back once it is freed.
const LARGE_BODY: usize = 256 * 1024;
/// Set when a large body has been freed since the last [`return_freed_memory`].
static LARGE_BODY_FREED: AtomicBool = AtomicBool::new(false);

/// Gives the memory of freed request bodies back to the system. glibc keeps what a thread's
/// arena once held unless the free space is at the arena's very top: 400 stalled 1 MiB bodies
/// left ~450 MiB resident after they were gone. `malloc_trim` releases every free page; it
/// walks the arenas under their locks, so it runs on a background tick and only after a large
/// body, never per request. No crate offers this; it is one libc call.
pub fn return_freed_memory() {
    if LARGE_BODY_FREED.swap(false, Ordering::Relaxed) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    header_str(req, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok())
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
            LARGE_BODY_FREED.store(true, Ordering::Relaxed);
        }
    }
}

enum BodyError {
    TooLarge,
    Read(String),
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
    let reserve = declared.unwrap_or(1024).min(limit).min(BODY_RESERVE);
    let mut body = web::BytesMut::with_capacity(reserve);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn header_str(req: &HttpRequest, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Answers a SOAP request and counts it: by the operation the body held (if it got that
/// far) and the fault code the answer carries, or `ok`.
pub(super) async fn soap_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
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
    let media = header_str(&req, header::CONTENT_TYPE).and_then(MediaType::parse);
    let hint = binding::version_hint(media.as_ref());
    if let Err(fault) = binding::check_charset(media.as_ref()) {
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
            return fault_response(hint, &Fault::new(FaultCode::InvalidRequest, message));
        }
        Ok(Err(BodyError::Read(e))) => {
            // actix's text ("payload reached EOF before completing: None") is for the log only.
            log::debug!("request body not read: {e}");
            let message = "the request body could not be read: it ended early or was malformed";
            return fault_response(hint, &Fault::new(FaultCode::InvalidRequest, message));
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
    // Every SOAPAction header is checked, not only the first: a second one naming another
    // operation is a Client fault (a proxy checking the first must not pass the second), while
    // the same action written with and without quotes is one action.
    let mut actions = req.headers().get_all("SOAPAction").peekable();
    if actions.peek().is_none() {
        if let Err(fault) = binding::check_action(None, media.as_ref(), operation) {
            return fault_response(version, &fault);
        }
    }
    for action in actions {
        if let Err(fault) = binding::check_action(action.to_str().ok(), media.as_ref(), operation) {
            return fault_response(version, &fault);
        }
    }
    let service = state.service.clone();
    let request = decoded.request;
    let result = match &request {
        // The hot path runs here, on the worker: one primary-key read is cheaper than the hop
        // to a blocking thread and back, and it needs no caller address.
        Request::ValidateSession { session_id } if state.inline_validate => Ok(service
            .validate_session(session_id.as_ref())
            .map(|valid| Outcome::Done(Answer::Valid(valid)))),
        // A session this instance has seen valid is answered from memory on any backend.
        Request::ValidateSession {
            session_id: Some(id),
        } if service.validate_from_memory(id) => Ok(Ok(Outcome::Done(Answer::Valid(true)))),
        _ => {
            // Logins wait for their turn here, on no thread, before they take one.
            let turn = if operation.checks_a_password() {
                match service.login_turn().await {
                    Ok(turn) => Some(turn),
                    Err(e) => return fault_response(version, &fault_of(&e)),
                }
            } else {
                None
            };
            let ctx = CallContext {
                host: super::origin::client_host(&req, &state.trusted_proxies),
            };
            web::block(move || {
                let handle = || {
                    request.handle(&Calls {
                        service: &service,
                        ctx: &ctx,
                    })
                };
                match turn {
                    Some(turn) => turn.hold_while(handle),
                    None => handle(),
                }
            })
            .await
        }
    };
    match result {
        Ok(Ok(Outcome::Done(answer))) => HttpResponse::Ok()
            .content_type(version.content_type())
            .body(Response::new(operation, answer).encode(version)),
        Ok(Ok(Outcome::Listing { first, pages })) => match operation.array_of() {
            Some(of) => listing_response(version, operation, of, first, pages, &state),
            // A handler answered a list where the operation table says the operation answers
            // none: a defect of ours, said in the log, never a guessed element type.
            None => {
                log::error!(
                    "{} answered a list, but the operation table gives it no array",
                    operation.name()
                );
                fault_response(
                    version,
                    &Fault::new(FaultCode::InternalError, "internal error"),
                )
            }
        },
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
