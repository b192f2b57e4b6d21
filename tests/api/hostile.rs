//! docs/behaviour.md §1, hostile input: each request here is refused with a Client fault
//! INVALID_REQUEST (HTTP 500 in SOAP 1.1, a Sender fault on HTTP 400 in SOAP 1.2), promptly, and
//! the same server then still answers a good request.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::helpers::*;

const CT11: &str = "text/xml; charset=utf-8";
const CT12: &str = "application/soap+xml; charset=utf-8";
/// Longer than any refusal should take, short enough that a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug)]
enum Version {
    V11,
    V12,
}

use Version::{V11, V12};

impl Version {
    fn content_type(self) -> &'static str {
        match self {
            V11 => CT11,
            V12 => CT12,
        }
    }

    fn envelope(self, inner: &str) -> String {
        match self {
            V11 => envelope11(inner),
            V12 => envelope12(inner),
        }
    }
}

/// An app with a user and a live session, to show the server still serves after each attack.
struct Target {
    app: TestApp,
    session: String,
    client: reqwest::blocking::Client,
}

impl Target {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut sessiond::config::Config)) -> Self {
        let app = spawn_app_with(adjust);
        app.add_user("alice", "pw-alice", None, &[]);
        let session = app.get_session("alice", "pw-alice");
        let client = reqwest::blocking::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        Self {
            app,
            session,
            client,
        }
    }

    /// A good validateSession for the live session.
    fn good(&self, version: Version) -> String {
        version.envelope(&operation(
            "validateSession",
            &[("sessionId", &self.session)],
        ))
    }

    /// Sends a body as it is; a hang or a dropped connection fails the test.
    fn send(&self, content_type: &str, body: reqwest::blocking::Body) -> Reply {
        let started = Instant::now();
        let resp = self
            .client
            .post(&self.app.url)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .unwrap_or_else(|e| panic!("no answer after {:?}: {e}", started.elapsed()));
        Reply::from(resp)
    }

    fn post(&self, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send(content_type, reqwest::blocking::Body::from(body.into()))
    }

    /// The same bytes without a Content-Length: a reader of unknown length goes out chunked.
    fn post_chunked(&self, content_type: &str, body: impl Read + Send + 'static) -> Reply {
        self.send(content_type, reqwest::blocking::Body::new(body))
    }

    /// The server answers a good request for the session it had before, in both versions.
    fn assert_still_serving(&self) {
        for version in [V11, V12] {
            let r = self.post(version.content_type(), self.good(version));
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.value("valid").as_deref(), Some("true"), "{}", r.body);
        }
    }
}

/// A Client/Sender fault INVALID_REQUEST in the version the request announced.
fn assert_refused(reply: &Reply, version: Version) {
    let media = reply
        .content_type
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    match version {
        V11 => {
            assert_eq!(reply.status, 500, "{}", reply.body);
            assert_eq!(media, "text/xml", "{reply:?}");
            assert_eq!(
                reply.soap_fault().as_deref(),
                Some("Client"),
                "{}",
                reply.body
            );
        }
        V12 => {
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert_eq!(media, "application/soap+xml", "{reply:?}");
            assert_eq!(
                reply.soap_fault().as_deref(),
                Some("Sender"),
                "{}",
                reply.body
            );
        }
    }
    reply.assert_fault("INVALID_REQUEST");
}

/// Sends the same text in both versions' content types; each is refused and the server goes on.
fn assert_refused_in_both(target: &Target, body: impl Fn(Version) -> Vec<u8>) {
    for version in [V11, V12] {
        let r = target.post(version.content_type(), body(version));
        assert_refused(&r, version);
        target.assert_still_serving();
    }
}

/// A validateSession for `session`, which goes into the text as it is (entity references too),
/// with `prolog` before the envelope.
fn validate_with(version: Version, prolog: &str, session: &str) -> Vec<u8> {
    let op = format!(
        "<validateSession xmlns=\"{NS}\"><sessionId>{session}</sessionId></validateSession>"
    );
    format!("{prolog}{}", version.envelope(&op)).into_bytes()
}

