//! XML and the SOAP binding only: the envelope in (both versions, every leniency of
//! docs/behaviour.md §1, the hostile-input limits), the operation table and each request as domain
//! values, the response and fault out, the HTTP binding's rules (media type, charset, SOAPAction),
//! and the WSDL. Knows nothing of the database or of the rules; `http/` joins this to the service.

pub mod binding;
pub mod envelope;
pub mod fault;
pub mod operations;
pub mod request;
pub mod response;
pub mod wsdl;

pub use envelope::{decode, Decoded, Limits};
pub use fault::{Fault, FaultCode};
pub use operations::{ArrayOf, Handler, Operation, Request};
pub use response::{Answer, Items, Response, SessionItem};

/// The contract's target namespace.
pub const NS: &str = "urn:sessiond:session:1";
pub const SOAP11_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    pub fn envelope_ns(self) -> &'static str {
        match self {
            SoapVersion::V11 => SOAP11_ENV,
            SoapVersion::V12 => SOAP12_ENV,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8",
            SoapVersion::V12 => "application/soap+xml; charset=utf-8",
        }
    }

    /// The version a request's media type announces, before its envelope is read.
    pub fn from_media_type(essence: &str) -> Self {
        if essence.eq_ignore_ascii_case("application/soap+xml") {
            SoapVersion::V12
        } else {
            SoapVersion::V11
        }
    }
}
