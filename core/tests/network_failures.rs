//! The network core when brokers are down or misbehave: connection failures and backoff,
//! oversized frames and garbage on the wire.

mod network_support;

use std::collections::BTreeMap;
use std::time::Duration;

use kafkit_core::network::{NetError, NetOptions, Target};
use kafkit_core::protocol::list_groups::response::ListedGroup;
use kafkit_core::protocol::{ApiKey, ListGroupsRequest, ListGroupsResponse, ResponseBody};
use kafkit_core::sasl::SaslConfig;
use network_support::{
    framed, options, three_brokers, Broker, ClusterSpec, Harness, Reply, SaslSpec, XorShift,
};

/// The harness options with `bootstrap_fail_fast` off: these tests check how a client waits
/// for brokers that are down (backoff, timeouts naming the cause), the mode for clients
/// started before their cluster. `network_fail_fast` covers the default.
fn waiting(bootstrap: &[(&str, u16)]) -> NetOptions {
    let mut opts = options(bootstrap);
    opts.bootstrap_fail_fast = false;
    opts
}

fn down(node: i32, host: &str) -> Broker {
    Broker::new(node, host, 9092).refusing("refused")
}

#[test]
fn all_brokers_down_request_times_out_naming_the_bootstrap_and_the_cause() {
    let brokers = vec![down(0, "b0"), down(1, "b1")];
    let opts = waiting(&[("b0", 9092), ("b1", 9092)]);
    let request_timeout = opts.conn.request_timeout;
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let sent_at = h.now;
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, request_timeout + Duration::from_secs(5));
    let failed_at = h.results[&id].0;
    assert!(
        failed_at - sent_at <= request_timeout,
        "failed after {:?}, request_timeout is {request_timeout:?}",
        failed_at - sent_at
    );
    assert!(matches!(err, NetError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("b0:9092"),
        "names the bootstrap address: {text}"
    );
    assert!(
        text.contains("b1:9092"),
        "names the bootstrap address: {text}"
    );
    assert!(
        text.contains("refused"),
        "includes the connect error: {text}"
    );
    // Both addresses were tried, many times.
    for host in ["b0", "b1"] {
        let n = h.connects.iter().filter(|c| c.host == host).count();
        assert!(n > 10, "{host} tried {n} times");
    }
}

#[test]
fn request_to_a_down_node_names_it() {
    let brokers = vec![down(0, "b0")];
    let mut opts = waiting(&[("b0", 9092)]);
    opts.conn.request_timeout = Duration::from_secs(3);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let id = h.send(Target::Node(-1), ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(4));
    let text = err.to_string();
    assert!(text.contains("b0:9092 (bootstrap)"), "{text}");
    assert!(text.contains("cannot connect: refused"), "{text}");
    assert!(text.contains("3000ms"), "{text}");
}

/// The gaps between consecutive connection attempts to each address.
fn gaps_by_host(h: &Harness) -> BTreeMap<String, Vec<Duration>> {
    let mut last = BTreeMap::new();
    let mut gaps: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for c in &h.connects {
        if let Some(prev) = last.insert(c.host.clone(), c.at) {
            gaps.entry(c.host.clone()).or_default().push(c.at - prev);
        }
    }
    gaps
}

fn check_backoff(seed: u64, hosts: &[&str]) {
    let brokers = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| down(i as i32, h))
        .collect();
    let bootstrap: Vec<(&str, u16)> = hosts.iter().map(|h| (*h, 9092)).collect();
    let mut opts = waiting(&bootstrap);
    opts.seed = seed;
    opts.reconnect_backoff = Duration::from_millis(50);
    opts.reconnect_backoff_max = Duration::from_millis(1000);
    let (base, max) = (opts.reconnect_backoff, opts.reconnect_backoff_max);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.advance(Duration::from_secs(20));
    assert!(h.result(id).is_none(), "still waiting");
    let gaps = gaps_by_host(&h);
    assert_eq!(gaps.len(), hosts.len());
    let mut jittered = 0;
    for (host, gaps) in gaps {
        assert!(gaps.len() >= 15, "{host}: {} attempts", gaps.len() + 1);
        for (k, gap) in gaps.iter().enumerate() {
            let exp = base.saturating_mul(1 << k.min(20)).min(max);
            let (lo, hi) = (exp.mul_f64(0.8), exp.mul_f64(1.2));
            assert!(
                *gap >= lo && *gap <= hi,
                "seed {seed}, {host}: gap {k} is {gap:?}, expected {lo:?}..={hi:?}"
            );
            if *gap != exp {
                jittered += 1;
            }
        }
    }
    assert!(jittered > 0, "the delays are jittered");
}

#[test]
fn reconnect_attempts_back_off_exponentially_with_jitter() {
    for seed in 0..8 {
        check_backoff(seed, &["b0"]);
        check_backoff(seed, &["b0", "b1", "b2"]);
    }
}