// ---------------------------------------------------------------------------------------------
// DTDs and entities

#[test]
fn a_doctype_with_an_internal_subset_is_refused() {
    let t = Target::new();
    assert_refused_in_both(&t, |v| {
        validate_with(
            v,
            "<?xml version=\"1.0\"?><!DOCTYPE Envelope [<!ELEMENT Envelope ANY>]>",
            &t.session,
        )
    });
    // A DOCTYPE without a subset is just as unwelcome.
    assert_refused_in_both(&t, |v| validate_with(v, "<!DOCTYPE Envelope>", &t.session));
}

#[test]
fn an_external_entity_is_refused_and_its_file_is_not_read() {
    let t = Target::new();
    for version in [V11, V12] {
        let doctype =
            "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>";
        let body = validate_with(version, doctype, "&xxe;");
        let r = t.post(version.content_type(), body);
        assert_refused(&r, version);
        assert!(!r.body.contains("root:"), "the file leaked: {}", r.body);
        t.assert_still_serving();
    }
    // A parameter entity fetched from elsewhere: nothing is fetched, the request is refused.
    let doctype =
        "<!DOCTYPE foo [<!ENTITY % remote SYSTEM \"http://127.0.0.1:9/evil.dtd\"> %remote;]>";
    assert_refused_in_both(&t, |v| validate_with(v, doctype, &t.session));
}

#[test]
fn billion_laughs_is_refused_promptly() {
    let t = Target::new();
    let mut doctype = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    doctype.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">");
    for i in 2..=9 {
        let prev = format!("&lol{};", i - 1).repeat(10);
        doctype += &format!("<!ENTITY lol{i} \"{prev}\">");
    }
    doctype.push_str("]>");
    for version in [V11, V12] {
        let started = Instant::now();
        let r = t.post(
            version.content_type(),
            validate_with(version, &doctype, "&lol9;"),
        );
        assert_refused(&r, version);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        t.assert_still_serving();
    }
}

#[test]
fn an_undefined_entity_reference_without_a_doctype_is_refused() {
    let t = Target::new();
    assert_refused_in_both(&t, |v| validate_with(v, "", "&xxe;"));
    assert_refused_in_both(&t, |v| {
        validate_with(v, "", &format!("{}&nbsp;", t.session))
    });
}

// ---------------------------------------------------------------------------------------------
// Size

/// A good validateSession padded with an unknown element to exactly `len` bytes.
fn padded(target: &Target, version: Version, len: usize) -> Vec<u8> {
    let bare = |pad: &str| {
        version.envelope(&format!(
            "<validateSession xmlns=\"{NS}\"><sessionId>{}</sessionId><pad>{pad}</pad></validateSession>",
            target.session
        ))
    };
    let overhead = bare("").len();
    assert!(len >= overhead, "{len} is too small for a request");
    let body = bare(&"x".repeat(len - overhead));
    assert_eq!(body.len(), len);
    body.into_bytes()
}

#[test]
fn a_body_over_the_default_limit_of_one_mebibyte_is_refused_with_a_content_length() {
    let t = Target::new();
    for version in [V11, V12] {
        let r = t.post(version.content_type(), padded(&t, version, 1024 * 1024 + 1));
        assert_refused(&r, version);
        t.assert_still_serving();
    }
}

#[test]
fn a_body_over_the_default_limit_of_one_mebibyte_is_refused_when_chunked() {
    let t = Target::new();
    for version in [V11, V12] {
        let body = padded(&t, version, 1024 * 1024 + 1);
        let r = t.post_chunked(version.content_type(), std::io::Cursor::new(body));
        assert_refused(&r, version);
        t.assert_still_serving();
    }
}

