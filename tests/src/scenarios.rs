//! The driver scenarios, each written once over [`Driver`] and run by every driver suite.
//!
//! Every wait is bounded: requests carry the client's request timeout, and loops that wait
//! for the cluster to change poll with a deadline. A failure names the driver, the cluster and
//! what was seen.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafkit_core::config::CommonConfig;
use kafkit_core::network::{BrokerVersion, ClusterView, NetError, NodeId, Response, Target};
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::list_offsets::request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_core::protocol::metadata::request::MetadataRequestTopic;
use kafkit_core::protocol::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, ErrorCode, ListOffsetsRequest,
    MetadataRequest, RequestBody, ResponseBody,
};

use crate::cluster::{unique_topic, TestCluster, MOCK_BROKERS};
use crate::drivers::Driver;
use crate::fake_broker::{Ending, FakeBroker};

/// The request timeout of clients that expect to succeed: generous for a loaded CI box, yet a
/// hung request still fails the test in seconds.
pub const REQUEST_TIMEOUT_MS: u32 = 5_000;

/// The request timeout of the scenarios where requests must fail.
pub const FAILING_REQUEST_TIMEOUT_MS: u32 = 1_500;

/// How much later than its request timeout a failing request may return.
pub const FAILURE_SLACK: Duration = Duration::from_secs(2);

/// Partitions of the topics the scenarios create.
pub const PARTITIONS: i32 = 3;

/// ListOffsets' special timestamp for the log end offset.
const LATEST: i64 = -1;
/// ListOffsets' special timestamp for the log start offset.
const EARLIEST: i64 = -2;

/// The configuration every scenario starts from: the cluster's bootstrap list, the request
/// timeout above, and short backoffs so that reconnects happen within a test's time.
pub fn config(bootstrap: &str) -> CommonConfig {
    let mut config = CommonConfig::default();
    config
        .set("bootstrap_servers", bootstrap)
        .unwrap_or_else(|e| panic!("bootstrap_servers={bootstrap}: {e}"));
    config.client_id = "kafkit-tests".to_owned();
    config.request_timeout_ms = REQUEST_TIMEOUT_MS;
    config.reconnect_backoff_ms = 20;
    config.reconnect_backoff_max_ms = 250;
    config.retry_backoff_ms = 50;
    config.socket_connection_setup_timeout_ms = 3_000;
    config
}

fn start<D: Driver>(driver: &D, config: &CommonConfig) -> D::Client {
    driver
        .start(config)
        .unwrap_or_else(|e| panic!("{}: starting a client: {e}", driver.name()))
}

/// A Metadata request for `topics` (all topics when `None`), creating none.
pub fn metadata_request(topics: Option<&[&str]>) -> RequestBody {
    RequestBody::Metadata(MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic {
                    name: Some((*t).to_owned()),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    })
}

/// An ApiVersions request naming this suite.
pub fn api_versions_request() -> RequestBody {
    RequestBody::ApiVersions(ApiVersionsRequest {
        client_software_name: "kafkit-tests".to_owned(),
        client_software_version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    })
}

