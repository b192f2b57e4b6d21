//! docs/behaviour.md §1, Protocol: both SOAP versions as a client sees them on the wire, dispatch
//! and SOAPAction, every leniency, faults and their detail, and the served WSDL.

use std::time::Duration;

use sessiond::domain::Right;

use crate::helpers::*;

const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const WSDL_SOAP11: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
const WSDL_SOAP12: &str = "http://schemas.xmlsoap.org/wsdl/soap12/";
const CT11: &str = "text/xml; charset=utf-8";
const CT12: &str = "application/soap+xml; charset=utf-8";
/// The address the contract's WSDL files carry before the server rewrites it.
const CONTRACT_ADDRESS: &str = "http://localhost:8080/services/SessionService";

/// An app with one plain user, `alice`, and one of her sessions.
fn app_with_session() -> (TestApp, String) {
    let app = spawn_app();
    app.add_user("alice", "pw-alice", None, &[]);
    let id = app.get_session("alice", "pw-alice");
    (app, id)
}

fn validate_op(id: &str) -> String {
    operation("validateSession", &[("sessionId", id)])
}

fn close_op(id: &str) -> String {
    operation("closeSession", &[("sessionId", id)])
}

/// The media type of a Content-Type header, lower-cased, without parameters.
fn media_type(reply: &Reply) -> String {
    reply
        .content_type
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_ascii_lowercase()
}

/// The namespace of the reply's root element.
fn envelope_ns(reply: &Reply) -> String {
    reply
        .doc()
        .root_element()
        .tag_name()
        .namespace()
        .unwrap_or("")
        .to_owned()
}

fn assert_soap11_ok(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(media_type(reply), "text/xml", "{reply:?}");
    assert_eq!(envelope_ns(reply), SOAP11, "{}", reply.body);
}

fn assert_soap12_ok(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(media_type(reply), "application/soap+xml", "{reply:?}");
    assert_eq!(envelope_ns(reply), SOAP12, "{}", reply.body);
}

/// A SOAP 1.1 fault: HTTP 500, text/xml, this faultcode.
fn assert_fault11(reply: &Reply, soap_code: &str) {
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(media_type(reply), "text/xml", "{reply:?}");
    assert_eq!(envelope_ns(reply), SOAP11, "{}", reply.body);
    assert_eq!(
        reply.soap_fault().as_deref(),
        Some(soap_code),
        "{}",
        reply.body
    );
}

/// A SOAP 1.2 fault: application/soap+xml, this status and Code/Value.
fn assert_fault12(reply: &Reply, status: u16, soap_code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(media_type(reply), "application/soap+xml", "{reply:?}");
    assert_eq!(envelope_ns(reply), SOAP12, "{}", reply.body);
    assert_eq!(
        reply.soap_fault().as_deref(),
        Some(soap_code),
        "{}",
        reply.body
    );
}

fn assert_client_fault11(reply: &Reply, code: &str) {
    assert_fault11(reply, "Client");
    reply.assert_fault(code);
}

fn assert_sender_fault12(reply: &Reply, code: &str) {
    assert_fault12(reply, 400, "Sender");
    reply.assert_fault(code);
}

fn assert_valid(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.value("valid").as_deref(),
        Some("true"),
        "{}",
        reply.body
    );
}

/// This exact text as a SOAP 1.1 request.
fn post11(app: &TestApp, xml: &str) -> Reply {
    app.post(CT11, &[], xml)
}

/// This exact text as a SOAP 1.2 request.
fn post12(app: &TestApp, xml: &str) -> Reply {
    app.post(CT12, &[], xml)
}

// ---------------------------------------------------------------------------------------------
// SOAP 1.1

#[test]
fn a_soap11_request_is_answered_in_soap11_as_text_xml() {
    let (app, id) = app_with_session();
    let r = app.call("validateSession", &[("sessionId", &id)]);
    assert_soap11_ok(&r);
    assert_eq!(r.value("valid").as_deref(), Some("true"));
    let doc = r.doc();
    let response = doc
        .descendants()
        .find(|n| n.has_tag_name((NS, "validateSessionResponse")))
        .expect("a validateSessionResponse in the contract namespace");
    assert!(response.children().any(|n| n.has_tag_name((NS, "valid"))));
}

#[test]
fn soap11_accepts_text_xml_with_or_without_a_charset_parameter() {
    let (app, id) = app_with_session();
    for content_type in [
        "text/xml",
        "text/xml; charset=utf-8",
        "text/xml;charset=UTF-8",
        "text/xml; charset=\"utf-8\"",
        "TEXT/XML; Charset=Utf-8",
    ] {
        let r = app.post(content_type, &[], envelope11(&validate_op(&id)));
        assert_soap11_ok(&r);
        assert_valid(&r);
    }
}

#[test]
fn soap11_faults_of_the_caller_are_http_500_with_faultcode_client() {
    let app = spawn_app();
    let r = app.call("getCurrentSession", &[("sessionId", "no-such-session")]);
    assert_client_fault11(&r, "INVALID_SESSION");
    let doc = r.doc();
    let code = doc
        .descendants()
        .find(|n| n.tag_name().name() == "faultcode")
        .unwrap();
    // faultcode is a QName in the envelope namespace, whatever prefix the server picked.
    let text = code.text().unwrap().trim();
    let (prefix, local) = text.split_once(':').expect("a qualified faultcode");
    assert_eq!(local, "Client");
    assert_eq!(code.lookup_namespace_uri(Some(prefix)), Some(SOAP11));
    let faultstring = doc
        .descendants()
        .find(|n| n.tag_name().name() == "faultstring")
        .expect("a faultstring");
    assert!(!faultstring.text().unwrap_or("").trim().is_empty());
}

