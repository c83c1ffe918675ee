//! SASL on connections: PLAIN and SCRAM over SaslAuthenticate, the legacy raw-token exchange
//! after SaslHandshake v0, and failures.

mod network_support;

use std::sync::Arc;
use std::time::Duration;

use kafkit_core::network::{NetError, NetOptions, SeededEntropy, Target};
use kafkit_core::protocol::{ApiKey, ListGroupsRequest, RequestBody};
use kafkit_core::sasl::{verify_plain, SaslConfig, ScramMechanism, Secret};
use network_support::{options, three_brokers, Broker, ClusterSpec, Harness, SaslSpec};

fn with_sasl(config: SaslConfig) -> NetOptions {
    let mut opts = options(&[("b0", 9092)]);
    opts.sasl = Some(Arc::new(config));
    opts.conn.request_timeout = Duration::from_secs(10);
    opts
}

fn sasl_broker(spec: SaslSpec) -> Broker {
    Broker::new(0, "b0", 9092).with_sasl(spec)
}

/// A broker whose table has no SaslAuthenticate and only SaslHandshake v0 (Kafka 0.10.0-0.10.1).
fn legacy_sasl_broker(spec: SaslSpec) -> Broker {
    sasl_broker(spec)
        .without(ApiKey::SaslAuthenticate)
        .with_range(ApiKey::SaslHandshake, 0, 0)
}

fn handshake_mechanism(b: &Broker) -> (i16, String) {
    let r = b.of(ApiKey::SaslHandshake)[0];
    let RequestBody::SaslHandshake(h) = &r.body else {
        unreachable!()
    };
    (r.version(), h.mechanism.clone())
}

