//! TLS in the core: a rustls server in the fake broker, ciphertext pumped both ways through
//! the harness, certificates made with rcgen.

mod network_support;

use std::sync::Arc;
use std::time::Duration;

use kafkit_core::network::{tls_client_config, NetError, NetOptions, Target, TlsOptions};
use kafkit_core::protocol::list_groups::response::ListedGroup;
use kafkit_core::protocol::{ApiKey, ListGroupsRequest, ListGroupsResponse, ResponseBody};
use kafkit_core::sasl::{SaslConfig, ScramMechanism};
use network_support::{options, Broker, ClusterSpec, Delivery, Harness, Reply, SaslSpec};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA, and a server configuration whose certificate that CA issued for `names`.
struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn pki(names: &[&str]) -> Pki {
    let (ca_cert, ca_key) = ca("kafkit test CA");
    let leaf_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("broker"),
    );
    let leaf = params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

fn tls_options(ca_pem: &str, check_hostname: bool) -> NetOptions {
    let config = tls_client_config(
        provider(),
        &TlsOptions {
            ca_pem: Some(ca_pem.as_bytes().to_vec()),
            check_hostname,
            ..Default::default()
        },
    )
    .expect("client TLS config");
    let mut opts = options(&[("localhost", 9093)]);
    opts.tls = Some(config);
    opts.conn.request_timeout = Duration::from_secs(5);
    opts
}

fn tls_broker(server: &Pki) -> Broker {
    Broker::new(0, "localhost", 9093).with_tls(server.server.clone())
}

fn handshake_and_requests(delivery: Delivery) {
    let pki = pki(&["localhost"]);
    let mut h = Harness::new(
        tls_options(&pki.ca_pem, true),
        vec![tls_broker(&pki)],
        ClusterSpec::default(),
    );
    h.delivery = delivery;
    h.client.network().request_metadata(false, h.now);
    h.drive();
    assert_eq!(h.metadata_updates.len(), 1, "metadata over TLS");
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    let b = &h.brokers[0];
    assert!(b.tls_errors.is_empty(), "{:?}", b.tls_errors);
    // The bootstrap connection, then one to node 0 (the same listener) as metadata names it.
    assert_eq!(
        b.apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::ApiVersions,
            ApiKey::ListGroups
        ]
    );
    assert_eq!(b.accepted, 2);
    // What went on the wire was TLS records, starting with a handshake record.
    assert_eq!(h.transmits[0].1[0], 0x16, "a TLS handshake record first");
    assert!(h
        .transmits
        .iter()
        .all(|(_, data)| !data.windows(6).any(|w| w == b"kafkit")));
}

#[test]
fn handshake_then_api_versions_and_metadata_over_tls() {
    handshake_and_requests(Delivery::Whole);
}

#[test]
fn tls_records_split_into_single_bytes() {
    handshake_and_requests(Delivery::Bytewise);
}

#[test]
fn tls_records_coalesced() {
    handshake_and_requests(Delivery::Coalesced);
}

