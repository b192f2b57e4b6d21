//! Reading a request envelope: one pass of quick-xml's `NsReader` over the body, matching
//! elements by (namespace, local name), never by prefix.
//!
//! Leniency (SPEC 1): any prefixes; operation and child elements qualified or unqualified;
//! `xsi:type`, `encodingStyle`, comments, whitespace, unknown elements ignored; `xsi:nil` means
//! absent; unknown headers ignored unless they must be understood.
//! Hostility: a DOCTYPE (and so any DTD, entity or XXE) is refused; so are undefined entities,
//! nesting deeper than `Limits::max_depth`, and anything but UTF-8. The body's size is bounded
//! before it gets here (`http.rs` stops reading at the limit).

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::fault::{Fault, FaultCode};
use super::request::{Field, Fields, Operation, Request};
use super::{SoapVersion, NS, SOAP11_ENV, SOAP12_ENV};

/// Deepest element nesting accepted; the envelope itself is depth 1.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: MAX_DEPTH,
        }
    }
}

/// A request that was read: its SOAP version and the operation's values.
pub struct Decoded {
    pub version: SoapVersion,
    pub request: Request,
}

/// A request that could not be read, and the version to answer its fault in.
#[derive(Debug)]
pub struct Rejected {
    pub version: SoapVersion,
    pub fault: Fault,
}

/// The namespace of a name, reduced to what we tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Soap11,
    Soap12,
    Contract,
    /// No namespace: unqualified children, or a sloppy client's operation element.
    None,
    Other,
}

fn classify(result: &ResolveResult<'_>) -> Result<Ns, String> {
    Ok(match result {
        ResolveResult::Unbound => Ns::None,
        ResolveResult::Bound(Namespace(ns)) => match *ns {
            n if n == SOAP11_ENV => Ns::Soap11,
            n if n == SOAP12_ENV => Ns::Soap12,
            n if n == NS => Ns::Contract,
            _ => Ns::Other,
        },
        ResolveResult::Unknown(prefix) => {
            return Err(format!("undeclared namespace prefix '{prefix}'"))
        }
    })
}

fn bad(message: impl Into<String>) -> Fault {
    Fault::client(FaultCode::InvalidRequest, message)
}

/// Reads one request. `hint` is the version the media type announced, used to answer a request
/// whose envelope could not be read far enough to tell.
pub fn decode(body: &[u8], hint: SoapVersion, limits: Limits) -> Result<Decoded, Rejected> {
    let mut version = None;
    let (version_read, request) =
        decode_inner(body, &mut version, limits).map_err(|fault| Rejected {
            version: version.unwrap_or(hint),
            fault,
        })?;
    Ok(Decoded {
        version: version_read,
        request,
    })
}

/// Where the reader is in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Outside,
    Envelope,
    Header,
    Body,
    /// Inside the operation element, at the depth of its children.
    Operation,
    /// The operation has been read; the rest of the Body is ignored.
    BodyDone,
}

