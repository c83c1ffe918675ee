//! KIP-219 throttling: a response carrying `throttle_time_ms` holds back the next requests on
//! that connection until the throttle time has passed, from the response's receipt; other
//! brokers go on, timeouts still apply, and pre-KIP-219 versions (where the broker delayed the
//! answer itself) do not hold anything back.

mod network_support;

use std::time::Duration;

use kafkit_core::network::{NetError, Target};
use kafkit_core::protocol::{ApiKey, ListGroupsRequest, ListGroupsResponse, ResponseBody};
use network_support::{options, three_brokers, Harness, Reply};

const THROTTLE: Duration = Duration::from_millis(500);

/// Three brokers; broker 1 throttles its first ListGroups answer by 500 ms.
fn throttling_harness(list_groups_max: i16) -> Harness {
    let (mut brokers, cluster) = three_brokers();
    let b1 = std::mem::replace(&mut brokers[1], network_support::Broker::new(0, "", 0));
    let mut answered = false;
    brokers[1] = b1
        .with_range(ApiKey::ListGroups, 0, list_groups_max)
        .with_hook(move |r| {
            if r.api() != ApiKey::ListGroups || answered {
                return Reply::Default;
            }
            answered = true;
            Reply::Body(ResponseBody::ListGroups(ListGroupsResponse {
                throttle_time_ms: THROTTLE.as_millis() as i32,
                ..Default::default()
            }))
        });
    Harness::new(options(&[("b0", 9092)]), brokers, cluster)
}

#[test]
fn a_throttled_broker_gets_nothing_until_the_throttle_ends_and_others_are_unaffected() {
    let mut h = throttling_harness(4);
    let first = h.send(Target::Node(1), ListGroupsRequest::default());
    h.expect_ok(first);
    let throttled_at = h.now;
    let stats = h.client.network().throttle_stats().clone();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[&1].throttled_responses, 1);
    assert_eq!(stats[&1].last_ms, 500);
    assert_eq!(stats[&1].until, Some(throttled_at + THROTTLE));
    assert_eq!(
        h.client.network().node_throttled_until(1, h.now),
        Some(throttled_at + THROTTLE)
    );
    assert!(
        h.poll_timeout()
            .is_some_and(|t| t <= throttled_at + THROTTLE),
        "the driver is woken at the throttle's end at the latest"
    );

    let held = h.send(Target::Node(1), ListGroupsRequest::default());
    let other = h.send(Target::Node(2), ListGroupsRequest::default());
    h.expect_ok(other);
    assert_eq!(h.now, throttled_at, "broker 2 answers without waiting");
    assert_eq!(h.brokers[1].of(ApiKey::ListGroups).len(), 1, "held back");

    h.expect_ok(held);
    let sent = h.brokers[1].of(ApiKey::ListGroups)[1].at;
    assert_eq!(
        sent,
        throttled_at + THROTTLE,
        "sent when the throttle ends, not before (and not later)"
    );
    assert_eq!(h.client.network().node_throttled_until(1, h.now), None);
    assert_eq!(h.client.network().throttle_stats()[&1].until, None);
}

#[test]
fn before_kip_219_the_broker_already_waited_so_the_client_does_not() {
    // ListGroups v1: the broker delayed its answer by the throttle time itself.
    let mut h = throttling_harness(1);
    let first = h.send(Target::Node(1), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(first).version, 1);
    let at = h.now;
    let next = h.send(Target::Node(1), ListGroupsRequest::default());
    h.expect_ok(next);
    assert_eq!(h.now, at, "no client-side wait");
    let stats = &h.client.network().throttle_stats()[&1];
    assert_eq!((stats.throttled_responses, stats.total_ms), (1, 500));
    assert_eq!(stats.until, None, "counted, but nothing held back");
}

#[test]
fn a_held_request_still_times_out() {
    let (mut brokers, cluster) = three_brokers();
    let b1 = std::mem::replace(&mut brokers[1], network_support::Broker::new(0, "", 0));
    brokers[1] = b1.with_hook(|r| {
        if r.api() != ApiKey::ListGroups {
            return Reply::Default;
        }
        Reply::Body(ResponseBody::ListGroups(ListGroupsResponse {
            throttle_time_ms: 120_000,
            ..Default::default()
        }))
    });
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let first = h.send(Target::Node(1), ListGroupsRequest::default());
    h.expect_ok(first);
    let start = h.now;
    let held = h.send(Target::Node(1), ListGroupsRequest::default());
    let e = h.expect_err(held, Duration::from_secs(60));
    assert!(matches!(e, NetError::Timeout { .. }), "{e}");
    assert_eq!(h.now - start, Duration::from_secs(30), "request_timeout_ms");
    assert_eq!(h.brokers[1].of(ApiKey::ListGroups).len(), 1, "never sent");
}