/// A ListOffsets request for one partition at `timestamp` (-1 latest, -2 earliest), as a
/// consumer (replica id -1) sends it.
pub fn list_offsets_request(topic: &str, partition: i32, timestamp: i64) -> RequestBody {
    RequestBody::ListOffsets(ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.to_owned(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                timestamp,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// Calls `attempt` until it succeeds, pausing briefly between failures; panics with every
/// failure seen once `within` has passed.
pub fn poll_until<T>(
    within: Duration,
    what: &str,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    let mut failures = Vec::new();
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) => failures.push(format!("after {:?}: {e}", started.elapsed())),
        }
        if started.elapsed() >= within {
            panic!(
                "{what}: not done within {within:?}; attempts:\n  {}",
                failures.join("\n  ")
            );
        }
        // Failures that return at once (a closed connection) must not spin.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates `topic` with [`PARTITIONS`] partitions (through the mock's control API, with the
/// leaders spread over the brokers, or with CreateTopics on an external cluster) and waits
/// until every partition has a leader.
/// Returns the replication factor asked for.
pub fn create_topic<D: Driver>(
    driver: &D,
    client: &D::Client,
    cluster: &TestCluster,
    topic: &str,
) -> usize {
    let replication = match cluster.mock() {
        Some(mock) => {
            mock.create_topic(topic, PARTITIONS, MOCK_BROKERS as i32);
            // The mock picks leaders at random; spread them over the brokers so that every
            // broker leads a partition.
            let brokers: Vec<NodeId> = driver
                .metadata(client, Some(Vec::new()))
                .unwrap_or_else(|e| panic!("{}: metadata of {cluster:?}: {e}", driver.name()))
                .brokers
                .keys()
                .copied()
                .collect();
            for partition in 0..PARTITIONS {
                mock.set_leader(
                    topic,
                    partition,
                    brokers[partition as usize % brokers.len()],
                );
            }
            MOCK_BROKERS
        }
        None => {
            let brokers = driver
                .metadata(client, Some(Vec::new()))
                .unwrap_or_else(|e| panic!("{}: metadata of {cluster:?}: {e}", driver.name()))
                .brokers
                .len();
            let replication = brokers.clamp(1, 3);
            let body = RequestBody::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: topic.to_owned(),
                    num_partitions: PARTITIONS,
                    replication_factor: replication as i16,
                    ..Default::default()
                }],
                timeout_ms: 10_000,
                ..Default::default()
            });
            let resp = driver
                .send(client, Target::Controller, body, None)
                .unwrap_or_else(|e| panic!("{}: CreateTopics {topic}: {e}", driver.name()));
            let ResponseBody::CreateTopics(created) = resp.body else {
                panic!("CreateTopics answered with {:?}", resp.body)
            };
            for t in &created.topics {
                let code = ErrorCode(t.error_code);
                assert!(
                    code.is_ok() || code == ErrorCode::TOPIC_ALREADY_EXISTS,
                    "creating {topic} on {cluster:?}: {code} {:?}",
                    t.error_message
                );
            }
            replication
        }
    };
    poll_until(
        Duration::from_secs(15),
        &format!("{}: waiting for leaders of {topic}", driver.name()),
        || {
            let view = driver
                .metadata(client, Some(vec![topic.to_owned()]))
                .map_err(|e| e.to_string())?;
            let t = view.topic(topic).ok_or("topic missing from metadata")?;
            let ready = t.error.is_ok()
                && t.partitions.len() == PARTITIONS as usize
                && t.partitions.iter().all(|p| p.leader >= 0);
            ready
                .then_some(())
                .ok_or_else(|| format!("not ready yet: {t:?}"))
        },
    );
    replication
}

/// The broker id whose address is `node`'s: a bootstrap id (-1, -2, ...) is looked up by
/// address among the brokers metadata names.
fn broker_id_of(cluster: &TestCluster, view: &ClusterView, node: NodeId) -> NodeId {
    if node >= 0 {
        return node;
    }
    let bootstrap = cluster.bootstrap_addresses();
    let addr = bootstrap
        .get((-node - 1) as usize)
        .unwrap_or_else(|| panic!("bootstrap id {node} beyond the bootstrap list {bootstrap:?}"));
    view.brokers
        .values()
        .find(|b| &b.address() == addr)
        .unwrap_or_else(|| panic!("no broker in metadata has the bootstrap address {addr}"))
        .node_id
}

