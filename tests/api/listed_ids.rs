//! What a ViewSessionRight holder can do with what listings show (docs/behaviour.md section 3,
//! "Listed IDs"): never take over a console session, in either mode; in handles mode never act
//! as any listed session; and old scripts that list and then delete keep working in both.

use sessiond::domain::{ListedIds, Right};

use crate::helpers::*;

const PW: &str = "pw";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Signs in to the console and returns the cookie's value.
pub fn console_sign_in(app: &TestApp, user: &str, password: &str) -> String {
    let resp = http()
        .post(format!("{}/admin/sign-in", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&password={password}"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303, "sign-in of {user}");
    cookie_of(&resp).expect("a console cookie")
}

/// The console cookie's value from a response's Set-Cookie headers.
pub fn cookie_of(resp: &reqwest::blocking::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("sessiond_console="))
        .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
}

/// A console page with this cookie: its status and body.
pub fn console_get(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let resp = http()
        .get(format!("{}/admin/{path}", app.base))
        .header("Cookie", format!("sessiond_console={cookie}"))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

/// A console form POST with this cookie: its status and where it redirects to, if anywhere.
pub fn console_post(app: &TestApp, cookie: &str, path: &str, form: &str) -> (u16, String) {
    let resp = http()
        .post(format!("{}/admin/{path}", app.base))
        .header("Cookie", format!("sessiond_console={cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .unwrap();
    let to = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), to)
}

/// The old CSRF token: SHA-256 of a domain and the session ID (what a listing let anyone compute).
fn old_csrf(id: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"sessiond-console-csrf\0");
    h.update(id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

fn listed(app: &TestApp, caller: &str) -> Vec<String> {
    app.call("listActiveSessionIds", &[("sessionId", caller)])
        .assert_ok()
        .sessions()
        .into_iter()
        .flatten()
        .collect()
}

fn is_admin(app: &TestApp, user: &str) -> bool {
    app.service
        .list_users()
        .unwrap()
        .into_iter()
        .find(|u| u.user_id == user)
        .unwrap()
        .rights
        .contains(&Right::Administrator)
}

fn setup(mode: ListedIds) -> (TestApp, String, String) {
    let app = spawn_app_with(|c| c.listed_ids = mode);
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let admin_cookie = console_sign_in(&app, "root", PW);
    let viewer = app.get_session("viewer", PW);
    (app, admin_cookie, viewer)
}

fn a_viewer_cannot_take_over_an_admins_console_session(mode: ListedIds) {
    let (app, admin_cookie, viewer) = setup(mode);
    let admin_soap = app.get_session("root", PW);
    let shown = listed(&app, &viewer);
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        !shown.contains(&admin_cookie),
        "the console session is listed by its cookie"
    );
    // Every listed value, tried as the console cookie: never the Users page, never a grant.
    for value in &shown {
        let (status, body) = console_get(&app, value, "users");
        assert_ne!(
            status, 200,
            "{mode:?}: {value} opened the Users page: {body}"
        );
        for token in [old_csrf(value), old_csrf(&admin_cookie), value.clone()] {
            let form = format!("csrf={token}&user=viewer&action=grant&right=AdministratorRight");
            let (status, to) = console_post(&app, value, "users/change", &form);
            assert!(
                status != 303 || to.ends_with("/admin/sign-in"),
                "{mode:?}: {value} changed a user: {status} {to}"
            );
        }
    }
    // The session page shows the console session by the same value the listing did.
    let (status, body) = console_get(&app, &admin_cookie, "sessions");
    assert_eq!(status, 200);
    assert!(
        !body.contains(&admin_cookie),
        "the console shows its own cookie"
    );
    assert!(!is_admin(&app, "viewer"));
    // The admin's own cookie still works, and its CSRF token is no hash of a listed value.
    let (status, body) = console_get(&app, &admin_cookie, "users");
    assert_eq!(status, 200, "{body}");
    for value in &shown {
        assert!(!body.contains(&old_csrf(value)));
    }
    assert!(app.validate(&admin_soap));
}

#[test]
fn a_viewer_cannot_take_over_an_admins_console_session_with_legacy_listing() {
    a_viewer_cannot_take_over_an_admins_console_session(ListedIds::Legacy);
}

#[test]
fn a_viewer_cannot_take_over_an_admins_console_session_with_handles() {
    a_viewer_cannot_take_over_an_admins_console_session(ListedIds::Handles);
}

#[test]
fn with_handles_no_listed_value_authenticates_a_soap_call() {
    let (app, _, viewer) = setup(ListedIds::Handles);
    let admin_soap = app.get_session("root", PW);
    let shown = listed(&app, &viewer);
    assert!(!shown.contains(&admin_soap));
    assert!(
        !shown.contains(&viewer),
        "the caller's own session is listed by ID"
    );
    for value in &shown {
        assert!(!app.validate(value), "{value} validates");
        app.call("listActiveSessionIds", &[("sessionId", value)])
            .assert_fault("INVALID_SESSION");
        app.call(
            "openClientlessSession",
            &[("sessionId", value), ("userId", "viewer")],
        )
        .assert_fault("INVALID_SESSION");
    }
    // getSessions' infos show handles too.
    let infos = app.call("getSessions", &[("sessionId", &viewer)]);
    let ids = infos.assert_ok().values("sessionId");
    assert_eq!(ids.len(), 3);
    assert!(!ids.contains(&admin_soap) && !ids.contains(&viewer));
}

#[test]
fn in_legacy_mode_soap_sessions_are_listed_by_id_and_console_ones_by_handle() {
    let (app, admin_cookie, viewer) = setup(ListedIds::Legacy);
    let admin_soap = app.get_session("root", PW);
    let shown = listed(&app, &viewer);
    assert!(shown.contains(&admin_soap) && shown.contains(&viewer));
    assert!(!shown.contains(&admin_cookie));
}

fn a_script_lists_then_deletes_every_other_session(mode: ListedIds) {
    let app = spawn_app_with(|c| c.listed_ids = mode);
    app.add_user("ops", PW, None, &[Right::UpdateSession, Right::ViewSession]);
    app.add_user("alice", PW, None, &[]);
    let ops = app.get_session("ops", PW);
    let alice = [app.get_session("alice", PW), app.get_session("alice", PW)];
    let cookie = console_sign_in(&app, "ops", PW);
    let shown = listed(&app, &ops);
    assert_eq!(shown.len(), 4);
    let mine = app
        .call("getCurrentSession", &[("sessionId", &ops)])
        .assert_ok()
        .value("sessionId")
        .unwrap();
    assert_eq!(mine, ops, "getCurrentSession returns the caller's own ID");
    for target in shown {
        let info = app.call(
            "getSessionInfo",
            &[("sessionId", &ops), ("targetSessionId", &target)],
        );
        assert_eq!(
            info.assert_ok().value("sessionId").as_deref(),
            Some(&*target)
        );
        if info.value("isCurrent").as_deref() == Some("true") {
            continue;
        }
        let user = app
            .call(
                "getSessionUser",
                &[("sessionId", &ops), ("targetSessionId", &target)],
            )
            .assert_ok()
            .value("userId");
        assert!(matches!(user.as_deref(), Some("alice" | "ops")));
        app.call(
            "deleteSessionId",
            &[("sessionId", &ops), ("targetSessionId", &target)],
        )
        .assert_ok();
        // Ended, it is still found by what the listing showed (in the history).
        let ended = app.call(
            "getSessionInfo",
            &[("sessionId", &ops), ("targetSessionId", &target)],
        );
        assert_eq!(
            ended.assert_ok().value("endReason").as_deref(),
            Some("deleted")
        );
        assert_eq!(ended.value("sessionId").as_deref(), Some(&*target));
    }
    assert!(alice.iter().all(|a| !app.validate(a)));
    assert_ne!(
        console_get(&app, &cookie, "").0,
        200,
        "the console session ended"
    );
    assert!(app.validate(&ops));
}

#[test]
fn a_legacy_script_lists_then_deletes_by_listed_id_in_legacy_mode() {
    a_script_lists_then_deletes_every_other_session(ListedIds::Legacy);
}

#[test]
fn a_legacy_script_lists_then_deletes_by_listed_value_in_handles_mode() {
    a_script_lists_then_deletes_every_other_session(ListedIds::Handles);
}

#[test]
fn a_handle_is_the_same_on_every_instance_and_each_takes_the_others() {
    let first = spawn_app_with(|c| c.listed_ids = ListedIds::Handles);
    first.add_user("ops", PW, None, &[Right::Administrator]);
    first.add_user("alice", PW, None, &[]);
    let ops = first.get_session("ops", PW);
    let alice = first.get_session("alice", PW);
    let second = spawn_app_on(first.db.clone(), None, |c| {
        c.listed_ids = ListedIds::Handles;
        c.location = "second".into();
    });
    let here = listed(&first, &ops);
    let there = listed(&second, &ops);
    assert_eq!(here, there);
    // A console cookie made by one instance works on the other, with its CSRF token.
    let cookie = console_sign_in(&first, "ops", PW);
    let (status, body) = console_get(&second, &cookie, "users");
    assert_eq!(status, 200);
    let token = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    let form = format!("csrf={token}&user=alice&action=grant&right=ViewSessionRight");
    let (status, to) = console_post(&first, &cookie, "users/change", &form);
    assert_eq!((status, to.as_str()), (303, "/admin/users?done=changed"));
    // A clientless session closed on one instance by the handle the other listed.
    let clientless = first
        .call(
            "openClientlessSession",
            &[("sessionId", &ops), ("userId", "alice")],
        )
        .assert_ok()
        .value("clientlessSessionId")
        .unwrap();
    let handle = listed(&second, &ops)
        .into_iter()
        .find(|h| {
            second
                .call(
                    "getSessionInfo",
                    &[("sessionId", &ops), ("targetSessionId", h)],
                )
                .value("clientType")
                .as_deref()
                == Some("clientless")
        })
        .unwrap();
    assert_ne!(handle, clientless);
    let closed = first.call(
        "closeClientlessSession",
        &[("sessionId", &ops), ("clientlessSessionId", &handle)],
    );
    assert_eq!(
        closed.assert_ok().value("closed").as_deref(),
        Some("true"),
        "{}",
        closed.body
    );
    assert!(!first.validate(&clientless));
    assert!(first.validate(&alice));
}
