//! SCRAM (RFC 5802) with SHA-256 (RFC 7677) and SHA-512, as Kafka uses it: client and server
//! state machines and stored credentials.
//!
//! Kafka deviations and choices, all matching Kafka's Java implementation:
//! - no channel binding (gs2 header `n,,`, so `c=biws`);
//! - user names are escaped (`=` as `=3D`, `,` as `=2C`) but not SASLprep-normalized, and
//!   passwords are used as their UTF-8 bytes;
//! - iteration counts below 4096 are rejected; the client also rejects counts above a cap
//!   ([`SCRAM_DEFAULT_MAX_ITERATIONS`] unless configured) so a hostile server cannot make it
//!   burn CPU;
//! - client-first may carry Kafka's extensions, e.g. `tokenauth=true` for delegation tokens.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::error::peer_text;
use super::{constant_time_eq, SaslAuthenticator, SaslError, SaslMechanism, SaslStep, Secret};

/// The smallest iteration count Kafka accepts (for both SCRAM-SHA-256 and SCRAM-SHA-512).
pub const SCRAM_MIN_ITERATIONS: u32 = 4096;

/// The largest iteration count a [`ScramClient`] accepts from a server unless configured
/// otherwise with [`ScramClient::with_max_iterations`], and the largest
/// [`ScramCredential::from_password`] accepts. Kafka's brokers store at most 16384.
pub const SCRAM_DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

const CLIENT_FIRST: &str = "SCRAM client-first";
const SERVER_FIRST: &str = "SCRAM server-first";
const CLIENT_FINAL: &str = "SCRAM client-final";
const SERVER_FINAL: &str = "SCRAM server-final";

/// The hash function a SCRAM mechanism is built on: `H`, `HMAC` and `Hi` (PBKDF2 with
/// HMAC-H) of RFC 5802 section 2.2.
///
/// kafkit implements it for SHA-256 and SHA-512, reachable through [`ScramMechanism::hash`].
/// Kafka supports only those two; implement this trait yourself only to run SCRAM with
/// another hash outside Kafka, e.g. to check the RFC 5802 SCRAM-SHA-1 test vector.
pub trait ScramHash: Send + Sync + 'static {
    /// The SASL mechanism name, e.g. `SCRAM-SHA-256`.
    fn mechanism_name(&self) -> &'static str;
    /// The digest size in bytes (32 for SHA-256).
    fn output_len(&self) -> usize;
    /// `H(data)`.
    fn hash(&self, data: &[u8]) -> Vec<u8>;
    /// `HMAC(key, data)`; any key length is accepted.
    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8>;
    /// `Hi(password, salt, iterations)`, i.e. PBKDF2-HMAC-H with an output of
    /// [`output_len`](ScramHash::output_len) bytes.
    fn salted_password(&self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8>;
}

impl fmt::Debug for dyn ScramHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mechanism_name())
    }
}

macro_rules! sha2_scram_hash {
    ($name:ident, $digest:ty, $mechanism:literal) => {
        struct $name;

        impl ScramHash for $name {
            fn mechanism_name(&self) -> &'static str {
                $mechanism
            }
            fn output_len(&self) -> usize {
                <$digest as Digest>::output_size()
            }
            fn hash(&self, data: &[u8]) -> Vec<u8> {
                <$digest>::digest(data).to_vec()
            }
            fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
                let mut mac = <Hmac<$digest> as Mac>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            fn salted_password(&self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
                let mut out = vec![0u8; self.output_len()];
                pbkdf2::pbkdf2_hmac::<$digest>(password, salt, iterations, &mut out);
                out
            }
        }
    };
}

sha2_scram_hash!(Sha256Hash, Sha256, "SCRAM-SHA-256");
sha2_scram_hash!(Sha512Hash, Sha512, "SCRAM-SHA-512");

/// The SCRAM mechanisms Kafka supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

