use std::borrow::Cow;
use std::path::PathBuf;

use super::jaas::{parse_jaas, JaasCredentials};
use super::options::{opt, wrong_kind, Access, Configurable, OptionInfo, Rejection};
use super::values::{
    api_version, int, list, normalize_server, opt_string, render_opt, split_host_port, I32_MAX,
    I64_MAX, SERVERS_EXPECTED,
};
use super::{BrokerVersion, ConfigError, SaslMechanism, Secret, SecurityProtocol};

/// Options every client kind shares: where the cluster is, timeouts and backoffs of the
/// network layer, security, and kafkit's own resource limits.
///
/// Names follow kafka-python (the field names); the generic setter also takes the Java
/// client's dotted names. Defaults are the Java client 3.x's unless a field says otherwise.
/// Change fields directly and call [`CommonConfig::validate`], or go through a client kind's
/// builder, which validates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommonConfig {
    /// `bootstrap_servers` / `bootstrap.servers`: `host:port` entries to fetch the initial
    /// metadata from. Default `["localhost:9092"]` (kafka-python's; Java has no default).
    ///
    /// The generic setter takes a comma-separated string, strips a `SCHEME://` prefix and adds
    /// port 9092 to an entry without one; IPv6 addresses are written `[::1]:9092`.
    pub bootstrap_servers: Vec<String>,
    /// `client_id` / `client.id`: sent with every request, for broker logs and quotas.
    /// Default `kafkit` (Java generates `producer-1`, `consumer-<group>-1`, ...; kafka-python
    /// uses `kafka-python-<version>`). The core has no process-wide counter, so a unique id,
    /// if wanted, is the application's to choose.
    pub client_id: String,
    /// `request_timeout_ms` / `request.timeout.ms`: how long to wait for a response before
    /// failing the request (and retrying where allowed). Default 30000 (Java's producer,
    /// consumer and admin client; kafka-python's consumer uses 305000).
    pub request_timeout_ms: u32,
    /// `retry_backoff_ms` / `retry.backoff.ms`: the initial wait before retrying a failed
    /// request. Default 100.
    pub retry_backoff_ms: u64,
    /// `retry_backoff_max_ms` / `retry.backoff.max.ms`: the cap of the retry backoff. Default
    /// 1000. kafkit's retry backoff does not grow (every retry waits `retry_backoff_ms`), so
    /// no wait exceeds the cap unless the cap is below `retry_backoff_ms`, in which case
    /// `retry_backoff_ms` is used, as in Java.
    pub retry_backoff_max_ms: u64,
    /// `reconnect_backoff_ms` / `reconnect.backoff.ms`: the initial wait before reconnecting to
    /// a broker. Default 50.
    pub reconnect_backoff_ms: u64,
    /// `reconnect_backoff_max_ms` / `reconnect.backoff.max.ms`: the cap of the exponential
    /// reconnect backoff. Default 1000.
    pub reconnect_backoff_max_ms: u64,
    /// `connections_max_idle_ms` / `connections.max.idle.ms`: close connections idle this
    /// long. Default 540000 (Java's producer and consumer; Java's admin client uses 300000).
    pub connections_max_idle_ms: u64,
    /// `metadata_max_age_ms` / `metadata.max.age.ms`: refresh metadata at least this often,
    /// even without errors, to discover new brokers and partitions. Default 300000.
    pub metadata_max_age_ms: u64,
    /// `max_in_flight_requests_per_connection` / `max.in.flight.requests.per.connection`:
    /// unacknowledged requests per connection. Default 5. The idempotent producer needs at
    /// most 5.
    pub max_in_flight_requests_per_connection: u32,
    /// `send_buffer_bytes` / `send.buffer.bytes`: the socket's `SO_SNDBUF`, for drivers;
    /// `None` (`-1`) keeps the OS default. Default 131072 (every Java client kind).
    pub send_buffer_bytes: Option<u32>,
    /// `receive_buffer_bytes` / `receive.buffer.bytes`: the socket's `SO_RCVBUF`, for
    /// drivers; `None` (`-1`) keeps the OS default. Default 65536, Java's consumer and admin
    /// value, for every client kind (Java's producer uses 32768; kafka-python leaves the OS
    /// default).
    pub receive_buffer_bytes: Option<u32>,
    /// `socket_connection_setup_timeout_ms` / `socket.connection.setup.timeout.ms`: how long a
    /// connection attempt (TCP, TLS and SASL handshakes included) may take before it is given
    /// up, initially. Default 10000.
    pub socket_connection_setup_timeout_ms: u64,
    /// `socket_connection_setup_timeout_max_ms` / `socket.connection.setup.timeout.max.ms`:
    /// the cap of the connection setup timeout, which grows exponentially over consecutive
    /// failures. Default 30000.
    pub socket_connection_setup_timeout_max_ms: u64,
    /// `security_protocol` / `security.protocol`. Default `PLAINTEXT`.
    pub security_protocol: SecurityProtocol,
    /// `ssl_cafile` / `ssl.truststore.location`: a PEM file of CA certificates to verify
    /// brokers with; `None` uses the platform's roots (the driver's choice). Java's name is
    /// accepted for a PEM trust store only (`ssl.truststore.type=PEM`); JKS and PKCS12 stores
    /// are refused.
    pub ssl_cafile: Option<PathBuf>,
    /// `ssl_certfile` / `ssl.keystore.location`: a PEM file with the client certificate chain
    /// (and the private key, if `ssl_keyfile` is not set), for mutual TLS. Default `None`.
    pub ssl_certfile: Option<PathBuf>,
    /// `ssl_keyfile` (kafka-python; dotted `ssl.keyfile`): a PEM file with the client's private
    /// key. Default `None`: the key is in `ssl_certfile`.
    pub ssl_keyfile: Option<PathBuf>,
    /// `ssl_password` / `ssl.key.password`: the password of an encrypted private key.
    /// Default `None`.
    pub ssl_password: Option<Secret>,
    /// `ssl_check_hostname` (kafka-python; Java: `ssl.endpoint.identification.algorithm`
    /// `https` or empty): verify that the broker's certificate matches its host name.
    /// Default `true`.
    pub ssl_check_hostname: bool,
    /// `sasl_mechanism` / `sasl.mechanism`. Default `PLAIN` (Java's default, GSSAPI, is not
    /// supported; kafka-python has no default).
    pub sasl_mechanism: SaslMechanism,
    /// `sasl_plain_username` (kafka-python; Java: inside `sasl.jaas.config`): the user name
    /// for `PLAIN` and `SCRAM-*`. Default `None`; required by those mechanisms when the
    /// security protocol is `SASL_*`.
    pub sasl_plain_username: Option<String>,
    /// `sasl_plain_password` (kafka-python; Java: inside `sasl.jaas.config`): the password for
    /// `PLAIN` and `SCRAM-*`. Default `None`.
    ///
    /// Java's `sasl.jaas.config` is accepted for `PlainLoginModule` and `ScramLoginModule`
    /// entries and sets this and [`CommonConfig::sasl_plain_username`].
    pub sasl_plain_password: Option<Secret>,
    /// `sasl_oauth_token` (kafkit; dotted `sasl.oauth.token`): a static bearer token for
    /// `OAUTHBEARER`. Default `None`. kafka-python and Java take a token provider object
    /// instead; kafkit's SASL layer may also take tokens from the application at run time.
    pub sasl_oauth_token: Option<Secret>,
    /// `api_version` (kafka-python; dotted `api.version`): pin the broker version instead of
    /// probing, for brokers older than 0.10 (which have no ApiVersions). A pin at 0.10 or
    /// newer changes nothing: those brokers are asked, and their answer is exact. Default
    /// `None`: negotiate, probing old brokers.
    pub api_version: Option<BrokerVersion>,
    /// `api_version_auto_timeout_ms` (kafka-python; dotted `api.version.auto.timeout.ms`):
    /// kept for kafka-python configurations; only its default, 2000, is accepted. kafkit
    /// negotiates API versions on every connection, bounded by `request_timeout_ms`, so
    /// another value is refused by `validate` rather than silently ignored.
    pub api_version_auto_timeout_ms: u32,
    /// `client_rack` / `client.rack`: the rack (availability zone) of this client, for
    /// fetching from the nearest replica (KIP-392). Default empty: none.
    pub client_rack: String,
    /// `max_response_size` (kafkit; dotted `max.response.size`): the largest response frame
    /// accepted; a larger size prefix closes the connection. Default 104857600 (100 MiB, like
    /// the broker's `socket.request.max.bytes`). Must be at least the consumer's
    /// `fetch_max_bytes`.
    pub max_response_size: u32,
    /// `bootstrap_fail_fast` (kafkit; dotted `bootstrap.fail.fast`): before the first
    /// metadata, once every bootstrap address has failed in a round (refused, unresolvable,
    /// not Kafka, or no connection within `socket_connection_setup_timeout_ms`), requests to
    /// any broker fail at once with each address's cause instead of waiting for their
    /// timeout; the next round starts after the reconnect backoff. An authentication failure
    /// is reported as itself, and a connection a broker before 0.10 closes in answer to
    /// ApiVersions is part of probing its release, not a failed address. `false` waits for
    /// the request timeout (for clients started before their cluster). Default true.
    pub bootstrap_fail_fast: bool,
    /// `random_seed` (kafkit; dotted `random.seed`): the seed of the core's pseudo-random
    /// generator (backoff jitter, SCRAM nonces, partition choice). Default `None`: the driver
    /// draws one from the OS. Set it to replay a run exactly in simulation; never share a seed
    /// between production clients, as SCRAM nonces would repeat.
    pub random_seed: Option<u64>,
    pub(super) ignored: Vec<String>,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            bootstrap_servers: vec!["localhost:9092".to_owned()],
            client_id: "kafkit".to_owned(),
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            reconnect_backoff_ms: 50,
            reconnect_backoff_max_ms: 1_000,
            connections_max_idle_ms: 540_000,
            metadata_max_age_ms: 300_000,
            max_in_flight_requests_per_connection: 5,
            send_buffer_bytes: Some(131_072),
            receive_buffer_bytes: Some(65_536),
            socket_connection_setup_timeout_ms: 10_000,
            socket_connection_setup_timeout_max_ms: 30_000,
            security_protocol: SecurityProtocol::Plaintext,
            ssl_cafile: None,
            ssl_certfile: None,
            ssl_keyfile: None,
            ssl_password: None,
            ssl_check_hostname: true,
            sasl_mechanism: SaslMechanism::Plain,
            sasl_plain_username: None,
            sasl_plain_password: None,
            sasl_oauth_token: None,
            api_version: None,
            api_version_auto_timeout_ms: 2_000,
            client_rack: String::new(),
            max_response_size: 100 * 1024 * 1024,
            bootstrap_fail_fast: true,
            random_seed: None,
            ignored: Vec::new(),
        }
    }
}

