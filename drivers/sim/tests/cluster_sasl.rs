//! SASL: kafkit's client authenticating to the simulated cluster with PLAIN and SCRAM, wrong
//! passwords, and requests before authentication.

mod cluster_support;

use std::sync::Arc;
use std::time::Duration;

use cluster_support::{client_sim, decode_as, roundtrip, Harness};
use kafkit_core::network::{NetError, Target};
use kafkit_core::protocol::{
    ApiVersionsRequest, MetadataRequest, ResponseBody, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafkit_core::sasl::{PlainMessage, SaslConfig, ScramMechanism, Secret};
use kafkit_sim::cluster::SaslUser;
use kafkit_sim::ClusterConfig;

fn users() -> Vec<SaslUser> {
    vec![
        SaslUser::new("PLAIN", "alice", "alice-secret"),
        SaslUser::new("SCRAM-SHA-256", "bob", "bob-secret"),
        SaslUser::new("SCRAM-SHA-512", "carol", "carol-secret"),
    ]
}

fn metadata() -> MetadataRequest {
    MetadataRequest {
        topics: None,
        ..Default::default()
    }
}

fn run(sasl: SaslConfig) -> Result<(), NetError> {
    let config = ClusterConfig {
        sasl_users: users(),
        ..Default::default()
    };
    let (mut sim, cluster) = client_sim(config, |o| {
        o.sasl = Some(Arc::new(sasl));
        o.conn.request_timeout = Duration::from_secs(5);
    });
    let resp = roundtrip(&mut sim, Target::Any, metadata(), None)?;
    assert!(matches!(resp.body, ResponseBody::Metadata(_)));
    let c = cluster.borrow();
    let users: Vec<&str> = (0..8)
        .filter_map(|conn| c.authenticated_user(0, conn))
        .collect();
    assert!(!users.is_empty(), "someone authenticated on broker 0");
    Ok(())
}

#[test]
fn plain_and_scram_users_authenticate() {
    run(SaslConfig::plain("alice", "alice-secret")).unwrap();
    run(SaslConfig::scram(
        ScramMechanism::Sha256,
        "bob",
        "bob-secret",
    ))
    .unwrap();
    run(SaslConfig::scram(
        ScramMechanism::Sha512,
        "carol",
        "carol-secret",
    ))
    .unwrap();
}

#[test]
fn wrong_passwords_and_mechanisms_fail() {
    for sasl in [
        SaslConfig::plain("alice", "wrong"),
        SaslConfig::plain("mallory", "alice-secret"),
        SaslConfig::scram(ScramMechanism::Sha256, "bob", "wrong"),
        // bob has no SCRAM-SHA-512 credential.
        SaslConfig::scram(ScramMechanism::Sha512, "bob", "bob-secret"),
    ] {
        let err = run(sasl.clone()).unwrap_err();
        assert!(
            matches!(err, NetError::Authentication { .. }),
            "{sasl:?}: {err}"
        );
        assert!(
            err.to_string().to_lowercase().contains("authentic"),
            "{sasl:?}: {err}"
        );
    }
}

#[test]
fn a_request_before_authentication_closes_the_connection() {
    let mut h = Harness::new(ClusterConfig {
        sasl_users: users(),
        ..Default::default()
    });
    h.connect(0, 1);
    // ApiVersions is allowed.
    let v = h.call(0, 1, ApiVersionsRequest::default(), 3);
    assert_eq!(v.error_code, 0);
    // Metadata is not.
    let reply = h.send(0, 1, metadata(), 12);
    assert!(reply.close && reply.frames.is_empty());

    // Nor after the handshake alone.
    h.connect(0, 2);
    let hs = h.call(
        0,
        2,
        SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
        1,
    );
    assert_eq!(hs.error_code, 0);
    assert_eq!(
        hs.mechanisms,
        vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    );
    let reply = h.send(0, 2, metadata(), 12);
    assert!(reply.close);

    // A wrong password is answered, then the connection closes.
    h.connect(0, 3);
    h.call(
        0,
        3,
        SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
        1,
    );
    let token = PlainMessage {
        authzid: String::new(),
        username: "alice".into(),
        password: Secret::new("nope"),
    }
    .encode();
    let reply = h.send(
        0,
        3,
        SaslAuthenticateRequest {
            auth_bytes: token.into(),
            ..Default::default()
        },
        2,
    );
    assert!(reply.close);
    let (_, a) = decode_as::<SaslAuthenticateRequest>(2, &reply.frames[0]);
    assert_eq!(
        a.error_code,
        kafkit_core::protocol::ErrorCode::SASL_AUTHENTICATION_FAILED.code()
    );

    // An unknown mechanism is refused with the list, then the connection closes.
    h.connect(0, 4);
    let reply = h.send(
        0,
        4,
        SaslHandshakeRequest {
            mechanism: "GSSAPI".into(),
            ..Default::default()
        },
        1,
    );
    assert!(reply.close);
    let (_, hs) = decode_as::<SaslHandshakeRequest>(1, &reply.frames[0]);
    assert_eq!(
        hs.error_code,
        kafkit_core::protocol::ErrorCode::UNSUPPORTED_SASL_MECHANISM.code()
    );

    // The right password over a v0 handshake: raw tokens, an empty token back.
    h.connect(0, 5);
    h.call(
        0,
        5,
        SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
        0,
    );
    let token = PlainMessage {
        authzid: String::new(),
        username: "alice".into(),
        password: Secret::new("alice-secret"),
    }
    .encode();
    let reply = h.cluster.handle_frame(0, 5, token.into(), h.now);
    assert!(!reply.close);
    assert_eq!(&reply.frames[0][..], &[0, 0, 0, 0]);
    assert_eq!(h.cluster.authenticated_user(0, 5), Some("alice"));
    let _ = h.call(0, 5, metadata(), 12);
}

#[test]
fn without_sasl_a_handshake_is_an_illegal_state() {
    let mut h = Harness::new(ClusterConfig::default());
    h.connect(0, 1);
    let hs = h.call(
        0,
        1,
        SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
            ..Default::default()
        },
        1,
    );
    assert_eq!(
        hs.error_code,
        kafkit_core::protocol::ErrorCode::ILLEGAL_SASL_STATE.code()
    );
}