#[test]
fn a_wrong_password_is_a_client_fault_in_both_versions() {
    let app = spawn_app();
    app.add_user("alice", "pw-alice", None, &[]);
    let r = app.call("getSession", &[("userId", "alice"), ("password", "wrong")]);
    assert_client_fault11(&r, "AUTHENTICATION_FAILED");
    let r = app.call12("getSession", &[("userId", "alice"), ("password", "wrong")]);
    assert_sender_fault12(&r, "AUTHENTICATION_FAILED");
}

/// Holds an exclusive lock on the app's SQLite file, so the server cannot write to it: the
/// database is unreachable for as long as `busy_timeout` lasts. (`outage.rs` does the same for
/// PostgreSQL by cutting the link.)
struct DatabaseLock(diesel::sqlite::SqliteConnection);

impl DatabaseLock {
    fn take(app: &TestApp) -> Self {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut conn = diesel::sqlite::SqliteConnection::establish(&app.db.url.target)
            .expect("the test opens the app's database");
        conn.batch_execute("BEGIN EXCLUSIVE")
            .expect("the test locks the database");
        DatabaseLock(conn)
    }

    fn release(mut self) {
        use diesel::connection::SimpleConnection;
        self.0.batch_execute("ROLLBACK").unwrap();
    }
}

#[test]
fn an_unreachable_database_is_a_server_fault_http_500_in_soap11_and_a_receiver_fault_in_soap12() {
    // Always on SQLite, whichever backend the run is for: a locked file is how this test makes
    // the database unreachable (the PostgreSQL outage is outage.rs's).
    let app = spawn_app_on(TestDb::sqlite(), None, |c| {
        c.db_timeout = Duration::from_millis(300)
    });
    app.add_user("alice", "pw-alice", None, &[]);
    let lock = DatabaseLock::take(&app);

    let r = app.call(
        "getSession",
        &[("userId", "alice"), ("password", "pw-alice")],
    );
    assert_fault11(&r, "Server");
    r.assert_fault("SERVICE_UNAVAILABLE");

    let r = app.call12(
        "getSession",
        &[("userId", "alice"), ("password", "pw-alice")],
    );
    assert_fault12(&r, 500, "Receiver");
    r.assert_fault("SERVICE_UNAVAILABLE");

    lock.release();
    let id = app.get_session("alice", "pw-alice");
    assert!(app.validate(&id));
}

// ---------------------------------------------------------------------------------------------
// SOAP 1.2

#[test]
fn a_soap12_request_is_answered_in_soap12_as_application_soap_xml() {
    let (app, id) = app_with_session();
    let r = app.call12("validateSession", &[("sessionId", &id)]);
    assert_soap12_ok(&r);
    assert_valid(&r);
    assert!(r
        .doc()
        .descendants()
        .any(|n| n.has_tag_name((NS, "validateSessionResponse"))));
}

#[test]
fn soap12_accepts_application_soap_xml_with_or_without_parameters() {
    let (app, id) = app_with_session();
    for content_type in [
        "application/soap+xml",
        "application/soap+xml; charset=utf-8",
        "application/soap+xml;charset=UTF-8",
        "application/soap+xml; charset=utf-8; action=\"urn:sessiond:session:1/validateSession\"",
        "application/soap+xml; action=\"urn:sessiond:session:1/validateSession\"",
        "application/soap+xml; action=urn:sessiond:session:1/validateSession; charset=utf-8",
        "application/soap+xml; charset=utf-8; action=\"\"",
    ] {
        let r = app.post(content_type, &[], envelope12(&validate_op(&id)));
        assert_soap12_ok(&r);
        assert_valid(&r);
    }
}

#[test]
fn soap12_faults_of_the_caller_are_http_400_with_code_sender() {
    let app = spawn_app();
    let r = app.call12("getCurrentSession", &[("sessionId", "no-such-session")]);
    assert_sender_fault12(&r, "INVALID_SESSION");
    let doc = r.doc();
    let value = doc
        .descendants()
        .find(|n| n.has_tag_name((SOAP12, "Value")))
        .unwrap();
    assert_eq!(
        value.parent().unwrap().tag_name().name(),
        "Code",
        "Value is the child of Code: {}",
        r.body
    );
    let (prefix, local) = value.text().unwrap().trim().split_once(':').unwrap();
    assert_eq!(local, "Sender");
    assert_eq!(value.lookup_namespace_uri(Some(prefix)), Some(SOAP12));
    assert!(doc
        .descendants()
        .any(|n| n.has_tag_name((SOAP12, "Text")) && !n.text().unwrap_or("").is_empty()));
}

#[test]
fn answers_and_faults_come_in_the_version_of_the_request() {
    let (app, id) = app_with_session();
    let r11 = app.call("extendSession", &[("sessionId", &id)]);
    assert_soap11_ok(&r11);
    let r12 = app.call12("extendSession", &[("sessionId", &id)]);
    assert_soap12_ok(&r12);
    let r11 = app.call("getCurrentSession", &[("sessionId", "unknown")]);
    assert_client_fault11(&r11, "INVALID_SESSION");
    let r12 = app.call12("getCurrentSession", &[("sessionId", "unknown")]);
    assert_sender_fault12(&r12, "INVALID_SESSION");
}

