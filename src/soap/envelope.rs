//! Reading a request envelope: one pass of quick-xml's `NsReader` over the body, matching
//! elements by (namespace, local name), never by prefix.
//!
//! Leniency (SPEC 1): any prefixes; operation and child elements qualified or unqualified;
//! `xsi:type`, `encodingStyle`, comments, whitespace, unknown elements ignored; `xsi:nil` means
//! absent; unknown headers ignored unless they must be understood.
//! Hostility: a DOCTYPE (and so any DTD, entity or XXE) is refused; so are undefined entities,
//! nesting deeper than `Limits::max_depth`, and anything but UTF-8. The body's size is bounded
//! before it gets here (`http.rs` stops reading at the limit).
//! Well-formedness (XML 1.0): what quick-xml lets through is checked here, cheaply: characters
//! XML forbids (one byte scan), duplicate or malformed attributes, names that are not XML
//! names, `<` in attribute values, `]]>` in text, a declaration that is not first, content
//! outside the root element, character references to forbidden characters.
//! Faults use our own words and echo at most an `excerpt` of the request; the parser's own
//! error text goes to the debug log, bounded too.

use std::collections::HashSet;

use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, NamespaceError, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::fault::{excerpt, Fault, FaultCode};
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
            return Err(format!("undeclared namespace prefix '{}'", excerpt(prefix)))
        }
    })
}

fn bad(message: impl Into<String>) -> Fault {
    Fault::client(FaultCode::InvalidRequest, message)
}

/// A parse error in our words, with where it is; quick-xml's text (which may quote the
/// request) goes to the debug log as an excerpt.
fn malformed(e: &XmlError, at: u64) -> Fault {
    log::debug!("malformed XML at byte {at}: {}", excerpt(&e.to_string()));
    let what = match e {
        XmlError::Syntax(s) => match s {
            SyntaxError::InvalidBangMarkup => "'<!' starts no comment, CDATA section or DOCTYPE",
            SyntaxError::UnclosedPI => "a processing instruction is not closed",
            SyntaxError::UnclosedXmlDecl => "the XML declaration is not closed",
            SyntaxError::UnclosedComment => "a comment is not closed",
            SyntaxError::UnclosedDoctype => "a DOCTYPE is not closed",
            SyntaxError::UnclosedCData => "a CDATA section is not closed",
            SyntaxError::UnclosedTag => "a tag is not closed",
            SyntaxError::UnclosedSingleQuotedAttributeValue
            | SyntaxError::UnclosedDoubleQuotedAttributeValue => "an attribute value is not closed",
        },
        XmlError::IllFormed(i) => match i {
            IllFormedError::MissingDeclVersion(_) | IllFormedError::UnknownVersion => {
                "the XML declaration has no version 1.0"
            }
            IllFormedError::MissingDoctypeName => "a DOCTYPE has no name",
            IllFormedError::MissingEndTag(_) => "an element is not closed",
            IllFormedError::UnmatchedEndTag(_) => "an end tag has no start tag",
            IllFormedError::MismatchedEndTag { .. } => "an end tag does not match its start tag",
            IllFormedError::DoubleHyphenInComment => "a comment holds '--'",
            IllFormedError::UnclosedReference => "an '&' starts no entity or character reference",
        },
        XmlError::InvalidAttr(a) => attr_problem(a),
        XmlError::Escape(_) => "an entity or character reference is invalid",
        XmlError::Namespace(n) => namespace_problem(n),
        XmlError::Encoding(_) => "the text is not valid UTF-8",
        XmlError::Io(_) => "the text could not be read",
    };
    bad(format!("malformed XML at byte {at}: {what}"))
}

fn attr_problem(e: &AttrError) -> &'static str {
    match e {
        AttrError::ExpectedEq(_) => "an attribute has no '='",
        AttrError::ExpectedValue(_) => "an attribute has no value",
        AttrError::UnquotedValue(_) => "an attribute value is not quoted",
        AttrError::ExpectedQuote(..) => "an attribute value is not closed",
        AttrError::Duplicated(..) => "an attribute appears twice on one element",
    }
}

fn namespace_problem(e: &NamespaceError) -> &'static str {
    match e {
        NamespaceError::UnknownPrefix(_) => "a namespace prefix is not declared",
        NamespaceError::TooManyBindings(_) => "too many namespace declarations are in scope",
        NamespaceError::TooDeeplyNested(_) => "namespace declarations nest too deep",
        NamespaceError::InvalidXmlPrefixBind(_)
        | NamespaceError::InvalidXmlnsPrefixBind(_)
        | NamespaceError::InvalidPrefixForXml(_)
        | NamespaceError::InvalidPrefixForXmlns(_) => {
            "the reserved prefix xml or xmlns, or its namespace, is bound wrongly"
        }
    }
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

