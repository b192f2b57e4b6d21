//! XML 1.0 well-formedness beyond what quick-xml checks, and quick-xml's errors in our words:
//! names, attributes, characters XML forbids, the encoding label. Each check is a fault the
//! envelope reader returns as it is.

use std::collections::HashSet;

use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::attributes::AttrError;
use quick_xml::events::BytesStart;
use quick_xml::name::{Namespace, NamespaceError, ResolveResult};
use quick_xml::NsReader;

use crate::soap::fault::{excerpt, Fault, FaultCode};

pub(super) fn bad(message: impl Into<String>) -> Fault {
    Fault::new(FaultCode::InvalidRequest, message)
}

/// A parse error in our words, with where it is; quick-xml's text (which may quote the
/// request) goes to the debug log as an excerpt.
pub(super) fn malformed(e: &XmlError, at: u64) -> Fault {
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

pub(super) fn attr_problem(e: &AttrError) -> &'static str {
    match e {
        AttrError::ExpectedEq(_) => "an attribute has no '='",
        AttrError::ExpectedValue(_) => "an attribute has no value",
        AttrError::UnquotedValue(_) => "an attribute value is not quoted",
        AttrError::ExpectedQuote(..) => "an attribute value is not closed",
        AttrError::Duplicated(..) => "an attribute appears twice on one element",
    }
}

pub(super) fn namespace_problem(e: &NamespaceError) -> &'static str {
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

/// Only XML whitespace (space, tab, CR, LF).
pub(super) fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// XML 1.0's well-formedness for one start tag, beyond what quick-xml checks: names are XML
/// names, attributes parse, none appears twice (also by namespace and local name), prefixes are
/// declared, and no value holds a raw `<`.
pub(super) fn check_element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    at: u64,
) -> Result<(), Fault> {
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
pub(super) fn is_xml_name(name: &str) -> bool {
    // Every name of a real request is ASCII: checked by a table, a byte at a time, instead of
    // decoding chars and walking the ranges (a tenth of a cached validateSession's work was
    // here and in `forbidden_char`; docs/performance.md).
    if let Some((&first, rest)) = name.as_bytes().split_first() {
        if name.is_ascii() {
            return ASCII_NAME[usize::from(first)] == START
                && rest.iter().all(|&b| ASCII_NAME[usize::from(b)] != NOT);
        }
    }
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// What an ASCII byte may be in an XML name: not at all, only after the first character, or
/// anywhere. Built from the productions below, so the two cannot disagree.
const NOT: u8 = 0;
const LATER: u8 = 1;
const START: u8 = 2;
static ASCII_NAME: [u8; 128] = {
    let mut table = [NOT; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8 as char;
        table[b] = if is_name_start_char(c) {
            START
        } else if is_name_char(c) {
            LATER
        } else {
            NOT
        };
        b += 1;
    }
    table
};

pub(super) const fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

pub(super) const fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// XML 1.0 `Char`: what a document, and a character reference, may hold.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `1.` and digits: XML 1.0 (fifth edition) reads any 1.x document as 1.0.
pub(super) fn is_xml1_version(version: &str) -> bool {
    version
        .strip_prefix("1.")
        .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn is_utf8_label(label: &str) -> bool {
    matches!(label.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8")
}

/// The body as text: UTF-8 only (a UTF-8 byte-order mark is allowed and dropped), holding only
/// characters XML 1.0 allows.
pub(super) fn as_utf8(body: &[u8]) -> Result<&str, Fault> {
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
pub(super) fn forbidden_char(body: &[u8]) -> Option<usize> {
    let forbidden_at = |i: usize, b: u8| match b {
        b'\t' | b'\n' | b'\r' => false,
        0..0x20 => true,
        0xEF => matches!(body.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])),
        _ => false,
    };
    // A block with no byte that could start a forbidden character is passed over with a check
    // the compiler vectorises (no early exit inside it); only a suspect block is walked.
    const BLOCK: usize = 32;
    for (n, block) in body.chunks(BLOCK).enumerate() {
        let suspect = block.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF)
        });
        if suspect {
            let base = n * BLOCK;
            if let Some(j) = (0..block.len()).position(|j| forbidden_at(base + j, block[j])) {
                return Some(base + j);
            }
        }
    }
    None
}

/// True when a media type's charset parameter, if any, is UTF-8.
pub fn charset_is_utf8(charset: Option<&str>) -> bool {
    charset.is_none_or(is_utf8_label)
}
