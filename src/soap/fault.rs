//! SOAP faults, both versions, with the contract's `sessionServiceFault` detail.
//!
//! A fault is always well-formed XML of bounded size, whatever the request held: text taken
//! from a request goes in as an `excerpt` (short, control characters spelled out), and `encode`
//! bounds and cleans every message once more, for echoes made elsewhere.

use std::borrow::Cow;

use quick_xml::escape::{escape, partial_escape};

use super::{SoapVersion, NS, SOAP11_ENV, SOAP12_ENV};

/// Declares the fault codes once: each row the variant, the code as the detail carries it, and
/// whose fault it is. The enum, [`FaultCode::ALL`] (the metrics' outcome labels), the code text
/// and the side come from here; the HTTP layer and the console map service errors onto these
/// codes (`impl From<&ServiceError> for FaultCode` in `http/endpoint.rs`).
macro_rules! fault_codes {
    ($( $variant:ident = $text:literal, $side:ident; )*) => {
        /// The `code` of the contract's fault detail (docs/behaviour.md §1, fault codes).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum FaultCode {
            $( $variant, )*
        }

        impl FaultCode {
            /// Every code, in declaration order (which is also each one's `as usize`).
            pub const ALL: &'static [FaultCode] = &[$( FaultCode::$variant, )*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( FaultCode::$variant => $text, )*
                }
            }

            /// The caller's fault (soap:Client / env:Sender) or ours (soap:Server /
            /// env:Receiver).
            pub fn is_client(self) -> bool {
                match self {
                    $( FaultCode::$variant => fault_codes!(@client $side), )*
                }
            }
        }
    };
    (@client Client) => { true };
    (@client Server) => { false };
}

fault_codes! {
    AuthenticationFailed = "AUTHENTICATION_FAILED", Client;
    AccountLocked = "ACCOUNT_LOCKED", Client;
    InvalidSession = "INVALID_SESSION", Client;
    AccessDenied = "ACCESS_DENIED", Client;
    SessionNotFound = "SESSION_NOT_FOUND", Client;
    InvalidRequest = "INVALID_REQUEST", Client;
    SessionLimitReached = "SESSION_LIMIT_REACHED", Client;
    ServiceUnavailable = "SERVICE_UNAVAILABLE", Server;
    InternalError = "INTERNAL_ERROR", Server;
}

/// Characters of request text a fault echoes; the rest is cut and marked with "…".
pub const EXCERPT_CHARS: usize = 64;

/// The longest message a fault carries, in characters (a safety net: messages built from
/// excerpts are far shorter).
pub const MAX_MESSAGE_CHARS: usize = 512;

/// Request text as a fault may echo it: at most `EXCERPT_CHARS` characters, with control
/// characters and those XML 1.0 forbids written as `\u{..}`, so the client sees what it sent
/// and the fault stays well-formed.
pub fn excerpt(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if is_printable(c) {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

/// Neither a control character nor one outside XML 1.0's `Char` (U+FFFE, U+FFFF).
fn is_printable(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// The message as it goes into the XML: bounded, one line, only characters XML 1.0 allows.
fn clean(message: &str) -> Cow<'_, str> {
    if message.chars().count() <= MAX_MESSAGE_CHARS && message.chars().all(is_printable) {
        return Cow::Borrowed(message);
    }
    let mut out: String = message
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if is_printable(c) { c } else { '\u{FFFD}' })
        .collect();
    if message.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    Cow::Owned(out)
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

    pub fn must_understand(namespace: &str, local_name: &str) -> Self {
        Self {
            kind: Kind::MustUnderstand(namespace.to_owned(), local_name.to_owned()),
            message: format!(
                "header {{{}}}{} was not understood",
                excerpt(namespace),
                excerpt(local_name)
            ),
        }
    }

    pub fn version_mismatch(found: &str) -> Self {
        Self {
            kind: Kind::VersionMismatch,
            message: format!(
                "envelope namespace '{}' is neither SOAP 1.1 nor SOAP 1.2",
                excerpt(found)
            ),
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
        let message = clean(&self.message);
        let message = partial_escape(message.as_ref());
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
                    // The block's real name or none: a cut name would name something else.
                    Kind::MustUnderstand(ns, local)
                        if ns.len() <= MAX_MESSAGE_CHARS && local.len() <= MAX_MESSAGE_CHARS =>
                    {
                        (
                            "soap:MustUnderstand",
                            format!(
                                "<soap:Header><soap:NotUnderstood qname=\"h:{}\" xmlns:h=\"{}\"/></soap:Header>",
                                escape(local.as_str()),
                                escape(ns.as_str())
                            ),
                        )
                    }
                    Kind::MustUnderstand(..) => ("soap:MustUnderstand", String::new()),
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
        let f = Fault::new(FaultCode::InvalidSession, "x");
        assert_eq!(f.http_status(SoapVersion::V11), 500);
        assert_eq!(f.http_status(SoapVersion::V12), 400);
        let f = Fault::new(FaultCode::ServiceUnavailable, "x");
        assert_eq!(f.http_status(SoapVersion::V12), 500);
    }

    #[test]
    fn the_detail_carries_the_code_and_an_escaped_message() {
        let xml = Fault::new(FaultCode::AccessDenied, "a < b").encode(SoapVersion::V11);
        assert!(xml.contains("<faultcode>soap:Client</faultcode>"));
        assert!(xml.contains("<tns:code>ACCESS_DENIED</tns:code>"));
        assert!(xml.contains("a &lt; b"));
    }

    #[test]
    fn an_excerpt_is_short_and_spells_out_control_characters() {
        assert_eq!(excerpt("a\u{0}b\u{1}"), "a\\u{0}b\\u{1}");
        let long = "x".repeat(10_000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn an_encoded_message_is_bounded_and_holds_only_xml_characters() {
        let message = format!("bad \u{1}\u{FFFF} {}", "y".repeat(100_000));
        let xml = Fault::new(FaultCode::InvalidRequest, message).encode(SoapVersion::V11);
        assert!(
            xml.len() < 2 * MAX_MESSAGE_CHARS + 1000,
            "{} bytes",
            xml.len()
        );
        assert!(!xml.contains('\u{1}') && !xml.contains('\u{FFFF}'));
    }

    #[test]
    fn header_faults_carry_no_detail() {
        let xml = Fault::must_understand("urn:x", "Security").encode(SoapVersion::V11);
        assert!(xml.contains("soap:MustUnderstand"));
        assert!(!xml.contains("detail"));
    }
}
