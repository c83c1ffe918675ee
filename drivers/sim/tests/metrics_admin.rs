//! Admin and network metrics against the simulated cluster, after known workloads: calls and
//! failed items per call kind; requests, responses and latency per API, with ApiVersions and
//! the SASL exchange of every connection counted per API as Java counts them; connections
//! and bytes on the wire as the brokers counted them; a request that got no answer.

mod metrics_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafkit_core::admin::{AdminCore, AdminEvent, AdminOutcome, NewTopic};
use kafkit_core::config::AdminConfig;
use kafkit_core::protocol::ApiKey;
use kafkit_core::OpId;
use kafkit_sim::cluster::SaslUser;
use kafkit_sim::{admin_core, Cluster, ClusterConfig, HookAction, Simulation};
use metrics_support::{serve_counting, Wire, ROUND_TRIP_MS};

struct Env {
    sim: Simulation<AdminCore>,
    cluster: Rc<RefCell<Cluster>>,
    wire: Rc<Wire>,
    next_op: u64,
}

fn env(sasl: bool) -> Env {
    let start = Instant::now();
    let cluster = Rc::new(RefCell::new(Cluster::new(
        ClusterConfig {
            brokers: 3,
            seed: 5,
            sasl_users: if sasl {
                vec![SaslUser::new("SCRAM-SHA-256", "bob", "bob-secret")]
            } else {
                Vec::new()
            },
            ..ClusterConfig::default()
        },
        start,
    )));
    let mut b = AdminConfig::builder()
        .set("client_id", "metrics-admin")
        .set("default_api_timeout_ms", "20000")
        .set("request_timeout_ms", "5000");
    if sasl {
        b = b
            .set("security_protocol", "SASL_PLAINTEXT")
            .set("sasl_mechanism", "SCRAM-SHA-256")
            .set("sasl_plain_username", "bob")
            .set("sasl_plain_password", "bob-secret");
    }
    let config = b.build().expect("config");
    let core = admin_core(&config, &cluster.borrow(), 5).expect("admin");
    let mut sim = Simulation::new(core, 5, start).with_max_steps(2_000_000);
    let wire = serve_counting(&mut sim, &cluster);
    Env {
        sim,
        cluster,
        wire,
        next_op: 0,
    }
}

impl Env {
    /// Starts a call and runs until it completes.
    fn call(&mut self, start: impl FnOnce(&mut AdminCore, OpId, Instant)) -> AdminOutcome {
        self.next_op += 1;
        let id = OpId(self.next_op);
        let now = self.sim.now();
        start(self.sim.core(), id, now);
        let mut outcome = None;
        let done = self
            .sim
            .run_until(|s| {
                for e in s.take_events() {
                    if let AdminEvent::Completed { id: op, outcome: o } = e {
                        if op == id {
                            outcome = Some(o);
                        }
                    }
                }
                outcome.is_some()
            })
            .unwrap();
        assert!(done, "call {id:?} completed");
        outcome.expect("completed")
    }

    fn metrics(&mut self) -> kafkit_core::admin::AdminMetrics {
        let now = self.sim.now();
        self.sim.core().metrics(now)
    }
}