impl ScramMechanism {
    /// The Kafka mechanism name.
    pub const fn as_str(self) -> &'static str {
        self.sasl_mechanism().as_str()
    }

    /// The same mechanism as a [`SaslMechanism`].
    pub const fn sasl_mechanism(self) -> SaslMechanism {
        match self {
            ScramMechanism::Sha256 => SaslMechanism::ScramSha256,
            ScramMechanism::Sha512 => SaslMechanism::ScramSha512,
        }
    }

    /// The hash functions of this mechanism.
    pub fn hash(self) -> &'static dyn ScramHash {
        match self {
            ScramMechanism::Sha256 => &Sha256Hash,
            ScramMechanism::Sha512 => &Sha512Hash,
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<SaslMechanism> for ScramMechanism {
    type Error = SaslError;

    /// Succeeds for the two SCRAM mechanisms; fails with
    /// [`SaslError::UnsupportedMechanism`] for PLAIN and OAUTHBEARER.
    fn try_from(mechanism: SaslMechanism) -> Result<Self, Self::Error> {
        match mechanism {
            SaslMechanism::ScramSha256 => Ok(ScramMechanism::Sha256),
            SaslMechanism::ScramSha512 => Ok(ScramMechanism::Sha512),
            other => Err(SaslError::UnsupportedMechanism {
                mechanism: other.as_str().to_owned(),
                reason: "not a SCRAM mechanism",
            }),
        }
    }
}

impl FromStr for ScramMechanism {
    type Err = SaslError;

    /// Parses `SCRAM-SHA-256` or `SCRAM-SHA-512` (exact Kafka names).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<SaslMechanism>()?.try_into()
    }
}

// ---------------------------------------------------------------------------------------------
// Message helpers

