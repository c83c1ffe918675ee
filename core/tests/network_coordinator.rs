//! Routing to a group's or a transaction's coordinator: FindCoordinator lookups (single-key
//! before v4, batched from v4), caching, retries and invalidation.

mod network_support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use kafkit_core::network::{CoordinatorKind, NetError, Target};
use kafkit_core::protocol::find_coordinator::response::Coordinator;
use kafkit_core::protocol::{
    ApiKey, ErrorCode, FindCoordinatorResponse, ListGroupsRequest, RequestBody, ResponseBody,
};
use network_support::{options, three_brokers, Broker, Harness, Received, Reply};

fn group(key: &str) -> Target {
    Target::Coordinator {
        kind: CoordinatorKind::Group,
        key: key.into(),
    }
}

/// A FindCoordinator answer naming `node` (at `b{node}:9092`) or carrying `error`, shaped for
/// the request's version.
fn answer(req: &Received, node: i32, error: ErrorCode) -> Reply {
    let RequestBody::FindCoordinator(f) = &req.body else {
        unreachable!()
    };
    let body = if req.version() >= 4 {
        FindCoordinatorResponse {
            coordinators: f
                .coordinator_keys
                .iter()
                .map(|k| Coordinator {
                    key: k.clone(),
                    node_id: node,
                    host: format!("b{node}"),
                    port: 9092,
                    error_code: error.0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    } else {
        FindCoordinatorResponse {
            error_code: error.0,
            node_id: node,
            host: format!("b{node}"),
            port: 9092,
            ..Default::default()
        }
    };
    Reply::Body(ResponseBody::FindCoordinator(body))
}

fn with_coordinator(brokers: &mut [Broker], node: i32) {
    for b in brokers.iter_mut() {
        let taken = std::mem::replace(b, Broker::new(0, "x", 1));
        *b = taken.with_hook(move |req| match req.api() {
            ApiKey::FindCoordinator => answer(req, node, ErrorCode::NONE),
            _ => Reply::Default,
        });
    }
}

fn lookups(h: &Harness) -> Vec<(i16, String, Vec<String>)> {
    h.brokers
        .iter()
        .flat_map(|b| b.of(ApiKey::FindCoordinator))
        .map(|r| match &r.body {
            RequestBody::FindCoordinator(f) => {
                (r.version(), f.key.clone(), f.coordinator_keys.clone())
            }
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn batched_lookup_then_routes_to_the_coordinator_and_caches_it() {
    let (mut brokers, cluster) = three_brokers();
    with_coordinator(&mut brokers, 2);
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(group("g"), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 2);
    let l = lookups(&h);
    assert_eq!(l.len(), 1);
    let (version, key, keys) = &l[0];
    assert!(*version >= 4);
    assert_eq!(key, "");
    assert_eq!(keys, &vec!["g".to_string()]);
    assert_eq!(
        h.client.network().coordinator(CoordinatorKind::Group, "g"),
        Some(2)
    );
    let id = h.send(group("g"), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 2);
    assert_eq!(lookups(&h).len(), 1, "the coordinator is cached");
}

#[test]
fn single_key_lookup_on_brokers_before_v4() {
    let (mut brokers, cluster) = three_brokers();
    for b in brokers.iter_mut() {
        let taken = std::mem::replace(b, Broker::new(0, "x", 1));
        *b = taken.with_range(ApiKey::FindCoordinator, 0, 2);
    }
    with_coordinator(&mut brokers, 1);
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(group("g"), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 1);
    assert_eq!(lookups(&h), vec![(2, "g".to_string(), vec![])]);
}

#[test]
fn coordinator_not_available_is_retried_after_the_backoff() {
    let (mut brokers, cluster) = three_brokers();
    let calls = Rc::new(Cell::new(0));
    for b in brokers.iter_mut() {
        let taken = std::mem::replace(b, Broker::new(0, "x", 1));
        let calls = calls.clone();
        *b = taken.with_hook(move |req| match req.api() {
            ApiKey::FindCoordinator => {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    answer(req, -1, ErrorCode::COORDINATOR_NOT_AVAILABLE)
                } else {
                    answer(req, 0, ErrorCode::NONE)
                }
            }
            _ => Reply::Default,
        });
    }
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let start = h.now;
    let id = h.send(group("g"), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 0);
    assert_eq!(calls.get(), 3);
    // Two failed lookups, each followed by retry_backoff (100 ms by default).
    assert!(
        h.now - start >= Duration::from_millis(200),
        "{:?}",
        h.now - start
    );
}

#[test]
fn a_non_retriable_lookup_error_fails_the_request_at_once() {
    let (mut brokers, cluster) = three_brokers();
    for b in brokers.iter_mut() {
        let taken = std::mem::replace(b, Broker::new(0, "x", 1));
        *b = taken.with_hook(move |req| match req.api() {
            ApiKey::FindCoordinator => answer(req, -1, ErrorCode::GROUP_AUTHORIZATION_FAILED),
            _ => Reply::Default,
        });
    }
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(group("g"), ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(
        matches!(&err, NetError::Broker { api: ApiKey::FindCoordinator, code, .. } if *code == ErrorCode::GROUP_AUTHORIZATION_FAILED),
        "{err}"
    );
    // The failure is not cached for good: a later request looks up again.
    let before = lookups(&h).len();
    let id = h.send(group("g"), ListGroupsRequest::default());
    h.expect_err(id, Duration::from_secs(1));
    assert_eq!(lookups(&h).len(), before + 1);
}

#[test]
fn invalidation_makes_the_next_request_look_the_coordinator_up_again() {
    let (mut brokers, cluster) = three_brokers();
    with_coordinator(&mut brokers, 2);
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(group("g"), ListGroupsRequest::default());
    h.expect_ok(id);
    let now = h.now;
    h.client
        .network()
        .invalidate_coordinator(CoordinatorKind::Group, "g", now);
    let id = h.send(group("g"), ListGroupsRequest::default());
    h.expect_ok(id);
    assert_eq!(lookups(&h).len(), 2);
}
