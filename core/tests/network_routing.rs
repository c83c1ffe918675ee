//! Request routing (leaders, controller), metadata refresh and idle connections.

mod network_support;

use std::time::Duration;

use kafkit_core::network::{NetError, Target};
use kafkit_core::protocol::{ApiKey, ListGroupsRequest, RequestBody};
use network_support::{options, three_brokers, Harness};

fn leader(topic: &str, partition: i32) -> Target {
    Target::Leader {
        topic: topic.into(),
        partition,
    }
}

fn metadata_topics(h: &Harness, node: usize) -> Vec<Option<Vec<String>>> {
    h.brokers[node]
        .of(ApiKey::Metadata)
        .iter()
        .map(|r| match &r.body {
            RequestBody::Metadata(m) => m
                .topics
                .as_ref()
                .map(|ts| ts.iter().filter_map(|t| t.name.clone()).collect()),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn leader_target_fetches_the_topics_metadata_then_goes_to_the_leader() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(leader("t", 2), ListGroupsRequest::default());
    let resp = h.expect_ok(id);
    assert_eq!(resp.node, 2);
    assert_eq!(
        metadata_topics(&h, 0)[0],
        Some(vec!["t".to_string()]),
        "metadata for the topic, from the bootstrap broker"
    );
    assert_eq!(h.brokers[2].of(ApiKey::ListGroups).len(), 1);
    assert!(h.brokers[1].of(ApiKey::ListGroups).is_empty());
    assert_eq!(h.connects[0].host, "b0", "bootstrap first");
    assert!(h.connects.iter().any(|c| c.host == "b2"), "then the leader");

    // Known now: partition 0 goes to node 0 without another metadata request.
    let before = metadata_requests(&h);
    let id = h.send(leader("t", 0), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 0);
    assert_eq!(metadata_requests(&h), before);
}

fn metadata_requests(h: &Harness) -> usize {
    h.brokers.iter().map(|b| b.of(ApiKey::Metadata).len()).sum()
}

#[test]
fn leader_lookup_sends_one_metadata_request() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(leader("t", 2), ListGroupsRequest::default());
    h.expect_ok(id);
    h.advance(Duration::from_secs(1));
    assert_eq!(metadata_requests(&h), 1);
    assert_eq!(h.metadata_updates.len(), 1);
}

#[test]
fn controller_target_goes_to_the_controller() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b2", 9092)]), brokers, cluster);
    let id = h.send(Target::Controller, ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 1);
    assert_eq!(h.elapsed(), Duration::ZERO, "no waiting for a timeout");
    assert_eq!(h.brokers[1].of(ApiKey::ListGroups).len(), 1);
}

#[test]
fn node_target_unknown_before_metadata_is_looked_up() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Node(2), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 2);
    assert_eq!(h.elapsed(), Duration::ZERO, "no waiting for a timeout");
    assert_eq!(h.brokers[0].of(ApiKey::Metadata).len(), 1);
    assert_eq!(h.brokers[2].of(ApiKey::ListGroups).len(), 1);
}

#[test]
fn unknown_topic_fails_with_unknown_topic_or_partition() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(leader("nope", 0), ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert_eq!(err, NetError::UnknownTopicOrPartition("nope".into()));
    assert_eq!(h.elapsed(), Duration::ZERO, "at once, not after a timeout");
    assert!(err.to_string().contains("nope"));
}

#[test]
fn partition_out_of_range_fails() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(leader("t", 7), ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(
        matches!(err, NetError::UnknownTopicOrPartition(_)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("t-7"), "{text}");
    assert!(text.contains("3 partitions"), "{text}");
}

#[test]
fn leader_being_elected_is_looked_up_again_after_retry_backoff() {
    let (brokers, mut cluster) = three_brokers();
    cluster.topics[0].leaders = vec![-1, 1, 2];
    let mut opts = options(&[("b0", 9092)]);
    opts.retry_backoff = Duration::from_millis(100);
    let mut h = Harness::new(opts, brokers, cluster);
    let id = h.send(leader("t", 0), ListGroupsRequest::default());
    assert!(h.result(id).is_none(), "waits for a leader");
    let first = metadata_requests(&h);
    // The election ends; the next look happens after retry_backoff, not metadata_max_age.
    h.cluster.topics[0].leaders[0] = 1;
    let resp = h.expect_ok(id);
    assert_eq!(resp.node, 1);
    assert!(metadata_requests(&h) > first);
    assert_eq!(h.elapsed(), Duration::from_millis(100));
}

#[test]
fn idle_connections_close_after_connections_max_idle() {
    let (brokers, cluster) = three_brokers();
    let mut opts = options(&[("b0", 9092)]);
    opts.connections_max_idle = Duration::from_secs(60);
    let mut h = Harness::new(opts, brokers, cluster);
    h.advance(Duration::from_secs(1));
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let used_at = h.now;
    let conn = h.connects[0].conn;
    assert_eq!(h.poll_timeout(), Some(used_at + Duration::from_secs(60)));
    h.advance(Duration::from_millis(59_999));
    assert!(h.closes.is_empty(), "not idle long enough yet");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closes, vec![(used_at + Duration::from_secs(60), conn)]);
    assert_eq!(h.poll_timeout(), None, "nothing left to wait for");
    // A new request opens a new connection.
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    assert_eq!(h.connects.len(), 2);
    assert_ne!(h.connects[1].conn, conn, "connection ids are not reused");
}

