//! The smaller holes an attacker found around the console, the headers and the IDs, each shown
//! closed: the console's sign-ins within the per-user cap, forwarded headers believed only
//! from trusted proxies, conflicting SOAPAction headers, TLS on the admin listener and the
//! cookie's `Secure`, the console's client address, NUL in a filter, look-alike user IDs, login
//! CSRF and HSTS.

use std::io::{Read, Write};
use std::net::TcpStream;

use sessiond::domain::{LimitPolicy, Password, Right};

use crate::helpers::*;
use crate::listed_ids::{console_get, console_sign_in};

const PW: &str = "pw";

fn sign_in_status(app: &TestApp, user: &str, headers: &[(&str, &str)]) -> u16 {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client
        .post(format!("{}/admin/sign-in", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(format!("user={user}&password={PW}"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn active_sessions(app: &TestApp, user: &str) -> Vec<sessiond::service::SessionView> {
    let mut found = Vec::new();
    app.service
        .list_sessions(false, |page| {
            found.extend(page.iter().filter(|v| v.record.user_id == user).cloned())
        })
        .unwrap();
    found
}

#[test]
fn console_sign_ins_past_the_cap_are_refused_under_deny() {
    let app = spawn_app_with(|c| c.max_sessions_per_user = Some(3));
    app.add_user("root", PW, None, &[Right::Administrator]);
    for _ in 0..3 {
        assert_eq!(sign_in_status(&app, "root", &[]), 303);
    }
    for _ in 0..2 {
        assert_eq!(sign_in_status(&app, "root", &[]), 403);
    }
    assert_eq!(active_sessions(&app, "root").len(), 3);
    app.call("getSession", &[("userId", "root"), ("password", PW)])
        .assert_fault("SESSION_LIMIT_REACHED");
}

#[test]
fn console_sign_ins_past_the_cap_evict_the_oldest_under_evict_oldest() {
    let app = spawn_app_with(|c| {
        c.max_sessions_per_user = Some(3);
        c.session_limit_policy = LimitPolicy::EvictOldest;
    });
    app.add_user("root", PW, None, &[Right::Administrator]);
    let first = console_sign_in(&app, "root", PW);
    for _ in 0..4 {
        console_sign_in(&app, "root", PW);
    }
    assert_eq!(active_sessions(&app, "root").len(), 3);
    assert_ne!(
        console_get(&app, &first, "").0,
        200,
        "the oldest was evicted"
    );
}

fn wsdl_address(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let mut req = reqwest::blocking::Client::new().get(format!("{}{PATH}?wsdl", app.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = req.send().unwrap().text().unwrap();
    body.split("location=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned()
}

const POISON: &[(&str, &str)] = &[
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
    ("Forwarded", "host=evil2.example;proto=https"),
];

#[test]
fn an_untrusted_clients_forwarded_headers_do_not_change_the_wsdl_address() {
    let app = spawn_app();
    let own = format!("{}{PATH}", app.base);
    assert_eq!(wsdl_address(&app, &[]), own);
    for h in POISON {
        assert_eq!(wsdl_address(&app, &[*h]), own, "{h:?}");
    }
}

#[test]
fn a_trusted_proxys_forwarded_headers_set_the_wsdl_address_and_a_public_url_beats_them() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    assert_eq!(
        wsdl_address(&app, &[POISON[0], POISON[1]]),
        format!("https://evil.example{PATH}")
    );
    assert_eq!(
        wsdl_address(&app, &[POISON[2]]),
        format!("https://evil2.example{PATH}")
    );
    let public = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.public_url = Some("https://sessions.example.org".into());
    });
    assert_eq!(
        wsdl_address(&public, POISON),
        format!("https://sessions.example.org{PATH}")
    );
}

#[test]
fn an_absolute_form_request_target_wins_over_host_in_the_wsdl_address() {
    let app = spawn_app();
    let port = app.base.rsplit(':').next().unwrap();
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        s,
        "GET http://absolute.example:8443{PATH}?wsdl HTTP/1.1\r\nHost: host.example\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!("location=\"http://absolute.example:8443{PATH}\"")),
        "{answer}"
    );
}

#[test]
fn two_soap_action_headers_naming_different_operations_get_a_client_fault() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let body = envelope11(&operation(
        "getSession",
        &[("userId", "alice"), ("password", PW)],
    ));
    let r = app.post(
        "text/xml; charset=utf-8",
        &[
            ("SOAPAction", "\"urn:sessiond:session:1/getSession\""),
            (
                "SOAPAction",
                "\"urn:sessiond:session:1/deleteExpiredSessionIds\"",
            ),
        ],
        body.clone(),
    );
    assert_eq!(r.soap_fault().as_deref(), Some("Client"), "{}", r.body);
    assert!(r.body.contains("SOAPAction"), "{}", r.body);
    assert!(active_sessions(&app, "alice").is_empty());
    // The same header twice is one operation named twice: served.
    let same = "\"urn:sessiond:session:1/getSession\"";
    let r = app.post(
        "text/xml; charset=utf-8",
        &[("SOAPAction", same), ("SOAPAction", same)],
        body.clone(),
    );
    r.assert_ok();
    // So is the same action once quoted and once bare (both forms are in use).
    let r = app.post(
        "text/xml; charset=utf-8",
        &[
            ("SOAPAction", same),
            ("SOAPAction", "urn:sessiond:session:1/getSession"),
        ],
        body,
    );
    r.assert_ok();
}

#[test]
fn behind_a_trusted_proxy_the_console_records_the_forwarded_client_address() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    app.add_user("root", PW, None, &[Right::Administrator]);
    assert_eq!(
        sign_in_status(&app, "root", &[("X-Forwarded-For", "203.0.113.9")]),
        303
    );
    let sessions = active_sessions(&app, "root");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].record.host.as_deref(), Some("203.0.113.9"));
}

