//! The SOAP-over-HTTP binding's rules, on header values as strings: the media type and its
//! charset, which SOAP version a request announces before its envelope is read, and the
//! SOAPAction (the 1.1 header or 1.2's `action` parameter) checked against the Body.
//!
//! docs/behaviour.md §1: dispatch is by the Body's first child. A SOAPAction is optional and may be
//! empty; one that names a different operation of the contract is a Client fault; one that names
//! nothing of ours is ignored.

use std::borrow::Cow;

use super::envelope::charset_is_utf8;
use super::fault::{Fault, FaultCode};
use super::{Operation, SoapVersion, NS};

/// A request's media type: essence and parameters, names in lower case, quotes removed. It
/// borrows the header's text (a name is copied only when it holds upper case): it is read for
/// every request, validateSession's included.
///
/// Parsed by hand: the `mime` crate refuses what SOAP 1.2 stacks really send, such as an
/// unquoted `action=urn:sessiond:session:1/getSession` (':' is not a token character), and a
/// refusal there would silently drop the action and charset checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType<'a> {
    pub essence: Cow<'a, str>,
    params: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> MediaType<'a> {
    pub fn parse(value: &'a str) -> Option<Self> {
        let mut parts = split_unquoted(value, ';');
        let essence = lower(parts.next()?.trim());
        let params = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Some((lower(k.trim()), v))
            })
            .collect();
        Some(Self { essence, params })
    }

    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// The text in ASCII lower case, copied only when it has an upper-case letter.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut quoted = false;
        for (i, c) in text.char_indices() {
            match c {
                '"' => quoted = !quoted,
                c if c == sep && !quoted => {
                    rest = Some(&text[i + c.len_utf8()..]);
                    return Some(&text[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// The version to answer in before the envelope says: what the media type announces.
pub fn version_hint(media: Option<&MediaType>) -> SoapVersion {
    media.map_or(SoapVersion::V11, |m| {
        SoapVersion::from_media_type(&m.essence)
    })
}

/// Only UTF-8 is read: any other charset parameter is a Client fault.
pub fn check_charset(media: Option<&MediaType>) -> Result<(), Fault> {
    let charset = media.and_then(|m| m.param("charset"));
    if charset_is_utf8(charset) {
        return Ok(());
    }
    Err(Fault::new(
        FaultCode::InvalidRequest,
        format!(
            "charset '{}' is not supported, send UTF-8",
            charset.unwrap_or_default()
        ),
    ))
}

/// The operation a SOAPAction names, if it names one of ours: the WSDL's
/// `urn:sessiond:session:1/NAME`, or the bare operation name some clients send.
pub fn operation_named_by(action: &str) -> Option<Operation> {
    let action = action.trim().trim_matches('"');
    let name = action
        .strip_prefix(NS)
        .and_then(|rest| rest.strip_prefix(['/', '#']))
        .unwrap_or(action);
    Operation::from_name(name)
}

/// Every action the request carries (the SOAPAction header, the media type's `action`) must
/// name the Body's operation or nothing of ours.
pub fn check_action(
    soap_action: Option<&str>,
    media: Option<&MediaType>,
    body: Operation,
) -> Result<(), Fault> {
    let actions = soap_action
        .into_iter()
        .chain(media.and_then(|m| m.param("action")));
    for action in actions {
        if let Some(named) = operation_named_by(action) {
            if named != body {
                return Err(Fault::new(
                    FaultCode::InvalidRequest,
                    format!(
                        "SOAPAction names {} but the Body holds {}",
                        named.name(),
                        body.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_operations_with_or_without_the_namespace() {
        assert_eq!(
            operation_named_by("\"urn:sessiond:session:1/validateSession\""),
            Some(Operation::ValidateSession)
        );
        assert_eq!(
            operation_named_by("urn:sessiond:session:1#getSession"),
            Some(Operation::GetSession)
        );
        assert_eq!(
            operation_named_by("getSession"),
            Some(Operation::GetSession)
        );
        assert_eq!(operation_named_by(""), None);
        assert_eq!(operation_named_by("urn:other/thing"), None);
    }

    #[test]
    fn media_type_parameters_are_read_quoted_or_not_with_names_in_any_case() {
        let m = MediaType::parse(
            "Application/SOAP+XML; Charset=\"utf-8\"; action=urn:sessiond:session:1/getSession",
        )
        .unwrap();
        assert_eq!(m.essence, "application/soap+xml");
        assert_eq!(m.param("charset"), Some("utf-8"));
        assert_eq!(m.param("action"), Some("urn:sessiond:session:1/getSession"));
        assert_eq!(version_hint(Some(&m)), SoapVersion::V12);
        let quoted = MediaType::parse("text/xml; action=\"a;b\"; charset=utf-8").unwrap();
        assert_eq!(quoted.param("action"), Some("a;b"));
        assert_eq!(version_hint(Some(&quoted)), SoapVersion::V11);
        assert_eq!(version_hint(None), SoapVersion::V11);
        // Values keep their case; empty parts and a trailing ';' are nothing.
        let m = MediaType::parse("TEXT/XML;; ACTION=\"Urn:X;Y\" ;").unwrap();
        assert_eq!(m.essence, "text/xml");
        assert_eq!(m.param("action"), Some("Urn:X;Y"));
        assert_eq!(m.param("charset"), None);
        assert_eq!(MediaType::parse("").unwrap().essence, "");
    }

    #[test]
    fn a_charset_other_than_utf8_is_refused_and_none_is_fine() {
        assert!(check_charset(None).is_ok());
        assert!(check_charset(MediaType::parse("text/xml").as_ref()).is_ok());
        assert!(check_charset(MediaType::parse("text/xml; charset=UTF8").as_ref()).is_ok());
        let fault = check_charset(MediaType::parse("text/xml; charset=iso-8859-1").as_ref())
            .err()
            .unwrap();
        assert_eq!(fault.code(), Some(FaultCode::InvalidRequest));
        assert!(fault.message.contains("iso-8859-1"));
    }

    #[test]
    fn an_action_naming_another_operation_is_refused_and_a_foreign_one_ignored() {
        let body = Operation::ValidateSession;
        assert!(check_action(None, None, body).is_ok());
        assert!(check_action(Some(""), None, body).is_ok());
        assert!(check_action(Some("urn:other/getSession"), None, body).is_ok());
        assert!(check_action(
            Some("\"urn:sessiond:session:1/validateSession\""),
            None,
            body
        )
        .is_ok());
        let fault = check_action(Some("getSession"), None, body).err().unwrap();
        assert!(fault.message.contains("names getSession"));
        let media = MediaType::parse("application/soap+xml; action=closeSession");
        assert!(check_action(None, media.as_ref(), body).is_err());
    }
}
