//! Several instances on one database behave as one service (docs/behaviour.md §5): run on SQLite
//! and, with SESSIOND_TEST_BACKEND=postgres, on PostgreSQL, the way they run behind a load
//! balancer.

use std::sync::Arc;
use std::time::Duration;

use sessiond::domain::Right;

use crate::helpers::*;

const PW: &str = "pw";
const MINUTE: Duration = Duration::from_secs(60);

/// Three instances on one database and one clock the test moves.
fn cluster() -> Vec<TestApp> {
    let a = spawn_app_with_clock(|c| c.location = "node-a".into());
    let clock = a.clock.clone();
    let db = a.db.clone();
    let b = spawn_app_on(db.clone(), clock.clone(), |c| c.location = "node-b".into());
    let c = spawn_app_on(db, clock, |c| c.location = "node-c".into());
    vec![a, b, c]
}

#[test]
fn a_session_opened_on_one_instance_is_valid_listed_renewed_and_closed_on_the_others() {
    let nodes = cluster();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    a.add_user("viewer", PW, None, &[Right::ViewSession]);
    let id = a.get_session("viewer", PW);
    assert!(b.validate(&id) && c.validate(&id));
    let r = c.call("listActiveSessionIds", &[("sessionId", &id)]);
    assert_eq!(r.sessions(), vec![Some(id.clone()), None]);

    // Renewed on B only: C sees it once B has stored it, within the activity lag (1 s).
    a.clock().advance(20 * MINUTE);
    assert!(b.validate(&id));
    std::thread::sleep(Duration::from_millis(1500));
    a.clock().advance(20 * MINUTE);
    assert!(
        c.validate(&id),
        "40 minutes after login, 20 after B renewed it"
    );

    let r = c.call("closeSession", &[("sessionId", &id)]);
    assert_eq!(r.value("closed").as_deref(), Some("true"));
    assert!(
        !c.validate(&id),
        "the instance that closed it refuses it at once"
    );
    // The others within the revocation lag (docs/behaviour.md §3).
    assert!(a.refused_within(&id, REVOCATION_PATIENCE).is_some());
    assert!(b.refused_within(&id, REVOCATION_PATIENCE).is_some());
    let again = b.call("closeSession", &[("sessionId", &id)]);
    assert_eq!(again.value("closed").as_deref(), Some("false"));
}

#[test]
fn concurrent_removal_of_expired_sessions_ends_each_session_once() {
    let nodes = Arc::new(cluster());
    let a = &nodes[0];
    a.add_user("root", PW, None, &[Right::Administrator]);
    a.add_user("alice", PW, None, &[]);
    let opener = a.get_session("root", PW);
    const N: usize = 300;
    let mut doomed = Vec::new();
    for i in 0..N {
        let node = &nodes[i % 3];
        let r = node.call(
            "openClientlessSession",
            &[("sessionId", &opener), ("userId", "alice")],
        );
        doomed.push(r.value("clientlessSessionId").expect("opened"));
    }
    // Three removers log in before the others expire (a login removes expired sessions).
    a.clock().advance(20 * MINUTE);
    let removers: Vec<String> = (0..3).map(|i| nodes[i].get_session("root", PW)).collect();
    a.clock().advance(11 * MINUTE);

    let threads: Vec<_> = (0..3)
        .map(|i| {
            let nodes = nodes.clone();
            let caller = removers[i].clone();
            std::thread::spawn(move || {
                let r = nodes[i].call("deleteExpiredSessionIds", &[("sessionId", &caller)]);
                r.assert_ok();
                r.value("deletedCount").unwrap().parse::<usize>().unwrap()
            })
        })
        .collect();
    let counts: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // `opener` expired too: it was idle for 31 minutes.
    assert_eq!(counts.iter().sum::<usize>(), N + 1, "counts {counts:?}");
    for id in doomed.iter().step_by(37) {
        let info = a.service.session_info(&as_session_id(id)).unwrap();
        assert_eq!(info.end_reason.as_deref(), Some("expired"));
        assert!(nodes[2].refused_within(id, REVOCATION_PATIENCE).is_some());
    }
    let r = nodes[1].call("getExpiredSessionIds", &[("sessionId", &removers[1])]);
    assert_eq!(r.sessions(), vec![None]);
}

#[test]
fn lockout_counts_are_shared_between_instances() {
    let nodes = cluster();
    nodes[0].add_user("alice", PW, None, &[]);
    for i in 0..5 {
        nodes[i % 3]
            .call("getSession", &[("userId", "alice"), ("password", "bad")])
            .assert_fault("AUTHENTICATION_FAILED");
    }
    for node in &nodes {
        node.call("getSession", &[("userId", "alice"), ("password", PW)])
            .assert_fault("ACCOUNT_LOCKED");
    }
}

#[test]
fn concurrent_calls_on_every_instance_agree() {
    let nodes = Arc::new(cluster());
    nodes[0].add_user("alice", PW, None, &[Right::ViewSession]);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let nodes = nodes.clone();
            std::thread::spawn(move || {
                let mine = nodes[t % 3].get_session("alice", PW);
                for round in 0..20 {
                    assert!(nodes[(t + round) % 3].validate(&mine));
                }
                let r = nodes[(t + 1) % 3].call("listActiveSessionIds", &[("sessionId", &mine)]);
                assert!(r.sessions().contains(&Some(mine.clone())));
                let r = nodes[(t + 2) % 3].call("closeSession", &[("sessionId", &mine)]);
                assert_eq!(r.value("closed").as_deref(), Some("true"));
                assert!(!nodes[(t + 2) % 3].validate(&mine));
                assert!(nodes[t % 3]
                    .refused_within(&mine, REVOCATION_PATIENCE)
                    .is_some());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
