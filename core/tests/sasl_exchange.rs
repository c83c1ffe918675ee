//! Our client state machines against our server verifiers, through the public API only, the
//! way a connection and the development broker would drive them.

use std::collections::HashMap;
use std::sync::Arc;

use kafkit_core::sasl::{
    verify_plain, OAuthBearerInitialResponse, OAuthBearerToken, PlainClient, SaslAuthenticator,
    SaslConfig, SaslError, SaslMechanism, SaslStep, ScramClient, ScramCredential, ScramMechanism,
    ScramServer, Secret, StaticTokenProvider, TokenProvider,
};

const PASSWORD: &str = "correct horse battery staple";
const SALT: &[u8] = b"0123456789abcdef";

/// A tiny broker-side SCRAM user store.
struct Users {
    mechanism: ScramMechanism,
    users: HashMap<String, ScramCredential>,
    tokens: HashMap<String, ScramCredential>,
}

impl Users {
    fn new(mechanism: ScramMechanism) -> Self {
        let mut users = HashMap::new();
        for name in ["alice", "we=ird,name"] {
            users.insert(
                name.to_owned(),
                ScramCredential::from_password(mechanism, PASSWORD, SALT, 4096).unwrap(),
            );
        }
        let mut tokens = HashMap::new();
        tokens.insert(
            "token-1".to_owned(),
            ScramCredential::from_password(mechanism, "token-hmac", SALT, 4096).unwrap(),
        );
        Users {
            mechanism,
            users,
            tokens,
        }
    }
}

/// What went wrong, and on which side.
#[derive(Debug, PartialEq)]
enum Outcome {
    Authenticated(String),
    ClientFailed(SaslError),
    ServerFailed(SaslError),
}

/// Runs a whole SCRAM exchange. `tamper` may rewrite each server message before the client
/// sees it (index 0: server-first, 1: server-final).
fn scram_exchange(
    users: &Users,
    mut client: impl SaslAuthenticator,
    tamper: impl Fn(usize, Vec<u8>) -> Vec<u8>,
) -> Outcome {
    let mut server = ScramServer::new(users.mechanism);
    let client_first = client.start().unwrap();
    let server_first = match server.handle_client_first(&client_first, "SrvNonce+/9", |first| {
        let store = if first.is_token_auth() {
            &users.tokens
        } else {
            &users.users
        };
        store.get(first.username()).cloned()
    }) {
        Ok(m) => m,
        Err(e) => return Outcome::ServerFailed(e),
    };
    let client_final = match client.handle_challenge(&tamper(0, server_first)) {
        Ok(SaslStep::Continue(m)) => m,
        Ok(other) => panic!("unexpected step {other:?}"),
        Err(e) => return Outcome::ClientFailed(e),
    };
    let server_final = match server.handle_client_final(&client_final) {
        Ok(m) => m,
        Err(e) => {
            assert!(!server.is_complete());
            return Outcome::ServerFailed(e);
        }
    };
    assert!(server.is_complete());
    match client.handle_challenge(&tamper(1, server_final)) {
        Ok(SaslStep::Complete {
            final_message: None,
        }) => {
            assert!(client.is_complete());
            Outcome::Authenticated(server.authenticated_user().unwrap().to_owned())
        }
        Ok(other) => panic!("unexpected step {other:?}"),
        Err(e) => {
            assert!(!client.is_complete());
            Outcome::ClientFailed(e)
        }
    }
}

fn no_tamper(_: usize, m: Vec<u8>) -> Vec<u8> {
    m
}

fn client(mechanism: ScramMechanism, user: &str, password: &str) -> ScramClient {
    ScramClient::new(mechanism, user, password, "cLiEnTnOnCe0123456789").unwrap()
}

const MECHANISMS: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

#[test]
fn scram_success() {
    for mechanism in MECHANISMS {
        let users = Users::new(mechanism);
        for user in ["alice", "we=ird,name"] {
            assert_eq!(
                scram_exchange(&users, client(mechanism, user, PASSWORD), no_tamper),
                Outcome::Authenticated(user.to_owned()),
                "{mechanism} {user}"
            );
        }
    }
}