// ---------------------------------------------------------------------------------------------
// Dispatch and SOAPAction

#[test]
fn the_first_child_of_the_body_is_the_operation_and_what_follows_is_ignored() {
    let (app, id) = app_with_session();
    let body = format!("{}{}", validate_op(&id), close_op(&id));
    let r = post11(&app, &envelope11(&body));
    assert_soap11_ok(&r);
    assert_valid(&r);
    assert!(app.validate(&id), "the second Body child was not run");

    let body = format!("{}{}", close_op(&id), validate_op(&id));
    let r = post12(&app, &envelope12(&body));
    assert_soap12_ok(&r);
    assert_eq!(r.value("closed").as_deref(), Some("true"), "{}", r.body);
    assert!(!app.validate(&id));
}

#[test]
fn a_soapaction_that_is_absent_empty_matching_or_foreign_is_accepted() {
    let (app, id) = app_with_session();
    let actions = [
        None,
        Some(""),
        Some("\"\""),
        Some("urn:sessiond:session:1/validateSession"),
        Some("\"urn:sessiond:session:1/validateSession\""),
        Some("validateSession"),
        Some("\"validateSession\""),
        Some("\"http://example.com/not-an-operation-of-ours\""),
    ];
    for action in actions {
        let headers: Vec<(&str, &str)> = action.iter().map(|a| ("SOAPAction", *a)).collect();
        let r = app.post(CT11, &headers, envelope11(&validate_op(&id)));
        assert_soap11_ok(&r);
        assert_valid(&r);
    }
}

#[test]
fn a_soapaction_naming_another_operation_is_a_client_fault_and_nothing_runs() {
    let (app, id) = app_with_session();
    for action in [
        "\"urn:sessiond:session:1/validateSession\"",
        "urn:sessiond:session:1/validateSession",
        "\"getSession\"",
    ] {
        let r = app.post(CT11, &[("SOAPAction", action)], envelope11(&close_op(&id)));
        assert_client_fault11(&r, "INVALID_REQUEST");
        assert!(
            app.validate(&id),
            "closeSession ran despite SOAPAction {action}"
        );
    }
}

#[test]
fn a_soap12_action_parameter_naming_another_operation_is_a_sender_fault_and_nothing_runs() {
    let (app, id) = app_with_session();
    for content_type in [
        "application/soap+xml; charset=utf-8; action=\"urn:sessiond:session:1/validateSession\"",
        "application/soap+xml; action=\"urn:sessiond:session:1/getSession\"; charset=utf-8",
        "application/soap+xml; action=\"getSession\"",
    ] {
        let r = app.post(content_type, &[], envelope12(&close_op(&id)));
        assert_sender_fault12(&r, "INVALID_REQUEST");
        assert!(app.validate(&id), "closeSession ran despite {content_type}");
    }
}

#[test]
fn an_unquoted_soap12_action_naming_another_operation_is_a_sender_fault_and_nothing_runs() {
    let (app, id) = app_with_session();
    let content_type =
        "application/soap+xml; charset=utf-8; action=urn:sessiond:session:1/validateSession";
    let r = app.post(content_type, &[], envelope12(&close_op(&id)));
    assert_sender_fault12(&r, "INVALID_REQUEST");
    assert!(app.validate(&id), "closeSession ran despite {content_type}");
}

#[test]
fn a_soap12_request_may_also_carry_a_soapaction_header() {
    let (app, id) = app_with_session();
    for action in ["", "\"\"", "\"urn:sessiond:session:1/validateSession\""] {
        let r = app.post(
            CT12,
            &[("SOAPAction", action)],
            envelope12(&validate_op(&id)),
        );
        assert_soap12_ok(&r);
        assert_valid(&r);
    }
    let with_both =
        "application/soap+xml; charset=utf-8; action=\"urn:sessiond:session:1/validateSession\"";
    let r = app.post(
        with_both,
        &[("SOAPAction", "\"urn:sessiond:session:1/validateSession\"")],
        envelope12(&validate_op(&id)),
    );
    assert_soap12_ok(&r);
    assert_valid(&r);
}

#[test]
fn a_soapaction_header_on_soap12_naming_another_operation_is_a_sender_fault() {
    let (app, id) = app_with_session();
    let r = app.post(
        CT12,
        &[("SOAPAction", "\"urn:sessiond:session:1/validateSession\"")],
        envelope12(&close_op(&id)),
    );
    assert_sender_fault12(&r, "INVALID_REQUEST");
    assert!(app.validate(&id));
}

#[test]
fn an_unknown_operation_element_is_a_client_fault_invalid_request() {
    let (app, id) = app_with_session();
    let unknown =
        format!("<fetchEverything xmlns=\"{NS}\"><sessionId>{id}</sessionId></fetchEverything>");
    assert_client_fault11(&post11(&app, &envelope11(&unknown)), "INVALID_REQUEST");
    assert_sender_fault12(&post12(&app, &envelope12(&unknown)), "INVALID_REQUEST");

    // A known name in a foreign namespace is not ours either.
    let foreign = format!(
        "<validateSession xmlns=\"urn:someone-else\"><sessionId>{id}</sessionId></validateSession>"
    );
    assert_client_fault11(&post11(&app, &envelope11(&foreign)), "INVALID_REQUEST");
    assert_sender_fault12(&post12(&app, &envelope12(&foreign)), "INVALID_REQUEST");
}