/// Escapes a user name as an RFC 5802 `saslname`: `=` becomes `=3D`, `,` becomes `=2C`.
fn escape_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_saslname`]; any other `=` sequence is an error.
fn unescape_saslname(name: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let escape = rest.get(pos..pos + 3);
        match escape {
            Some("=3D") => out.push('='),
            Some("=2C") => out.push(','),
            _ => return Err("invalid '=' escape in user name"),
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err("empty user name");
    }
    if out.contains('\0') {
        return Err("NUL in user name");
    }
    Ok(out)
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E (printable ASCII except ',').
fn check_nonce(nonce: &str) -> Result<(), &'static str> {
    if nonce.is_empty() {
        return Err("empty nonce");
    }
    if nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        Ok(())
    } else {
        Err("nonce contains a character outside printable ASCII or a comma")
    }
}

/// Splits `key=value`; the key must be non-empty. Values may contain `=`.
fn split_attr<'a>(message: &'static str, attr: &'a str) -> Result<(&'a str, &'a str), SaslError> {
    match attr.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(SaslError::malformed(
            message,
            format!(
                "attribute {:?} is not of the form key=value",
                peer_text(attr.as_bytes())
            ),
        )),
    }
}

/// Takes the next attribute, which must be `key=`.
fn expect_attr<'a>(
    message: &'static str,
    parts: &mut impl Iterator<Item = &'a str>,
    key: &'static str,
) -> Result<&'a str, SaslError> {
    let Some(attr) = parts.next() else {
        return Err(SaslError::malformed(
            message,
            format!("missing attribute {key}="),
        ));
    };
    let (k, v) = split_attr(message, attr)?;
    if k == "m" {
        return Err(SaslError::malformed(
            message,
            "mandatory extension m= is not supported",
        ));
    }
    if k != key {
        return Err(SaslError::malformed(
            message,
            format!(
                "expected attribute {key}=, found {}=",
                peer_text(k.as_bytes())
            ),
        ));
    }
    Ok(v)
}

/// Parses optional trailing extensions `key=value` (Kafka's `tokenauth=true` and friends).
fn parse_extensions<'a>(
    message: &'static str,
    parts: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, SaslError> {
    parts
        .map(|attr| {
            let (k, v) = split_attr(message, attr)?;
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn utf8<'a>(message: &'static str, bytes: &'a [u8]) -> Result<&'a str, SaslError> {
    std::str::from_utf8(bytes).map_err(|_| SaslError::malformed(message, "not valid UTF-8"))
}

fn decode_base64(message: &'static str, what: &str, value: &str) -> Result<Vec<u8>, SaslError> {
    BASE64
        .decode(value)
        .map_err(|e| SaslError::malformed(message, format!("{what} is not valid base64: {e}")))
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// The keys both sides derive; see RFC 5802 section 3.
struct Proof {
    client_proof: Vec<u8>,
    server_signature: Vec<u8>,
}

fn client_proof(hash: &dyn ScramHash, salted_password: &[u8], auth_message: &[u8]) -> Proof {
    let client_key = hash.hmac(salted_password, b"Client Key");
    let stored_key = hash.hash(&client_key);
    let client_signature = hash.hmac(&stored_key, auth_message);
    let server_key = hash.hmac(salted_password, b"Server Key");
    Proof {
        client_proof: xor(&client_key, &client_signature),
        server_signature: hash.hmac(&server_key, auth_message),
    }
}

// ---------------------------------------------------------------------------------------------
// Client

#[derive(Clone)]
enum ClientState {
    Initial,
    FirstSent { client_first_bare: String },
    FinalSent { server_signature: Vec<u8> },
    Complete,
    Failed,
}

impl ClientState {
    fn name(&self) -> &'static str {
        match self {
            ClientState::Initial => "Initial",
            ClientState::FirstSent { .. } => "FirstSent",
            ClientState::FinalSent { .. } => "FinalSent",
            ClientState::Complete => "Complete",
            ClientState::Failed => "Failed",
        }
    }
}

/// SCRAM client (RFC 5802) for SCRAM-SHA-256 or SCRAM-SHA-512.
///
/// Sequence:
/// 1. [`start`](SaslAuthenticator::start) returns client-first:
///    `n,,n=<escaped user>,r=<client nonce>` (plus `,tokenauth=true` with
///    [`with_token_auth`](ScramClient::with_token_auth)).
/// 2. The server answers server-first `r=<client nonce><server nonce>,s=<salt>,i=<count>`.
///    [`handle_challenge`](SaslAuthenticator::handle_challenge) checks the nonce extends
///    ours ([`SaslError::InvalidServerNonce`]), the count is in
///    `SCRAM_MIN_ITERATIONS..=max` ([`SaslError::IterationCountOutOfRange`]), derives the keys
///    and returns `Continue(client-final)`: `c=biws,r=<nonce>,p=<base64 ClientProof>`.
/// 3. The server answers server-final `v=<base64 ServerSignature>`: `handle_challenge`
///    compares it in constant time and returns `Complete { final_message: None }`, or fails
///    with [`SaslError::ServerSignatureMismatch`]; `e=<error>` fails with
///    [`SaslError::ServerError`]. (Kafka's broker reports a wrong password as an error code
///    on the response instead, which the driver handles.)
///
/// The expensive step is PBKDF2 in step 2: `iterations` HMACs.
///
/// `Clone` copies the state machine at its current step (useful in tests).
#[derive(Clone)]
pub struct ScramClient {
    hash: &'static dyn ScramHash,
    username: String,
    password: Secret,
    nonce: String,
    token_auth: bool,
    max_iterations: u32,
    state: ClientState,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.hash.mechanism_name())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("nonce", &self.nonce)
            .field("token_auth", &self.token_auth)
            .field("max_iterations", &self.max_iterations)
            .field("state", &self.state.name())
            .finish()
    }
}

impl ScramClient {
    /// A client for `mechanism`.
    ///
    /// `client_nonce` must come from the caller's (seeded) random generator, fresh for every
    /// attempt, and consist of printable ASCII other than `,` (base64 of 24 random bytes is
    /// typical; see [`super::SaslConfig::authenticator`]). Errors with
    /// [`SaslError::InvalidNonce`] otherwise, and with [`SaslError::InvalidCredential`] for an
    /// empty user name or one containing NUL.
    pub fn new(
        mechanism: ScramMechanism,
        username: impl Into<String>,
        password: impl Into<Secret>,
        client_nonce: impl Into<String>,
    ) -> Result<Self, SaslError> {
        Self::with_hash(mechanism.hash(), username, password, client_nonce)
    }

    /// Like [`ScramClient::new`] with any [`ScramHash`] (for example SHA-1 to run the RFC 5802
    /// test vector). Kafka brokers accept only SCRAM-SHA-256 and SCRAM-SHA-512.
    pub fn with_hash(
        hash: &'static dyn ScramHash,
        username: impl Into<String>,
        password: impl Into<Secret>,
        client_nonce: impl Into<String>,
    ) -> Result<Self, SaslError> {
        let username = username.into();
        let nonce = client_nonce.into();
        if username.is_empty() || username.contains('\0') {
            return Err(SaslError::InvalidCredential(
                "SCRAM user name is empty or contains NUL".to_owned(),
            ));
        }
        check_nonce(&nonce).map_err(SaslError::InvalidNonce)?;
        Ok(ScramClient {
            hash,
            username,
            password: password.into(),
            nonce,
            token_auth: false,
            max_iterations: SCRAM_DEFAULT_MAX_ITERATIONS,
            state: ClientState::Initial,
        })
    }

    /// Authenticate with a Kafka delegation token (the user name is the token id, the
    /// password the token HMAC): adds the `tokenauth=true` extension to client-first.
    pub fn with_token_auth(mut self, token_auth: bool) -> Self {
        self.token_auth = token_auth;
        self
    }

    /// The largest iteration count accepted from the server (default
    /// [`SCRAM_DEFAULT_MAX_ITERATIONS`]). Values below [`SCRAM_MIN_ITERATIONS`] are raised to
    /// it.
    pub fn with_max_iterations(mut self, max_iterations: u32) -> Self {
        self.max_iterations = max_iterations.max(SCRAM_MIN_ITERATIONS);
        self
    }

    /// The client nonce this client sends.
    pub fn client_nonce(&self) -> &str {
        &self.nonce
    }

    fn fail<T>(&mut self, error: SaslError) -> Result<T, SaslError> {
        self.state = ClientState::Failed;
        Err(error)
    }

    fn handle_server_first(
        &mut self,
        client_first_bare: &str,
        server_msg: &[u8],
    ) -> Result<Vec<u8>, SaslError> {
        let server_first = utf8(SERVER_FIRST, server_msg)?;
        let mut parts = server_first.split(',');
        let nonce = expect_attr(SERVER_FIRST, &mut parts, "r")?;
        let salt = expect_attr(SERVER_FIRST, &mut parts, "s")?;
        let iterations = expect_attr(SERVER_FIRST, &mut parts, "i")?;
        parse_extensions(SERVER_FIRST, parts)?;

        if check_nonce(nonce).is_err()
            || nonce.len() <= self.nonce.len()
            || !nonce.starts_with(&self.nonce)
        {
            return Err(SaslError::InvalidServerNonce);
        }
        let salt = decode_base64(SERVER_FIRST, "salt", salt)?;
        if salt.is_empty() {
            return Err(SaslError::malformed(SERVER_FIRST, "empty salt"));
        }
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SaslError::malformed(
                SERVER_FIRST,
                "iteration count is not a decimal number",
            ));
        }
        let iterations_wide = iterations.parse::<u64>().unwrap_or(u64::MAX);
        let iterations = match u32::try_from(iterations_wide) {
            Ok(i) if (SCRAM_MIN_ITERATIONS..=self.max_iterations).contains(&i) => i,
            _ => {
                return Err(SaslError::IterationCountOutOfRange {
                    iterations: iterations_wide,
                    min: SCRAM_MIN_ITERATIONS,
                    max: self.max_iterations,
                })
            }
        };

        let salted =
            self.hash
                .salted_password(self.password.expose().as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let proof = client_proof(self.hash, &salted, auth_message.as_bytes());
        self.state = ClientState::FinalSent {
            server_signature: proof.server_signature,
        };
        Ok(format!("{without_proof},p={}", BASE64.encode(&proof.client_proof)).into_bytes())
    }
}

fn check_server_final(expected: &[u8], server_msg: &[u8]) -> Result<(), SaslError> {
    let text = utf8(SERVER_FINAL, server_msg)?;
    let mut parts = text.split(',');
    let first = parts.next().unwrap_or_default();
    let (key, value) = split_attr(SERVER_FINAL, first)?;
    match key {
        "e" => Err(SaslError::ServerError(peer_text(value.as_bytes()))),
        "v" => {
            parse_extensions(SERVER_FINAL, parts)?;
            let signature = decode_base64(SERVER_FINAL, "server signature", value)?;
            if constant_time_eq(&signature, expected) {
                Ok(())
            } else {
                Err(SaslError::ServerSignatureMismatch)
            }
        }
        other => Err(SaslError::malformed(
            SERVER_FINAL,
            format!("expected v= or e=, found {}=", peer_text(other.as_bytes())),
        )),
    }
}

impl SaslAuthenticator for ScramClient {
    fn mechanism_name(&self) -> &'static str {
        self.hash.mechanism_name()
    }

    fn start(&mut self) -> Result<Vec<u8>, SaslError> {
        if !matches!(self.state, ClientState::Initial) {
            return self.fail(SaslError::InvalidState("SCRAM start called twice"));
        }
        let mut bare = format!("n={},r={}", escape_saslname(&self.username), self.nonce);
        if self.token_auth {
            bare.push_str(",tokenauth=true");
        }
        let message = format!("n,,{bare}").into_bytes();
        self.state = ClientState::FirstSent {
            client_first_bare: bare,
        };
        Ok(message)
    }

    fn handle_challenge(&mut self, server_msg: &[u8]) -> Result<SaslStep, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Failed) {
            ClientState::FirstSent { client_first_bare } => {
                let message = self.handle_server_first(&client_first_bare, server_msg)?;
                Ok(SaslStep::Continue(message))
            }
            ClientState::FinalSent { server_signature } => {
                check_server_final(&server_signature, server_msg)?;
                self.state = ClientState::Complete;
                Ok(SaslStep::Complete {
                    final_message: None,
                })
            }
            ClientState::Initial => self.fail(SaslError::InvalidState(
                "SCRAM handle_challenge called before start",
            )),
            ClientState::Complete | ClientState::Failed => self.fail(SaslError::InvalidState(
                "SCRAM handle_challenge called after the exchange ended",
            )),
        }
    }

    fn is_complete(&self) -> bool {
        matches!(self.state, ClientState::Complete)
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// What a SCRAM server stores for one user (RFC 5802 section 2.2): salt, iteration count,
/// `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
/// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
///
/// The keys are password-equivalent for impersonating the server, so `Debug` omits them.
#[derive(Clone)]
pub struct ScramCredential {
    hash: &'static dyn ScramHash,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.hash.mechanism_name())
            .field("salt", &BASE64.encode(&self.salt))
            .field("iterations", &self.iterations)
            .field("stored_key", &"[redacted]")
            .field("server_key", &"[redacted]")
            .finish()
    }
}