#[test]
fn an_untrusted_clients_forwarded_for_is_not_the_consoles_client_address() {
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    sign_in_status(&app, "root", &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(
        active_sessions(&app, "root")[0].record.host.as_deref(),
        Some("127.0.0.1")
    );
}

#[test]
fn a_nul_in_a_console_filter_is_a_400_not_a_500() {
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    let cookie = console_sign_in(&app, "root", PW);
    for path in [
        "sessions?user=a%00b",
        "sessions?client_type=%00",
        "sessions?location=x%00",
        "history?user=%00",
        "history?reason=closed%00",
    ] {
        let (status, body) = console_get(&app, &cookie, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("NUL"), "{path}: {body}");
    }
    assert_eq!(console_get(&app, &cookie, "sessions?user=root").0, 200);
}

#[test]
fn user_add_refuses_look_alikes_of_existing_users_and_invisible_characters() {
    let app = spawn_app();
    app.add_user("operator", PW, None, &[]);
    let add = |id: &str| {
        let user = sessiond::domain::UserId::parse(id).unwrap();
        app.service
            .add_user(&user, &Password::parse(PW.into()).unwrap(), None)
            .map_err(|e| e.to_string())
    };
    for id in [
        "Operator",
        "OPERATOR",
        "ｏｐｅｒａｔｏｒ",
        "oper\u{AD}ator",
        "oper\u{200B}ator",
        "\u{43E}perator",
        "operator\u{202E}",
    ] {
        let e = add(id).expect_err(id);
        assert!(
            e.contains("looks like the existing user 'operator'")
                || e.contains("character")
                || e.contains("letters"),
            "{id:?}: {e}"
        );
    }
    add("operator2").unwrap();
    add("jörg").unwrap();
    let e = add("JÖRG").unwrap_err();
    assert!(e.contains("'jörg'"), "{e}");
}

#[test]
fn the_sign_in_form_refuses_a_null_or_foreign_origin_or_referer() {
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    for h in [
        ("Origin", "null"),
        ("Origin", "https://evil.example"),
        ("Referer", "https://evil.example/page"),
    ] {
        assert_eq!(sign_in_status(&app, "root", &[h]), 403, "{h:?}");
    }
    assert!(active_sessions(&app, "root").is_empty());
    let own = app.base.clone();
    assert_eq!(sign_in_status(&app, "root", &[("Origin", &own)]), 303);
    assert_eq!(
        sign_in_status(
            &app,
            "root",
            &[("Referer", &format!("{own}/admin/sign-in"))]
        ),
        303
    );
}

/// A TLS app with an admin listener: the certificate files live in the test's database dir.
fn tls_app(adjust: impl FnOnce(&mut sessiond::config::Config)) -> TestApp {
    let db = TestDb::new();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_file = db.dir.path().join("cert.pem");
    let key_file = db.dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    spawn_app_on(db, None, |c| {
        c.tls_cert = Some(cert_file);
        c.tls_key = Some(key_file);
        c.admin_bind = Some("127.0.0.1:0".parse().unwrap());
        adjust(c);
    })
}

fn tls_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn with_tls_on_the_admin_listener_speaks_tls_and_the_cookie_is_secure_whatever_the_client_says() {
    let app = tls_app(|_| {});
    app.add_user("root", PW, None, &[Right::Administrator]);
    let admin = app.admin_base.clone().unwrap();
    let https = admin.replace("http://", "https://");
    // Plain HTTP gets no console.
    let plain = reqwest::blocking::Client::new()
        .get(format!("{admin}/admin/sign-in"))
        .send();
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "the console over plain HTTP"
    );
    let page = tls_client()
        .get(format!("{https}/admin/sign-in"))
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let hsts = page.headers().get("strict-transport-security").unwrap();
    assert_eq!(hsts.to_str().unwrap(), "max-age=31536000");
    let resp = tls_client()
        .post(format!("{https}/admin/sign-in"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Forwarded-Proto", "http")
        .header("Forwarded", "proto=http")
        .body(format!("user=root&password={PW}"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("sessiond_console="))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[test]
fn hsts_is_off_by_default_on_the_soap_port_and_on_when_set() {
    let soap = |app: &TestApp| {
        let https = app.base.replace("http://", "https://");
        tls_client()
            .get(format!("{https}{PATH}?wsdl"))
            .send()
            .unwrap()
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(soap(&tls_app(|_| {})), None);
    let on = tls_app(|c| c.soap_hsts = Some(std::time::Duration::from_secs(86400)));
    assert_eq!(soap(&on).as_deref(), Some("max-age=86400"));
}

#[test]
fn a_plain_listener_sets_no_secure_cookie_for_an_untrusted_clients_forwarded_proto() {
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/admin/sign-in", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Forwarded-Proto", "https")
        .body(format!("user=root&password={PW}"))
        .send()
        .unwrap();
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(resp.headers().get("strict-transport-security").is_none());
}
