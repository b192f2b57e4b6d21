//! `POST <endpoint>`: reads the body within its limit, applies the binding's rules, decodes
//! the envelope, takes a login turn for the operations that check a password, runs the
//! operation's handler on a blocking thread (validateSession inline when the service says it
//! is cheap), and encodes the answer or the fault.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::dispatch::{Calls, Outcome};
use super::streaming::listing_response;
use super::AppState;
use crate::service::{CallContext, ServiceError};
use crate::soap::binding::{self, MediaType};
use crate::soap::{self, Answer, Fault, FaultCode, Limits, Request, Response, SoapVersion};

fn fault_response(version: SoapVersion, fault: &Fault) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(fault.http_status(version))
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(version.content_type())
        .body(fault.encode(version))
}

/// A service kind as the contract's fault. The message is the kind's own, never a cause.
fn fault_of(e: &ServiceError) -> Fault {
    let code = match e {
        ServiceError::AuthenticationFailed => FaultCode::AuthenticationFailed,
        ServiceError::AccountLocked => FaultCode::AccountLocked,
        ServiceError::InvalidSession => FaultCode::InvalidSession,
        ServiceError::AccessDenied => FaultCode::AccessDenied,
        ServiceError::SessionNotFound => FaultCode::SessionNotFound,
        ServiceError::InvalidRequest(_) => FaultCode::InvalidRequest,
        ServiceError::Unavailable | ServiceError::LoginsBusy => FaultCode::ServiceUnavailable,
        ServiceError::Internal => FaultCode::InternalError,
    };
    Fault::new(code, e.to_string())
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
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
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

pub(super) async fn soap_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let media = header_str(&req, header::CONTENT_TYPE).and_then(MediaType::parse);
    let hint = binding::version_hint(media.as_ref());
    if let Err(fault) = binding::check_charset(media.as_ref()) {
        return fault_response(hint, &fault);
    }
    let body = match read_body(&req, payload, state.max_body_size).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let message = format!("the request is larger than {} bytes", state.max_body_size);
            return fault_response(hint, &Fault::client(FaultCode::InvalidRequest, message));
        }
        Err(BodyError::Read(e)) => {
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
    let soap_action = header_str(&req, "SOAPAction");
    if let Err(fault) = binding::check_action(soap_action, media.as_ref(), operation) {
        return fault_response(version, &fault);
    }
    let service = state.service.clone();
    let request = decoded.request;
    let result = match &request {
        // The hot path runs here, on the worker: one primary-key read is cheaper than the hop
        // to a blocking thread and back, and it needs no caller address.
        Request::ValidateSession { session_id } if state.inline_validate => Ok(service
            .validate_session(session_id.as_ref())
            .map(|valid| Outcome::Done(Answer::Valid(valid)))),
        _ => {
            // Logins wait for their turn here, on no thread, before they take one.
            let _turn = if operation.checks_a_password() {
                match service.login_turn().await {
                    Ok(turn) => Some(turn),
                    Err(e) => return fault_response(version, &fault_of(&e)),
                }
            } else {
                None
            };
            let ctx = CallContext {
                host: client_host(&req, &state.trusted_proxies),
            };
            web::block(move || {
                request.handle(&Calls {
                    service: &service,
                    ctx: &ctx,
                })
            })
            .await
        }
    };
    match result {
        Ok(Ok(Outcome::Done(answer))) => HttpResponse::Ok()
            .content_type(version.content_type())
            .body(Response::new(operation, answer).encode(version)),
        Ok(Ok(Outcome::Listing { first, pages })) => {
            listing_response(version, operation, first, pages, &state)
        }
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