impl ScramCredential {
    /// Derives the credential for `password` (UTF-8 bytes, not normalized, as Kafka does).
    ///
    /// `salt` should be random (drawn by the caller) and non-empty; `iterations` must be in
    /// `SCRAM_MIN_ITERATIONS..=SCRAM_DEFAULT_MAX_ITERATIONS`. Errors with
    /// [`SaslError::InvalidCredential`] or [`SaslError::IterationCountOutOfRange`].
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        Self::from_password_with_hash(mechanism.hash(), password, salt, iterations)
    }

    /// Like [`ScramCredential::from_password`] with any [`ScramHash`].
    pub fn from_password_with_hash(
        hash: &'static dyn ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        Self::check(salt, iterations)?;
        let salted = hash.salted_password(password.as_bytes(), salt, iterations);
        Ok(ScramCredential {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.hash(&hash.hmac(&salted, b"Client Key")),
            server_key: hash.hmac(&salted, b"Server Key"),
        })
    }

    /// A credential from stored parts (e.g. Kafka's `salt=..,stored_key=..,server_key=..,
    /// iterations=..` after base64 decoding). The keys must be the digest size of `mechanism`.
    pub fn new(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    ) -> Result<Self, SaslError> {
        Self::check(&salt, iterations)?;
        let hash = mechanism.hash();
        if stored_key.len() != hash.output_len() || server_key.len() != hash.output_len() {
            return Err(SaslError::InvalidCredential(format!(
                "{} keys must be {} bytes",
                hash.mechanism_name(),
                hash.output_len()
            )));
        }
        Ok(ScramCredential {
            hash,
            salt,
            iterations,
            stored_key,
            server_key,
        })
    }

    fn check(salt: &[u8], iterations: u32) -> Result<(), SaslError> {
        if salt.is_empty() {
            return Err(SaslError::InvalidCredential("empty SCRAM salt".to_owned()));
        }
        if !(SCRAM_MIN_ITERATIONS..=SCRAM_DEFAULT_MAX_ITERATIONS).contains(&iterations) {
            return Err(SaslError::IterationCountOutOfRange {
                iterations: iterations.into(),
                min: SCRAM_MIN_ITERATIONS,
                max: SCRAM_DEFAULT_MAX_ITERATIONS,
            });
        }
        Ok(())
    }

    /// The mechanism name, e.g. `SCRAM-SHA-256`.
    pub fn mechanism_name(&self) -> &'static str {
        self.hash.mechanism_name()
    }
    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }
    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
    /// `StoredKey`.
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }
    /// `ServerKey`.
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// A parsed SCRAM client-first message, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramClientFirst {
    gs2_header: String,
    authzid: Option<String>,
    username: String,
    nonce: String,
    extensions: Vec<(String, String)>,
    bare: String,
}