#[test]
fn all_brokers_down_does_not_busy_loop() {
    // Connection attempts take a while to fail, as real ones do, so several addresses can be
    // due for a retry while one attempt is still under way.
    let brokers = (0..3)
        .map(|i| {
            down(i, &format!("b{i}")).with_connect_delay(Duration::from_millis(20 + 5 * i as u64))
        })
        .collect();
    let opts = waiting(&[("b0", 9092), ("b1", 9092), ("b2", 9092)]);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    h.spin_limit = 1_000;
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.advance(Duration::from_secs(30));
    let err = h
        .result(id)
        .expect("timed out at 30 s")
        .clone()
        .unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }));
    let attempts = h.connects.len() as u64;
    assert!(
        h.max_spins <= 2,
        "poll_timeout returned an instant already past {} times in a row",
        h.max_spins
    );
    assert!(
        h.timeouts_handled <= 3 * attempts + 10,
        "{} handle_timeout calls for {attempts} connection attempts in 30 s",
        h.timeouts_handled
    );
}

#[test]
fn idle_client_with_everything_down_has_no_deadline() {
    let brokers = vec![down(0, "b0")];
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.request_timeout = Duration::from_secs(2);
    let mut h = Harness::new(opts, brokers, ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_err(id, Duration::from_secs(3));
    // Nothing left to do: no reconnecting for nobody, no timer.
    let attempts = h.connects.len();
    h.advance(Duration::from_secs(60));
    assert_eq!(h.connects.len(), attempts);
    assert_eq!(h.poll_timeout(), None);
}

fn big_list_groups(n: usize) -> ResponseBody {
    ResponseBody::ListGroups(ListGroupsResponse {
        groups: (0..n)
            .map(|i| ListedGroup {
                group_id: format!("group-{i:05}"),
                protocol_type: "consumer".into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

#[test]
fn frame_above_max_frame_closes_the_connection_and_fails_the_request() {
    let (mut brokers, cluster) = three_brokers();
    brokers[0] = Broker::new(0, "b0", 9092).with_hook(|req| match req.api() {
        ApiKey::ListGroups => Reply::Body(big_list_groups(500)),
        _ => Reply::Default,
    });
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.max_frame = 4096;
    let mut h = Harness::new(opts, brokers, cluster);
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(matches!(err, NetError::Decode { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("b0:9092"), "{text}");
    assert!(text.contains("frame size"), "{text}");
    assert!(text.contains("4096"), "{text}");
    assert_eq!(h.closes.len(), 1);
}

#[test]
fn impossible_frame_sizes_fail_without_allocating_or_panicking() {
    for size in [i32::MAX, -1, i32::MIN, 100 * 1024 * 1024 + 1] {
        let (mut brokers, cluster) = three_brokers();
        brokers[0] = Broker::new(0, "b0", 9092).with_hook(move |req| match req.api() {
            ApiKey::ListGroups => Reply::Bytes(size.to_be_bytes().to_vec()),
            _ => Reply::Default,
        });
        let mut h = Harness::new(options(&[("b0", 9092)]), brokers, cluster);
        let id = h.send(Target::Any, ListGroupsRequest::default());
        let err = h.expect_err(id, Duration::from_secs(1));
        assert!(
            matches!(err, NetError::Decode { .. }),
            "size {size}: {err:?}"
        );
        assert_eq!(h.closes.len(), 1, "size {size}");
    }
}

#[derive(Debug, Clone, Copy)]
enum Garbage {
    /// Random bytes instead of the response.
    Raw,
    /// A well-framed response with the right correlation id and a random body.
    Body,
    /// Random bytes instead of the ApiVersions response.
    ApiVersions,
    /// Random bytes instead of the SaslAuthenticate response.
    Sasl,
}

fn garbage_scenario(seed: u64, kind: Garbage) {
    let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let len = (rng.next_u64() % 96) as usize;
    let junk = rng.bytes(len);
    let target_api = match kind {
        Garbage::Raw | Garbage::Body => ApiKey::ListGroups,
        Garbage::ApiVersions => ApiKey::ApiVersions,
        Garbage::Sasl => ApiKey::SaslAuthenticate,
    };
    let mut broker = Broker::new(0, "b0", 9092).with_hook(move |req| {
        if req.api() != target_api {
            return Reply::Default;
        }
        match kind {
            Garbage::Body => {
                let mut payload = req.header.correlation_id.to_be_bytes().to_vec();
                payload.extend_from_slice(&junk);
                Reply::Bytes(framed(&payload))
            }
            _ => Reply::Bytes(junk.clone()),
        }
    });
    let mut opts = options(&[("b0", 9092)]);
    opts.conn.request_timeout = Duration::from_secs(2);
    opts.conn.max_frame = 1 << 20;
    if let Garbage::Sasl = kind {
        broker = broker.with_sasl(SaslSpec::plain("u", "p"));
        opts.sasl = Some(std::sync::Arc::new(SaslConfig::plain("u", "p")));
    }
    let mut h = Harness::new(opts, vec![broker], ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    match h.wait_for(id, Duration::from_secs(3)) {
        // A random body may happen to be a valid ListGroups response.
        Ok(resp) => assert!(matches!(resp.body, ResponseBody::ListGroups(_))),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("b0:9092"), "seed {seed} {kind:?}: {text}");
        }
    }
}

#[test]
fn garbage_from_the_broker_fails_cleanly() {
    for seed in 0..150 {
        for kind in [
            Garbage::Raw,
            Garbage::Body,
            Garbage::ApiVersions,
            Garbage::Sasl,
        ] {
            garbage_scenario(seed, kind);
        }
    }
}