/// Checks the brokers of a metadata answer: all of them, at the bootstrap addresses, for the
/// mock; well-formed ones for an external cluster (whose advertised names may differ).
fn check_brokers(driver: &str, cluster: &TestCluster, view: &ClusterView) {
    assert!(
        !view.brokers.is_empty(),
        "{driver}: metadata names no broker: {view:?}"
    );
    for (id, b) in &view.brokers {
        assert_eq!(*id, b.node_id, "{driver}: broker map keyed by node id");
        assert!(
            !b.host.is_empty() && b.port != 0,
            "{driver}: malformed broker {b:?}"
        );
    }
    if cluster.mock().is_some() {
        assert_eq!(
            view.brokers.len(),
            MOCK_BROKERS,
            "{driver}: brokers {:?}",
            view.brokers
        );
        let advertised: BTreeSet<String> = view.brokers.values().map(|b| b.address()).collect();
        let bootstrap: BTreeSet<String> = cluster.bootstrap_addresses().into_iter().collect();
        assert_eq!(
            advertised, bootstrap,
            "{driver}: broker addresses vs the mock's bootstrap list"
        );
    }
    // librdkafka's mock never sets its controller id and reports 0, a broker it does not
    // have (its brokers are 1..=3); only a real cluster's controller can be checked.
    if cluster.mock().is_none() {
        assert!(
            view.controller < 0 || view.brokers.contains_key(&view.controller),
            "{driver}: controller {} is not among the brokers",
            view.controller
        );
    }
}

/// Checks a topic of a metadata answer: [`PARTITIONS`] partitions numbered from 0, each led by
/// a known broker that is among its replicas and in sync.
fn check_topic(driver: &str, view: &ClusterView, topic: &str, replication: usize) {
    let t = view
        .topic(topic)
        .unwrap_or_else(|| panic!("{driver}: {topic} missing from metadata: {view:?}"));
    assert!(t.error.is_ok(), "{driver}: {topic}: {}", t.error);
    assert_eq!(t.name, topic);
    assert!(!t.is_internal);
    let indices: Vec<i32> = t.partitions.iter().map(|p| p.partition).collect();
    assert_eq!(
        indices,
        (0..PARTITIONS).collect::<Vec<_>>(),
        "{driver}: {topic} partitions"
    );
    for p in &t.partitions {
        let at = format!("{driver}: {topic}-{}", p.partition);
        assert!(p.error.is_ok(), "{at}: {}", p.error);
        assert!(
            view.brokers.contains_key(&p.leader),
            "{at}: leader {} unknown",
            p.leader
        );
        assert_eq!(
            p.replicas.len(),
            replication,
            "{at}: replicas {:?}",
            p.replicas
        );
        assert!(p.replicas.contains(&p.leader), "{at}: leader not a replica");
        assert!(!p.isr.is_empty(), "{at}: empty ISR");
        assert!(
            p.isr.iter().all(|r| p.replicas.contains(r)),
            "{at}: ISR {:?}",
            p.isr
        );
        assert!(
            p.replicas.iter().all(|r| view.brokers.contains_key(r)),
            "{at}: replicas {:?} vs brokers",
            p.replicas
        );
    }
}

/// 1. `check_version` connects, negotiates, and reports a node, a version guess and an API
///    table with the APIs a client needs.
pub fn connect_and_negotiate<D: Driver>(driver: &D, cluster: &TestCluster) {
    let name = driver.name();
    let client = start(driver, &config(&cluster.bootstrap()));
    let (node, version, table) = driver
        .check_version(&client)
        .unwrap_or_else(|e| panic!("{name}: check_version against {cluster:?}: {e}"));
    eprintln!("{name}: node {node} guessed as Kafka {version}");
    let bootstrap = cluster.bootstrap_addresses();
    if node < 0 {
        assert!(
            (-node) as usize <= bootstrap.len(),
            "{name}: bootstrap id {node} beyond {bootstrap:?}"
        );
    } else {
        let view = driver
            .metadata(&client, Some(Vec::new()))
            .unwrap_or_else(|e| panic!("{name}: metadata: {e}"));
        assert!(
            view.brokers.contains_key(&node),
            "{name}: node {node} not in {view:?}"
        );
    }
    assert!(
        version >= BrokerVersion::new(0, 10, 0),
        "{name}: a broker answering ApiVersions is at least 0.10, guessed {version}"
    );
    for api in [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
    ] {
        assert!(
            table.broker_range(api).is_some(),
            "{name}: the broker's API table lacks {api:?}: {table:?}"
        );
        assert!(
            table.negotiate(api, None).is_some(),
            "{name}: no common version of {api:?}: broker {:?}, ours {:?}",
            table.broker_range(api),
            api.request_versions()
        );
    }
    // A second check reuses what the first learnt.
    let (_, again, _) = driver
        .check_version(&client)
        .unwrap_or_else(|e| panic!("{name}: second check_version: {e}"));
    assert_eq!(again, version, "{name}: the version guess changed");
}