#[test]
fn busy_connections_do_not_count_as_idle() {
    let (brokers, cluster) = three_brokers();
    let mut opts = options(&[("b0", 9092)]);
    opts.connections_max_idle = Duration::from_secs(10);
    let mut h = Harness::new(opts, brokers, cluster);
    for _ in 0..5 {
        let id = h.send(Target::Any, ListGroupsRequest::default());
        h.expect_ok(id);
        h.advance(Duration::from_secs(8));
    }
    assert!(h.closes.is_empty(), "used every 8 s, idle limit 10 s");
    assert_eq!(h.connects.len(), 1);
}

#[test]
fn metadata_refreshes_after_max_age_when_topics_are_of_interest() {
    let (brokers, cluster) = three_brokers();
    let mut opts = options(&[("b0", 9092)]);
    opts.metadata_max_age = Duration::from_secs(10);
    let mut h = Harness::new(opts, brokers, cluster);
    h.client.network().add_topic_interest("t");
    h.client.network().request_metadata(false, h.now);
    h.drive();
    assert_eq!(h.metadata_updates.len(), 1);
    assert_eq!(h.poll_timeout(), Some(h.start + Duration::from_secs(10)));
    h.advance(Duration::from_millis(9_999));
    assert_eq!(h.metadata_updates.len(), 1);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.metadata_updates.len(), 2);
    assert_eq!(h.metadata_updates[1].0, h.start + Duration::from_secs(10));
    h.advance(Duration::from_secs(25));
    assert_eq!(h.metadata_updates.len(), 4, "every 10 s");
    let all: Vec<_> = h
        .brokers
        .iter()
        .flat_map(|b| b.of(ApiKey::Metadata))
        .collect();
    assert_eq!(all.len(), 4);
    for r in all {
        let RequestBody::Metadata(m) = &r.body else {
            unreachable!()
        };
        let names: Vec<_> = m
            .topics
            .iter()
            .flatten()
            .filter_map(|t| t.name.clone())
            .collect();
        assert_eq!(names, vec!["t".to_string()]);
    }
    let view = h.client.network().cluster().clone();
    assert_eq!(view.leader_for("t", 2), Some(2));
}

#[test]
fn no_metadata_refresh_without_topics_of_interest() {
    let (brokers, cluster) = three_brokers();
    let mut opts = options(&[("b0", 9092)]);
    opts.metadata_max_age = Duration::from_secs(10);
    let mut h = Harness::new(opts, brokers, cluster);
    h.client.network().request_metadata(false, h.now);
    h.drive();
    assert_eq!(h.metadata_updates.len(), 1);
    h.advance(Duration::from_secs(60));
    assert_eq!(h.metadata_updates.len(), 1);
}

#[test]
fn node_unknown_to_metadata_does_not_storm_the_cluster_with_metadata_requests() {
    let (brokers, cluster) = three_brokers();
    let brokers = brokers
        .into_iter()
        .map(|b| b.with_response_delay(Duration::from_millis(1)))
        .collect();
    let mut opts = options(&[("b0", 9092)]);
    opts.retry_backoff = Duration::from_millis(100);
    opts.conn.request_timeout = Duration::from_secs(10);
    let mut h = Harness::new(opts, brokers, cluster);
    let id = h.send(Target::Node(99), ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(11));
    assert!(err.to_string().contains("node 99"), "{err}");
    // At most one refresh per retry_backoff while waiting.
    let n = metadata_requests(&h);
    assert!(n <= 10_000 / 100 + 2, "{n} Metadata requests in 10 s");
}