#[test]
fn a_body_at_the_default_limit_is_accepted() {
    let t = Target::new();
    for version in [V11, V12] {
        let r = t.post(version.content_type(), padded(&t, version, 1024 * 1024));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.value("valid").as_deref(), Some("true"));
    }
}

#[test]
fn a_body_over_a_configured_limit_is_refused_with_a_content_length_or_chunked() {
    let t = Target::with(|c| c.max_body_size = 4096);
    for version in [V11, V12] {
        let r = t.post(version.content_type(), padded(&t, version, 4097));
        assert_refused(&r, version);
        t.assert_still_serving();
        let chunked = std::io::Cursor::new(padded(&t, version, 4097));
        let r = t.post_chunked(version.content_type(), chunked);
        assert_refused(&r, version);
        t.assert_still_serving();
    }
}

#[test]
fn a_body_at_a_configured_limit_is_accepted_with_a_content_length_or_chunked() {
    let t = Target::with(|c| c.max_body_size = 4096);
    for version in [V11, V12] {
        let r = t.post(version.content_type(), padded(&t, version, 4096));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.value("valid").as_deref(), Some("true"));
        let r = t.post_chunked(
            version.content_type(),
            std::io::Cursor::new(padded(&t, version, 4096)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.value("valid").as_deref(), Some("true"));
    }
}

#[test]
fn an_endless_chunked_body_is_cut_off_at_the_limit() {
    let t = Target::with(|c| c.max_body_size = 4096);
    for version in [V11, V12] {
        // 256 MiB of the start of an envelope: the server must stop reading long before the end.
        let start = format!("<soap:Envelope xmlns:soap=\"{SOAP11}\"><soap:Body>");
        let endless = std::io::Cursor::new(start.into_bytes())
            .chain(std::io::repeat(b' ').take(256 * 1024 * 1024));
        let started = Instant::now();
        let r = t.post_chunked(version.content_type(), endless);
        assert_refused(&r, version);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        t.assert_still_serving();
    }
}

#[test]
fn a_declared_content_length_over_the_limit_is_refused_before_the_body_arrives() {
    // A client that announces a huge body and sends little of it must not be waited for.
    let t = Target::with(|c| c.max_body_size = 4096);
    let addr = t.app.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {CT11}\r\n\
         Content-Length: 1073741824\r\nConnection: close\r\n\r\n<soap:Envelope"
    );
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the fault is complete or the server closes; a read timeout is a hang.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(16).any(|w| w == b"</soap:Envelope>") {
                    break;
                }
            }
            Err(e) if answer.is_empty() => panic!("no answer: {e}"),
            Err(_) => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(answer.contains("INVALID_REQUEST"), "{answer}");
    t.assert_still_serving();
}

// ---------------------------------------------------------------------------------------------
// Depth

/// A good validateSession whose deepest element sits at `depth` (the Envelope is depth 1).
fn nested(target: &Target, version: Version, depth: usize) -> Vec<u8> {
    // Envelope, Body and the operation are three levels; the rest is unknown elements inside it.
    let extra = depth - 3;
    let op = format!(
        "<validateSession xmlns=\"{NS}\"><sessionId>{}</sessionId>{}{}</validateSession>",
        target.session,
        "<n>".repeat(extra),
        "</n>".repeat(extra)
    );
    version.envelope(&op).into_bytes()
}

#[test]
fn nesting_deeper_than_64_is_refused() {
    let t = Target::new();
    for depth in [65, 1000, 100_000] {
        assert_refused_in_both(&t, |v| nested(&t, v, depth));
    }
}

#[test]
fn nesting_of_exactly_64_is_accepted() {
    let t = Target::new();
    for depth in [60, 64] {
        for version in [V11, V12] {
            let r = t.post(version.content_type(), nested(&t, version, depth));
            assert_eq!(r.status, 200, "depth {depth}: {}", r.body);
            assert_eq!(r.value("valid").as_deref(), Some("true"));
        }
    }
}