/// 2. Metadata of all topics and of one topic: the brokers at their addresses, the topic with
///    its partitions, leaders among the brokers, replicas and ISR; an unknown topic is
///    reported as such, not created.
pub fn metadata_of_three_brokers<D: Driver>(driver: &D, cluster: &TestCluster) {
    let name = driver.name();
    let client = start(driver, &config(&cluster.bootstrap()));
    let topic = unique_topic(name, "metadata");
    let replication = create_topic(driver, &client, cluster, &topic);

    let all = driver
        .metadata(&client, None)
        .unwrap_or_else(|e| panic!("{name}: metadata(None): {e}"));
    check_brokers(name, cluster, &all);
    check_topic(name, &all, &topic, replication);

    let one = driver
        .metadata(&client, Some(vec![topic.clone()]))
        .unwrap_or_else(|e| panic!("{name}: metadata([{topic}]): {e}"));
    check_brokers(name, cluster, &one);
    check_topic(name, &one, &topic, replication);
    assert_eq!(
        one.topics.keys().collect::<Vec<_>>(),
        vec![&topic],
        "{name}: asked for one topic"
    );
    assert_eq!(
        one.brokers, all.brokers,
        "{name}: brokers differ between answers"
    );

    let missing = unique_topic(name, "missing");
    let view = driver
        .metadata(&client, Some(vec![missing.clone()]))
        .unwrap_or_else(|e| panic!("{name}: metadata([{missing}]): {e}"));
    let t = view
        .topic(&missing)
        .unwrap_or_else(|| panic!("{name}: {missing} not reported at all: {view:?}"));
    assert_eq!(
        t.error,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        "{name}: a topic that does not exist (and must not be auto-created)"
    );
}

/// Sends a Metadata request for `topic` to any broker.
fn metadata_any<D: Driver>(
    driver: &D,
    client: &D::Client,
    topic: &str,
) -> Result<Response, NetError> {
    driver.send(client, Target::Any, metadata_request(Some(&[topic])), None)
}

/// 3. The broker the client talks to goes down: requests move to another broker; it comes
///    back: requests to it succeed again.
pub fn rides_through_broker_down_and_up<D: Driver>(driver: &D, cluster: &TestCluster) {
    let name = driver.name();
    let Some(mock) = cluster.mock_or_skip("the broker down/up scenario") else {
        return;
    };
    let mut config = config(&cluster.bootstrap());
    config.request_timeout_ms = 2_000;
    let client = start(driver, &config);
    let topic = unique_topic(name, "down-up");
    create_topic(driver, &client, cluster, &topic);
    let view = driver
        .metadata(&client, Some(vec![topic.clone()]))
        .unwrap_or_else(|e| panic!("{name}: metadata: {e}"));
    let leaders: BTreeSet<NodeId> = view
        .topic(&topic)
        .expect("created")
        .partitions
        .iter()
        .map(|p| p.leader)
        .collect();
    assert!(
        leaders.len() > 1,
        "{name}: every leader of {topic} is on {leaders:?}"
    );

    let resp =
        metadata_any(driver, &client, &topic).unwrap_or_else(|e| panic!("{name}: metadata: {e}"));
    let down = broker_id_of(cluster, &view, resp.node);
    let started = Instant::now();
    mock.broker_down(down);

    // The connection to `down` is gone and it refuses new ones: requests must move elsewhere.
    // The first may still fail, if it went out on the connection being closed.
    let answered_by = poll_until(
        Duration::from_secs(8),
        &format!("{name}: a request with broker {down} down"),
        || {
            let resp = metadata_any(driver, &client, &topic).map_err(|e| e.to_string())?;
            Ok(broker_id_of(cluster, &view, resp.node))
        },
    );
    assert_ne!(
        answered_by, down,
        "{name}: answered by the broker that is down"
    );
    for i in 0..3 {
        let resp = metadata_any(driver, &client, &topic).unwrap_or_else(|e| {
            panic!("{name}: request {i} after failing over, broker {down} down: {e}")
        });
        let by = broker_id_of(cluster, &view, resp.node);
        assert_ne!(by, down, "{name}: answered by the broker that is down");
        let ResponseBody::Metadata(m) = resp.body else {
            panic!("{name}: Metadata answered with {:?}", resp.body)
        };
        assert_eq!(m.topics.len(), 1, "{name}: {m:?}");
    }
    eprintln!(
        "{name}: broker {down} down, failed over to {answered_by} in {:?}",
        started.elapsed()
    );

    mock.broker_up(down);
    let started = Instant::now();
    // Addressed to it by id: the client reconnects once its backoff ends.
    let resp = poll_until(
        Duration::from_secs(8),
        &format!("{name}: a request to broker {down} after it came back"),
        || {
            driver
                .send(
                    &client,
                    Target::Node(down),
                    metadata_request(Some(&[&topic])),
                    None,
                )
                .map_err(|e| e.to_string())
        },
    );
    assert_eq!(
        resp.node, down,
        "{name}: Target::Node answered by another node"
    );
    eprintln!(
        "{name}: broker {down} back, answering in {:?}",
        started.elapsed()
    );
    for i in 0..3 {
        metadata_any(driver, &client, &topic)
            .unwrap_or_else(|e| panic!("{name}: request {i} with every broker up again: {e}"));
    }
}

