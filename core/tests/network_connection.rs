//! One connection's life: setup timeouts, the in-flight limit, requests without responses,
//! the broker closing, version caps, encode failures and closing the client.

mod network_support;

use std::time::Duration;

use kafkit_core::network::{NetError, Target};
use kafkit_core::protocol::{ApiKey, ListGroupsRequest, ProduceRequest, RequestBody, ResponseBody};
use network_support::{options, three_brokers, Broker, ClusterSpec, Harness, Reply};

fn single(broker: Broker) -> Vec<Broker> {
    vec![broker]
}

#[test]
fn broker_silent_on_api_versions_hits_the_setup_timeout() {
    let broker = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::ApiVersions => Reply::Silence,
        _ => Reply::Default,
    });
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.setup_timeout = Duration::from_secs(2);
    opts.conn.request_timeout = Duration::from_secs(5);
    // The request waiting out its own timeout across setup retries (network_fail_fast.rs
    // checks the default, which fails it when the round ends).
    opts.bootstrap_fail_fast = false;
    let mut h = Harness::new(opts, single(broker), ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.advance(Duration::from_millis(1999));
    assert!(h.closes.is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closes.len(), 1, "closed at setup_timeout");
    let err = h.expect_err(id, Duration::from_secs(4));
    assert_eq!(h.results[&id].0 - h.start, Duration::from_secs(5));
    let text = err.to_string();
    assert!(text.contains("b0:9092"), "{text}");
    assert!(text.contains("negotiating API versions"), "{text}");
    // Tried again after the first setup timeout.
    assert!(h.brokers[0].of(ApiKey::ApiVersions).len() >= 2);
}

#[test]
fn connection_that_never_opens_hits_the_setup_timeout() {
    let broker = Broker::new(0, "b0", 9092).with_connect_delay(Duration::from_secs(3600));
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.setup_timeout = Duration::from_secs(2);
    opts.conn.request_timeout = Duration::from_secs(3);
    let mut h = Harness::new(opts, single(broker), ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(4));
    assert_eq!(
        h.closes.len(),
        1,
        "the attempt was abandoned at setup_timeout"
    );
    assert_eq!(h.closes[0].0 - h.start, Duration::from_secs(2));
    let text = err.to_string();
    assert!(text.contains("timed out connecting"), "{text}");
}

#[test]
fn in_flight_requests_are_limited_per_connection() {
    let broker = Broker::new(0, "b0", 9092).with_response_delay(Duration::from_millis(10));
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.max_in_flight = 2;
    let mut h = Harness::new(opts, single(broker), ClusterSpec::default());
    let ids: Vec<_> = (0..5)
        .map(|_| {
            let id = h.next_op();
            h.client
                .send(id, Target::Any, ListGroupsRequest::default(), None, h.now);
            id
        })
        .collect();
    h.drive();
    h.advance(Duration::from_millis(10)); // ApiVersions answered
    assert_eq!(h.brokers[0].of(ApiKey::ListGroups).len(), 2);
    h.advance(Duration::from_millis(10));
    assert_eq!(h.brokers[0].of(ApiKey::ListGroups).len(), 4);
    for id in &ids {
        h.expect_ok(*id);
    }
    // Never more than two outstanding: request k+2 arrives after response k.
    let at: Vec<_> = h.brokers[0]
        .of(ApiKey::ListGroups)
        .iter()
        .map(|r| r.at)
        .collect();
    for k in 0..3 {
        assert!(at[k + 2] >= at[k] + Duration::from_millis(10));
    }
    assert_eq!(h.connects.len(), 1, "one broker, one connection");
    // Completed in order.
    let done: Vec<_> = ids.iter().map(|id| h.results[id].0).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn requests_without_responses_complete_when_written() {
    // acks=0: the broker never answers; the next request's response still matches.
    let broker = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::Produce => Reply::Silence,
        _ => Reply::Default,
    });
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        single(broker),
        ClusterSpec::default(),
    );
    let produce = RequestBody::Produce(ProduceRequest {
        acks: 0,
        timeout_ms: 1000,
        ..Default::default()
    });
    let id = h.send(Target::Any, produce);
    let resp = h.expect_ok(id);
    assert!(matches!(resp.body, ResponseBody::Produce(_)));
    assert_eq!(h.elapsed(), Duration::ZERO);
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    assert!(h.closes.is_empty());
}

#[test]
fn broker_closing_with_requests_in_flight_fails_them_naming_the_broker() {
    let broker = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::ListGroups => Reply::Close,
        _ => Reply::Default,
    });
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        single(broker),
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(matches!(err, NetError::Disconnected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("b0:9092"), "{text}");
    assert!(text.contains("closed by the broker"), "{text}");
    assert!(
        h.closes.is_empty(),
        "no Close output for a socket the driver reported closed"
    );
}

#[test]
fn max_version_caps_the_negotiated_version() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.next_op();
    h.client.send(
        id,
        Target::Any,
        ListGroupsRequest::default(),
        Some(2),
        h.now,
    );
    h.drive();
    assert_eq!(h.expect_ok(id).version, 2);
    assert_eq!(h.brokers[0].received.last().unwrap().version(), 2);
}