/// A ListGroups response of `n` groups, about 24 bytes each.
fn many_groups(n: usize) -> ListGroupsResponse {
    ListGroupsResponse {
        groups: (0..n)
            .map(|i| ListedGroup {
                group_id: format!("group-{i:07}"),
                protocol_type: "consumer".into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A response of several hundred kilobytes spans dozens of TLS records (16 KiB each at most)
/// and arrives whole however the ciphertext is cut up: the decrypted bytes are framed as they
/// come out of the session.
#[test]
fn a_response_spanning_many_tls_records_arrives_whole() {
    for delivery in [Delivery::Whole, Delivery::Coalesced, Delivery::Bytewise] {
        let pki = pki(&["localhost"]);
        let n = if matches!(delivery, Delivery::Bytewise) {
            3_000
        } else {
            20_000
        };
        let groups = many_groups(n);
        let reply = groups.clone();
        let broker = tls_broker(&pki).with_hook(move |req| match req.api() {
            ApiKey::ListGroups => Reply::Body(ResponseBody::ListGroups(reply.clone())),
            _ => Reply::Default,
        });
        let mut h = Harness::new(
            tls_options(&pki.ca_pem, true),
            vec![broker],
            ClusterSpec::default(),
        );
        h.delivery = delivery;
        let id = h.send(Target::Any, ListGroupsRequest::default());
        match h.expect_ok(id).body {
            ResponseBody::ListGroups(got) => assert_eq!(got.groups, groups.groups, "{delivery:?}"),
            other => panic!("{other:?}"),
        }
        // A second one on the same connection, after the first one's buffer was handed on.
        let id = h.send(Target::Any, ListGroupsRequest::default());
        match h.expect_ok(id).body {
            ResponseBody::ListGroups(got) => assert_eq!(got.groups.len(), n, "{delivery:?}"),
            other => panic!("{other:?}"),
        }
    }
}

/// A decrypted frame above the maximum fails the request and closes the connection, as on
/// plaintext, without allocating for the size it claims.
#[test]
fn a_frame_above_max_frame_over_tls_fails_the_request() {
    let pki = pki(&["localhost"]);
    let broker = tls_broker(&pki).with_hook(|req| match req.api() {
        ApiKey::ListGroups => Reply::Body(ResponseBody::ListGroups(many_groups(1_000))),
        _ => Reply::Default,
    });
    let mut opts = tls_options(&pki.ca_pem, true);
    opts.conn.max_frame = 4096;
    let mut h = Harness::new(opts, vec![broker], ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(1));
    assert!(matches!(err, NetError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("frame size"), "{err}");
}

#[test]
fn wrong_ca_fails_with_a_certificate_error() {
    let pki = pki(&["localhost"]);
    let (other_ca, _) = ca("some other CA");
    let mut h = Harness::new(
        tls_options(&other_ca.pem(), true),
        vec![tls_broker(&pki)],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(6));
    let text = err.to_string();
    assert!(text.contains("localhost:9093"), "{text}");
    assert!(text.contains("TLS"), "{text}");
    assert!(text.contains("certificate"), "{text}");
    assert!(h.brokers[0].received.is_empty(), "nothing sent in clear");
    assert!(!h.closes.is_empty(), "the connection was closed");
}

#[test]
fn hostname_mismatch_fails() {
    let pki = pki(&["other.example"]);
    let mut h = Harness::new(
        tls_options(&pki.ca_pem, true),
        vec![tls_broker(&pki)],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let err = h.expect_err(id, Duration::from_secs(6));
    let text = err.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(h.brokers[0].received.is_empty());
}

#[test]
fn hostname_mismatch_succeeds_without_hostname_check() {
    let pki = pki(&["other.example"]);
    let mut h = Harness::new(
        tls_options(&pki.ca_pem, false),
        vec![tls_broker(&pki)],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    assert_eq!(
        h.brokers[0].apis(),
        vec![ApiKey::ApiVersions, ApiKey::ListGroups]
    );
}

#[test]
fn no_hostname_check_still_checks_the_issuer() {
    let pki = pki(&["other.example"]);
    let (other_ca, _) = ca("some other CA");
    let mut h = Harness::new(
        tls_options(&other_ca.pem(), false),
        vec![tls_broker(&pki)],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let text = h.expect_err(id, Duration::from_secs(6)).to_string();
    assert!(text.contains("certificate"), "{text}");
}

#[test]
fn scram_over_tls() {
    let pki = pki(&["localhost"]);
    let broker = tls_broker(&pki).with_sasl(SaslSpec::scram(ScramMechanism::Sha512, "u", "pw"));
    let mut opts = tls_options(&pki.ca_pem, true);
    opts.sasl = Some(Arc::new(SaslConfig::scram(
        ScramMechanism::Sha512,
        "u",
        "pw",
    )));
    let mut h = Harness::new(opts, vec![broker], ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    assert_eq!(
        h.brokers[0].apis(),
        vec![
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
            ApiKey::SaslAuthenticate,
            ApiKey::ListGroups
        ]
    );
}

/// A server that requires a client certificate issued by its CA, and that CA's client cert
/// and key in PEM.
fn mutual_pki() -> (Pki, String, String) {
    let (ca_cert, ca_key) = ca("kafkit test CA");
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.distinguished_name.push(DnType::CommonName, "client");
    let client_cert = params.signed_by(&client_key, &ca_cert, &ca_key).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    let pki = Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    };
    (pki, client_cert.pem(), client_key.serialize_pem())
}

#[test]
fn mutual_tls_with_a_client_certificate() {
    let (pki, cert, key) = mutual_pki();
    let config = tls_client_config(
        provider(),
        &TlsOptions {
            ca_pem: Some(pki.ca_pem.as_bytes().to_vec()),
            client_cert_pem: Some(cert.into_bytes()),
            client_key_pem: Some(key.into_bytes()),
            check_hostname: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut opts = options(&[("localhost", 9093)]);
    opts.tls = Some(config);
    let mut h = Harness::new(opts, vec![tls_broker(&pki)], ClusterSpec::default());
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
    assert!(h.brokers[0].tls_errors.is_empty());
}

#[test]
fn mutual_tls_without_a_client_certificate_fails() {
    let (pki, _, _) = mutual_pki();
    let mut h = Harness::new(
        tls_options(&pki.ca_pem, true),
        vec![tls_broker(&pki)],
        ClusterSpec::default(),
    );
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let text = h.expect_err(id, Duration::from_secs(6)).to_string();
    assert!(
        !h.brokers[0].tls_errors.is_empty(),
        "the broker rejected it"
    );
    assert!(text.contains("localhost:9093"), "{text}");
    assert!(text.contains("TLS"), "{text}");
    assert!(
        h.brokers[0].received.is_empty(),
        "{:?}",
        h.brokers[0].apis()
    );
}

#[test]
fn garbage_instead_of_a_server_hello_fails_cleanly() {
    let pki = pki(&["localhost"]);
    for seed in 0..40u64 {
        let mut rng = network_support::XorShift(seed * 7919 + 1);
        let junk = rng.bytes(1 + (seed as usize * 13) % 300);
        // A plaintext listener that answers the ClientHello with noise.
        let broker = Broker::new(0, "localhost", 9093);
        let mut h = Harness::new(
            tls_options(&pki.ca_pem, true),
            vec![broker],
            ClusterSpec::default(),
        );
        let id = h.next_op();
        h.client
            .send(id, Target::Any, ListGroupsRequest::default(), None, h.now);
        h.drive();
        let conn = h.connects[0].conn;
        h.inject(conn, &junk);
        let text = h.expect_err(id, Duration::from_secs(6)).to_string();
        assert!(text.contains("localhost:9093"), "seed {seed}: {text}");
    }
}