#[test]
fn an_empty_body_element_is_a_client_fault_invalid_request() {
    let app = spawn_app();
    assert_client_fault11(&post11(&app, &envelope11("")), "INVALID_REQUEST");
    assert_sender_fault12(&post12(&app, &envelope12("")), "INVALID_REQUEST");
    let no_body = format!("<soap:Envelope xmlns:soap=\"{SOAP11}\"/>");
    assert_client_fault11(&post11(&app, &no_body), "INVALID_REQUEST");
}

#[test]
fn a_missing_required_element_is_a_client_fault_invalid_request() {
    let app = spawn_app();
    app.add_user("alice", "pw-alice", None, &[]);
    let r = app.call("validateSession", &[]);
    assert_client_fault11(&r, "INVALID_REQUEST");
    let r = app.call12("validateSession", &[]);
    assert_sender_fault12(&r, "INVALID_REQUEST");
    let r = app.call("getSession", &[("userId", "alice")]);
    assert_client_fault11(&r, "INVALID_REQUEST");
    let r = app.call12("getSession", &[("password", "pw-alice")]);
    assert_sender_fault12(&r, "INVALID_REQUEST");
    let empty_op = format!("<validateSession xmlns=\"{NS}\"/>");
    assert_client_fault11(&post11(&app, &envelope11(&empty_op)), "INVALID_REQUEST");
}

#[test]
fn a_required_element_sent_as_nil_is_missing() {
    let app = spawn_app();
    let op = format!(
        "<validateSession xmlns=\"{NS}\" xmlns:xsi=\"{XSI}\"><sessionId xsi:nil=\"true\"/></validateSession>"
    );
    assert_client_fault11(&post11(&app, &envelope11(&op)), "INVALID_REQUEST");
}

// ---------------------------------------------------------------------------------------------
// Fault detail

fn assert_contract_detail(reply: &Reply, version: &str, code: &str) {
    let doc = reply.doc();
    let detail = doc
        .descendants()
        .find(|n| n.has_tag_name((NS, "sessionServiceFault")))
        .unwrap_or_else(|| panic!("no sessionServiceFault: {}", reply.body));
    let parent = detail.parent_element().unwrap();
    if version == SOAP11 {
        // SOAP 1.1 4.4: detail is unqualified and sits in soap:Fault.
        assert_eq!(parent.tag_name().name(), "detail", "{}", reply.body);
        assert_eq!(parent.tag_name().namespace(), None, "{}", reply.body);
        assert!(parent
            .parent_element()
            .unwrap()
            .has_tag_name((SOAP11, "Fault")));
    } else {
        assert!(parent.has_tag_name((SOAP12, "Detail")), "{}", reply.body);
        assert!(parent
            .parent_element()
            .unwrap()
            .has_tag_name((SOAP12, "Fault")));
    }
    let children: Vec<_> = detail.children().filter(|n| n.is_element()).collect();
    assert_eq!(children.len(), 2, "{}", reply.body);
    assert!(children[0].has_tag_name((NS, "code")), "{}", reply.body);
    assert_eq!(children[0].text(), Some(code));
    assert!(children[1].has_tag_name((NS, "message")), "{}", reply.body);
    assert!(
        !children[1].text().unwrap_or("").trim().is_empty(),
        "{}",
        reply.body
    );
}

#[test]
fn the_fault_detail_is_a_session_service_fault_with_code_and_message_in_the_contract_namespace() {
    let app = spawn_app();
    let r = app.call("getCurrentSession", &[("sessionId", "nope")]);
    assert_contract_detail(&r, SOAP11, "INVALID_SESSION");
    let r = app.call12("getCurrentSession", &[("sessionId", "nope")]);
    assert_contract_detail(&r, SOAP12, "INVALID_SESSION");
    let r = app.call("validateSession", &[]);
    assert_contract_detail(&r, SOAP11, "INVALID_REQUEST");
    let r = app.call12("validateSession", &[]);
    assert_contract_detail(&r, SOAP12, "INVALID_REQUEST");
}

// ---------------------------------------------------------------------------------------------
// Leniency

#[test]
fn any_namespace_prefixes_are_accepted() {
    let (app, id) = app_with_session();
    let xml = format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"{SOAP11}\"><SOAP-ENV:Body>\
         <ns1:validateSession xmlns:ns1=\"{NS}\"><ns1:sessionId>{id}</ns1:sessionId></ns1:validateSession>\
         </SOAP-ENV:Body></SOAP-ENV:Envelope>"
    );
    assert_valid(&post11(&app, &xml));
    // Prefixes declared once on the envelope, the contract one too.
    let xml = format!(
        "<s:Envelope xmlns:s=\"{SOAP12}\" xmlns:tns=\"{NS}\"><s:Body>\
         <tns:validateSession><tns:sessionId>{id}</tns:sessionId></tns:validateSession>\
         </s:Body></s:Envelope>"
    );
    let r = post12(&app, &xml);
    assert_soap12_ok(&r);
    assert_valid(&r);
}

#[test]
fn default_namespaces_are_accepted() {
    let (app, id) = app_with_session();
    let xml = format!(
        "<Envelope xmlns=\"{SOAP11}\"><Body>\
         <validateSession xmlns=\"{NS}\"><sessionId>{id}</sessionId></validateSession>\
         </Body></Envelope>"
    );
    let r = post11(&app, &xml);
    assert_soap11_ok(&r);
    assert_valid(&r);
    let xml = format!(
        "<Envelope xmlns=\"{SOAP12}\"><Body>\
         <validateSession xmlns=\"{NS}\"><sessionId>{id}</sessionId></validateSession>\
         </Body></Envelope>"
    );
    let r = post12(&app, &xml);
    assert_soap12_ok(&r);
    assert_valid(&r);
}

