//! The operator's endpoints: health, readiness and metrics, on the SOAP listener or on the
//! admin listener (`SESSIOND_ADMIN_BIND`), as a load balancer and Prometheus call them.

use std::collections::HashMap;

use sessiond::domain::Backend;

use crate::helpers::*;

/// A scrape of `/metrics`: each series (name and labels, as written) and its value.
pub fn scrape(base: &str) -> HashMap<String, f64> {
    let resp = reqwest::blocking::get(format!("{base}/metrics")).expect("the server answers");
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = resp.text().unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            (series.to_owned(), value.parse::<f64>().expect("a number"))
        })
        .collect()
}

fn get(url: &str) -> (u16, String) {
    let resp = reqwest::blocking::get(url).expect("the server answers");
    (resp.status().as_u16(), resp.text().unwrap())
}

fn requests(operation: &str, outcome: &str) -> String {
    format!("sessiond_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}}")
}

fn diff(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    let a = after
        .get(series)
        .unwrap_or_else(|| panic!("{series} not exported"));
    a - before.get(series).copied().unwrap_or(0.0)
}

#[test]
fn healthz_and_readyz_answer_200_on_the_soap_listener_without_an_admin_bind() {
    let app = spawn_app();
    assert_eq!(get(&format!("{}/healthz", app.base)), (200, "ok\n".into()));
    assert_eq!(
        get(&format!("{}/readyz", app.base)),
        (200, "ready\n".into())
    );
    assert!(scrape(&app.base).contains_key("sessiond_active_sessions"));
}

#[test]
fn readyz_is_503_naming_pending_migrations_when_the_database_is_behind() {
    let app = spawn_app();
    assert_eq!(get(&format!("{}/readyz", app.base)).0, 200);
    // As if a newer binary were pointed at a database its migrations never ran on.
    forget_newest_migration(&app.db);
    let (status, body) = get(&format!("{}/readyz", app.base));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("migrations pending: 1 not applied"), "{body}");
    // Liveness is not readiness: the process still serves.
    assert_eq!(get(&format!("{}/healthz", app.base)).0, 200);
}

fn forget_newest_migration(db: &TestDb) {
    use diesel::{Connection, RunQueryDsl};
    let sql = "DELETE FROM __diesel_schema_migrations WHERE version = \
               (SELECT MAX(version) FROM __diesel_schema_migrations)";
    match db.url.backend {
        Backend::Sqlite => {
            let mut c = diesel::SqliteConnection::establish(&db.url.target).unwrap();
            diesel::sql_query(sql).execute(&mut c).unwrap();
        }
        Backend::Postgres => {
            let mut c = diesel::PgConnection::establish(&db.url.target).unwrap();
            diesel::sql_query(sql).execute(&mut c).unwrap();
        }
    }
}

#[test]
fn request_counters_rise_by_exactly_the_calls_made() {
    let app = spawn_app();
    app.add_user("alice", "pw", None, &[]);
    let id = app.get_session("alice", "pw");
    let before = scrape(&app.base);

    for _ in 0..7 {
        assert!(app.validate(&id));
    }
    for _ in 0..3 {
        app.call("getCurrentSession", &[("sessionId", "no-such-session")])
            .assert_fault("INVALID_SESSION");
    }
    for _ in 0..2 {
        app.call("getSession", &[("userId", "alice"), ("password", "wrong")])
            .assert_fault("AUTHENTICATION_FAILED");
    }
    let r = app.post("text/xml; charset=utf-8", &[], "<not-soap/>");
    assert_eq!(r.status, 500, "{}", r.body);
    app.call("closeSession", &[("sessionId", &id)]).assert_ok();

    let after = scrape(&app.base);
    assert_eq!(
        diff(&before, &after, &requests("validateSession", "ok")),
        7.0
    );
    assert_eq!(
        diff(
            &before,
            &after,
            &requests("getCurrentSession", "INVALID_SESSION")
        ),
        3.0
    );
    assert_eq!(
        diff(
            &before,
            &after,
            &requests("getSession", "AUTHENTICATION_FAILED")
        ),
        2.0
    );
    assert_eq!(diff(&before, &after, &requests("getSession", "ok")), 0.0);
    assert_eq!(
        diff(&before, &after, &requests("unknown", "INVALID_REQUEST")),
        1.0
    );
    assert_eq!(diff(&before, &after, &requests("closeSession", "ok")), 1.0);
    let validations = "sessiond_request_duration_seconds_count{operation=\"validateSession\"}";
    assert_eq!(diff(&before, &after, validations), 7.0);
    // Every other series stood still.
    let moved: Vec<_> = after
        .iter()
        .filter(|(k, _)| k.starts_with("sessiond_requests_total"))
        .filter(|(k, v)| before.get(*k).copied().unwrap_or(0.0) != **v)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(moved.len(), 5, "{moved:?}");
}

