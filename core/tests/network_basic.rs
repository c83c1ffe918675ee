//! The network core against a scripted in-memory broker: bootstrap, version negotiation,
//! framing, correlation and request timeouts.

mod network_support;

use std::time::Duration;

use kafkit_core::network::{NetError, Target};
use kafkit_core::protocol::{
    self, ApiKey, ApiVersionsResponse, ListGroupsRequest, ListGroupsResponse, Message,
    MetadataRequest, RequestBody, ResponseBody,
};
use network_support::{options, response_frame, three_brokers, Broker, Delivery, Harness, Reply};

fn list_groups() -> ListGroupsRequest {
    ListGroupsRequest::default()
}

#[test]
fn bootstrap_negotiates_versions_fetches_metadata_and_completes_a_request() {
    let (brokers, cluster) = three_brokers();
    // Broker 2 is older than this build for Metadata and newer for ListGroups.
    let mut brokers = brokers;
    let b2 = brokers.pop().unwrap();
    brokers.push(
        b2.with_range(ApiKey::Metadata, 0, 8)
            .with_range(ApiKey::ListGroups, 0, 9),
    );
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);

    // Metadata of the cluster, via the bootstrap address.
    h.client.network().request_metadata(false, h.now);
    h.drive();
    assert_eq!(h.connects.len(), 1);
    assert_eq!(
        (h.connects[0].host.as_str(), h.connects[0].port),
        ("b0", 9092)
    );

    let b0 = &h.brokers[0];
    assert_eq!(b0.apis(), vec![ApiKey::ApiVersions, ApiKey::Metadata]);
    let api_versions = &b0.received[0];
    let (_, ours_max) = ApiKey::ApiVersions.request_versions();
    assert_eq!(
        api_versions.version(),
        ours_max,
        "ApiVersions at our highest version"
    );
    assert_eq!(
        protocol::request_header_version(ApiKey::ApiVersions, ours_max),
        2,
        "ApiVersions v{ours_max} goes with request header v2"
    );
    // Header v2 ends with an (empty) tagged-field section right after the client id.
    let client_id_len = i16::from_be_bytes([api_versions.raw[8], api_versions.raw[9]]) as usize;
    assert_eq!(
        api_versions.raw[10 + client_id_len],
        0,
        "header v2 tagged fields"
    );
    assert_eq!(api_versions.header.client_id.as_deref(), Some("kafkit"));
    let RequestBody::ApiVersions(av) = &api_versions.body else {
        unreachable!()
    };
    assert_eq!(av.client_software_name, "kafkit");
    assert!(!av.client_software_version.is_empty());
    // Metadata at our highest version: the broker supports all of them.
    let (_, metadata_max) = ApiKey::Metadata.request_versions();
    assert_eq!(b0.received[1].version(), metadata_max);

    assert_eq!(h.metadata_updates.len(), 1);
    let view = h.client.network().cluster().clone();
    assert_eq!(view.brokers.len(), 3);
    assert_eq!(view.controller, 1);
    assert_eq!(view.brokers[&2].address(), "b2:9092");

    // A request to node 2: a new connection, negotiated at min(ours, broker's).
    let id = h.send(Target::Node(2), list_groups());
    let resp = h.expect_ok(id);
    assert_eq!(resp.node, 2);
    let (_, list_groups_max) = ApiKey::ListGroups.request_versions();
    assert!(list_groups_max < 9);
    assert_eq!(
        resp.version, list_groups_max,
        "ours is lower than the broker's 9"
    );
    assert!(matches!(resp.body, ResponseBody::ListGroups(_)));
    let b2 = &h.brokers[2];
    assert_eq!(b2.apis(), vec![ApiKey::ApiVersions, ApiKey::ListGroups]);
    assert_eq!(b2.received[1].version(), list_groups_max);

    let id = h.send(Target::Node(2), MetadataRequest::default());
    let resp = h.expect_ok(id);
    assert_eq!(resp.version, 8, "the broker's 8 is lower than ours");
    assert_eq!(h.brokers[2].received.last().unwrap().version(), 8);
    // Same connection reused.
    assert_eq!(h.connects.len(), 2);

    // A request to any broker completes with the decoded response.
    let id = h.send(Target::Any, list_groups());
    let resp = h.expect_ok(id);
    assert!(
        (0..3).contains(&resp.node),
        "answered by a real node: {}",
        resp.node
    );
    assert_eq!(
        resp.body,
        ResponseBody::ListGroups(ListGroupsResponse::default())
    );
}

#[test]
fn any_target_uses_bootstrap_before_metadata() {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b1", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, list_groups());
    let resp = h.expect_ok(id);
    assert_eq!(resp.node, -1, "bootstrap addresses have negative ids");
    assert_eq!(
        h.brokers[1].apis(),
        vec![ApiKey::ApiVersions, ApiKey::ListGroups]
    );
}

