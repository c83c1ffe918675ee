//! Published test vectors: RFC 4616 (PLAIN), RFC 5802 (SCRAM-SHA-1), RFC 7677
//! (SCRAM-SHA-256), checked byte for byte on both the client and the server side.

use hmac::{Hmac, Mac};
use kafkit_core::sasl::{
    verify_plain, PlainClient, PlainMessage, SaslAuthenticator, SaslError, SaslStep, ScramClient,
    ScramCredential, ScramHash, ScramMechanism, ScramServer, Secret,
};
use sha1::{Digest, Sha1};

/// SCRAM-SHA-1, for the RFC 5802 vector only: Kafka does not offer it, so kafkit does not
/// either, but the generic SCRAM code must reproduce the RFC's exchange.
struct Sha1Hash;

impl ScramHash for Sha1Hash {
    fn mechanism_name(&self) -> &'static str {
        "SCRAM-SHA-1"
    }
    fn output_len(&self) -> usize {
        20
    }
    fn hash(&self, data: &[u8]) -> Vec<u8> {
        Sha1::digest(data).to_vec()
    }
    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
    fn salted_password(&self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; 20];
        pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
        out
    }
}

static SHA1: Sha1Hash = Sha1Hash;

#[test]
fn rfc4616_plain_examples() {
    // Section 4, first example: "<NUL>tim<NUL>tanstaaftanstaaf", 21 octets.
    let mut client = PlainClient::new("tim", "tanstaaftanstaaf").unwrap();
    let msg = client.start().unwrap();
    assert_eq!(msg, b"\0tim\0tanstaaftanstaaf");
    assert_eq!(msg.len(), 21);
    assert_eq!(
        client.handle_challenge(b"").unwrap(),
        SaslStep::Complete {
            final_message: None
        }
    );
    assert!(client.is_complete());
    let password = Secret::new("tanstaaftanstaaf");
    assert_eq!(
        verify_plain(&msg, |user| (user == "tim").then_some(&password)).unwrap(),
        "tim"
    );

    // Section 4, second example: "Ursel<NUL>Kurt<NUL>xipj3plmq", 20 octets; the server
    // refuses Kurt acting as Ursel.
    let mut client = PlainClient::with_authzid("Ursel", "Kurt", "xipj3plmq").unwrap();
    let msg = client.start().unwrap();
    assert_eq!(msg, b"Ursel\0Kurt\0xipj3plmq");
    assert_eq!(msg.len(), 20);
    let parsed = PlainMessage::parse(&msg).unwrap();
    assert_eq!(parsed.authzid, "Ursel");
    assert_eq!(parsed.username, "Kurt");
    assert_eq!(parsed.password.expose(), "xipj3plmq");
    let password = Secret::new("xipj3plmq");
    assert!(matches!(
        verify_plain(&msg, |_| Some(&password)),
        Err(SaslError::AuthenticationFailed(_))
    ));
}

struct Vector {
    hash: &'static dyn ScramHash,
    client_nonce: &'static str,
    server_nonce_suffix: &'static str,
    salt_b64: &'static str,
    client_first: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
}

/// RFC 5802 section 5.
fn rfc5802() -> Vector {
    Vector {
        hash: &SHA1,
        client_nonce: "fyko+d2lbbFgONRv9qkxdawL",
        server_nonce_suffix: "3rfcNHYJY1ZVvWVs7j",
        salt_b64: "QSXCR+Q6sek8bf92",
        client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        client_final:
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    }
}

/// RFC 7677 section 3.
fn rfc7677() -> Vector {
    Vector {
        hash: ScramMechanism::Sha256.hash(),
        client_nonce: "rOprNGfwEbeRWgbNEkqO",
        server_nonce_suffix: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        salt_b64: "W22ZaJ0SNY7soEsUEjb6gQ==",
        client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
        server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    }
}

fn check_client(v: &Vector) {
    let mut client = ScramClient::with_hash(v.hash, "user", "pencil", v.client_nonce).unwrap();
    assert_eq!(client.mechanism_name(), v.hash.mechanism_name());
    assert_eq!(client.start().unwrap(), v.client_first.as_bytes());
    assert_eq!(
        client.handle_challenge(v.server_first.as_bytes()).unwrap(),
        SaslStep::Continue(v.client_final.as_bytes().to_vec())
    );
    assert!(!client.is_complete());
    assert_eq!(
        client.handle_challenge(v.server_final.as_bytes()).unwrap(),
        SaslStep::Complete {
            final_message: None
        }
    );
    assert!(client.is_complete());
}

fn check_server(v: &Vector) {
    use base64::Engine as _;
    let salt = base64::engine::general_purpose::STANDARD
        .decode(v.salt_b64)
        .unwrap();
    let credential =
        ScramCredential::from_password_with_hash(v.hash, "pencil", &salt, 4096).unwrap();
    let mut server = ScramServer::with_hash(v.hash);
    let server_first = server
        .handle_client_first(v.client_first.as_bytes(), v.server_nonce_suffix, |first| {
            assert_eq!(first.username(), "user");
            assert!(!first.is_token_auth());
            Some(credential.clone())
        })
        .unwrap();
    assert_eq!(server_first, v.server_first.as_bytes());
    let server_final = server
        .handle_client_final(v.client_final.as_bytes())
        .unwrap();
    assert_eq!(server_final, v.server_final.as_bytes());
    assert!(server.is_complete());
    assert_eq!(server.authenticated_user(), Some("user"));
}

/// The client must refuse the vector's server-final when one bit of the signature flips.
fn check_tampered_server_final(v: &Vector) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut signature = b64.decode(&v.server_final[2..]).unwrap();
    signature[0] ^= 1;
    let tampered = format!("v={}", b64.encode(signature));
    let mut client = ScramClient::with_hash(v.hash, "user", "pencil", v.client_nonce).unwrap();
    client.start().unwrap();
    let _ = client.handle_challenge(v.server_first.as_bytes()).unwrap();
    assert_eq!(
        client.handle_challenge(tampered.as_bytes()),
        Err(SaslError::ServerSignatureMismatch)
    );
    assert!(!client.is_complete());
}

#[test]
fn rfc5802_scram_sha1_client() {
    check_client(&rfc5802());
}

#[test]
fn rfc5802_scram_sha1_server() {
    check_server(&rfc5802());
}

#[test]
fn rfc5802_scram_sha1_tampered_signature() {
    check_tampered_server_final(&rfc5802());
}

#[test]
fn rfc7677_scram_sha256_client() {
    check_client(&rfc7677());
}

#[test]
fn rfc7677_scram_sha256_server() {
    check_server(&rfc7677());
}

#[test]
fn rfc7677_scram_sha256_tampered_signature() {
    check_tampered_server_final(&rfc7677());
}

#[test]
fn rfc7677_through_the_public_mechanism() {
    // Same vector through ScramClient::new, the path Kafka clients use.
    let v = rfc7677();
    let mut client =
        ScramClient::new(ScramMechanism::Sha256, "user", "pencil", v.client_nonce).unwrap();
    client.start().unwrap();
    assert_eq!(
        client.handle_challenge(v.server_first.as_bytes()).unwrap(),
        SaslStep::Continue(v.client_final.as_bytes().to_vec())
    );
}