#[test]
fn unqualified_child_elements_are_accepted() {
    let (app, id) = app_with_session();
    let xml = envelope11(&format!(
        "<ns1:validateSession xmlns:ns1=\"{NS}\"><sessionId>{id}</sessionId></ns1:validateSession>"
    ));
    assert_valid(&post11(&app, &xml));
    let xml = envelope12(&format!(
        "<ns1:validateSession xmlns:ns1=\"{NS}\"><sessionId>{id}</sessionId></ns1:validateSession>"
    ));
    assert_valid(&post12(&app, &xml));
    // Several unqualified children, in an operation with two required ones.
    let xml = envelope11(&format!(
        "<ns1:getSession xmlns:ns1=\"{NS}\"><userId>alice</userId><password>pw-alice</password></ns1:getSession>"
    ));
    let r = post11(&app, &xml);
    r.assert_ok();
    assert!(r.value("sessionId").is_some_and(|s| !s.is_empty()));
}

#[test]
fn xsi_type_and_encoding_style_attributes_are_ignored() {
    let (app, id) = app_with_session();
    let xml = format!(
        "<soapenv:Envelope xmlns:soapenv=\"{SOAP11}\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"{XSI}\" soapenv:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\
         <soapenv:Body soapenv:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\
         <ns1:validateSession xmlns:ns1=\"{NS}\" soapenv:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\
         <sessionId xsi:type=\"xsd:string\">{id}</sessionId></ns1:validateSession>\
         </soapenv:Body></soapenv:Envelope>"
    );
    let r = post11(&app, &xml);
    assert_soap11_ok(&r);
    assert_valid(&r);
    let xml = format!(
        "<env:Envelope xmlns:env=\"{SOAP12}\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"{XSI}\">\
         <env:Body><m:validateSession xmlns:m=\"{NS}\" env:encodingStyle=\"http://www.w3.org/2003/05/soap-encoding\">\
         <m:sessionId xsi:type=\"xsd:string\">{id}</m:sessionId></m:validateSession></env:Body></env:Envelope>"
    );
    let r = post12(&app, &xml);
    assert_soap12_ok(&r);
    assert_valid(&r);
}

#[test]
fn comments_declarations_and_pretty_printing_between_elements_are_ignored() {
    let (app, id) = app_with_session();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- generated by a client -->\n\
         <soapenv:Envelope xmlns:soapenv=\"{SOAP11}\" xmlns:ses=\"{NS}\">\n\
         \x20  <!-- no header today -->\n\
         \x20  <soapenv:Body>\n\
         \x20\t  <!-- the call -->\n\
         \x20     <ses:validateSession>\r\n\
         \x20        <!--Optional:-->\n\
         \x20        <ses:sessionId>{id}</ses:sessionId>\n\
         \x20     </ses:validateSession>\n\
         \x20  </soapenv:Body>\n\
         </soapenv:Envelope>\n\
         <!-- trailing comment -->\n"
    );
    let r = post11(&app, &xml);
    assert_soap11_ok(&r);
    assert_valid(&r);
    let r = post12(&app, &xml.replace(SOAP11, SOAP12));
    assert_soap12_ok(&r);
    assert_valid(&r);
}

#[test]
fn an_empty_self_closing_header_is_accepted() {
    // What SoapUI sends for every request it generates.
    let (app, id) = app_with_session();
    let xml = format!(
        "<soapenv:Envelope xmlns:soapenv=\"{SOAP11}\" xmlns:ses=\"{NS}\">\n\
         \x20  <soapenv:Header/>\n\
         \x20  <soapenv:Body>\n\
         \x20     <ses:validateSession>\n\
         \x20        <ses:sessionId>{id}</ses:sessionId>\n\
         \x20     </ses:validateSession>\n\
         \x20  </soapenv:Body>\n\
         </soapenv:Envelope>"
    );
    let r = post11(&app, &xml);
    assert_soap11_ok(&r);
    assert_valid(&r);
    let r = post12(&app, &xml.replace(SOAP11, SOAP12));
    assert_soap12_ok(&r);
    assert_valid(&r);
}

#[test]
fn an_empty_header_with_a_start_and_end_tag_is_accepted() {
    let (app, id) = app_with_session();
    let r = post11(&app, &with_header11("", &validate_op(&id)));
    assert_soap11_ok(&r);
    assert_valid(&r);
    let r = post12(&app, &with_header12("", &validate_op(&id)));
    assert_soap12_ok(&r);
    assert_valid(&r);
}

#[test]
fn a_comment_inside_a_value_does_not_change_it() {
    let app = spawn_app();
    app.add_user("alice", "pw-alice", None, &[]);
    let op = format!(
        "<getSession xmlns=\"{NS}\"><userId>ali<!-- c -->ce</userId><password>pw-<!---->alice</password></getSession>"
    );
    let r = post11(&app, &envelope11(&op));
    r.assert_ok();
    let id = r.value("sessionId").unwrap();
    assert!(app.validate(&id));
}