/// Only XML whitespace (space, tab, CR, LF).
fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// XML 1.0's well-formedness for one start tag, beyond what quick-xml checks: names are XML
/// names, attributes parse, none appears twice (also by namespace and local name), prefixes are
/// declared, and no value holds a raw `<`.
fn check_element(reader: &NsReader<&[u8]>, start: &BytesStart<'_>, at: u64) -> Result<(), Fault> {
    let fail = |what: &str| bad(format!("malformed XML at byte {at}: {what}"));
    if !is_xml_name(start.name().as_ref()) {
        return Err(fail("an element name that is not an XML name"));
    }
    // Expanded names of prefixed attributes, made only when there is a second one to compare.
    let mut first_prefixed: Option<(&str, &str)> = None;
    let mut prefixed: HashSet<(&str, &str)> = HashSet::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| {
            log::debug!("malformed attribute: {}", excerpt(&e.to_string()));
            fail(attr_problem(&e))
        })?;
        let key: &str = attr.key.as_ref();
        if !is_xml_name(key) {
            return Err(fail("an attribute name that is not an XML name"));
        }
        if attr.value.contains('<') {
            return Err(fail("an attribute value holds '<'"));
        }
        if key == "xmlns" || key.starts_with("xmlns:") || !key.contains(':') {
            continue;
        }
        let expanded = match reader.resolver().resolve_attribute(attr.key) {
            (ResolveResult::Bound(Namespace(ns)), local) => (ns, local.into_inner()),
            (ResolveResult::Unknown(_), _) => {
                return Err(fail("an attribute's namespace prefix is not declared"))
            }
            (ResolveResult::Unbound, _) => continue,
        };
        match first_prefixed {
            None => first_prefixed = Some(expanded),
            Some(one) => {
                if prefixed.is_empty() {
                    prefixed.insert(one);
                }
                if !prefixed.insert(expanded) {
                    return Err(fail("an attribute appears twice on one element"));
                }
            }
        }
    }
    Ok(())
}

/// XML 1.0 `Name` (fifth edition): a NameStartChar, then NameChars. Written here because no
/// well-kept crate exposes the production on its own; roxmltree's parser keeps it private.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// XML 1.0 `Char`: what a document, and a character reference, may hold.
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `1.` and digits: XML 1.0 (fifth edition) reads any 1.x document as 1.0.
fn is_xml1_version(version: &str) -> bool {
    version
        .strip_prefix("1.")
        .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

fn is_utf8_label(label: &str) -> bool {
    matches!(label.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8")
}

/// The body as text: UTF-8 only (a UTF-8 byte-order mark is allowed and dropped), holding only
/// characters XML 1.0 allows.
fn as_utf8(body: &[u8]) -> Result<&str, Fault> {
    let bom = body.starts_with(b"\xEF\xBB\xBF");
    let body = if bom { &body[3..] } else { body };
    if body.starts_with(b"\xFE\xFF") || body.starts_with(b"\xFF\xFE") {
        return Err(bad("UTF-16 is not supported, send UTF-8"));
    }
    // Without a byte-order mark, UTF-16 (or UTF-32) shows as a NUL beside the first character
    // (XML 1.0 appendix F); it is valid UTF-8, so it would otherwise reach the parser.
    if let [a, b, ..] = body {
        if (*a == 0) != (*b == 0) {
            return Err(bad("UTF-16 is not supported, send UTF-8"));
        }
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("the request is not valid UTF-8"))?;
    if let Some(at) = forbidden_char(body) {
        let c = text[at..].chars().next().unwrap_or_default();
        return Err(bad(format!(
            "malformed XML at byte {}: the character U+{:04X}, which XML 1.0 forbids",
            at + if bom { 3 } else { 0 },
            u32::from(c)
        )));
    }
    Ok(text)
}

/// Where the first character XML 1.0 forbids is, in valid UTF-8: a C0 control other than
/// tab, line feed and carriage return, or U+FFFE/U+FFFF (EF BF BE/BF). Surrogates cannot occur
/// in valid UTF-8. One pass over the bytes, so the hot path pays almost nothing.
fn forbidden_char(body: &[u8]) -> Option<usize> {
    body.iter().enumerate().position(|(i, &b)| match b {
        b'\t' | b'\n' | b'\r' => false,
        0..0x20 => true,
        0xEF => matches!(body.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])),
        _ => false,
    })
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
    fn every_seed_of_the_fuzz_corpus_is_read_unless_named_refused() {
        // fuzz/seeds.py writes them; a seed the decoder refuses would start the fuzzer off
        // the path it is meant to explore.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let body = std::fs::read(&path).unwrap();
            let result = decode(&body, SoapVersion::V11, Limits::default());
            if name.starts_with("refused-") {
                assert!(result.is_err(), "{name} was read");
            } else if let Err(r) = result {
                panic!("{name}: {}", r.fault.message);
            } else {
                read += 1;
            }
        }
        // Each of the 17 operations in 3 shapes and 2 versions, and more.
        assert!(read >= 17 * 3 * 2, "{read} seeds read");
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