impl ScramClientFirst {
    /// Parses client-first: gs2 header `n,` or `y,` (channel binding `p=` is refused), an
    /// optional `a=` authzid, then `n=<user>,r=<nonce>` and optional `key=value` extensions.
    pub fn parse(message: &[u8]) -> Result<Self, SaslError> {
        let text = utf8(CLIENT_FIRST, message)?;
        let Some((flag, rest)) = text.split_once(',') else {
            return Err(SaslError::malformed(CLIENT_FIRST, "missing gs2 header"));
        };
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => {
                return Err(SaslError::malformed(
                    CLIENT_FIRST,
                    "channel binding is not supported",
                ))
            }
            _ => {
                return Err(SaslError::malformed(
                    CLIENT_FIRST,
                    "gs2 header must start with n, y or p=",
                ))
            }
        }
        let Some((authzid, bare)) = rest.split_once(',') else {
            return Err(SaslError::malformed(CLIENT_FIRST, "truncated gs2 header"));
        };
        let authzid = match authzid {
            "" => None,
            a => match a.strip_prefix("a=") {
                Some(name) => Some(
                    unescape_saslname(name)
                        .map_err(|reason| SaslError::malformed(CLIENT_FIRST, reason))?,
                ),
                None => {
                    return Err(SaslError::malformed(
                        CLIENT_FIRST,
                        "authzid must start with a=",
                    ))
                }
            },
        };
        let mut parts = bare.split(',');
        let username = expect_attr(CLIENT_FIRST, &mut parts, "n")?;
        let username = unescape_saslname(username)
            .map_err(|reason| SaslError::malformed(CLIENT_FIRST, reason))?;
        let nonce = expect_attr(CLIENT_FIRST, &mut parts, "r")?;
        check_nonce(nonce).map_err(|reason| SaslError::malformed(CLIENT_FIRST, reason))?;
        let extensions = parse_extensions(CLIENT_FIRST, parts)?;
        Ok(ScramClientFirst {
            gs2_header: text[..text.len() - bare.len()].to_owned(),
            authzid,
            username,
            nonce: nonce.to_owned(),
            extensions,
            bare: bare.to_owned(),
        })
    }

    /// The user name (unescaped), or the token id for delegation-token authentication.
    pub fn username(&self) -> &str {
        &self.username
    }
    /// The authorization identity, if the client sent `a=`.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }
    /// The client nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
    /// The extensions after the nonce, in order.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }
    /// Whether the client asked for delegation-token authentication (`tokenauth=true`); the
    /// server must then look up the token (by id) rather than a user.
    pub fn is_token_auth(&self) -> bool {
        self.extensions
            .iter()
            .any(|(k, v)| k == "tokenauth" && v.eq_ignore_ascii_case("true"))
    }
}