#[test]
fn unknown_extra_elements_are_ignored_even_nested_ones() {
    let (app, id) = app_with_session();
    // A nested element named like a real field must not be taken for it.
    let op = format!(
        "<validateSession xmlns=\"{NS}\">\
         <clientVersion>1.2.3</clientVersion>\
         <extra><deeper><sessionId>not-the-session</sessionId></deeper><more/></extra>\
         <sessionId>{id}</sessionId>\
         <other xmlns=\"urn:someone-else\"><sessionId>nor-this</sessionId></other>\
         <trailing a=\"1\"/>\
         </validateSession>"
    );
    let r = post11(&app, &envelope11(&op));
    assert_soap11_ok(&r);
    assert_valid(&r);
    let r = post12(&app, &envelope12(&op));
    assert_soap12_ok(&r);
    assert_valid(&r);
    // Unknown siblings of the envelope's Body and of the operation are ignored as well.
    let xml = format!(
        "<soap:Envelope xmlns:soap=\"{SOAP11}\"><soap:Body>{}<x:trailer xmlns:x=\"urn:x\"/></soap:Body></soap:Envelope>",
        validate_op(&id)
    );
    assert_valid(&post11(&app, &xml));
}

#[test]
fn an_optional_element_sent_as_nil_counts_as_absent() {
    let app = spawn_app();
    app.add_user("viewer", "pw-viewer", None, &[Right::ViewSession]);
    app.add_user("alice", "pw-alice", None, &[]);
    let viewer = app.get_session("viewer", "pw-viewer");
    app.get_session("alice", "pw-alice");
    app.get_session("alice", "pw-alice");

    let nil_limit = format!(
        "<getSessions xmlns=\"{NS}\" xmlns:xsi=\"{XSI}\"><sessionId>{viewer}</sessionId>\
         <filterUserId xsi:nil=\"true\"/><limit xsi:nil=\"true\"/></getSessions>"
    );
    let r = post11(&app, &envelope11(&nil_limit));
    r.assert_ok();
    let listed: Vec<_> = r.sessions().into_iter().flatten().collect();
    assert_eq!(
        listed.len(),
        3,
        "a nil limit and filter are no limit and filter: {}",
        r.body
    );

    let r = post12(&app, &envelope12(&nil_limit));
    assert_soap12_ok(&r);
    assert_eq!(r.sessions().into_iter().flatten().count(), 3, "{}", r.body);

    // The same request with a real limit does limit, so the nil above was what made it absent.
    let r = app.call("getSessions", &[("sessionId", &viewer), ("limit", "1")]);
    r.assert_ok();
    assert_eq!(r.sessions().into_iter().flatten().count(), 1, "{}", r.body);

    // xsi:nil="1" is the same as "true".
    let nil_one = nil_limit.replace("xsi:nil=\"true\"", "xsi:nil=\"1\"");
    let r = post11(&app, &envelope11(&nil_one));
    r.assert_ok();
    assert_eq!(r.sessions().into_iter().flatten().count(), 3, "{}", r.body);
}

#[test]
fn a_password_with_ampersand_and_angle_bracket_logs_in_written_with_entity_or_character_references()
{
    let app = spawn_app();
    let password = "p&ss<w>rd\"'";
    app.add_user("amp", password, None, &[]);
    let written = [
        "p&amp;ss&lt;w&gt;rd&quot;&apos;",
        "p&#38;ss&#60;w&#62;rd&#34;&#39;",
        "p&#x26;ss&#x3C;w&#x3e;rd&#x22;&#x27;",
        "p&amp;ss&lt;w>rd\"'",
        "<![CDATA[p&ss<w>rd\"']]>",
    ];
    for text in written {
        let op = format!("<getSession xmlns=\"{NS}\"><userId>amp</userId><password>{text}</password></getSession>");
        let r = post11(&app, &envelope11(&op));
        assert_eq!(r.status, 200, "{text}: {}", r.body);
        let id = r.value("sessionId").unwrap();
        assert!(app.validate(&id));
        let r = post12(&app, &envelope12(&op));
        assert_soap12_ok(&r);
    }
    // Without the & the password is wrong: the reference was not simply dropped.
    let op = format!("<getSession xmlns=\"{NS}\"><userId>amp</userId><password>pss&lt;w&gt;rd&quot;&apos;</password></getSession>");
    assert_client_fault11(&post11(&app, &envelope11(&op)), "AUTHENTICATION_FAILED");
}

// ---------------------------------------------------------------------------------------------
// Header blocks

