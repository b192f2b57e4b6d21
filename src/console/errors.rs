//! How console failures reach the browser: a page with a status and a plain reason, or, for a
//! missing or ended sign-in, a redirect to the sign-in form.
//!
//! The service has already logged the cause of an internal or database failure; the browser
//! only learns which kind it was, never the text.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::service::ServiceError;
use crate::soap::FaultCode;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid console session: go and sign in (the payload is the sign-in page's URL).
    #[error("not signed in")]
    SignedOut(String),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("the service is unavailable (its database or directory); try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ConsoleError {
    /// A service error, for a signed-in user whose sign-in page is `sign_in`. Derived from the
    /// contract's fault code of the error, so a new code needs nothing here: the codes with a
    /// page of their own are named, every other client fault is a bad request with its message.
    pub fn from_service(e: ServiceError, sign_in: &str) -> Self {
        let code = FaultCode::from(&e);
        match code {
            FaultCode::InvalidSession => ConsoleError::SignedOut(sign_in.to_owned()),
            FaultCode::AccessDenied => {
                ConsoleError::Forbidden("your rights do not allow this action")
            }
            FaultCode::SessionNotFound => ConsoleError::NotFound,
            FaultCode::ServiceUnavailable => ConsoleError::Unavailable,
            _ if code.is_client() => ConsoleError::BadRequest(e.to_string()),
            _ => ConsoleError::Internal,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: String,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignedOut(_) => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::SignedOut(to) = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to.as_str()))
                .finish();
        }
        let status = self.status_code();
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
        };
        match page.render() {
            Ok(html) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(_) => HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_error_gets_the_page_its_fault_code_says() {
        let page = |e: ServiceError| ConsoleError::from_service(e, "/admin/sign-in").status_code();
        assert_eq!(page(ServiceError::InvalidSession), StatusCode::SEE_OTHER);
        assert_eq!(page(ServiceError::AccessDenied), StatusCode::FORBIDDEN);
        assert_eq!(page(ServiceError::SessionNotFound), StatusCode::NOT_FOUND);
        for client in [
            ServiceError::AuthenticationFailed,
            ServiceError::AccountLocked,
            ServiceError::SessionLimitReached,
            ServiceError::invalid("bad filter"),
        ] {
            assert_eq!(page(client), StatusCode::BAD_REQUEST);
        }
        assert_eq!(
            page(ServiceError::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            page(ServiceError::LoginsBusy),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            page(ServiceError::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        // A client's message reaches the page as the service wrote it; ours never does.
        let e = ConsoleError::from_service(ServiceError::invalid("bad filter"), "/");
        assert_eq!(e.to_string(), "bad filter");
        assert_eq!(
            ConsoleError::from_service(ServiceError::Internal, "/").to_string(),
            "internal error"
        );
    }
}
