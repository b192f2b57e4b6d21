//! Reading a request envelope: one pass of quick-xml's `NsReader` over the body, matching
//! elements by (namespace, local name), never by prefix.
//!
//! Leniency (docs/behaviour.md §1): any prefixes; operation and child elements qualified or
//! unqualified; `xsi:type`, `encodingStyle`, comments, whitespace, unknown elements ignored;
//! `xsi:nil` means absent; unknown headers ignored unless they must be understood.
//! Hostility: a DOCTYPE (and so any DTD, entity or XXE) is refused; so are undefined entities,
//! nesting deeper than `Limits::max_depth`, and anything but UTF-8. The body's size is bounded
//! before it gets here (`http/endpoint.rs` stops reading at the limit).
//! Well-formedness (XML 1.0): what quick-xml lets through is checked here, cheaply: characters
//! XML forbids (one byte scan), duplicate or malformed attributes, names that are not XML
//! names, `<` in attribute values, `]]>` in text, a declaration that is not first, content
//! outside the root element, character references to forbidden characters.
//! Faults use our own words and echo at most an `excerpt` of the request; the parser's own
//! error text goes to the debug log, bounded too.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::fault::{excerpt, Fault};
use super::request::{Field, Fields, Operation, Request};
use super::{SoapVersion, NS, SOAP11_ENV, SOAP12_ENV};
pub use wellformed::charset_is_utf8;
use wellformed::{
    as_utf8, attr_problem, bad, check_element, is_blank, is_utf8_label, is_xml1_version,
    is_xml_char, malformed,
};

mod wellformed;

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
            return Err(format!("undeclared namespace prefix '{}'", excerpt(prefix)))
        }
    })
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
    reader.config_mut().check_comments = true;
    let mut depth = 0usize;
    // Whether markup came before (a declaration must come first; whitespace before it, which
    // XML forbids, is let pass: sloppy clients send a line break first and it harms nothing),
    // and whether the root element has ended (only comments, PIs and whitespace may follow).
    let mut markup_seen = false;
    let mut root_done = false;
    let mut place = Place::Outside;
    let mut version = None;
    let mut operation: Option<Operation> = None;
    let mut fields = Fields::default();
    // The child of the operation element being read, and the depth it sits at.
    let mut field: Option<Field> = None;
    let mut seen_body = false;

    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok(read) => read,
            Err(e) => return Err(malformed(&e, reader.error_position())),
        };
        let ns = classify(&ns).map_err(bad);
        let at = reader.buffer_position();
        let markup_before = markup_seen;
        markup_seen |= !matches!(&event, Event::Text(t) if is_blank(t.as_ref()));
        match event {
            Event::DocType(_) => return Err(bad("a DOCTYPE is not allowed")),
            Event::Decl(decl) => {
                if markup_before {
                    return Err(bad(format!(
                        "malformed XML at byte {at}: an XML declaration that is not at the start"
                    )));
                }
                let version = decl.version().map_err(|e| malformed(&e, at))?;
                if !is_xml1_version(&version) {
                    return Err(bad(format!(
                        "XML version '{}' is not supported, send XML 1.0",
                        excerpt(&version)
                    )));
                }
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| {
                        bad(format!("malformed XML at byte {at}: {}", attr_problem(&e)))
                    })?;
                    if !is_utf8_label(&encoding) {
                        return Err(bad(format!(
                            "encoding '{}' is not supported, send UTF-8",
                            excerpt(&encoding)
                        )));
                    }
                }
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                if root_done {
                    return Err(bad(format!(
                        "malformed XML at byte {at}: an element after the root element"
                    )));
                }
                check_element(&reader, start, at)?;
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
                            return Err(bad(format!(
                                "expected a SOAP Envelope, found <{}>",
                                excerpt(local)
                            )));
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
                            return Err(bad(format!(
                                "unknown operation {{{}}}{}",
                                excerpt(&found),
                                excerpt(local)
                            )));
                        }
                        let op = Operation::from_name(local)
                            .ok_or_else(|| bad(format!("unknown operation {}", excerpt(local))))?;
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
                    root_done = depth == 0;
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
                root_done = depth == 0;
            }
            Event::Text(t) => {
                let raw: &str = t.as_ref();
                if depth == 0 && !is_blank(raw) {
                    return Err(bad(format!(
                        "malformed XML at byte {at}: text outside the root element"
                    )));
                }
                if raw.contains("]]>") {
                    return Err(bad(format!("malformed XML at byte {at}: ']]>' in text")));
                }
                if let (Some(f), 4) = (field.as_mut(), depth) {
                    if let Some(v) = f.value.as_mut() {
                        v.push_str(&t.xml10_content());
                    }
                }
            }
            Event::CData(_) | Event::GeneralRef(_) if depth == 0 => {
                return Err(bad(format!(
                    "malformed XML at byte {at}: text outside the root element"
                )));
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
                        .filter(|&c| is_xml_char(c))
                        .ok_or_else(|| bad("invalid character reference"))?
                        .to_string()
                } else {
                    let name = r.xml10_content();
                    resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("undefined entity &{};", excerpt(&name))))?
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
        // `check_element` has already read every attribute without error.
        let Ok(attr) = attr else { continue };
        let (ns, local) = reader.resolver().resolve_attribute(attr.key);
        if !matches!(ns, ResolveResult::Bound(Namespace(n)) if n == env) {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                log::debug!("malformed attribute: {}", excerpt(&e.to_string()));
                bad("malformed XML: an attribute value holds an invalid reference")
            })?;
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

#[cfg(test)]
mod tests;