fn with_header11(header: &str, body: &str) -> String {
    format!(
        "<soap:Envelope xmlns:soap=\"{SOAP11}\"><soap:Header>{header}</soap:Header>\
         <soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

fn with_header12(header: &str, body: &str) -> String {
    format!(
        "<env:Envelope xmlns:env=\"{SOAP12}\"><env:Header>{header}</env:Header>\
         <env:Body>{body}</env:Body></env:Envelope>"
    )
}

#[test]
fn a_header_with_unknown_elements_is_ignored() {
    let (app, id) = app_with_session();
    let header = "<t:Trace xmlns:t=\"urn:tracing\"><t:id>42</t:id></t:Trace>\
                  <wsa:To xmlns:wsa=\"http://www.w3.org/2005/08/addressing\">somewhere</wsa:To>";
    let r = post11(&app, &with_header11(header, &validate_op(&id)));
    assert_soap11_ok(&r);
    assert_valid(&r);
    let r = post12(&app, &with_header12(header, &validate_op(&id)));
    assert_soap12_ok(&r);
    assert_valid(&r);
    // mustUnderstand false is no obligation.
    let h11 = "<t:Trace xmlns:t=\"urn:tracing\" soap:mustUnderstand=\"0\">x</t:Trace>";
    assert_valid(&post11(&app, &with_header11(h11, &validate_op(&id))));
    let h12 = "<t:Trace xmlns:t=\"urn:tracing\" env:mustUnderstand=\"false\">x</t:Trace>";
    assert_valid(&post12(&app, &with_header12(h12, &validate_op(&id))));
}

#[test]
fn a_soap11_header_that_must_be_understood_is_a_must_understand_fault_and_nothing_runs() {
    let (app, id) = app_with_session();
    for value in ["1", "true"] {
        let header = format!(
            "<wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" \
             soap:mustUnderstand=\"{value}\"><wsse:UsernameToken/></wsse:Security>"
        );
        let r = post11(&app, &with_header11(&header, &close_op(&id)));
        assert_fault11(&r, "MustUnderstand");
        assert!(
            app.validate(&id),
            "closeSession ran despite mustUnderstand={value}"
        );
    }
}

#[test]
fn a_soap12_header_that_must_be_understood_is_a_must_understand_fault_and_nothing_runs() {
    let (app, id) = app_with_session();
    for value in ["true", "1"] {
        let header = format!(
            "<wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" \
             env:mustUnderstand=\"{value}\"><wsse:UsernameToken/></wsse:Security>"
        );
        let r = post12(&app, &with_header12(&header, &close_op(&id)));
        assert_fault12(&r, 500, "MustUnderstand");
        assert!(
            app.validate(&id),
            "closeSession ran despite mustUnderstand={value}"
        );
    }
}

#[test]
fn a_must_understand_header_for_another_actor_or_role_is_ignored() {
    let (app, id) = app_with_session();
    let h11 = "<t:Routing xmlns:t=\"urn:routing\" soap:actor=\"urn:some-gateway\" soap:mustUnderstand=\"1\">x</t:Routing>";
    let r = post11(&app, &with_header11(h11, &validate_op(&id)));
    assert_soap11_ok(&r);
    assert_valid(&r);
    let h12 = "<t:Routing xmlns:t=\"urn:routing\" env:role=\"urn:some-gateway\" env:mustUnderstand=\"true\">x</t:Routing>";
    let r = post12(&app, &with_header12(h12, &validate_op(&id)));
    assert_soap12_ok(&r);
    assert_valid(&r);
    // The "none" role is nobody's, so nobody need understand it.
    let none = "<t:Routing xmlns:t=\"urn:routing\" env:role=\"http://www.w3.org/2003/05/soap-envelope/role/none\" \
                env:mustUnderstand=\"true\">x</t:Routing>";
    assert_valid(&post12(&app, &with_header12(none, &validate_op(&id))));
}

#[test]
fn a_must_understand_header_for_the_next_or_ultimate_receiver_is_ours_to_refuse() {
    let (app, id) = app_with_session();
    let h11 = "<t:Routing xmlns:t=\"urn:routing\" soap:actor=\"http://schemas.xmlsoap.org/soap/actor/next\" \
               soap:mustUnderstand=\"1\">x</t:Routing>";
    assert_fault11(
        &post11(&app, &with_header11(h11, &validate_op(&id))),
        "MustUnderstand",
    );
    for role in [
        "http://www.w3.org/2003/05/soap-envelope/role/next",
        "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver",
    ] {
        let h12 = format!(
            "<t:Routing xmlns:t=\"urn:routing\" env:role=\"{role}\" env:mustUnderstand=\"true\">x</t:Routing>"
        );
        assert_fault12(
            &post12(&app, &with_header12(&h12, &validate_op(&id))),
            500,
            "MustUnderstand",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Version mismatch

#[test]
fn a_wrong_envelope_namespace_is_a_version_mismatch_fault() {
    let (app, id) = app_with_session();
    let wrong_ns = format!(
        "<soap:Envelope xmlns:soap=\"http://example.com/not-soap\"><soap:Body>{}</soap:Body></soap:Envelope>",
        validate_op(&id)
    );
    let no_ns = format!("<Envelope><Body>{}</Body></Envelope>", validate_op(&id));
    for xml in [&wrong_ns, &no_ns] {
        let r = post11(&app, xml);
        assert_fault11(&r, "VersionMismatch");
        let r = post12(&app, xml);
        assert_fault12(&r, 500, "VersionMismatch");
    }
}

// ---------------------------------------------------------------------------------------------
// WSDL

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// What a client sees of a request to a URL other than the helper's.
fn send(request: reqwest::blocking::RequestBuilder) -> Reply {
    let resp = request.send().expect("the server answers");
    Reply::from(resp)
}

fn get_url(url: &str) -> Reply {
    send(client().get(url))
}

fn contract_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wsdl")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// The `location` of every soap:address and soap12:address, in document order.
fn addresses(reply: &Reply, binding_ns: &str) -> Vec<String> {
    reply
        .doc()
        .descendants()
        .filter(|n| n.has_tag_name((binding_ns, "address")))
        .map(|n| n.attribute("location").unwrap_or("").to_owned())
        .collect()
}

fn has_soap12_binding(reply: &Reply) -> bool {
    reply
        .doc()
        .descendants()
        .any(|n| n.tag_name().namespace() == Some(WSDL_SOAP12))
}

fn assert_wsdl(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(media_type(reply), "text/xml", "{reply:?}");
    let doc = reply.doc();
    assert!(doc
        .root_element()
        .has_tag_name(("http://schemas.xmlsoap.org/wsdl/", "definitions")));
}

#[test]
fn get_with_wsdl_returns_the_soap11_description_addressed_to_the_url_used() {
    let app = spawn_app();
    for query in ["?wsdl", "?WSDL"] {
        let r = app.get(&format!("{PATH}{query}"));
        assert_wsdl(&r);
        assert!(
            !has_soap12_binding(&r),
            "{query} must not carry a SOAP 1.2 binding"
        );
        assert_eq!(addresses(&r, WSDL_SOAP11), vec![app.url.clone()]);
        assert!(addresses(&r, WSDL_SOAP12).is_empty());
    }
}

#[test]
fn get_with_wsdl_soap12_returns_both_bindings_each_addressed_to_the_url_used() {
    let app = spawn_app();
    let r = app.get(&format!("{PATH}?wsdl=soap12"));
    assert_wsdl(&r);
    assert!(has_soap12_binding(&r));
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![app.url.clone()]);
    assert_eq!(addresses(&r, WSDL_SOAP12), vec![app.url.clone()]);
}

#[test]
fn the_wsdl_address_follows_the_host_the_client_used() {
    let app = spawn_app();
    let port = app.base.rsplit(':').next().unwrap();
    let url = format!("http://localhost:{port}{PATH}");
    let r = get_url(&format!("{url}?wsdl"));
    assert_wsdl(&r);
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![url.clone()]);
    let r = get_url(&format!("{url}?wsdl=soap12"));
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![url.clone()]);
    assert_eq!(addresses(&r, WSDL_SOAP12), vec![url]);
}

#[test]
fn a_configured_public_url_is_the_wsdl_address() {
    let app = spawn_app_with(|c| c.public_url = Some("https://sessions.example.com".into()));
    let expected = format!("https://sessions.example.com{PATH}");
    let r = app.get(&format!("{PATH}?wsdl"));
    assert_wsdl(&r);
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![expected.clone()]);
    let r = app.get(&format!("{PATH}?wsdl=soap12"));
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![expected.clone()]);
    assert_eq!(addresses(&r, WSDL_SOAP12), vec![expected]);
}