fn framing_scenario(delivery: Delivery) -> Harness {
    let (brokers, cluster) = three_brokers();
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    h.delivery = delivery;
    let ids: Vec<_> = (0..3)
        .map(|_| {
            let id = h.next_op();
            h.client.send(id, Target::Any, list_groups(), None, h.now);
            id
        })
        .collect();
    h.drive();
    for id in ids {
        let resp = h.expect_ok(id);
        assert!(matches!(resp.body, ResponseBody::ListGroups(_)));
    }
    assert_eq!(
        h.brokers[0].apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::ListGroups,
            ApiKey::ListGroups,
            ApiKey::ListGroups
        ]
    );
    h
}

#[test]
fn responses_delivered_one_byte_at_a_time() {
    let h = framing_scenario(Delivery::Bytewise);
    // Every byte of the ApiVersions response and of three ListGroups responses separately.
    assert!(h.data_calls > 100, "{} handle_data calls", h.data_calls);
}

#[test]
fn several_responses_in_one_handle_data_call() {
    let h = framing_scenario(Delivery::Coalesced);
    // ApiVersions, then all three ListGroups responses in a single call.
    assert_eq!(h.data_calls, 2);
}

#[test]
fn unsupported_api_versions_version_retries_at_the_brokers_highest() {
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092).with_range(ApiKey::ApiVersions, 0, 2);
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, list_groups());
    h.expect_ok(id);
    let b0 = &h.brokers[0];
    let versions: Vec<i16> = b0
        .of(ApiKey::ApiVersions)
        .iter()
        .map(|r| r.version())
        .collect();
    let (_, ours_max) = ApiKey::ApiVersions.request_versions();
    assert_eq!(
        versions,
        vec![ours_max, 2],
        "after UNSUPPORTED_VERSION listing 0..2, the retry is at v2"
    );
    assert_eq!(b0.apis().last(), Some(&ApiKey::ListGroups));
}

#[test]
fn unsupported_api_versions_answer_decodes_as_v0() {
    // The fixture itself: what a KIP-511 broker sends is a v0 body that a v3+ decoder rejects.
    let body = ApiVersionsResponse {
        error_code: 35,
        api_keys: vec![protocol::api_versions::response::ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 2,
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = body.to_vec(0).unwrap();
    assert_eq!(
        ApiVersionsResponse::decode_exact(bytes.clone(), 0).unwrap(),
        body
    );
    assert!(ApiVersionsResponse::decode_exact(bytes, 4).is_err());
}

#[test]
fn mismatched_correlation_id_closes_the_connection_and_fails_the_request() {
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::ListGroups => Reply::Bytes(response_frame(
            ApiKey::ListGroups,
            req.version(),
            req.header.correlation_id + 1000,
            &ResponseBody::ListGroups(Default::default()),
        )),
        _ => Reply::Default,
    });
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, list_groups());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(matches!(err, NetError::Decode { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("b0:9092"), "names the broker: {text}");
    assert!(text.contains("correlation id"), "names the cause: {text}");
    assert_eq!(h.closes.len(), 1, "the connection is closed");
    assert_eq!(h.closes[0].1, h.connects[0].conn);
    // Failed at once, not after a timeout.
    assert_eq!(h.elapsed(), Duration::ZERO);
}

#[test]
fn unsolicited_response_closes_the_connection() {
    // A response while nothing is in flight.
    let (mut brokers, cluster) = three_brokers();
    let mut sent_extra = false;
    brokers[0] = Broker::new(0, "b0", 9092).with_hook(move |req| match req.api() {
        ApiKey::ListGroups if !sent_extra => {
            sent_extra = true;
            let body = ResponseBody::ListGroups(Default::default());
            let mut bytes = response_frame(
                ApiKey::ListGroups,
                req.version(),
                req.header.correlation_id,
                &body,
            );
            bytes.extend(response_frame(ApiKey::ListGroups, req.version(), 99, &body));
            Reply::Bytes(bytes)
        }
        _ => Reply::Default,
    });
    let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
    let id = h.send(Target::Any, list_groups());
    h.expect_ok(id);
    assert_eq!(
        h.closes.len(),
        1,
        "the stray response closed the connection"
    );
    // The next request gets a fresh connection.
    let id = h.send(Target::Any, list_groups());
    h.expect_ok(id);
    assert_eq!(h.connects.len(), 2);
}

#[test]
fn request_timeout_fails_the_request_naming_the_broker_and_closes() {
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::ListGroups => Reply::Silence,
        _ => Reply::Default,
    });
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.request_timeout = Duration::from_secs(5);
    let mut h = Harness::new(opts, brokers, cluster);
    let sent_at = h.now;
    let id = h.send(Target::Any, list_groups());
    assert_eq!(h.brokers[0].apis().last(), Some(&ApiKey::ListGroups));
    assert!(h.result(id).is_none());
    assert_eq!(
        h.poll_timeout(),
        Some(sent_at + Duration::from_secs(5)),
        "the next deadline is the request's"
    );
    h.advance(Duration::from_millis(4999));
    assert!(h.result(id).is_none(), "not before the deadline");
    assert!(h.closes.is_empty());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert_eq!(h.results[&id].0 - sent_at, Duration::from_secs(5));
    assert!(matches!(err, NetError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("b0:9092"), "names the broker: {text}");
    assert!(text.contains("5000ms"), "says how long: {text}");
    assert_eq!(h.closes.len(), 1, "the connection is closed");
}