#[test]
fn deep_nesting_inside_the_header_is_refused_too() {
    let t = Target::new();
    assert_refused_in_both(&t, |v| {
        let (env, prefix) = match v {
            V11 => (SOAP11, "soap"),
            V12 => (SOAP12, "env"),
        };
        format!(
            "<{prefix}:Envelope xmlns:{prefix}=\"{env}\"><{prefix}:Header>{}{}</{prefix}:Header>\
             <{prefix}:Body><validateSession xmlns=\"{NS}\"><sessionId>{}</sessionId></validateSession>\
             </{prefix}:Body></{prefix}:Envelope>",
            "<h:x xmlns:h=\"urn:h\">".repeat(100),
            "</h:x>".repeat(100),
            t.session
        )
        .into_bytes()
    });
}

// ---------------------------------------------------------------------------------------------
// Encodings

#[test]
fn a_declared_iso_8859_1_encoding_is_refused() {
    let t = Target::new();
    for decl in [
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>",
        "<?xml version='1.0' encoding='windows-1252'?>",
    ] {
        // Plain ASCII content: only the declaration says it is not UTF-8.
        assert_refused_in_both(&t, |v| validate_with(v, decl, &t.session));
    }
}

#[test]
fn a_charset_parameter_other_than_utf8_is_refused() {
    let t = Target::new();
    for (version, content_type) in [
        (V11, "text/xml; charset=iso-8859-1"),
        (V11, "text/xml; charset=ISO-8859-1"),
        (V11, "text/xml; charset=utf-16"),
        (V12, "application/soap+xml; charset=iso-8859-1"),
        (V12, "application/soap+xml; charset=ISO-8859-1; action=\"urn:sessiond:session:1/validateSession\""),
    ] {
        let r = t.post(content_type, t.good(version));
        assert_refused(&r, version);
        t.assert_still_serving();
    }
}

#[test]
fn invalid_utf8_bytes_are_refused() {
    let t = Target::new();
    for bad in [
        &b"\xE9"[..],
        b"\xFF\xFE",
        b"\xC3\x28",
        b"\xED\xA0\x80",
        b"\xF4\x90\x80\x80",
    ] {
        assert_refused_in_both(&t, |v| {
            let good = String::from_utf8(t.good(v).into_bytes()).unwrap();
            // The bad bytes inside the session ID, where a sloppy decoder would pass them on.
            let at = good.find(&t.session).unwrap();
            let mut body = good.as_bytes()[..at].to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(&good.as_bytes()[at..]);
            body
        });
    }
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        let bytes = if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        };
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn utf16_with_a_byte_order_mark_is_refused() {
    let t = Target::new();
    for big_endian in [false, true] {
        for (version, content_type) in [(V11, "text/xml"), (V12, "application/soap+xml")] {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-16\"?>{}",
                t.good(version)
            );
            let r = t.post(content_type, utf16(&xml, big_endian));
            assert_refused(&r, version);
            t.assert_still_serving();
            // Without the declaration too: the byte-order mark alone says UTF-16.
            let r = t.post(content_type, utf16(&t.good(version), big_endian));
            assert_refused(&r, version);
            t.assert_still_serving();
        }
    }
}

#[test]
fn a_utf8_byte_order_mark_is_not_hostile() {
    let t = Target::new();
    for version in [V11, V12] {
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(t.good(version).as_bytes());
        let r = t.post(version.content_type(), body);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.value("valid").as_deref(), Some("true"));
    }
}

// ---------------------------------------------------------------------------------------------
// Not an envelope at all

#[test]
fn truncated_xml_is_refused() {
    let t = Target::new();
    for version in [V11, V12] {
        let good = t.good(version);
        for cut in [
            1,
            10,
            good.len() / 4,
            good.len() / 2,
            good.len() - 17,
            good.len() - 1,
        ] {
            let r = t.post(version.content_type(), &good.as_bytes()[..cut]);
            assert_refused(&r, version);
        }
        t.assert_still_serving();
    }
}