#[test]
fn the_served_descriptions_are_the_contract_files_but_for_the_address() {
    let app = spawn_app();
    let served_address = format!("location=\"{}\"", app.url);
    let contract_address = format!("location=\"{CONTRACT_ADDRESS}\"");
    for (query, file) in [
        ("?wsdl", "SessionService.wsdl"),
        ("?WSDL", "SessionService.wsdl"),
        ("?wsdl=soap12", "SessionService-soap12.wsdl"),
    ] {
        let r = app.get(&format!("{PATH}{query}"));
        r.assert_ok();
        assert!(r.body.contains(&served_address), "{query}");
        let restored = r.body.replace(&served_address, &contract_address);
        assert!(
            restored == contract_file(file),
            "{query} differs from wsdl/{file} beyond the address"
        );
    }
}

#[test]
fn the_wsdl_files_carry_the_one_address_the_server_rewrites() {
    // Otherwise the comparison above would compare less than it seems to.
    let soap11 = contract_file("SessionService.wsdl");
    let soap12 = contract_file("SessionService-soap12.wsdl");
    assert_eq!(soap11.matches(CONTRACT_ADDRESS).count(), 1);
    assert_eq!(soap12.matches(CONTRACT_ADDRESS).count(), 2);
}

#[test]
fn an_endpoint_alias_answers_soap_and_wsdl() {
    let app = spawn_app_with(|c| c.endpoint_aliases = vec!["/old/Path".into()]);
    app.add_user("alice", "pw-alice", None, &[]);
    let id = app.get_session("alice", "pw-alice");
    let alias = format!("{}/old/Path", app.base);
    let r = send(
        client()
            .post(&alias)
            .header("Content-Type", CT11)
            .body(envelope11(&validate_op(&id))),
    );
    assert_soap11_ok(&r);
    assert_valid(&r);
    let r = send(
        client()
            .post(&alias)
            .header("Content-Type", CT12)
            .body(envelope12(&validate_op(&id))),
    );
    assert_soap12_ok(&r);
    assert_valid(&r);
    let r = send(
        client()
            .post(&alias)
            .header("Content-Type", CT11)
            .body(envelope11("")),
    );
    assert_client_fault11(&r, "INVALID_REQUEST");

    let r = get_url(&format!("{alias}?wsdl"));
    assert_wsdl(&r);
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![alias.clone()]);
    let r = get_url(&format!("{alias}?wsdl=soap12"));
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![alias.clone()]);
    assert_eq!(addresses(&r, WSDL_SOAP12), vec![alias]);
    // The main path still works beside it.
    assert!(app.validate(&id));
}

#[test]
fn an_endpoint_alias_with_a_public_url_is_that_base_and_the_alias_path() {
    let app = spawn_app_with(|c| {
        c.public_url = Some("https://sessions.example.com".into());
        c.endpoint_aliases = vec!["/old/Path".into()];
    });
    let r = app.get("/old/Path?wsdl=soap12");
    assert_wsdl(&r);
    let expected = "https://sessions.example.com/old/Path".to_owned();
    assert_eq!(addresses(&r, WSDL_SOAP11), vec![expected.clone()]);
    assert_eq!(addresses(&r, WSDL_SOAP12), vec![expected]);
}