fn socket_buffer(v: &str) -> Result<Option<u32>, Rejection> {
    let n: i64 = int(v, -1, I32_MAX).map_err(|_| {
        Rejection::Expected(Cow::Borrowed(
            "-1 (the OS default) or an integer in 0..=2147483647",
        ))
    })?;
    Ok(u32::try_from(n).ok())
}

fn render_socket_buffer(v: Option<u32>) -> String {
    v.map_or_else(|| "-1".to_owned(), |n| n.to_string())
}

fn path(v: &str) -> Option<PathBuf> {
    opt_string(v).map(PathBuf::from)
}

fn render_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn secret(v: &str) -> Option<Secret> {
    let v = v.trim();
    (!v.is_empty()).then(|| Secret::new(v))
}

fn render_secret(s: &Option<Secret>) -> String {
    s.as_ref()
        .map(|s| s.expose().to_owned())
        .unwrap_or_default()
}

const PEM_ONLY: &str = "kafkit reads PEM files only; convert the store (keytool -importkeystore, \
     openssl pkcs12) and set ssl_cafile / ssl_certfile";

/// The options of [`CommonConfig`], first in every client kind's table.
pub(crate) const COMMON_OPTIONS: &[OptionInfo] = &[
    opt!(Common, "bootstrap_servers", "bootstrap.servers", Java, "localhost:9092",
        "Comma-separated host:port list to fetch the initial metadata from (port defaults to 9092).",
        |c, v| {
            let servers: Vec<String> = list(v).map(normalize_server).collect();
            if servers.is_empty() || servers.iter().any(|s| split_host_port(s).is_none()) {
                return Err(Rejection::Expected(Cow::Borrowed(SERVERS_EXPECTED)));
            }
            c.bootstrap_servers = servers;
        },
        |c| c.bootstrap_servers.join(",")),
    opt!(Common, "client_id", "client.id", Java, "kafkit",
        "Client name sent with every request, for broker logs and quotas.",
        |c, v| { c.client_id = v.trim().to_owned(); },
        |c| c.client_id.clone()),
    opt!(Common, "request_timeout_ms", "request.timeout.ms", Java, "30000",
        "How long to wait for a response before failing (and possibly retrying) a request.",
        int(request_timeout_ms, 0, I32_MAX)),
    opt!(Common, "retry_backoff_ms", "retry.backoff.ms", Java, "100",
        "Initial wait before retrying a failed request.",
        int(retry_backoff_ms, 0, I64_MAX)),
    opt!(Common, "retry_backoff_max_ms", "retry.backoff.max.ms", Java, "1000",
        "Cap of the retry backoff (kafkit's backoff does not grow: each retry waits retry_backoff_ms).",
        int(retry_backoff_max_ms, 0, I64_MAX)),
    opt!(Common, "reconnect_backoff_ms", "reconnect.backoff.ms", Java, "50",
        "Initial wait before reconnecting to a broker.",
        int(reconnect_backoff_ms, 0, I64_MAX)),
    opt!(Common, "reconnect_backoff_max_ms", "reconnect.backoff.max.ms", Java, "1000",
        "Cap of the exponential reconnect backoff.",
        int(reconnect_backoff_max_ms, 0, I64_MAX)),
    opt!(Common, "connections_max_idle_ms", "connections.max.idle.ms", Java, "540000",
        "Close connections idle this long.",
        int(connections_max_idle_ms, 0, I64_MAX)),
    opt!(Common, "metadata_max_age_ms", "metadata.max.age.ms", Java, "300000",
        "Refresh metadata at least this often.",
        int(metadata_max_age_ms, 0, I64_MAX)),
    opt!(Common, "max_in_flight_requests_per_connection", "max.in.flight.requests.per.connection",
        Java, "5",
        "Unacknowledged requests per connection (at most 5 for the idempotent producer).",
        int(max_in_flight_requests_per_connection, 1, I32_MAX)),
    opt!(Common, "send_buffer_bytes", "send.buffer.bytes", Java, "131072",
        "Socket send buffer (SO_SNDBUF) for drivers; -1 keeps the OS default.",
        |c, v| { c.send_buffer_bytes = socket_buffer(v)?; },
        |c| render_socket_buffer(c.send_buffer_bytes)),
    opt!(Common, "receive_buffer_bytes", "receive.buffer.bytes", Java, "65536",
        "Socket receive buffer (SO_RCVBUF) for drivers; -1 keeps the OS default.",
        |c, v| { c.receive_buffer_bytes = socket_buffer(v)?; },
        |c| render_socket_buffer(c.receive_buffer_bytes)),
    opt!(Common, "socket_connection_setup_timeout_ms", "socket.connection.setup.timeout.ms",
        Java, "10000",
        "Initial time a connection attempt (including TLS and SASL) may take.",
        int(socket_connection_setup_timeout_ms, 0, I64_MAX)),
    opt!(Common, "socket_connection_setup_timeout_max_ms",
        "socket.connection.setup.timeout.max.ms", Java, "30000",
        "Cap of the connection setup timeout, which grows over consecutive failures.",
        int(socket_connection_setup_timeout_max_ms, 0, I64_MAX)),
    opt!(Common, "security_protocol", "security.protocol", Java, "PLAINTEXT",
        "One of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL.",
        choice(security_protocol)),
    opt!(Common, "ssl_cafile", "ssl.truststore.location", Java, "",
        "PEM file of CA certificates to verify brokers with (empty: the platform's roots).",
        |c, v| { c.ssl_cafile = path(v); },
        |c| render_path(&c.ssl_cafile)),
    opt!(Common, "ssl_truststore_type", "ssl.truststore.type", Java, "PEM",
        "Format of ssl_cafile: PEM only (JKS and PKCS12 are refused).",
        |_c, v| {
            if !v.trim().eq_ignore_ascii_case("PEM") {
                return Err(Rejection::Unsupported(Cow::Borrowed(PEM_ONLY)));
            }
        },
        |_c| "PEM".to_owned()),
    opt!(Common, "ssl_certfile", "ssl.keystore.location", Java, "",
        "PEM file with the client certificate chain (and key, without ssl_keyfile) for mutual TLS.",
        |c, v| { c.ssl_certfile = path(v); },
        |c| render_path(&c.ssl_certfile)),
    opt!(Common, "ssl_keystore_type", "ssl.keystore.type", Java, "PEM",
        "Format of ssl_certfile: PEM only (JKS and PKCS12 are refused).",
        |_c, v| {
            if !v.trim().eq_ignore_ascii_case("PEM") {
                return Err(Rejection::Unsupported(Cow::Borrowed(PEM_ONLY)));
            }
        },
        |_c| "PEM".to_owned()),
    opt!(Common, "ssl_keyfile", "ssl.keyfile", KafkaPython, "",
        "PEM file with the client's private key (empty: the key is in ssl_certfile).",
        |c, v| { c.ssl_keyfile = path(v); },
        |c| render_path(&c.ssl_keyfile)),
    opt!(Common, "ssl_password", "ssl.key.password", Java, "",
        "Password of an encrypted private key.",
        |c, v| { c.ssl_password = secret(v); },
        |c| render_secret(&c.ssl_password), secret),
    opt!(Common, "ssl_check_hostname", "ssl.check.hostname", KafkaPython, "true",
        "Verify that the broker certificate matches its host name.",
        bool(ssl_check_hostname)),
    opt!(Common, "ssl_endpoint_identification_algorithm",
        "ssl.endpoint.identification.algorithm", Java, "https",
        "Java's spelling of ssl_check_hostname: https to verify host names, empty not to.",
        |c, v| {
            c.ssl_check_hostname = match v.trim() {
                "" => false,
                h if h.eq_ignore_ascii_case("https") => true,
                _ => {
                    return Err(Rejection::Expected(Cow::Borrowed(
                        "https, or empty to skip host name verification",
                    )))
                }
            };
        },
        |c| if c.ssl_check_hostname { "https".to_owned() } else { String::new() }),
    opt!(Common, "sasl_mechanism", "sasl.mechanism", Java, "PLAIN",
        "One of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER.",
        choice(sasl_mechanism)),
    opt!(Common, "sasl_plain_username", "sasl.plain.username", KafkaPython, "",
        "User name for PLAIN and SCRAM.",
        |c, v| { c.sasl_plain_username = opt_string(v); },
        |c| render_opt(&c.sasl_plain_username)),
    opt!(Common, "sasl_plain_password", "sasl.plain.password", KafkaPython, "",
        "Password for PLAIN and SCRAM.",
        |c, v| { c.sasl_plain_password = secret(v); },
        |c| render_secret(&c.sasl_plain_password), secret),
    opt!(Common, "sasl_jaas_config", "sasl.jaas.config", Java, "",
        "Write-only: a PlainLoginModule or ScramLoginModule JAAS entry; sets sasl_plain_username and sasl_plain_password.",
        |c, v| {
            if !v.trim().is_empty() {
                let JaasCredentials { username, password } = parse_jaas(v)?;
                c.sasl_plain_username = Some(username);
                c.sasl_plain_password = Some(Secret::new(password));
            }
        },
        |_c| String::new(), secret),
    opt!(Common, "sasl_oauth_token", "sasl.oauth.token", Kafkit, "",
        "Static bearer token for OAUTHBEARER.",
        |c, v| { c.sasl_oauth_token = secret(v); },
        |c| render_secret(&c.sasl_oauth_token), secret),
    opt!(Common, "api_version", "api.version", KafkaPython, "",
        "Pin the broker version (e.g. 2.8.0 or 0.9) instead of negotiating; empty or auto: negotiate.",
        |c, v| { c.api_version = api_version(v)?; },
        |c| render_opt(&c.api_version)),
    opt!(Common, "api_version_auto_timeout_ms", "api.version.auto.timeout.ms", KafkaPython,
        "2000",
        "Only the default is accepted: kafkit negotiates versions per connection within request_timeout_ms.",
        int(api_version_auto_timeout_ms, 0, I32_MAX)),
    opt!(Common, "client_rack", "client.rack", Java, "",
        "Rack of this client, for fetching from the nearest replica (KIP-392).",
        |c, v| { c.client_rack = v.trim().to_owned(); },
        |c| c.client_rack.clone()),
    opt!(Common, "max_response_size", "max.response.size", Kafkit, "104857600",
        "Largest response frame accepted, in bytes; a larger one closes the connection.",
        int(max_response_size, 1, I32_MAX)),
    opt!(Common, "bootstrap_fail_fast", "bootstrap.fail.fast", Kafkit, "true",
        "Fail requests at once when every bootstrap address failed in a round (before the first metadata); false waits for their timeout.",
        bool(bootstrap_fail_fast)),
    opt!(Common, "random_seed", "random.seed", Kafkit, "",
        "Seed of the core's random generator (jitter, nonces); empty: the driver draws one from the OS.",
        |c, v| {
            let t = v.trim();
            c.random_seed = if t.is_empty() {
                None
            } else {
                Some(t.parse().map_err(|_| {
                    Rejection::Expected(Cow::Borrowed(
                        "an integer in 0..=18446744073709551615, or empty for a seed from the OS",
                    ))
                })?)
            };
        },
        |c| render_opt(&c.random_seed)),
];

