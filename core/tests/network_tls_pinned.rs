//! Issue 24 item 6: a self-signed server certificate given as `ssl_cafile` is trusted as it
//! is (openssl, Java and kcat accept it; webpki alone refused it with
//! `Other(OtherError(CaUsedAsEndEntity))`), its name is still checked, and TLS failures read
//! as sentences, never as Rust debug text.

mod network_support;

use std::sync::Arc;
use std::time::Duration;

use kafkit_core::network::{tls_client_config, NetOptions, Target, TlsOptions};
use kafkit_core::protocol::{ApiKey, ListGroupsRequest};
use network_support::{options, Broker, ClusterSpec, Harness};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `names` and a server that presents it. `ca` marks it as a CA
/// (what `openssl req -x509 -newkey ...` makes by default).
fn self_signed(names: &[&str], ca: bool, expired: bool) -> (String, Arc<rustls::ServerConfig>) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    if expired {
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    }
    let cert = params.self_signed(&key).unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .unwrap();
    (cert.pem(), Arc::new(server))
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

fn harness(ca_pem: &str, check_hostname: bool, server: Arc<rustls::ServerConfig>) -> Harness {
    Harness::new(
        tls_options(ca_pem, check_hostname),
        vec![Broker::new(0, "localhost", 9093).with_tls(server)],
        ClusterSpec::default(),
    )
}

/// The error text of a request that fails, checked for debug text.
fn failure(h: &mut Harness) -> String {
    let id = h.send(Target::Any, ListGroupsRequest::default());
    let text = h.expect_err(id, Duration::from_secs(6)).to_string();
    for debug in [
        "OtherError",
        "CaUsedAsEndEntity",
        "InvalidCertificate",
        "((",
    ] {
        assert!(!text.contains(debug), "debug text in {text:?}");
    }
    assert!(text.contains("localhost:9093"), "{text}");
    assert!(h.brokers[0].received.is_empty(), "nothing sent in clear");
    text
}

#[test]
fn a_self_signed_server_certificate_as_the_ca_file_is_trusted() {
    for ca in [true, false] {
        let (pem, server) = self_signed(&["localhost"], ca, false);
        let mut h = harness(&pem, true, server);
        let id = h.send(Target::Any, ListGroupsRequest::default());
        h.expect_ok(id);
        assert_eq!(
            h.brokers[0].apis(),
            vec![ApiKey::ApiVersions, ApiKey::ListGroups],
            "ca={ca}"
        );
    }
}

#[test]
fn a_pinned_certificate_must_still_name_the_host_unless_the_check_is_off() {
    let (pem, server) = self_signed(&["other.example"], true, false);
    let mut h = harness(&pem, true, server.clone());
    let text = failure(&mut h);
    assert!(
        text.contains("not valid for the name 'localhost'")
            && text.contains("ssl_check_hostname=false"),
        "{text}"
    );
    let mut h = harness(&pem, false, server);
    let id = h.send(Target::Any, ListGroupsRequest::default());
    h.expect_ok(id);
}

#[test]
fn only_that_exact_certificate_is_trusted() {
    let (pem, _) = self_signed(&["localhost"], true, false);
    // Same name, another key: not the pinned certificate.
    let (_, other_server) = self_signed(&["localhost"], true, false);
    let mut h = harness(&pem, true, other_server);
    let text = failure(&mut h);
    assert!(text.contains("certificate"), "{text}");
    // Without the name check too.
    let (_, other_server) = self_signed(&["localhost"], false, false);
    let mut h = harness(&pem, false, other_server);
    let text = failure(&mut h);
    assert!(text.contains("ssl_cafile"), "says what to set: {text}");
}

#[test]
fn an_expired_pinned_certificate_is_refused_as_expired() {
    let (pem, server) = self_signed(&["localhost"], true, true);
    let mut h = harness(&pem, true, server);
    let text = failure(&mut h);
    assert!(text.contains("expired"), "{text}");
}