#[test]
fn scram_wrong_password_fails_on_the_server() {
    for mechanism in MECHANISMS {
        let users = Users::new(mechanism);
        let outcome = scram_exchange(&users, client(mechanism, "alice", "wrong"), no_tamper);
        assert!(
            matches!(
                outcome,
                Outcome::ServerFailed(SaslError::AuthenticationFailed(_))
            ),
            "{outcome:?}"
        );
    }
}

#[test]
fn scram_unknown_user_fails_on_the_server() {
    let users = Users::new(ScramMechanism::Sha256);
    let outcome = scram_exchange(
        &users,
        client(ScramMechanism::Sha256, "mallory", PASSWORD),
        no_tamper,
    );
    assert!(matches!(
        outcome,
        Outcome::ServerFailed(SaslError::AuthenticationFailed(_))
    ));
}

#[test]
fn scram_mechanism_mismatch_fails() {
    // A SHA-512 client against a SHA-256 server: the proof is the wrong size.
    let users = Users::new(ScramMechanism::Sha256);
    let outcome = scram_exchange(
        &users,
        client(ScramMechanism::Sha512, "alice", PASSWORD),
        no_tamper,
    );
    assert!(matches!(outcome, Outcome::ServerFailed(_)), "{outcome:?}");
}

#[test]
fn scram_tampered_server_signature_fails_on_the_client() {
    for mechanism in MECHANISMS {
        let users = Users::new(mechanism);
        // Flip a character of the base64 signature (stays valid base64).
        let tamper = |i: usize, mut m: Vec<u8>| {
            if i == 1 {
                m[2] = if m[2] == b'A' { b'B' } else { b'A' };
            }
            m
        };
        assert_eq!(
            scram_exchange(&users, client(mechanism, "alice", PASSWORD), tamper),
            Outcome::ClientFailed(SaslError::ServerSignatureMismatch)
        );
        // A server that does not know the password cannot produce the signature either:
        // replace the real server-final with one computed from another password.
        let impostor = |i: usize, m: Vec<u8>| {
            if i == 1 {
                b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_vec()
            } else {
                m
            }
        };
        assert_eq!(
            scram_exchange(&users, client(mechanism, "alice", PASSWORD), impostor),
            Outcome::ClientFailed(SaslError::ServerSignatureMismatch)
        );
    }
}

#[test]
fn scram_server_nonce_not_extending_client_nonce_fails() {
    let users = Users::new(ScramMechanism::Sha256);
    let tamper = |i: usize, m: Vec<u8>| {
        if i == 0 {
            // Replace the client-nonce prefix with other printable characters.
            String::from_utf8(m)
                .unwrap()
                .replacen("r=cLiEnT", "r=XXXXXX", 1)
                .into_bytes()
        } else {
            m
        }
    };
    assert_eq!(
        scram_exchange(
            &users,
            client(ScramMechanism::Sha256, "alice", PASSWORD),
            tamper
        ),
        Outcome::ClientFailed(SaslError::InvalidServerNonce)
    );
}

#[test]
fn scram_server_error_is_surfaced() {
    let users = Users::new(ScramMechanism::Sha256);
    let tamper = |i: usize, m: Vec<u8>| {
        if i == 1 {
            b"e=other-error".to_vec()
        } else {
            m
        }
    };
    let outcome = scram_exchange(
        &users,
        client(ScramMechanism::Sha256, "alice", PASSWORD),
        tamper,
    );
    assert_eq!(
        outcome,
        Outcome::ClientFailed(SaslError::ServerError("other-error".to_owned()))
    );
}