#[test]
fn api_the_broker_lacks_fails_as_unsupported() {
    let broker = Broker::new(0, "b0", 9092).without(ApiKey::ListGroups);
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        single(broker),
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(matches!(err, NetError::Unsupported { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("ListGroups") && text.contains("b0:9092"),
        "{text}"
    );
    assert_eq!(h.elapsed(), Duration::ZERO);
}

#[test]
fn body_not_encodable_at_the_negotiated_version_fails_and_the_connection_lives_on() {
    let broker = Broker::new(0, "b0", 9092).with_range(ApiKey::ListGroups, 0, 3);
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        single(broker),
        ClusterSpec::default(),
    );
    let id = h.send(
        Target::Any,
        ListGroupsRequest {
            states_filter: vec!["Stable".into()],
            ..Default::default()
        },
    );
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(matches!(err, NetError::Encode { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("StatesFilter") && text.contains("b0:9092"),
        "{text}"
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).version, 3);
    assert!(h.closes.is_empty());
}

#[test]
fn failed_metadata_refresh_is_retried_after_retry_backoff() {
    let mut closed_once = false;
    let broker = Broker::new(0, "b0", 9092).with_hook(move |req| match req.api() {
        ApiKey::Metadata if !closed_once => {
            closed_once = true;
            Reply::Close
        }
        _ => Reply::Default,
    });
    let mut opts = options(&[("b0", 9092)]);
    opts.retry_backoff = Duration::from_millis(100);
    opts.reconnect_backoff = Duration::from_millis(10);
    let mut h = Harness::new(opts, single(broker), ClusterSpec::default());
    h.client.network().request_metadata(false, h.now);
    h.drive();
    assert!(h.metadata_updates.is_empty());
    h.advance(Duration::from_millis(99));
    assert!(h.metadata_updates.is_empty(), "not before retry_backoff");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.metadata_updates.len(), 1);
    assert_eq!(h.brokers[0].of(ApiKey::Metadata).len(), 2);
}

#[test]
fn closing_the_client_fails_everything_and_closes_every_connection() {
    let broker = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::ListGroups => Reply::Silence,
        _ => Reply::Default,
    });
    let mut h = Harness::new(
        options(&[("b0", 9092), ("b1", 9092)]),
        vec![broker, Broker::new(1, "b1", 9092).refusing("refused")],
        ClusterSpec::default(),
    );
    let in_flight = h.send(Target::Node(-1), ListGroupsRequest::default());
    let waiting = h.send(Target::Node(-2), ListGroupsRequest::default());
    assert_eq!(h.brokers[0].of(ApiKey::ListGroups).len(), 1);
    h.client.abort();
    h.drive();
    assert_eq!(h.result(in_flight), Some(&Err(NetError::Closed)));
    assert_eq!(h.result(waiting), Some(&Err(NetError::Closed)));
    assert_eq!(h.closes.len(), 1);
    assert_eq!(
        h.closed_at,
        Some(h.now),
        "Closed reported after the failures"
    );
    assert_eq!(h.poll_timeout(), None);
    // A request after close: nothing opens, no busy loop, and it fails.
    let later = h.send(Target::Any, ListGroupsRequest::default());
    h.advance(Duration::from_secs(60));
    assert_eq!(h.connects.len(), 2, "nothing opened after close");
    assert!(h.result(later).is_some_and(|r| r.is_err()));
}

#[test]
fn request_after_close_fails_at_once_with_closed() {
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        single(Broker::new(0, "b0", 9092)),
        ClusterSpec::default(),
    );
    h.client.close(Duration::from_secs(5), h.now);
    h.drive();
    assert_eq!(
        h.closed_at,
        Some(h.now),
        "nothing in progress: closed at once"
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    assert_eq!(h.result(id), Some(&Err(NetError::Closed)));
    assert!(h.connects.is_empty());
}

#[test]
fn graceful_close_lets_requests_in_progress_finish_and_refuses_new_ones() {
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        single(Broker::new(0, "b0", 9092).with_response_delay(Duration::from_millis(300))),
        ClusterSpec::default(),
    );
    let first = h.send(Target::Any, ListGroupsRequest::default());
    h.client.close(Duration::from_secs(5), h.now);
    let refused = h.send(Target::Any, ListGroupsRequest::default());
    assert_eq!(h.result(refused), Some(&Err(NetError::Closed)));
    assert_eq!(h.closed_at, None, "a request is still in progress");
    h.expect_ok(first);
    h.drive();
    let closed = h.closed_at.expect("closed once the last request completed");
    assert!(
        closed - h.start < Duration::from_secs(5),
        "did not wait for the deadline"
    );
    assert_eq!(h.closes.len(), 1, "the connection closed");
    assert_eq!(h.poll_timeout(), None);
}

#[test]
fn graceful_close_fails_what_is_left_at_its_deadline() {
    let broker = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::ListGroups => Reply::Silence,
        _ => Reply::Default,
    });
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        single(broker),
        ClusterSpec::default(),
    );
    let stuck = h.send(Target::Any, ListGroupsRequest::default());
    assert_eq!(h.brokers[0].of(ApiKey::ListGroups).len(), 1);
    let closing = h.now;
    h.client.close(Duration::from_secs(2), h.now);
    let err = h.expect_err(stuck, Duration::from_secs(10));
    assert_eq!(err, NetError::Closed);
    assert_eq!(
        h.now - closing,
        Duration::from_secs(2),
        "failed at the close deadline"
    );
    assert_eq!(h.closed_at, Some(h.now));
    assert_eq!(h.closes.len(), 1);
}