impl CommonConfig {
    /// Rules between common options; run by every kind's `validate`.
    pub(crate) fn check_common(&self) -> Result<(), ConfigError> {
        if self.api_version_auto_timeout_ms != 2_000 {
            return Err(ConfigError::Unsupported {
                option: "api_version_auto_timeout_ms".to_owned(),
                reason: "kafkit negotiates API versions on every connection, within \
                         request_timeout_ms; set that instead"
                    .to_owned(),
            });
        }
        if self.bootstrap_servers.is_empty()
            || self
                .bootstrap_servers
                .iter()
                .any(|s| split_host_port(s).is_none())
        {
            return Err(ConfigError::InvalidValue {
                option: "bootstrap_servers".to_owned(),
                value: self.bootstrap_servers.join(","),
                expected: "a non-empty list of host:port".to_owned(),
            });
        }
        let password_mechanism = matches!(
            self.sasl_mechanism,
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
        );
        if self.security_protocol.uses_sasl()
            && password_mechanism
            && (self.sasl_plain_username.is_none() || self.sasl_plain_password.is_none())
        {
            return Err(ConfigError::Conflict {
                options: vec![
                    "security_protocol",
                    "sasl_mechanism",
                    "sasl_plain_username",
                    "sasl_plain_password",
                ],
                reason: format!(
                    "{} with {} needs sasl_plain_username and sasl_plain_password \
                     (or sasl.jaas.config)",
                    self.security_protocol, self.sasl_mechanism
                ),
            });
        }
        if self.ssl_keyfile.is_some() && self.ssl_certfile.is_none() {
            return Err(ConfigError::Conflict {
                options: vec!["ssl_keyfile", "ssl_certfile"],
                reason: "ssl_keyfile needs ssl_certfile (the client certificate)".to_owned(),
            });
        }
        Ok(())
    }
}

impl Configurable for CommonConfig {
    fn table() -> &'static [OptionInfo] {
        COMMON_OPTIONS
    }
    fn apply(&mut self, access: Access, value: &str) -> Result<(), Rejection> {
        match access {
            Access::Common(set, _) => set(self, value),
            _ => Err(wrong_kind()),
        }
    }
    fn render(&self, access: Access) -> String {
        match access {
            Access::Common(_, get) => get(self),
            _ => String::new(),
        }
    }
    fn ignored(&self) -> &[String] {
        &self.ignored
    }
    fn ignored_mut(&mut self) -> &mut Vec<String> {
        &mut self.ignored
    }
    fn check(&self) -> Result<(), ConfigError> {
        self.check_common()
    }
}

super::options::config_api!(CommonConfig);