#[test]
fn scram_server_rejects_replayed_or_altered_client_final() {
    let users = Users::new(ScramMechanism::Sha256);
    let mut client = client(ScramMechanism::Sha256, "alice", PASSWORD);
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    let first = client.start().unwrap();
    let server_first = server
        .handle_client_first(&first, "abc", |f| users.users.get(f.username()).cloned())
        .unwrap();
    let SaslStep::Continue(client_final) = client.handle_challenge(&server_first).unwrap() else {
        panic!()
    };
    // Another server (another nonce suffix) must not accept this client-final.
    let mut other = ScramServer::new(ScramMechanism::Sha256);
    other
        .handle_client_first(&first, "xyz", |f| users.users.get(f.username()).cloned())
        .unwrap();
    assert!(matches!(
        other.handle_client_final(&client_final),
        Err(SaslError::AuthenticationFailed(_))
    ));
    // Altered channel binding.
    let altered = String::from_utf8(client_final.clone())
        .unwrap()
        .replacen("c=biws", "c=eSws", 1);
    let mut server2 = ScramServer::new(ScramMechanism::Sha256);
    server2
        .handle_client_first(&first, "abc", |f| users.users.get(f.username()).cloned())
        .unwrap();
    assert!(matches!(
        server2.handle_client_final(altered.as_bytes()),
        Err(SaslError::Malformed { .. })
    ));
    // The genuine one still works, once.
    assert!(server.handle_client_final(&client_final).is_ok());
    assert!(matches!(
        server.handle_client_final(&client_final),
        Err(SaslError::InvalidState(_))
    ));
}

#[test]
fn scram_delegation_token() {
    for mechanism in MECHANISMS {
        let users = Users::new(mechanism);
        let config = SaslConfig::scram_delegation_token(mechanism, "token-1", "token-hmac");
        let auth = config.authenticator(&[42; 24]).unwrap();
        assert_eq!(
            scram_exchange(&users, auth, no_tamper),
            Outcome::Authenticated("token-1".to_owned())
        );
        // Without tokenauth the server looks in the user store and finds nothing.
        let config = SaslConfig::scram(mechanism, "token-1", "token-hmac");
        let auth = config.authenticator(&[42; 24]).unwrap();
        assert!(matches!(
            scram_exchange(&users, auth, no_tamper),
            Outcome::ServerFailed(SaslError::AuthenticationFailed(_))
        ));
    }
}

#[test]
fn scram_through_boxed_config_authenticator() {
    let users = Users::new(ScramMechanism::Sha512);
    let config = SaslConfig::scram(ScramMechanism::Sha512, "alice", PASSWORD);
    assert_eq!(config.mechanism(), SaslMechanism::ScramSha512);
    let boxed: Box<dyn SaslAuthenticator> = Box::new(config.authenticator(&[1; 24]).unwrap());
    assert_eq!(boxed.mechanism_name(), "SCRAM-SHA-512");
    assert_eq!(
        scram_exchange(&users, boxed, no_tamper),
        Outcome::Authenticated("alice".to_owned())
    );
}

/// PLAIN: client message -> verify_plain -> empty success response -> client complete.
fn plain_exchange(user: &str, password: &str) -> Result<String, SaslError> {
    let stored: HashMap<&str, Secret> = [("alice", Secret::new(PASSWORD))].into();
    let mut client = PlainClient::new(user, password)?;
    let msg = client.start()?;
    let authenticated = verify_plain(&msg, |u| stored.get(u))?;
    assert_eq!(
        client.handle_challenge(b"")?,
        SaslStep::Complete {
            final_message: None
        }
    );
    assert!(client.is_complete());
    Ok(authenticated)
}

#[test]
fn plain_exchanges() {
    assert_eq!(plain_exchange("alice", PASSWORD).unwrap(), "alice");
    assert!(matches!(
        plain_exchange("alice", "wrong"),
        Err(SaslError::AuthenticationFailed(_))
    ));
    assert!(matches!(
        plain_exchange("bob", PASSWORD),
        Err(SaslError::AuthenticationFailed(_))
    ));
    // Authzid equal to the user is accepted, as by Kafka.
    let msg = PlainClient::with_authzid("alice", "alice", PASSWORD)
        .unwrap()
        .start()
        .unwrap();
    let secret = Secret::new(PASSWORD);
    assert_eq!(verify_plain(&msg, |_| Some(&secret)).unwrap(), "alice");
}