#[test]
fn login_and_ended_session_counters_rise_by_exactly_the_events() {
    let app = spawn_app();
    app.add_user("alice", "pw", None, &[]);
    let before = scrape(&app.base);
    let a = app.get_session("alice", "pw");
    let b = app.get_bw_session("alice", "pw");
    for _ in 0..5 {
        app.call("getSession", &[("userId", "alice"), ("password", "x")])
            .assert_fault("AUTHENTICATION_FAILED");
    }
    app.call("getSession", &[("userId", "alice"), ("password", "pw")])
        .assert_fault("ACCOUNT_LOCKED");
    app.call("getSession", &[("userId", "nobody"), ("password", "x")])
        .assert_fault("AUTHENTICATION_FAILED");
    app.call("closeSession", &[("sessionId", &a)]).assert_ok();
    app.service
        .delete_session(&sessiond::domain::SessionId::parse(&b).unwrap())
        .unwrap();
    let after = scrape(&app.base);
    let logins = |r: &str| format!("sessiond_logins_total{{result=\"{r}\"}}");
    assert_eq!(diff(&before, &after, &logins("ok")), 2.0);
    assert_eq!(diff(&before, &after, &logins("failed")), 6.0);
    assert_eq!(diff(&before, &after, &logins("locked")), 1.0);
    let ended = |r: &str| format!("sessiond_sessions_ended_total{{reason=\"{r}\"}}");
    assert_eq!(diff(&before, &after, &ended("closed")), 1.0);
    assert_eq!(diff(&before, &after, &ended("deleted")), 1.0);
}