fn decode_inner(
    body: &[u8],
    version_out: &mut Option<SoapVersion>,
    limits: Limits,
) -> Result<(SoapVersion, Request), Fault> {
    let text = as_utf8(body)?;
    let mut reader = NsReader::from_str(text);
    let mut depth = 0usize;
    let mut place = Place::Outside;
    let mut version = None;
    let mut operation: Option<Operation> = None;
    let mut fields = Fields::default();
    // The child of the operation element being read, and the depth it sits at.
    let mut field: Option<Field> = None;
    let mut seen_body = false;

    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| bad(format!("malformed XML: {e}")))?;
        let ns = classify(&ns).map_err(bad);
        match event {
            Event::DocType(_) => return Err(bad("a DOCTYPE is not allowed")),
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding =
                        encoding.map_err(|e| bad(format!("malformed XML declaration: {e}")))?;
                    if !is_utf8_label(&encoding) {
                        return Err(bad(format!(
                            "encoding '{encoding}' is not supported, send UTF-8"
                        )));
                    }
                }
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                depth += 1;
                if depth > limits.max_depth {
                    return Err(bad(format!(
                        "elements nest deeper than {}",
                        limits.max_depth
                    )));
                }
                let ns = ns?;
                let local = start.local_name();
                let local: &str = local.as_ref();
                match (place, depth) {
                    (Place::Outside, 1) => {
                        if local != "Envelope" {
                            return Err(bad(format!("expected a SOAP Envelope, found <{local}>")));
                        }
                        let v = match ns {
                            Ns::Soap11 => SoapVersion::V11,
                            Ns::Soap12 => SoapVersion::V12,
                            _ => {
                                let found = namespace_of(&reader, start);
                                return Err(Fault::version_mismatch(&found));
                            }
                        };
                        version = Some(v);
                        *version_out = Some(v);
                        place = Place::Envelope;
                    }
                    // `<soap:Header/>` (as SoapUI sends) has no End event: stay in Envelope.
                    (Place::Envelope, 2) if is_env(ns, version) && local == "Header" && !empty => {
                        place = Place::Header;
                    }
                    (Place::Envelope, 2) if is_env(ns, version) && local == "Body" => {
                        seen_body = true;
                        if !empty {
                            place = Place::Body;
                        }
                    }
                    (Place::Header, 3) => {
                        check_header_block(&reader, start, version.unwrap_or(SoapVersion::V11))?;
                    }
                    (Place::Body, 3) => {
                        if !matches!(ns, Ns::Contract | Ns::None) {
                            let found = namespace_of(&reader, start);
                            return Err(bad(format!("unknown operation {{{found}}}{local}")));
                        }
                        let op = Operation::from_name(local)
                            .ok_or_else(|| bad(format!("unknown operation {local}")))?;
                        operation = Some(op);
                        place = if empty {
                            Place::BodyDone
                        } else {
                            Place::Operation
                        };
                    }
                    (Place::Operation, 4) if matches!(ns, Ns::Contract | Ns::None) => {
                        let nil = start.attributes().has_nil(reader.resolver());
                        let f = Field {
                            name: local.to_owned(),
                            value: if nil { None } else { Some(String::new()) },
                        };
                        if empty {
                            fields.0.push(f);
                        } else {
                            field = Some(f);
                        }
                    }
                    // Anything else (unknown elements, what lies inside them) is skipped.
                    _ => {}
                }
                if empty {
                    depth -= 1;
                }
            }
            Event::End(_) => {
                match (place, depth) {
                    (Place::Operation, 4) => {
                        if let Some(f) = field.take() {
                            fields.0.push(f);
                        }
                    }
                    (Place::Operation, 3) => place = Place::BodyDone,
                    (Place::Header | Place::Body | Place::BodyDone, 2) => place = Place::Envelope,
                    (Place::Envelope, 1) => place = Place::Outside,
                    _ => {}
                }
                depth -= 1;
            }
            Event::Text(t) => {
                if let (Some(f), 4) = (field.as_mut(), depth) {
                    if let Some(v) = f.value.as_mut() {
                        v.push_str(&t.xml10_content());
                    }
                }
            }
            Event::CData(t) => {
                if let (Some(f), 4) = (field.as_mut(), depth) {
                    let data: &str = t.as_ref();
                    if let Some(v) = f.value.as_mut() {
                        v.push_str(data);
                    }
                }
            }
            // Since quick-xml 0.38 a reference arrives as its own event; joining it to the text
            // here is what keeps `&amp;` in a password.
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .ok()
                        .flatten()
                        .ok_or_else(|| bad("invalid character reference"))?
                        .to_string()
                } else {
                    let name = r.xml10_content();
                    resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("undefined entity &{name};")))?
                        .to_owned()
                };
                if let (Some(f), 4) = (field.as_mut(), depth) {
                    if let Some(v) = f.value.as_mut() {
                        v.push_str(&resolved);
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }

    let version = version.ok_or_else(|| bad("the request has no SOAP Envelope"))?;
    if place != Place::Outside || depth != 0 {
        return Err(bad("the envelope is incomplete"));
    }
    if !seen_body {
        return Err(bad("the envelope has no Body"));
    }
    let op = operation.ok_or_else(|| bad("the Body names no operation"))?;
    Ok((version, Request::from_fields(op, &fields)?))
}

fn is_env(ns: Ns, version: Option<SoapVersion>) -> bool {
    matches!(
        (ns, version),
        (Ns::Soap11, Some(SoapVersion::V11)) | (Ns::Soap12, Some(SoapVersion::V12))
    )
}

fn namespace_of(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> String {
    match reader.resolver().resolve_element(start.name()).0 {
        ResolveResult::Bound(Namespace(ns)) => ns.to_string(),
        _ => String::new(),
    }
}

/// A header block addressed to us that must be understood is a fault: we understand none.
fn check_header_block(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    version: SoapVersion,
) -> Result<(), Fault> {
    let env = version.envelope_ns();
    let mut must_understand = false;
    let mut for_us = true;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| bad(format!("malformed attribute: {e}")))?;
        let (ns, local) = reader.resolver().resolve_attribute(attr.key);
        if !matches!(ns, ResolveResult::Bound(Namespace(n)) if n == env) {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| bad(format!("malformed attribute: {e}")))?;
        match local.as_ref() {
            "mustUnderstand" => must_understand = matches!(value.trim(), "1" | "true"),
            // SOAP 1.1 actor / SOAP 1.2 role: blocks for another node are not ours to judge.
            "actor" | "role" => {
                for_us = matches!(
                    value.trim(),
                    "http://schemas.xmlsoap.org/soap/actor/next"
                        | "http://www.w3.org/2003/05/soap-envelope/role/next"
                        | "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
                        | ""
                )
            }
            _ => {}
        }
    }
    if must_understand && for_us {
        let local = start.local_name().as_ref().to_owned();
        return Err(Fault::must_understand(&namespace_of(reader, start), &local));
    }
    Ok(())
}

fn is_utf8_label(label: &str) -> bool {
    matches!(label.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8")
}

/// The body as text: UTF-8 only (a UTF-8 byte-order mark is allowed and dropped).
fn as_utf8(body: &[u8]) -> Result<&str, Fault> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.starts_with(b"\xFE\xFF") || body.starts_with(b"\xFF\xFE") {
        return Err(bad("UTF-16 is not supported, send UTF-8"));
    }
    std::str::from_utf8(body).map_err(|_| bad("the request is not valid UTF-8"))
}

