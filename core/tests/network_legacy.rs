//! Brokers without ApiVersions (before 0.10): detection by probing, the fixed version tables,
//! and versions pinned by configuration.

mod network_support;

use std::sync::Arc;
use std::time::Duration;

use kafkit_core::network::{ApiVersionTable, BrokerVersion, Target};
use kafkit_core::protocol::{
    ApiKey, ListGroupsRequest, MetadataRequest, RequestBody, ResponseBody,
};
use network_support::{options, three_brokers, Broker, Harness, Reply};

fn metadata_body(r: &network_support::Received) -> &MetadataRequest {
    match &r.body {
        RequestBody::Metadata(m) => m,
        _ => panic!("not Metadata: {:?}", r.api()),
    }
}

#[test]
fn broker_closing_on_api_versions_is_probed_and_spoken_to_as_0_9() {
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092).legacy();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    // "All topics", which Metadata v0 says with an empty array.
    h.client.network().request_metadata(true, h.now);
    h.drive();
    h.advance(Duration::from_secs(5));
    let b0 = &h.brokers[0];
    assert_eq!(
        b0.apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::ApiVersions,
            ApiKey::ListGroups,
            // One more ApiVersions before the probed table is trusted (a modern broker that
            // merely dropped two connections would answer it).
            ApiKey::ApiVersions,
            ApiKey::Metadata
        ],
        "two closes on ApiVersions, the 0.9 probe, then the request"
    );
    let probe = &b0.received[2];
    assert_eq!(probe.version(), 0);
    let metadata = &b0.received[4];
    assert_eq!(metadata.version(), 0);
    assert_eq!(
        metadata_body(metadata).topics,
        Some(vec![]),
        "v0 asks for all topics with an empty array"
    );
    assert_eq!(h.metadata_updates.len(), 1);
    let view = h.metadata_updates[0].1.clone();
    assert!(view.topic("t").is_some(), "all topics came back");

    // A user request at v0 too, on the same connection.
    let id = h.send(Target::Node(-1), MetadataRequest::default());
    let resp = h.expect_ok(id);
    assert_eq!(resp.version, 0);
    assert!(matches!(resp.body, ResponseBody::Metadata(_)));
    assert_eq!(
        metadata_body(h.brokers[0].received.last().unwrap()).topics,
        Some(vec![])
    );
    // Two connections closed on ApiVersions, the probe, the confirming ApiVersions attempt,
    // and the working one.
    assert_eq!(h.connects.len(), 5);

    let (_, table) = h.client.broker_versions(-1).expect("versions known");
    assert_eq!(table.broker_range(ApiKey::ListGroups), Some((0, 0)));
    assert_eq!(table.broker_range(ApiKey::ApiVersions), None);
    assert_eq!(table.negotiate(ApiKey::Metadata, None), Some(0));
}

#[test]
fn probed_broker_reports_its_release() {
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092).legacy();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let (release, _) = h.client.broker_versions(-1).expect("versions known");
    assert_eq!(release, BrokerVersion::new(0, 9, 0));
}

#[test]
fn older_probes_follow_when_the_newer_ones_are_not_understood() {
    // 0.8.2: no ListGroups (the broker drops the connection on it), FindCoordinator answers.
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092)
        .legacy()
        .with_hook(|req| match req.api() {
            ApiKey::ListGroups => Reply::Close,
            _ => Reply::Default,
        });
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, MetadataRequest::default());
    let resp = h.expect_ok(id);
    assert_eq!(resp.version, 0);
    assert_eq!(
        h.brokers[0].apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::ApiVersions,
            ApiKey::ListGroups,
            ApiKey::FindCoordinator,
            ApiKey::ApiVersions,
            ApiKey::Metadata
        ]
    );
    let (_, table) = h.client.broker_versions(-1).unwrap();
    assert_eq!(table.broker_range(ApiKey::FindCoordinator), Some((0, 0)));
    assert_eq!(table.broker_range(ApiKey::ListGroups), None);
    // An API the release lacks fails clearly instead of being sent. (Addressed to the legacy
    // bootstrap node itself: the metadata above names modern brokers "any" could pick.)
    let id = h.send(Target::Node(-1), ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1)).to_string();
    assert!(err.contains("ListGroups"), "{err}");
    assert!(err.contains("b0:9092"), "{err}");
}

#[test]
fn pinned_api_version_skips_api_versions() {
    let (brokers, cluster) = three_brokers();
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.pinned_versions = Some(Arc::new(
        ApiVersionTable::for_release(BrokerVersion::new(0, 10, 0)).unwrap(),
    ));
    let mut h = Harness::new(opts, brokers, cluster);
    let id = h.send(Target::Any, MetadataRequest::default());
    let resp = h.expect_ok(id);
    assert_eq!(resp.version, 1, "0.10.0 speaks Metadata v1");
    assert_eq!(h.brokers[0].apis(), vec![ApiKey::Metadata]);
    assert_eq!(h.brokers[0].received[0].version(), 1);
    let id = h.send(Target::Any, ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).version, 0);
    assert!(h
        .brokers
        .iter()
        .all(|b| b.of(ApiKey::ApiVersions).is_empty()));
}

#[test]
fn pinned_0_9_speaks_metadata_v0_with_all_topics_as_empty_array() {
    let (brokers, cluster) = three_brokers();
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.pinned_versions = Some(Arc::new(
        ApiVersionTable::for_release(BrokerVersion::new(0, 9, 0)).unwrap(),
    ));
    let mut h = Harness::new(opts, brokers, cluster);
    h.client.network().request_metadata(true, h.now);
    h.drive();
    let b0 = &h.brokers[0];
    assert_eq!(b0.apis(), vec![ApiKey::Metadata]);
    assert_eq!(b0.received[0].version(), 0);
    assert_eq!(metadata_body(&b0.received[0]).topics, Some(vec![]));
    assert_eq!(h.metadata_updates.len(), 1);
}

#[test]
fn modern_broker_dropping_two_connections_is_not_taken_for_0_9_forever() {
    let (mut brokers, cluster) = three_brokers();
    let mut drops = 2;
    brokers[0] = Broker::new(0, "b0", 9092).with_hook(move |req| match req.api() {
        ApiKey::ApiVersions if drops > 0 => {
            drops -= 1;
            Reply::Close
        }
        _ => Reply::Default,
    });
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, MetadataRequest::default());
    let resp = h.wait_for(id, Duration::from_secs(30)).expect("answered");
    let (_, ours) = ApiKey::Metadata.request_versions();
    assert_eq!(
        resp.version, ours,
        "a modern broker is spoken to at modern versions"
    );
}

#[test]
fn check_version_reports_the_release_of_a_modern_broker() {
    let (mut brokers, cluster) = three_brokers();
    // What a 2.8 broker lists for a few characteristic APIs.
    brokers[0] = Broker::new(0, "b0", 9092).with_versions(vec![
        (0, 0, 9),
        (1, 0, 12),
        (2, 0, 6),
        (3, 0, 11),
        (16, 0, 4),
        (18, 0, 3),
    ]);
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.next_op();
    h.client.check_version(id, h.now);
    h.drive();
    let resp = h.expect_ok(id);
    assert_eq!(resp.version, 11);
    let (release, table) = h.client.broker_versions(resp.node).unwrap();
    assert_eq!(release, BrokerVersion::new(2, 8, 0));
    assert_eq!(table.broker_range(ApiKey::Fetch), Some((0, 12)));
}
