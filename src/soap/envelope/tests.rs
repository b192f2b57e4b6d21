use super::*;
use crate::soap::fault::FaultCode;

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
    let r = rejected(r#"<soap:Envelope xmlns:soap="urn:not-soap"><soap:Body/></soap:Envelope>"#);
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
fn truncated_and_empty_envelopes_are_refused_with_a_client_fault_invalid_request() {
    for xml in [
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><validateSession>"#,
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>"#,
        "",
    ] {
        let r = rejected(xml);
        assert_eq!(r.fault.code(), Some(FaultCode::InvalidRequest), "{xml:?}");
        // What the client reads: a Client fault carrying the code in its detail.
        let answer = r.fault.encode(r.version);
        assert!(
            answer.contains("<faultcode>soap:Client</faultcode>")
                && answer.contains("<tns:code>INVALID_REQUEST</tns:code>"),
            "{xml:?} gave {answer}"
        );
    }
}

/// The fast paths of `wellformed` (a table for ASCII names, a vectorised pass over blocks of
/// the body) answer exactly as the productions they stand for, wherever the byte falls.
mod fast_paths {
    use super::super::wellformed::{forbidden_char, is_name_char, is_name_start_char, is_xml_name};
    use proptest::prelude::*;

    fn slow_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
    }

    fn slow_forbidden(body: &[u8]) -> Option<usize> {
        body.iter().enumerate().position(|(i, &b)| match b {
            b'\t' | b'\n' | b'\r' => false,
            0..0x20 => true,
            0xEF => matches!(body.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])),
            _ => false,
        })
    }

    #[test]
    fn every_ascii_byte_in_every_place_of_a_name() {
        for b in 0u8..128 {
            let c = b as char;
            for name in [
                format!("{c}"),
                format!("a{c}"),
                format!("{c}a"),
                format!("ab{c}é"),
            ] {
                assert_eq!(is_xml_name(&name), slow_name(&name), "{name:?}");
            }
        }
        assert!(!is_xml_name(""));
    }

    #[test]
    fn a_forbidden_character_on_either_side_of_a_block_boundary() {
        let base = vec![b'a'; 100];
        for at in 0..base.len() {
            for bad in [
                &b"\x01"[..],
                b"\x00",
                b"\x1F",
                b"\xEF\xBF\xBE",
                b"\xEF\xBF\xBF",
            ] {
                let mut body = base.clone();
                body.splice(at..at, bad.iter().copied());
                assert_eq!(forbidden_char(&body), Some(at), "{bad:?} at {at}");
            }
            let mut fine = base.clone();
            fine.splice(at..at, *b"\t\n\r\xEF\xBC\xA1");
            assert_eq!(forbidden_char(&fine), None);
        }
    }

    proptest! {
        #[test]
        fn the_fast_paths_agree_with_the_productions(
            body in proptest::collection::vec(
                prop_oneof![Just(0x01u8), Just(b'\n'), Just(0xEFu8), Just(0xBFu8), Just(0xBEu8), any::<u8>()],
                0..200,
            ),
            name in "[\\x00-\\x7F]{0,12}|\\PC{0,6}",
        ) {
            prop_assert_eq!(forbidden_char(&body), slow_forbidden(&body));
            prop_assert_eq!(is_xml_name(&name), slow_name(&name));
        }
    }
}