#[test]
fn a_root_that_is_not_an_envelope_is_refused() {
    let t = Target::new();
    let bare_operation = format!(
        "<validateSession xmlns=\"{NS}\"><sessionId>{}</sessionId></validateSession>",
        t.session
    );
    for root in [
        bare_operation.as_str(),
        "<html><body>hello</body></html>",
        "<Body/>",
    ] {
        assert_refused_in_both(&t, |_| root.as_bytes().to_vec());
    }
}

#[test]
fn an_empty_body_is_refused() {
    let t = Target::new();
    assert_refused_in_both(&t, |_| Vec::new());
    assert_refused_in_both(&t, |_| b"  \r\n\t ".to_vec());
    assert_refused_in_both(&t, |_| b"<?xml version=\"1.0\"?>".to_vec());
}

/// Deterministic noise: a xorshift generator, so a failure can be replayed.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

#[test]
fn garbage_bytes_are_refused() {
    let t = Target::new();
    let mut garbage = vec![
        noise(16, 1),
        noise(4096, 2),
        noise(64 * 1024, 3),
        b"this is not XML at all".to_vec(),
        b"\x00\x00\x00\x00".to_vec(),
        b"<<<<>>>>&&&&".to_vec(),
        b"{\"sessionId\": \"abc\"}".to_vec(),
    ];
    // Noise behind a good start, so the parser is well under way when it meets it.
    let mut half = t.good(V11).into_bytes();
    half.truncate(half.len() / 2);
    half.extend(noise(1024, 4));
    garbage.push(half);
    for body in garbage {
        assert_refused_in_both(&t, |_| body.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// Faults are well-formed XML and echo little (docs/behaviour.md §1, fault detail)

/// The fault's human text: `faultstring` (1.1) or `Reason/Text` (1.2); the reply must parse.
fn fault_text(reply: &Reply) -> String {
    reply
        .value("faultstring")
        .or_else(|| reply.value("Text"))
        .unwrap_or_else(|| panic!("no fault text: {}", reply.body))
}

/// A refusal whose text is short and in our words: no parser's or framework's own phrases.
fn assert_refused_in_our_words(reply: &Reply, version: Version) {
    assert_refused(reply, version);
    let text = fault_text(reply);
    assert!(text.chars().count() <= 512, "{} chars: {text}", text.len());
    for library in [
        "NamespaceResolver",
        "set_max_namespace_bindings",
        "ill-formed document",
        "syntax error",
        "payload",
        "None",
        "`",
    ] {
        assert!(
            !text.contains(library),
            "library text '{library}' in: {text}"
        );
    }
}

/// `good` with `bytes` put in front of the session ID, inside the sessionId element's text.
fn with_bytes_in_the_session_id(good: &str, session: &str, bytes: &[u8]) -> Vec<u8> {
    let at = good.find(session).unwrap();
    let mut body = good.as_bytes()[..at].to_vec();
    body.extend_from_slice(bytes);
    body.extend_from_slice(&good.as_bytes()[at..]);
    body
}

#[test]
fn a_fault_for_an_element_name_with_control_bytes_is_well_formed_xml() {
    let t = Target::new();
    for name in [
        &b"valid\x01ate\x00Session"[..],
        b"x\x1b[31mred",
        b"\x08\x0b\x0c",
    ] {
        for version in [V11, V12] {
            let op = format!("<{}><sessionId>{}</sessionId></{}>", "@", t.session, "@");
            let good = version.envelope(&op);
            let mut body = Vec::new();
            for (i, part) in good.split('@').enumerate() {
                if i > 0 {
                    body.extend_from_slice(name);
                }
                body.extend_from_slice(part.as_bytes());
            }
            // assert_refused parses the answer: a raw control byte in it fails here.
            let r = t.post(version.content_type(), body);
            assert_refused_in_our_words(&r, version);
            assert!(!r.body.bytes().any(|b| b < 0x20), "{:?}", r.body);
        }
    }
    t.assert_still_serving();
}

#[test]
fn a_utf16le_body_without_a_byte_order_mark_gets_a_well_formed_fault_naming_utf16() {
    let t = Target::new();
    for (version, content_type) in [(V11, "text/xml"), (V12, "application/soap+xml")] {
        // utf16() puts a byte-order mark first; this client leaves it out.
        let body = utf16(&t.good(version), false)[2..].to_vec();
        let r = t.post(content_type, body);
        assert_refused_in_our_words(&r, version);
        assert!(fault_text(&r).contains("UTF-16"), "{}", r.body);
        assert!(!r.body.contains('\0'), "{:?}", r.body);
    }
    t.assert_still_serving();
}

#[test]
fn a_fault_for_a_900_kb_element_name_echoes_only_a_short_excerpt_of_it() {
    let t = Target::new();
    let name = "n".repeat(900 * 1024);
    for version in [V11, V12] {
        // As the operation (unknown operation …) and as the root (expected an Envelope …).
        let as_operation = version.envelope(&format!("<{name} xmlns=\"{NS}\"/>"));
        let as_root = format!("<{name}/>");
        for body in [as_operation, as_root] {
            let r = t.post(version.content_type(), body);
            assert_refused_in_our_words(&r, version);
            assert!(r.body.len() < 4096, "a fault of {} bytes", r.body.len());
            let text = fault_text(&r);
            assert!(text.contains("nnnn") && text.contains('…'), "{text}");
        }
    }
    t.assert_still_serving();
}

#[test]
fn xml_parse_errors_are_told_in_our_words_with_the_byte_where_they_are() {
    let t = Target::new();
    // 200 namespace declarations on one element: quick-xml's limit is 128.
    let many: String = (0..200)
        .map(|i| format!(" xmlns:p{i}=\"urn:p{i}\""))
        .collect();
    for version in [V11, V12] {
        let good = t.good(version);
        let too_many = good.replacen("<validateSession", &format!("<validateSession{many}"), 1);
        let mismatched = good.replacen("</sessionId>", "</sessionid>", 1);
        let unclosed_tag = good.replacen("<sessionId>", "<sessionId", 1);
        let dangling_amp = good.replacen(&t.session, "a & b", 1);
        let bad_bang = good.replacen("<sessionId>", "<!x><sessionId>", 1);
        for body in [too_many, mismatched, unclosed_tag, dangling_amp, bad_bang] {
            let r = t.post(version.content_type(), body.clone());
            assert_refused_in_our_words(&r, version);
            assert!(
                fault_text(&r).starts_with("malformed XML at byte "),
                "{body}\n{}",
                r.body
            );
        }
    }
    t.assert_still_serving();
}

#[test]
fn a_body_cut_short_of_its_content_length_is_refused_in_our_words() {
    let t = Target::new();
    let addr = t.app.base.trim_start_matches("http://").to_owned();
    let good = t.good(V11);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {CT11}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        good.len()
    );
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    std::io::Write::write_all(&mut stream, &good.as_bytes()[..good.len() / 2]).unwrap();
    // The client stops sending: the body ends early.
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer: {answer:?}"));
    assert!(head.starts_with("HTTP/1.1 500"), "{answer}");
    let reply = Reply {
        status: 500,
        content_type: CT11.to_owned(),
        body: body.to_owned(),
    };
    assert_refused_in_our_words(&reply, V11);
    assert!(fault_text(&reply).contains("could not be read"), "{answer}");
    t.assert_still_serving();
}

// ---------------------------------------------------------------------------------------------
// What XML 1.0 forbids is refused, even where quick-xml would read on (docs/behaviour.md §1)

#[test]
fn a_raw_nul_u0001_or_uffff_in_the_text_is_refused() {
    let t = Target::new();
    for bad in [
        &b"\x00"[..],
        b"\x01",
        b"\x1f",
        b"\xEF\xBF\xBF",
        b"\xEF\xBF\xBE",
    ] {
        assert_refused_in_both(&t, |v| {
            with_bytes_in_the_session_id(&t.good(v), &t.session, bad)
        });
        // In a comment, where no value is read, too.
        assert_refused_in_both(&t, |v| {
            let good = t.good(v);
            let at = good
                .find("<soap:Body>")
                .or(good.find("<env:Body>"))
                .unwrap();
            let mut body = good.as_bytes()[..at].to_vec();
            body.extend_from_slice(b"<!-- ");
            body.extend_from_slice(bad);
            body.extend_from_slice(b" -->");
            body.extend_from_slice(&good.as_bytes()[at..]);
            body
        });
    }
}

#[test]
fn a_duplicate_attribute_is_refused() {
    let t = Target::new();
    assert_refused_in_both(&t, |v| {
        t.good(v)
            .replacen("<sessionId>", "<sessionId a=\"1\" a=\"2\">", 1)
            .into_bytes()
    });
    // The same expanded name under two prefixes (Namespaces in XML 1.0, 6.3).
    assert_refused_in_both(&t, |v| {
        t.good(v)
            .replacen(
                "<sessionId>",
                "<sessionId xmlns:x=\"urn:a\" xmlns:y=\"urn:a\" x:a=\"1\" y:a=\"2\">",
                1,
            )
            .into_bytes()
    });
}

#[test]
fn other_documents_that_are_not_well_formed_xml_are_refused() {
    let t = Target::new();
    let cases: [fn(&str, &str) -> String; 12] = [
        // A second root element, or text after the root.
        |good, _| format!("{good}{good}"),
        |good, _| format!("{good}trailing text"),
        |good, _| format!("text first{good}"),
        // The declaration after something else.
        |good, _| format!("<?xml version=\"1.0\"?><?xml version=\"1.0\"?>{good}"),
        |good, _| format!("<!-- c --><?xml version=\"1.0\"?>{good}"),
        |good, _| format!("<?xml version=\"2.0\"?>{good}"),
        |good, _| good.replacen("<sessionId>", "<sessionId a=\"x<y\">", 1),
        |good, _| good.replacen("<sessionId>", "<sessionId a>", 1),
        |good, _| good.replacen("<sessionId>", "<!-- a -- b --><sessionId>", 1),
        |good, s| good.replacen(s, &format!("{s}&#1;"), 1),
        |good, s| good.replacen(s, &format!("{s}]]>"), 1),
        |good, _| good.replacen("<sessionId>", "<extra1.0 /><1sessionId/><sessionId>", 1),
    ];
    for case in cases {
        assert_refused_in_both(&t, |v| case(&t.good(v), &t.session).into_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Compressed bodies

#[test]
fn a_gzip_bomb_is_refused_promptly_without_being_inflated() {
    use std::io::Write;
    let t = Target::new();
    for version in [V11, V12] {
        // 64 MiB of a good request's padding compresses to about 64 KiB: under the body limit
        // as sent, far over it inflated. Request bodies are never inflated: it is not XML.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let good = t.good(version);
        gz.write_all(good.as_bytes()).unwrap();
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
        let started = Instant::now();
        let resp = t
            .client
            .post(&t.app.url)
            .header("Content-Type", version.content_type())
            .header("Content-Encoding", "gzip")
            .body(bomb)
            .send()
            .unwrap();
        let r = Reply::from(resp);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_refused_in_our_words(&r, version);
        t.assert_still_serving();
    }
}

#[test]
fn whitespace_before_the_xml_declaration_is_let_pass() {
    // XML 1.0 forbids it; clients that print a line break first exist, and it harms nothing.
    let t = Target::new();
    for version in [V11, V12] {
        let body = format!(
            "\r\n  <?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}\n",
            t.good(version)
        );
        let r = t.post(version.content_type(), body);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.value("valid").as_deref(), Some("true"), "{}", r.body);
    }
}