/// True when a media type's charset parameter, if any, is UTF-8.
pub fn charset_is_utf8(charset: Option<&str>) -> bool {
    charset.is_none_or(is_utf8_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(xml: &str) -> Decoded {
        match decode(xml.as_bytes(), SoapVersion::V11, Limits::default()) {
            Ok(d) => d,
            Err(r) => panic!("rejected: {}", r.fault.message),
        }
    }

    fn rejected(xml: &str) -> Rejected {
        match decode(xml.as_bytes(), SoapVersion::V11, Limits::default()) {
            Ok(_) => panic!("accepted"),
            Err(r) => r,
        }
    }

    fn session_id(d: &Decoded) -> String {
        match &d.request {
            Request::ValidateSession { session_id } => session_id
                .as_ref()
                .map_or(String::new(), |s| s.as_str().to_owned()),
            _ => panic!("not validateSession"),
        }
    }

    #[test]
    fn any_prefix_and_unqualified_children_are_read() {
        let d = ok(
            r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>
            <x:validateSession xmlns:x="urn:sessiond:session:1"><sessionId>abc</sessionId></x:validateSession>
            </e:Body></e:Envelope>"#,
        );
        assert_eq!(d.version, SoapVersion::V11);
        assert_eq!(session_id(&d), "abc");
    }

    #[test]
    fn soap12_default_namespaces_are_read() {
        let d = ok(
            r#"<?xml version="1.0" encoding="utf-8"?><Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body>
            <getSession xmlns="urn:sessiond:session:1"><!-- c --><userId xsi:type="xs:string" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">a&amp;b&#x41;</userId><password>p</password><extra><deep/></extra></getSession>
            </Body></Envelope>"#,
        );
        assert_eq!(d.version, SoapVersion::V12);
        // A user ID, not a session ID: `&` is no session ID's character.
        match &d.request {
            Request::GetSession {
                user_id: Some(u), ..
            } => assert_eq!(u.as_str(), "a&bA"),
            _ => panic!("not getSession with a user ID"),
        }
    }

    #[test]
    fn a_doctype_is_refused() {
        let r = rejected(
            r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>"#,
        );
        assert_eq!(r.fault.code(), Some(FaultCode::InvalidRequest));
        assert!(r.fault.message.contains("DOCTYPE"));
    }

    #[test]
    fn an_undefined_entity_is_refused() {
        let r = rejected(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><validateSession><sessionId>&xxe;</sessionId></validateSession></soap:Body></soap:Envelope>"#,
        );
        assert!(r.fault.message.contains("undefined entity"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut xml = String::from(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><validateSession>"#,
        );
        xml.push_str(&"<a>".repeat(100));
        xml.push_str(&"</a>".repeat(100));
        xml.push_str("</validateSession></soap:Body></soap:Envelope>");
        assert!(rejected(&xml).fault.message.contains("deeper"));
    }

    #[test]
    fn a_wrong_envelope_namespace_is_a_version_mismatch() {
        let r =
            rejected(r#"<soap:Envelope xmlns:soap="urn:not-soap"><soap:Body/></soap:Envelope>"#);
        assert_eq!(r.fault.code(), None);
        assert!(r
            .fault
            .encode(SoapVersion::V11)
            .contains("soap:VersionMismatch"));
    }

    #[test]
    fn a_must_understand_header_is_a_fault_unless_for_another_role() {
        let r = rejected(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><w:Security xmlns:w="urn:wsse" soap:mustUnderstand="1"/></soap:Header><soap:Body><validateSession><sessionId>a</sessionId></validateSession></soap:Body></soap:Envelope>"#,
        );
        assert!(r
            .fault
            .encode(SoapVersion::V11)
            .contains("soap:MustUnderstand"));
        ok(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><w:Security xmlns:w="urn:wsse" soap:actor="urn:someone-else" soap:mustUnderstand="1"/><w:Trace xmlns:w="urn:t">x</w:Trace></soap:Header><soap:Body><validateSession><sessionId>a</sessionId></validateSession></soap:Body></soap:Envelope>"#,
        );
    }

    #[test]
    fn not_utf8_is_refused() {
        let r = rejected("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>");
        assert!(r.fault.message.contains("ISO-8859-1"));
        let r = decode(b"<a>\xE9</a>", SoapVersion::V11, Limits::default())
            .err()
            .unwrap();
        assert!(r.fault.message.contains("UTF-8"));
    }

    #[test]
    fn a_self_closing_header_is_no_header() {
        let d = ok(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body><validateSession xmlns="urn:sessiond:session:1"><sessionId>a</sessionId></validateSession></s:Body></s:Envelope>"#,
        );
        assert_eq!(session_id(&d), "a");
    }

    #[test]
    fn truncated_and_empty_envelopes_are_refused() {
        rejected(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><validateSession>"#,
        );
        rejected(
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>"#,
        );
        rejected("");
    }
}