fn failed_items(o: &AdminOutcome) -> usize {
    match o {
        AdminOutcome::Topics(m) => m.values().filter(|r| r.is_err()).count(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn calls_errors_requests_per_api_with_sasl_and_wire_bytes() {
    let mut e = env(true);
    let o = e.call(|c, op, now| {
        c.create_topics(
            op,
            vec![NewTopic::new("a", 3, 1), NewTopic::new("b", 1, 1)],
            false,
            None,
            now,
        )
    });
    assert_eq!(failed_items(&o), 0, "{o:?}");
    // "a" exists now: one of the two items fails.
    let o = e.call(|c, op, now| {
        c.create_topics(
            op,
            vec![NewTopic::new("a", 1, 1), NewTopic::new("c", 1, 1)],
            false,
            None,
            now,
        )
    });
    assert_eq!(failed_items(&o), 1, "{o:?}");
    let o = e.call(|c, op, now| c.delete_topics(op, vec!["missing".into()], None, now));
    assert_eq!(failed_items(&o), 1, "{o:?}");
    let o = e.call(|c, op, now| c.list_topics(op, false, None, now));
    assert!(matches!(o, AdminOutcome::TopicListing(Ok(_))), "{o:?}");
    let o = e.call(|c, op, now| c.describe_cluster(op, None, now));
    assert!(matches!(o, AdminOutcome::Cluster(Ok(_))), "{o:?}");

    let m = e.metrics();
    // The three topic calls count as `topics` (the outcome's kind).
    assert_eq!(m.calls["topics"].call_total, 3.0);
    assert_eq!(m.calls["topics"].call_error_total, 2.0);
    assert_eq!(m.calls["list_topics"].call_total, 1.0);
    assert_eq!(m.calls["list_topics"].call_error_total, 0.0);
    assert_eq!(m.calls["describe_cluster"].call_total, 1.0);
    assert_eq!(m.call_total, 5.0);
    assert_eq!(m.call_error_total, 2.0);

    let net = &m.network;
    assert_eq!(net.client_id, "metrics-admin");
    let conns = net.connection_creation_total;
    assert!(
        conns >= 2.0,
        "bootstrap and controller connections: {conns}"
    );
    assert_eq!(net.connection_count, conns);
    assert_eq!(net.connection_close_total, 0.0);
    // Each connection opened with ApiVersions, then SCRAM: a handshake and two
    // authenticate round trips (client-first, client-final).
    let api = |k: ApiKey| &net.apis[&k];
    assert_eq!(api(ApiKey::ApiVersions).request_total, conns);
    assert_eq!(api(ApiKey::SaslHandshake).request_total, conns);
    assert_eq!(api(ApiKey::SaslAuthenticate).request_total, 2.0 * conns);
    assert_eq!(api(ApiKey::SaslAuthenticate).response_total, 2.0 * conns);
    for k in [
        ApiKey::ApiVersions,
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
    ] {
        assert!(
            (api(k).request_latency_max - ROUND_TRIP_MS).abs() < 1e-9,
            "{k:?}: {}",
            api(k).request_latency_max
        );
        assert!((api(k).request_latency_avg - ROUND_TRIP_MS).abs() < 1e-9);
        assert_eq!(api(k).error_total, 0.0);
    }
    assert_eq!(api(ApiKey::CreateTopics).request_total, 2.0);
    assert_eq!(api(ApiKey::CreateTopics).response_total, 2.0);
    assert_eq!(api(ApiKey::DeleteTopics).request_total, 1.0);
    // Per-item errors are answers, not network errors.
    assert_eq!(api(ApiKey::DeleteTopics).error_total, 0.0);
    assert!(api(ApiKey::Metadata).request_total >= 1.0);
    // Per node, per API and in all, the same requests; all answered.
    assert_eq!(net.request_total, net.response_total);
    let by_api: f64 = net.apis.values().map(|a| a.request_total).sum();
    assert_eq!(net.request_total, by_api);
    let by_node: f64 = net.nodes.values().map(|n| n.request_total).sum();
    assert_eq!(net.request_total, by_node);
    assert_eq!(net.requests_in_flight, 0.0);
    // Every byte, the SASL exchange's included, as the brokers counted it.
    assert_eq!(net.outgoing_byte_total, e.wire.received.get() as f64);
    assert_eq!(net.incoming_byte_total, e.wire.sent.get() as f64);

    let text = m.to_prometheus();
    for line in [
        "kafka_admin_client_call_total{client_id=\"metrics-admin\",call=\"topics\"} 3\n",
        "kafka_admin_client_call_error_total{client_id=\"metrics-admin\",call=\"topics\"} 2\n",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    let line = format!(
        "kafka_admin_client_api_request_total{{client_id=\"metrics-admin\",api=\"SaslAuthenticate\"}} {}\n",
        2.0 * conns
    );
    assert!(text.contains(&line), "{line} missing from\n{text}");

    let now = e.sim.now();
    e.sim.core().close(Duration::from_secs(1), now);
    e.sim.drain();
    let m = e.metrics();
    assert_eq!(m.network.connection_close_total, conns);
    assert_eq!(m.network.connection_count, 0.0);
}

#[test]
fn an_unanswered_request_is_a_network_error_and_the_retry_succeeds() {
    let mut e = env(false);
    // Warm up: metadata and connections.
    let o = e.call(|c, op, now| c.list_topics(op, false, None, now));
    assert!(matches!(o, AdminOutcome::TopicListing(Ok(_))), "{o:?}");
    let before = e.metrics().network;
    // The first DescribeCluster is swallowed: the request times out after request_timeout_ms
    // (5 s), its connection is closed, and the call is retried.
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::DescribeCluster,
        Box::new(move |_, _| {
            seen.set(seen.get() + 1);
            if seen.get() == 1 {
                HookAction::Drop
            } else {
                HookAction::Pass
            }
        }),
    );
    let o = e.call(|c, op, now| c.describe_cluster(op, None, now));
    assert!(matches!(o, AdminOutcome::Cluster(Ok(_))), "{o:?}");
    assert_eq!(calls.get(), 2);
    let m = e.metrics();
    assert_eq!(m.calls["describe_cluster"].call_total, 1.0);
    assert_eq!(m.calls["describe_cluster"].call_error_total, 0.0);
    let dc = &m.network.apis[&ApiKey::DescribeCluster];
    assert_eq!(dc.request_total, 2.0);
    assert_eq!(dc.response_total, 1.0);
    assert_eq!(dc.error_total, 1.0);
    // Only the answered request has a latency.
    assert!((dc.request_latency_max - ROUND_TRIP_MS).abs() < 1e-9);
    assert_eq!(
        m.network.connection_close_total,
        before.connection_close_total + 1.0
    );
    assert_eq!(m.network.requests_in_flight, 0.0);
}