/// Asserts that `result` is a failure that names one of `addresses` and came within
/// [`FAILING_REQUEST_TIMEOUT_MS`] .. + [`FAILURE_SLACK`].
fn assert_fails_clearly<T: std::fmt::Debug>(
    driver: &str,
    result: Result<T, NetError>,
    elapsed: Duration,
    addresses: &[String],
) {
    let timeout = Duration::from_millis(FAILING_REQUEST_TIMEOUT_MS.into());
    let error = match result {
        Ok(v) => panic!("{driver}: succeeded with every broker unreachable: {v:?}"),
        Err(e) => e,
    };
    let shown = error.to_string();
    eprintln!("{driver}: failed after {elapsed:?}: {shown}");
    assert!(
        addresses.iter().any(|a| shown.contains(a.as_str())),
        "{driver}: the error names none of {addresses:?}: {shown}"
    );
    assert!(
        matches!(error, NetError::Timeout { .. }),
        "{driver}: expected a timeout, got {error:?}"
    );
    assert!(
        elapsed >= timeout,
        "{driver}: failed after {elapsed:?}, before the request timeout {timeout:?}: {shown}"
    );
    assert!(
        elapsed < timeout + FAILURE_SLACK,
        "{driver}: failed after {elapsed:?}, well past the request timeout {timeout:?}: {shown}"
    );
}

/// 4a. A bootstrap address where nothing listens: the request fails with a timeout that names
///     the address, within the request timeout (plus slack). Needs no cluster.
pub fn closed_port_fails_within_request_timeout<D: Driver>(driver: &D) {
    let name = driver.name();
    // Bound but never listening: connections are refused, and the port cannot be handed to
    // anything else (another test's mock broker) while the test holds it.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("binding 127.0.0.1:0");
    let port = socket
        .local_addr()
        .expect("local address")
        .as_socket()
        .expect("an inet address")
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut config = config(&address);
    config.request_timeout_ms = FAILING_REQUEST_TIMEOUT_MS;
    // The waiting mode (a client started before its cluster) is what this checks; the
    // default, failing fast, is tests/tests/bootstrap_fail_fast.rs.
    config.bootstrap_fail_fast = false;
    let client = start(driver, &config);
    let started = Instant::now();
    let result = driver.metadata(&client, None);
    assert_fails_clearly(name, result, started.elapsed(), &[address]);
    drop(socket);
}