fn auth_tokens(b: &Broker) -> Vec<Vec<u8>> {
    b.of(ApiKey::SaslAuthenticate)
        .iter()
        .map(|r| match &r.body {
            RequestBody::SaslAuthenticate(a) => a.auth_bytes.to_vec(),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn plain_authenticates_before_any_request() {
    let broker = sasl_broker(SaslSpec::plain("alice", "secret"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::plain("alice", "secret")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let b = &h.brokers[0];
    assert_eq!(
        b.apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
            ApiKey::ListGroups
        ]
    );
    assert_eq!(handshake_mechanism(b), (1, "PLAIN".to_string()));
    let tokens = auth_tokens(b);
    assert_eq!(tokens.len(), 1);
    let secret = Secret::new("secret");
    assert_eq!(
        verify_plain(&tokens[0], |u| (u == "alice").then_some(&secret)).unwrap(),
        "alice"
    );
    assert!(b.raw_tokens.is_empty());
}

#[test]
fn plain_wrong_password_fails_with_the_brokers_message() {
    let broker = sasl_broker(SaslSpec::plain("alice", "secret"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::plain("alice", "wrong")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(11));
    let text = err.to_string();
    assert!(text.contains("invalid user name or password"), "{text}");
    assert!(text.contains("b0:9092"), "{text}");
    assert!(
        !h.brokers[0].apis().contains(&ApiKey::ListGroups),
        "nothing is sent unauthenticated"
    );
}

#[test]
fn plain_wrong_password_fails_with_an_authentication_error_at_once() {
    let broker = sasl_broker(SaslSpec::plain("alice", "secret"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::plain("alice", "wrong")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(11));
    assert!(
        matches!(&err, NetError::Authentication { detail, .. } if detail.contains("invalid user name or password")),
        "{err:?}"
    );
    assert_eq!(
        h.elapsed(),
        Duration::ZERO,
        "failed at once, not at request_timeout"
    );
}

fn scram_end_to_end(mechanism: ScramMechanism, name: &str) {
    let (mut brokers, cluster) = three_brokers();
    let brokers: Vec<Broker> = brokers
        .drain(..)
        .map(|b| b.with_sasl(SaslSpec::scram(mechanism, "bob", "hunter2")))
        .collect();
    let mut h = Harness::new(
        with_sasl(SaslConfig::scram(mechanism, "bob", "hunter2")),
        brokers,
        cluster,
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let b = &h.brokers[0];
    assert_eq!(
        b.apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
            ApiKey::SaslAuthenticate,
            ApiKey::ListGroups
        ]
    );
    assert_eq!(handshake_mechanism(b), (1, name.to_string()));
    let tokens = auth_tokens(b);
    assert!(tokens[0].starts_with(b"n,,n=bob,r="), "client-first");
    assert!(
        String::from_utf8_lossy(&tokens[1]).contains(",p="),
        "client-final"
    );

    // Every connection authenticates with a fresh exchange (and a fresh nonce).
    h.client.network().request_metadata(false, h.now);
    h.drive();
    let id = h.send(Target::Node(2), ListGroupsRequest::default());
    assert_eq!(h.expect_ok(id).node, 2);
    let first_nonces: Vec<Vec<u8>> = [0, 2]
        .iter()
        .map(|&n| auth_tokens(&h.brokers[n])[0].clone())
        .collect();
    assert_ne!(first_nonces[0], first_nonces[1]);
}

#[test]
fn scram_sha_256_end_to_end() {
    scram_end_to_end(ScramMechanism::Sha256, "SCRAM-SHA-256");
}

#[test]
fn scram_sha_512_end_to_end() {
    scram_end_to_end(ScramMechanism::Sha512, "SCRAM-SHA-512");
}

#[test]
fn scram_wrong_password_is_rejected() {
    let broker = sasl_broker(SaslSpec::scram(ScramMechanism::Sha256, "bob", "hunter2"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::scram(ScramMechanism::Sha256, "bob", "hunter3")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(11));
    let text = err.to_string();
    assert!(text.contains("invalid user credentials"), "{text}");
    assert!(!h.brokers[0].apis().contains(&ApiKey::ListGroups));
}

#[test]
fn mechanism_not_enabled_names_what_the_broker_offers() {
    let broker = sasl_broker(SaslSpec::plain("alice", "secret"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::scram(ScramMechanism::Sha512, "alice", "secret")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(11));
    let text = err.to_string();
    assert!(text.contains("SCRAM-SHA-512"), "{text}");
    assert!(text.contains("PLAIN"), "{text}");
    assert!(h.brokers[0].of(ApiKey::SaslAuthenticate).is_empty());
}

#[test]
fn broker_without_sasl_support_is_an_authentication_error() {
    let broker = Broker::new(0, "b0", 9092).without(ApiKey::SaslHandshake);
    let mut h = Harness::new(
        with_sasl(SaslConfig::plain("alice", "secret")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(11));
    let text = err.to_string();
    assert!(text.contains("SaslHandshake"), "{text}");
}

#[test]
fn legacy_handshake_v0_sends_raw_plain_tokens() {
    let broker = legacy_sasl_broker(SaslSpec::plain("alice", "secret"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::plain("alice", "secret")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let b = &h.brokers[0];
    assert_eq!(
        b.apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::ListGroups
        ]
    );
    assert_eq!(handshake_mechanism(b), (0, "PLAIN".to_string()));
    // The token alone in a size-prefixed frame: no request header.
    assert_eq!(b.raw_tokens, vec![b"\0alice\0secret".to_vec()]);
}

#[test]
fn legacy_handshake_v0_scram_exchanges_raw_tokens() {
    let broker = legacy_sasl_broker(SaslSpec::scram(ScramMechanism::Sha256, "bob", "pw"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::scram(ScramMechanism::Sha256, "bob", "pw")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let b = &h.brokers[0];
    assert_eq!(b.raw_tokens.len(), 2);
    assert!(b.raw_tokens[0].starts_with(b"n,,n=bob,r="));
    assert_eq!(b.apis().last(), Some(&ApiKey::ListGroups));
}

#[test]
fn legacy_handshake_v0_wrong_password_fails_naming_authentication() {
    let broker = legacy_sasl_broker(SaslSpec::plain("alice", "secret"));
    let mut h = Harness::new(
        with_sasl(SaslConfig::plain("alice", "nope")),
        vec![broker],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(11));
    let text = err.to_string();
    assert!(text.contains("authentication"), "{text}");
    assert!(text.contains("b0:9092"), "{text}");
}

/// The client-first SCRAM message of a client with `opts`, as the broker received it.
fn scram_client_first(opts: NetOptions) -> Vec<u8> {
    let broker = sasl_broker(SaslSpec::scram(ScramMechanism::Sha256, "bob", "hunter2"));
    let mut h = Harness::new(opts, vec![broker], ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    auth_tokens(&h.brokers[0])[0].clone()
}

/// SCRAM nonces come from the entropy source the driver gives, not from the seeded generator:
/// two clients with the same seed draw different nonces when their entropy differs (as the
/// OS's does), and the same nonce only when the entropy is the same (a replayed simulation).
#[test]
fn scram_nonces_come_from_the_entropy_source_not_the_seed() {
    let with = |seed: u64, entropy: u64| {
        let mut opts = with_sasl(SaslConfig::scram(ScramMechanism::Sha256, "bob", "hunter2"));
        opts.seed = seed;
        opts.entropy = Some(Arc::new(SeededEntropy::new(entropy)));
        scram_client_first(opts)
    };
    let a = with(42, 1);
    let b = with(42, 2);
    assert!(a.starts_with(b"n,,n=bob,r=") && b.starts_with(b"n,,n=bob,r="));
    assert_ne!(a, b, "same seed, different entropy: different nonces");
    assert_eq!(
        with(42, 1),
        with(43, 1),
        "the seed does not change the nonce"
    );
}

/// Without an entropy source a SCRAM connection fails at once with a message that says what
/// is missing, instead of drawing a predictable nonce.
#[test]
fn scram_without_an_entropy_source_fails_clearly() {
    let mut opts = with_sasl(SaslConfig::scram(ScramMechanism::Sha256, "bob", "hunter2"));
    opts.entropy = None;
    let broker = sasl_broker(SaslSpec::scram(ScramMechanism::Sha256, "bob", "hunter2"));
    let mut h = Harness::new(opts, vec![broker], ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let text = h.expect_err(id, Duration::from_secs(30)).to_string();
    assert!(text.contains("entropy source"), "{text}");
}
