//! Issue 24 item 4: wrong addresses fail fast and say why. Before the first metadata, once
//! every bootstrap address has failed in a round, requests fail at once naming each address's
//! cause (they used to wait the whole request timeout); a TLS listener or an HTTP server
//! answering a plaintext client is recognised from its first bytes.

mod network_support;

use std::time::Duration;

use std::sync::Arc;

use kafkit_core::network::NetOptions;
use kafkit_core::network::{BrokerVersion, NetError, Target};
use kafkit_core::protocol::{ApiKey, ListGroupsRequest};
use kafkit_core::sasl::SaslConfig;
use network_support::{three_brokers, Broker, ClusterSpec, Harness, Reply, SaslSpec};

/// The harness options with `bootstrap_fail_fast` on (the default, set here all the same:
/// these tests are about it).
fn options(bootstrap: &[(&str, u16)]) -> NetOptions {
    let mut opts = network_support::options(bootstrap);
    opts.bootstrap_fail_fast = true;
    opts
}

#[test]
fn every_bootstrap_address_refused_fails_at_once_with_each_cause() {
    let brokers = vec![
        Broker::new(0, "b0", 9092).refusing("connection refused"),
        Broker::new(1, "b1", 9092).refusing("cannot resolve b1: no such host"),
    ];
    let opts = options(&[("b0", 9092), ("b1", 9092)]);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let sent_at = h.now;
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    let took = h.results[&id].0 - sent_at;
    assert!(took < Duration::from_millis(100), "failed after {took:?}");
    let NetError::NoBroker { causes } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(causes.len(), 2, "{causes:?}");
    let text = err.to_string();
    for part in [
        "b0:9092",
        "connection refused",
        "b1:9092",
        "cannot resolve b1",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    // Each address was tried once in the round.
    assert_eq!(h.connects.len(), 2);
}

#[test]
fn the_next_round_starts_after_the_backoff_and_can_succeed() {
    let brokers = vec![Broker::new(0, "b0", 9092).refusing("connection refused")];
    let mut opts = options(&[("b0", 9092)]);
    opts.reconnect_backoff = Duration::from_millis(100);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    assert!(matches!(
        h.expect_err(id, Duration::from_secs(1)),
        NetError::NoBroker { .. }
    ));
    // The broker comes up; after the backoff a request connects and succeeds.
    h.broker(0).refuse = None;
    h.advance(Duration::from_millis(200));
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
}

#[test]
fn without_fail_fast_requests_wait_for_their_timeout() {
    let brokers = vec![Broker::new(0, "b0", 9092).refusing("connection refused")];
    let mut opts = options(&[("b0", 9092)]);
    opts.bootstrap_fail_fast = false;
    opts.conn.request_timeout = Duration::from_secs(3);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(4));
    assert!(matches!(err, NetError::Timeout { .. }), "{err:?}");
}

#[test]
fn one_address_that_works_is_enough() {
    let brokers = vec![
        Broker::new(0, "b0", 9092).refusing("connection refused"),
        Broker::new(1, "b1", 9092),
    ];
    let opts = options(&[("b0", 9092), ("b1", 9092)]);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    for _ in 0..3 {
        let id = h.send(Target::Any, ListGroupsRequest::default());
        h.expect_ok(id);
    }
}

/// A plaintext client reading a TLS alert record or an HTTP answer.
fn answer(first_bytes: &[u8]) -> String {
    // The server answers the client's first request (ApiVersions) with these bytes, as a
    // TLS or HTTP server answers whatever a plaintext Kafka client writes first.
    let reply = first_bytes.to_vec();
    let mut h = Harness::new(
        options(&[("b0", 9092)]),
        vec![Broker::new(0, "b0", 9092).with_hook(move |_| Reply::Bytes(reply.clone()))],
        ClusterSpec::default(),
    );
    let id = h.next_op();
    h.client
        .send(id, Target::Any, ListGroupsRequest::default(), None, h.now);
    let err = h.expect_err(id, Duration::from_millis(500));
    assert!(
        matches!(err, NetError::NotKafka { .. } | NetError::NoBroker { .. }),
        "{err:?}"
    );
    err.to_string()
}

#[test]
fn a_tls_listener_is_recognised() {
    // A TLS 1.2 alert record (level fatal, decode_error), as a TLS server answers garbage.
    let text = answer(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);
    assert!(text.contains("speaks TLS"), "{text}");
    assert!(text.contains("security_protocol=SSL"), "{text}");
    assert!(text.contains("b0:9092"), "{text}");
    // A handshake record too.
    let text = answer(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);
    assert!(text.contains("speaks TLS"), "{text}");
}

#[test]
fn an_http_server_is_recognised() {
    let text = answer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    assert!(text.contains("HTTP port, not Kafka"), "{text}");
}

#[test]
fn fail_fast_is_the_default() {
    let opts = NetOptions::new(vec![("b0".into(), 9092)]);
    assert!(opts.bootstrap_fail_fast);
    assert!(kafkit_core::config::CommonConfig::default().bootstrap_fail_fast);
}

#[test]
fn a_legacy_broker_closing_on_api_versions_is_probed_not_failed() {
    // A broker before 0.10 closes the connection on ApiVersions: twice, then the probes find
    // its release. Those closes are probe results, not a refused bootstrap address, so the
    // request is answered instead of failing with "no bootstrap broker could be reached".
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092).legacy();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let (release, _) = h.client.broker_versions(-1).expect("versions known");
    assert_eq!(release, BrokerVersion::new(0, 9, 0));
    assert_eq!(
        h.brokers[0].apis()[..2],
        [ApiKey::ApiVersions, ApiKey::ApiVersions],
        "the broker closed on ApiVersions twice"
    );
}

#[test]
fn a_lone_brokers_authentication_failure_is_reported_as_itself() {
    let broker = Broker::new(0, "b0", 9092).with_sasl(SaslSpec::plain("alice", "secret"));
    let mut opts = options(&[("b0", 9092)]);
    opts.sasl = Some(Arc::new(SaslConfig::plain("alice", "wrong")));
    let mut h = Harness::new(opts, vec![broker], ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(
        matches!(&err, NetError::Authentication { detail, .. } if detail.contains("invalid user name or password")),
        "{err:?}"
    );
    assert_eq!(h.elapsed(), Duration::ZERO, "failed at once");
}

#[test]
fn an_authentication_failure_beside_a_refused_address_is_reported_as_itself() {
    let brokers = vec![
        Broker::new(0, "b0", 9092).refusing("connection refused"),
        Broker::new(1, "b1", 9092).with_sasl(SaslSpec::plain("alice", "secret")),
    ];
    let mut opts = options(&[("b0", 9092), ("b1", 9092)]);
    opts.sasl = Some(Arc::new(SaslConfig::plain("alice", "wrong")));
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(
        matches!(&err, NetError::Authentication { broker, .. } if broker.contains("b1:9092")),
        "{err:?}"
    );
}