/// 4b. Every broker of a cluster the client knows goes down: the request fails with a timeout
///     naming the brokers, within the request timeout (plus slack); once they are back,
///     requests succeed again.
pub fn all_brokers_down_fails_within_request_timeout<D: Driver>(driver: &D, cluster: &TestCluster) {
    let name = driver.name();
    let Some(mock) = cluster.mock_or_skip("the all-brokers-down scenario") else {
        return;
    };
    let mut config = config(&cluster.bootstrap());
    config.request_timeout_ms = FAILING_REQUEST_TIMEOUT_MS;
    let client = start(driver, &config);
    let view = driver
        .metadata(&client, None)
        .unwrap_or_else(|e| panic!("{name}: metadata before the brokers go down: {e}"));
    let ids: Vec<NodeId> = view.brokers.keys().copied().collect();
    for &id in &ids {
        mock.broker_down(id);
    }
    let addresses = cluster.bootstrap_addresses();
    // A request that goes out on a connection the client has not yet seen closed fails at
    // once with "connection lost"; the next one can only wait for its timeout.
    let mut attempts = 0;
    let (result, elapsed) = loop {
        attempts += 1;
        let started = Instant::now();
        let result = driver.metadata(&client, None);
        let elapsed = started.elapsed();
        match result {
            Err(NetError::Disconnected { .. }) if attempts < 3 => continue,
            result => break (result, elapsed),
        }
    };
    assert_fails_clearly(name, result, elapsed, &addresses);

    for &id in &ids {
        mock.broker_up(id);
    }
    let view = poll_until(
        Duration::from_secs(8),
        &format!("{name}: metadata once the brokers are back"),
        || driver.metadata(&client, None).map_err(|e| e.to_string()),
    );
    check_brokers(name, cluster, &view);
}

/// 4c. A broker that answers too slowly: the request in flight on a working connection fails
///     with a timeout naming the broker, within the request timeout (plus slack); the client
///     closes that connection, and once the broker is quick again requests succeed.
pub fn slow_broker_fails_within_request_timeout<D: Driver>(driver: &D, cluster: &TestCluster) {
    let name = driver.name();
    let Some(mock) = cluster.mock_or_skip("the slow-broker scenario") else {
        return;
    };
    let mut config = config(&cluster.bootstrap());
    config.request_timeout_ms = FAILING_REQUEST_TIMEOUT_MS;
    let client = start(driver, &config);
    // Set up (and negotiate on) a connection while the brokers are quick.
    driver
        .metadata(&client, Some(Vec::new()))
        .unwrap_or_else(|e| panic!("{name}: metadata before the brokers slow down: {e}"));
    let timeout = Duration::from_millis(FAILING_REQUEST_TIMEOUT_MS.into());
    mock.set_round_trip_time(timeout * 2);
    let started = Instant::now();
    let result = driver.metadata(&client, Some(Vec::new()));
    let elapsed = started.elapsed();
    mock.set_round_trip_time(Duration::ZERO);
    assert_fails_clearly(name, result, elapsed, &cluster.bootstrap_addresses());
    poll_until(
        Duration::from_secs(8),
        &format!("{name}: metadata once the brokers are quick again"),
        || {
            driver
                .metadata(&client, Some(Vec::new()))
                .map_err(|e| e.to_string())
        },
    );
}