/// What the server remembers between server-first and client-final.
#[derive(Debug)]
struct Exchange {
    client_first: ScramClientFirst,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

#[derive(Debug)]
enum ServerState {
    Initial,
    FirstSent(Box<Exchange>),
    Complete { username: String },
    Failed,
}

/// SCRAM server (RFC 5802), for the simulated development broker.
///
/// Sequence:
/// 1. [`handle_client_first`](ScramServer::handle_client_first) with client-first, a server
///    nonce suffix from the caller's seeded generator, and a credential lookup; returns
///    server-first `r=<client nonce><suffix>,s=<salt>,i=<iterations>`.
/// 2. [`handle_client_final`](ScramServer::handle_client_final) with client-final; verifies
///    channel binding, nonce and proof and returns server-final `v=<ServerSignature>`.
///
/// Failures (unknown user, wrong proof, authzid different from the user) are
/// [`SaslError::AuthenticationFailed`] with the same text whatever the cause; a broker answers
/// them with `SASL_AUTHENTICATION_FAILED` and the error's message, as Kafka does.
#[derive(Debug)]
pub struct ScramServer {
    hash: &'static dyn ScramHash,
    state: ServerState,
}

const INVALID_CREDENTIALS: &str = "invalid user credentials";

impl ScramServer {
    /// A server for `mechanism`.
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self::with_hash(mechanism.hash())
    }

