//! SOAP faults, both versions, with the contract's `sessionServiceFault` detail.

use quick_xml::escape::{escape, partial_escape};

use super::{SoapVersion, NS, SOAP11_ENV, SOAP12_ENV};

/// The `code` of the contract's fault detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    AuthenticationFailed,
    AccountLocked,
    InvalidSession,
    AccessDenied,
    SessionNotFound,
    InvalidRequest,
    SessionLimitReached,
    ServiceUnavailable,
    InternalError,
}

impl FaultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::AuthenticationFailed => "AUTHENTICATION_FAILED",
            FaultCode::AccountLocked => "ACCOUNT_LOCKED",
            FaultCode::InvalidSession => "INVALID_SESSION",
            FaultCode::AccessDenied => "ACCESS_DENIED",
            FaultCode::SessionNotFound => "SESSION_NOT_FOUND",
            FaultCode::InvalidRequest => "INVALID_REQUEST",
            FaultCode::SessionLimitReached => "SESSION_LIMIT_REACHED",
            FaultCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            FaultCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// The caller's fault (soap:Client / env:Sender) or ours (soap:Server / env:Receiver).
    pub fn is_client(self) -> bool {
        !matches!(
            self,
            FaultCode::ServiceUnavailable | FaultCode::InternalError
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A fault of an operation, with the detail element.
    Detailed(FaultCode),
    /// A header block we must understand but do not: (namespace, local name).
    MustUnderstand(String, String),
    VersionMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    kind: Kind,
    pub message: String,
}

impl Fault {
    pub fn new(code: FaultCode, message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Detailed(code),
            message: message.into(),
        }
    }

    pub fn client(code: FaultCode, message: impl Into<String>) -> Self {
        Self::new(code, message)
    }

    pub fn must_understand(namespace: &str, local_name: &str) -> Self {
        Self {
            kind: Kind::MustUnderstand(namespace.to_owned(), local_name.to_owned()),
            message: format!("header {{{namespace}}}{local_name} was not understood"),
        }
    }

    pub fn version_mismatch(found: &str) -> Self {
        Self {
            kind: Kind::VersionMismatch,
            message: format!("envelope namespace '{found}' is neither SOAP 1.1 nor SOAP 1.2"),
        }
    }

    pub fn code(&self) -> Option<FaultCode> {
        match self.kind {
            Kind::Detailed(code) => Some(code),
            _ => None,
        }
    }

    fn is_sender(&self) -> bool {
        matches!(self.kind, Kind::Detailed(code) if code.is_client())
    }

    /// SOAP 1.1 puts every fault on 500; SOAP 1.2 puts Sender faults on 400 (Part 2, 7.5.1.2).
    pub fn http_status(&self, version: SoapVersion) -> u16 {
        match version {
            SoapVersion::V12 if self.is_sender() => 400,
            _ => 500,
        }
    }

    pub fn encode(&self, version: SoapVersion) -> String {
        let message = partial_escape(self.message.as_str());
        let detail = match &self.kind {
            Kind::Detailed(code) => format!(
                "<tns:sessionServiceFault xmlns:tns=\"{NS}\"><tns:code>{}</tns:code>\
                 <tns:message>{message}</tns:message></tns:sessionServiceFault>",
                code.as_str()
            ),
            _ => String::new(),
        };
        match version {
            SoapVersion::V11 => {
                let code = match &self.kind {
                    Kind::Detailed(c) if c.is_client() => "soap:Client",
                    Kind::Detailed(_) => "soap:Server",
                    Kind::MustUnderstand(..) => "soap:MustUnderstand",
                    Kind::VersionMismatch => "soap:VersionMismatch",
                };
                // SOAP 1.1 section 4.4: `detail` is for Body errors only, never header ones.
                let detail = if detail.is_empty() {
                    detail
                } else {
                    format!("<detail>{detail}</detail>")
                };
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                     <soap:Envelope xmlns:soap=\"{SOAP11_ENV}\"><soap:Body><soap:Fault>\
                     <faultcode>{code}</faultcode><faultstring>{message}</faultstring>{detail}\
                     </soap:Fault></soap:Body></soap:Envelope>"
                )
            }
            SoapVersion::V12 => {
                let (code, header) = match &self.kind {
                    Kind::Detailed(c) if c.is_client() => ("soap:Sender", String::new()),
                    Kind::Detailed(_) => ("soap:Receiver", String::new()),
                    Kind::MustUnderstand(ns, local) => (
                        "soap:MustUnderstand",
                        format!(
                            "<soap:Header><soap:NotUnderstood qname=\"h:{}\" xmlns:h=\"{}\"/></soap:Header>",
                            escape(local.as_str()),
                            escape(ns.as_str())
                        ),
                    ),
                    Kind::VersionMismatch => (
                        "soap:VersionMismatch",
                        format!(
                            "<soap:Header><soap:Upgrade>\
                             <soap:SupportedEnvelope qname=\"s12:Envelope\" xmlns:s12=\"{SOAP12_ENV}\"/>\
                             <soap:SupportedEnvelope qname=\"s11:Envelope\" xmlns:s11=\"{SOAP11_ENV}\"/>\
                             </soap:Upgrade></soap:Header>"
                        ),
                    ),
                };
                let detail = if detail.is_empty() {
                    detail
                } else {
                    format!("<soap:Detail>{detail}</soap:Detail>")
                };
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                     <soap:Envelope xmlns:soap=\"{SOAP12_ENV}\">{header}<soap:Body><soap:Fault>\
                     <soap:Code><soap:Value>{code}</soap:Value></soap:Code>\
                     <soap:Reason><soap:Text xml:lang=\"en\">{message}</soap:Text></soap:Reason>\
                     {detail}</soap:Fault></soap:Body></soap:Envelope>"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_faults_are_400_on_soap12_and_500_on_soap11() {
        let f = Fault::client(FaultCode::InvalidSession, "x");
        assert_eq!(f.http_status(SoapVersion::V11), 500);
        assert_eq!(f.http_status(SoapVersion::V12), 400);
        let f = Fault::new(FaultCode::ServiceUnavailable, "x");
        assert_eq!(f.http_status(SoapVersion::V12), 500);
    }

    #[test]
    fn the_detail_carries_the_code_and_an_escaped_message() {
        let xml = Fault::client(FaultCode::AccessDenied, "a < b").encode(SoapVersion::V11);
        assert!(xml.contains("<faultcode>soap:Client</faultcode>"));
        assert!(xml.contains("<tns:code>ACCESS_DENIED</tns:code>"));
        assert!(xml.contains("a &lt; b"));
    }

    #[test]
    fn header_faults_carry_no_detail() {
        let xml = Fault::must_understand("urn:x", "Security").encode(SoapVersion::V11);
        assert!(xml.contains("soap:MustUnderstand"));
        assert!(!xml.contains("detail"));
    }
}