/// 5. Raw requests through `send`: ApiVersions to every broker by node id (also capped at
///    version 0), ListOffsets to each partition's leader by id and by `Target::Leader`.
pub fn raw_requests_are_decoded<D: Driver>(driver: &D, cluster: &TestCluster) {
    let name = driver.name();
    let client = start(driver, &config(&cluster.bootstrap()));
    let topic = unique_topic(name, "raw");
    create_topic(driver, &client, cluster, &topic);
    let view = driver
        .metadata(&client, Some(vec![topic.clone()]))
        .unwrap_or_else(|e| panic!("{name}: metadata: {e}"));

    for &id in view.brokers.keys() {
        let resp = driver
            .send(&client, Target::Node(id), api_versions_request(), None)
            .unwrap_or_else(|e| panic!("{name}: ApiVersions to node {id}: {e}"));
        assert_eq!(resp.node, id, "{name}: answered by another node");
        let ResponseBody::ApiVersions(v) = &resp.body else {
            panic!("{name}: ApiVersions answered with {:?}", resp.body)
        };
        assert!(
            ErrorCode(v.error_code).is_ok(),
            "{name}: {}",
            ErrorCode(v.error_code)
        );
        let keys: BTreeSet<i16> = v.api_keys.iter().map(|k| k.api_key).collect();
        for api in [ApiKey::Produce, ApiKey::Metadata, ApiKey::ApiVersions] {
            assert!(
                keys.contains(&api.as_i16()),
                "{name}: node {id} lacks {api:?}: {keys:?}"
            );
        }
    }

    let first = *view.brokers.keys().next().expect("brokers");
    let resp = driver
        .send(
            &client,
            Target::Node(first),
            api_versions_request(),
            Some(0),
        )
        .unwrap_or_else(|e| panic!("{name}: ApiVersions v0 to node {first}: {e}"));
    assert_eq!(resp.version, 0, "{name}: max_version 0 not honoured");
    let ResponseBody::ApiVersions(v0) = &resp.body else {
        panic!("{name}: ApiVersions v0 answered with {:?}", resp.body)
    };
    assert!(
        !v0.api_keys.is_empty(),
        "{name}: empty ApiVersions v0 answer"
    );

    let t = view.topic(&topic).expect("created");
    for p in &t.partitions {
        for timestamp in [EARLIEST, LATEST] {
            let resp = driver
                .send(
                    &client,
                    Target::Node(p.leader),
                    list_offsets_request(&topic, p.partition, timestamp),
                    None,
                )
                .unwrap_or_else(|e| {
                    panic!(
                        "{name}: ListOffsets {topic}-{} to node {}: {e}",
                        p.partition, p.leader
                    )
                });
            assert_eq!(resp.node, p.leader);
            check_empty_partition_offset(name, &resp, &topic, p.partition);
        }
    }

    let leader = t.partitions[0].leader;
    let resp = driver
        .send(
            &client,
            Target::Leader {
                topic: topic.clone(),
                partition: 0,
            },
            list_offsets_request(&topic, 0, LATEST),
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: ListOffsets {topic}-0 to its leader: {e}"));
    assert_eq!(
        resp.node, leader,
        "{name}: Target::Leader answered by a non-leader"
    );
    check_empty_partition_offset(name, &resp, &topic, 0);
}

/// A ListOffsets answer for one partition of a topic nothing was written to: offset 0.
fn check_empty_partition_offset(driver: &str, resp: &Response, topic: &str, partition: i32) {
    let ResponseBody::ListOffsets(lo) = &resp.body else {
        panic!("{driver}: ListOffsets answered with {:?}", resp.body)
    };
    assert_eq!(lo.topics.len(), 1, "{driver}: {lo:?}");
    assert_eq!(lo.topics[0].name, topic);
    let parts = &lo.topics[0].partitions;
    assert_eq!(parts.len(), 1, "{driver}: {lo:?}");
    let p = &parts[0];
    assert_eq!(p.partition_index, partition);
    assert!(
        ErrorCode(p.error_code).is_ok(),
        "{driver}: ListOffsets {topic}-{partition} at v{}: {}",
        resp.version,
        ErrorCode(p.error_code)
    );
    let offset = if resp.version == 0 {
        p.old_style_offsets.first().copied().unwrap_or(-1)
    } else {
        p.offset
    };
    assert_eq!(offset, 0, "{driver}: {topic}-{partition} is empty: {p:?}");
}

/// 6. Dropping the last handle stops the client: the driver closes its connections at once.
///    Against a fake broker (no cluster needed), which sees the socket's end.
pub fn dropping_the_client_closes_its_connections<D: Driver>(driver: &D) {
    let name = driver.name();
    let broker = FakeBroker::start(Duration::from_secs(5));
    let client = start(driver, &config(&broker.address()));
    let view = driver
        .metadata(&client, Some(Vec::new()))
        .unwrap_or_else(|e| panic!("{name}: metadata from the fake broker: {e}"));
    assert_eq!(view.brokers.len(), 1, "{name}: {view:?}");
    broker.mark();
    drop(client);
    match broker.ending() {
        Ending::Closed(after) => eprintln!("{name}: connection closed {after:?} after the drop"),
        other => panic!("{name}: after dropping the client: {other:?}"),
    }
}