    /// A server for any [`ScramHash`].
    pub fn with_hash(hash: &'static dyn ScramHash) -> Self {
        ScramServer {
            hash,
            state: ServerState::Initial,
        }
    }

    /// The mechanism name, e.g. `SCRAM-SHA-512`.
    pub fn mechanism_name(&self) -> &'static str {
        self.hash.mechanism_name()
    }

    /// Handles client-first and returns server-first.
    ///
    /// `server_nonce_suffix` is appended to the client nonce: printable ASCII other than `,`,
    /// drawn fresh from the caller's seeded generator. `lookup` receives the parsed message
    /// (user name, delegation-token flag) and returns the credential, or `None` for an
    /// unknown user. Errors: [`SaslError::Malformed`], [`SaslError::InvalidNonce`],
    /// [`SaslError::AuthenticationFailed`], [`SaslError::UnsupportedMechanism`] for a
    /// credential of another mechanism, [`SaslError::InvalidState`] if called twice.
    pub fn handle_client_first<F>(
        &mut self,
        message: &[u8],
        server_nonce_suffix: &str,
        lookup: F,
    ) -> Result<Vec<u8>, SaslError>
    where
        F: FnOnce(&ScramClientFirst) -> Option<ScramCredential>,
    {
        if !matches!(self.state, ServerState::Initial) {
            self.state = ServerState::Failed;
            return Err(SaslError::InvalidState(
                "SCRAM handle_client_first called twice",
            ));
        }
        self.state = ServerState::Failed;
        check_nonce(server_nonce_suffix).map_err(SaslError::InvalidNonce)?;
        let client_first = ScramClientFirst::parse(message)?;
        if client_first
            .authzid
            .as_ref()
            .is_some_and(|a| *a != client_first.username)
        {
            return Err(SaslError::AuthenticationFailed(
                "authorization identity differs from the user name".to_owned(),
            ));
        }
        let Some(credential) = lookup(&client_first) else {
            return Err(SaslError::AuthenticationFailed(
                INVALID_CREDENTIALS.to_owned(),
            ));
        };
        if credential.mechanism_name() != self.hash.mechanism_name() {
            return Err(SaslError::UnsupportedMechanism {
                mechanism: credential.mechanism_name().to_owned(),
                reason: "credential does not match the server's SCRAM mechanism",
            });
        }
        let nonce = format!("{}{}", client_first.nonce, server_nonce_suffix);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let reply = server_first.clone().into_bytes();
        self.state = ServerState::FirstSent(Box::new(Exchange {
            client_first,
            server_first,
            nonce,
            credential,
        }));
        Ok(reply)
    }

    /// Handles client-final and returns server-final (`v=<base64 ServerSignature>`).
    ///
    /// Checks `c=` against the client-first gs2 header, `r=` against the combined nonce and
    /// the proof against the credential. Errors: [`SaslError::Malformed`],
    /// [`SaslError::AuthenticationFailed`] (wrong proof or nonce),
    /// [`SaslError::InvalidState`] out of order.
    pub fn handle_client_final(&mut self, message: &[u8]) -> Result<Vec<u8>, SaslError> {
        let ServerState::FirstSent(exchange) =
            std::mem::replace(&mut self.state, ServerState::Failed)
        else {
            return Err(SaslError::InvalidState(
                "SCRAM handle_client_final called out of order",
            ));
        };
        let Exchange {
            client_first,
            server_first,
            nonce,
            credential,
        } = *exchange;
        let text = utf8(CLIENT_FINAL, message)?;
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return Err(SaslError::malformed(CLIENT_FINAL, "missing proof p="));
        };
        let mut parts = without_proof.split(',');
        let binding = expect_attr(CLIENT_FINAL, &mut parts, "c")?;
        let client_nonce = expect_attr(CLIENT_FINAL, &mut parts, "r")?;
        parse_extensions(CLIENT_FINAL, parts)?;
        let binding = decode_base64(CLIENT_FINAL, "channel binding", binding)?;
        if binding != client_first.gs2_header.as_bytes() {
            return Err(SaslError::malformed(
                CLIENT_FINAL,
                "channel binding does not match the gs2 header",
            ));
        }
        if client_nonce != nonce {
            return Err(SaslError::AuthenticationFailed(
                "nonce does not match the exchange".to_owned(),
            ));
        }
        let proof = decode_base64(CLIENT_FINAL, "proof", proof)?;
        let hash = self.hash;
        if proof.len() != hash.output_len() {
            return Err(SaslError::malformed(
                CLIENT_FINAL,
                format!(
                    "proof is {} bytes, expected {}",
                    proof.len(),
                    hash.output_len()
                ),
            ));
        }
        let auth_message = format!("{},{server_first},{without_proof}", client_first.bare);
        let client_signature = hash.hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        if !constant_time_eq(&hash.hash(&client_key), &credential.stored_key) {
            return Err(SaslError::AuthenticationFailed(
                INVALID_CREDENTIALS.to_owned(),
            ));
        }
        let server_signature = hash.hmac(&credential.server_key, auth_message.as_bytes());
        self.state = ServerState::Complete {
            username: client_first.username,
        };
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }

    /// Whether the client proved it knows the credential.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, ServerState::Complete { .. })
    }

    /// The authenticated user name (or token id) once complete.
    pub fn authenticated_user(&self) -> Option<&str> {
        match &self.state {
            ServerState::Complete { username } => Some(username),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    //! Access to private helpers for the module's unit tests.

    pub(crate) fn escape(name: &str) -> String {
        super::escape_saslname(name)
    }

    pub(crate) fn unescape(name: &str) -> Result<String, &'static str> {
        super::unescape_saslname(name)
    }
}