#[test]
fn oauthbearer_exchange_with_provider() {
    let token = OAuthBearerToken::new("header.payload.signature").with_extension("traceId", "x1");
    let provider: Arc<dyn TokenProvider> = Arc::new(StaticTokenProvider(token));
    let config = SaslConfig::oauthbearer(provider);
    let mut auth = config.authenticator(&[]).unwrap();
    let msg = auth.start().unwrap();
    let parsed = OAuthBearerInitialResponse::parse(&msg).unwrap();
    assert_eq!(parsed.token.expose(), "header.payload.signature");
    assert_eq!(
        parsed.extensions.get("traceId").map(String::as_str),
        Some("x1")
    );
    assert_eq!(
        auth.handle_challenge(b"").unwrap(),
        SaslStep::Complete {
            final_message: None
        }
    );
    assert!(auth.is_complete());
}

#[test]
fn oauthbearer_provider_failure_is_reported() {
    struct Failing;
    impl TokenProvider for Failing {
        fn token(&self) -> Result<OAuthBearerToken, SaslError> {
            Err(SaslError::TokenUnavailable("refresh pending".to_owned()))
        }
    }
    let config = SaslConfig::oauthbearer(Arc::new(Failing));
    assert_eq!(
        config.authenticator(&[]).unwrap_err(),
        SaslError::TokenUnavailable("refresh pending".to_owned())
    );
}

#[test]
fn debug_output_never_contains_secrets() {
    const SECRET: &str = "s3cr3t-Pa55word";
    let secret = Secret::new(SECRET);
    let mut outputs = vec![
        format!("{secret:?}"),
        format!("{:?}", SaslConfig::plain("alice", SECRET)),
        format!(
            "{:?}",
            SaslConfig::scram(ScramMechanism::Sha256, "alice", SECRET)
        ),
        format!(
            "{:?}",
            SaslConfig::scram_delegation_token(ScramMechanism::Sha512, "tok", SECRET)
        ),
        format!(
            "{:?}",
            SaslConfig::oauthbearer(Arc::new(StaticTokenProvider(OAuthBearerToken::new(SECRET))))
        ),
        format!("{:?}", OAuthBearerToken::new(SECRET)),
        format!("{:?}", StaticTokenProvider(OAuthBearerToken::new(SECRET))),
        format!("{:?}", PlainClient::new("alice", SECRET).unwrap()),
        format!(
            "{:?}",
            ScramCredential::from_password(ScramMechanism::Sha256, SECRET, SALT, 4096).unwrap()
        ),
    ];
    // State machines at every stage.
    let mut scram = client(ScramMechanism::Sha256, "alice", SECRET);
    outputs.push(format!("{scram:?}"));
    scram.start().unwrap();
    outputs.push(format!("{scram:?}"));
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    let users = Users::new(ScramMechanism::Sha256);
    let first = client(ScramMechanism::Sha256, "alice", SECRET)
        .start()
        .unwrap();
    server
        .handle_client_first(&first, "n", |f| users.users.get(f.username()).cloned())
        .unwrap();
    outputs.push(format!("{server:?}"));
    let mut plain_config = SaslConfig::plain("alice", SECRET)
        .authenticator(&[])
        .unwrap();
    plain_config.start().unwrap();
    outputs.push(format!("{plain_config:?}"));
    let parsed = OAuthBearerInitialResponse::parse(
        &SaslConfig::oauthbearer(Arc::new(StaticTokenProvider(OAuthBearerToken::new(SECRET))))
            .authenticator(&[])
            .unwrap()
            .start()
            .unwrap(),
    )
    .unwrap();
    outputs.push(format!("{parsed:?}"));

    for output in &outputs {
        assert!(!output.contains(SECRET), "secret leaked: {output}");
    }
    assert_eq!(outputs[0], "[redacted]");
    assert!(outputs[1].contains("alice"), "{}", outputs[1]);
}