#[test]
fn activity_flushes_are_counted_with_their_rows() {
    let app = spawn_app_with(|c| c.activity_lag = std::time::Duration::from_millis(50));
    app.add_user("alice", "pw", None, &[]);
    let ids: Vec<String> = (0..3).map(|_| app.get_session("alice", "pw")).collect();
    let before = scrape(&app.base);
    std::thread::sleep(std::time::Duration::from_millis(20));
    for id in &ids {
        assert!(app.validate(id));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let rows = "sessiond_activity_flushed_rows_total";
    loop {
        let after = scrape(&app.base);
        if diff(&before, &after, rows) >= 3.0 {
            assert!(
                diff(
                    &before,
                    &after,
                    "sessiond_activity_flush_duration_seconds_count"
                ) >= 1.0
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no flush of 3 rows in 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn request_labels_are_only_operation_names_and_outcomes() {
    let app = spawn_app();
    app.add_user("alice", "pw", None, &[]);
    let id = app.get_session("alice", "pw");
    app.validate(&id);
    app.call(
        "getSession",
        &[("userId", "nobody-at-all"), ("password", "x")],
    );
    let text = reqwest::blocking::get(format!("{}/metrics", app.base))
        .unwrap()
        .text()
        .unwrap();
    assert!(!text.contains(&id), "a session ID in the metrics");
    assert!(!text.contains("alice") && !text.contains("nobody-at-all"));
    for line in text.lines().filter(|l| l.starts_with("sessiond_")) {
        assert!(line.starts_with("sessiond_"), "{line}");
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(!name.contains("__"), "{name}");
    }
}

#[test]
fn the_admin_listener_serves_health_and_metrics_and_the_soap_listener_does_not() {
    let app = spawn_app_with(|c| c.admin_bind = Some("127.0.0.1:0".parse().unwrap()));
    let admin = app.admin_base.clone().expect("an admin listener");
    assert_ne!(admin, app.base);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(&format!("{admin}{path}")).0, 200, "{path} on admin");
        assert_eq!(get(&format!("{}{path}", app.base)).0, 404, "{path} on SOAP");
    }
    // And SOAP stays on its own listener.
    app.add_user("alice", "pw", None, &[]);
    let id = app.get_session("alice", "pw");
    assert!(app.validate(&id));
    let client = reqwest::blocking::Client::new();
    let on_admin = client
        .post(format!("{admin}{PATH}"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(envelope11(&operation(
            "validateSession",
            &[("sessionId", &id)],
        )))
        .send()
        .unwrap();
    assert_eq!(on_admin.status().as_u16(), 404);
    assert_eq!(get(&format!("{admin}{PATH}?wsdl")).0, 404);
    // The SOAP call made on the SOAP port is what the admin port counts.
    let after = scrape(&admin);
    assert_eq!(after[&requests("validateSession", "ok")], 1.0);
}

/// The active-sessions gauge after a restart: counted at start (it read 0 for the first
/// interval before), then kept current by each login and end between the counts.
#[test]
fn the_active_sessions_gauge_is_counted_at_start_and_kept_current_between_counts() {
    let gauge = |app: &TestApp| scrape(&app.base)["sessiond_active_sessions"];
    let app = spawn_app();
    app.add_user("alice", "pw", None, &[]);
    for _ in 0..3 {
        app.get_session("alice", "pw");
    }
    let db = app.shutdown();
    let app = spawn_app_on(db, None, |_| {});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while gauge(&app) != 3.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the gauge says {} 3 s after the start, not the 3 sessions stored",
            gauge(&app)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let id = app.get_session("alice", "pw");
    assert_eq!(gauge(&app), 4.0, "a login is counted at once");
    app.call("closeSession", &[("sessionId", &id)]).assert_ok();
    assert_eq!(gauge(&app), 3.0, "an end is counted at once");
}

/// Metrics a rule or panel may name that a server without a directory does not export: the
/// directory's, a labelled family with no series until a directory answers (the directory
/// tests scrape them). Each must be one the rules guard against being absent.
const EXPORTED_LATER: &[&str] = &["sessiond_directory_requests_total"];

/// Every `sessiond_…` name in a file, as Prometheus would read it from the exposition.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sessiond_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // "sessiond_" inside a longer word is not a metric (none today; kept honest).
        let before = rest[..at].chars().last();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(name.clone());
        }
        rest = &rest[at + name.len().max(1)..];
    }
    names
}

#[test]
fn every_metric_the_alert_rules_and_the_dashboard_name_is_exported() {
    let app = spawn_app_with(|c| c.lockout_threshold = 1);
    app.add_user("alice", "pw", None, &[]);
    app.add_user("bob", "pw", None, &[]);
    // One of each event, so that every labelled series exists.
    let id = app.get_session("alice", "pw");
    assert!(app.validate(&id));
    app.call("getSession", &[("userId", "bob"), ("password", "x")])
        .assert_fault("AUTHENTICATION_FAILED");
    app.call("getSession", &[("userId", "bob"), ("password", "pw")])
        .assert_fault("ACCOUNT_LOCKED");
    app.call("closeSession", &[("sessionId", &id)]).assert_ok();
    assert_eq!(get(&format!("{}/readyz", app.base)).0, 200);
    let exported: std::collections::BTreeSet<String> = scrape(&app.base)
        .keys()
        .map(|series| series.split('{').next().unwrap().to_owned())
        .collect();
    assert_eq!(scrape(&app.base)["sessiond_ready"], 1.0);

    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "contrib/prometheus/sessiond.rules.yml",
        "contrib/grafana/sessiond.json",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let named = metric_names(&text);
        assert!(named.len() >= 8, "{file} names only {named:?}");
        for name in &named {
            assert!(
                exported.contains(name) || EXPORTED_LATER.contains(&name.as_str()),
                "{file} names {name}, which /metrics does not export: {exported:?}"
            );
        }
    }
}
