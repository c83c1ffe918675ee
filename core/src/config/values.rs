//! Value types of the options and the parsers the generic setters share.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::options::Rejection;
use super::ConfigError;

/// The largest value of a Java `int` option.
pub(crate) const I32_MAX: i64 = i32::MAX as i64;
/// The largest value of a Java `long` option.
pub(crate) const I64_MAX: i64 = i64::MAX;

/// Parses an integer option (trimmed) and checks it against Java's range for it.
pub(crate) fn int<T: TryFrom<i64>>(v: &str, min: i64, max: i64) -> Result<T, Rejection> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| Rejection::Expected(int_expected(min, max)))
}

/// The `expected` text for an integer range.
pub(crate) fn int_expected(min: i64, max: i64) -> Cow<'static, str> {
    Cow::Owned(format!("an integer in {min}..={max}"))
}

/// Parses a boolean option as Java does: `true` or `false`, any case.
pub(crate) fn boolean(v: &str) -> Result<bool, Rejection> {
    match v.trim() {
        t if t.eq_ignore_ascii_case("true") => Ok(true),
        f if f.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(Rejection::Expected(Cow::Borrowed("true or false"))),
    }
}

/// A trimmed string option; the empty string means "not set".
pub(crate) fn opt_string(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// A Java `list` option: comma-separated, items trimmed, empty items dropped.
pub(crate) fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Parses a [`Choice`] value (case-insensitive; a dotted Java or Python class name matches by
/// its last segment).
pub(crate) fn choice<T: Choice>(v: &str) -> Result<T, Rejection> {
    T::parse(v).ok_or(Rejection::Expected(Cow::Borrowed(T::EXPECTED)))
}

/// Renders an optional value, `None` as the empty string.
pub(crate) fn render_opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

/// An enumerated option value.
pub(crate) trait Choice: Sized + 'static {
    /// What the option accepts, for error messages.
    const EXPECTED: &'static str;
    /// Parses a value.
    fn parse(v: &str) -> Option<Self>;
}

macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident, option $option:literal, expected $expected:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $canonical:literal $(| $alias:literal)*
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            #[doc = concat!("The value's canonical spelling in `", $option, "`.")]
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( $name::$variant => $canonical, )+
                }
            }
        }

        impl Choice for $name {
            const EXPECTED: &'static str = $expected;
            fn parse(v: &str) -> Option<Self> {
                let v = v.trim();
                let last = v.rsplit('.').next().unwrap_or(v);
                $(
                    if [$canonical $(, $alias)*]
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(v) || n.eq_ignore_ascii_case(last))
                    {
                        return Some($name::$variant);
                    }
                )+
                None
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ConfigError;
            fn from_str(s: &str) -> Result<Self, ConfigError> {
                <$name as Choice>::parse(s).ok_or_else(|| ConfigError::InvalidValue {
                    option: $option.to_owned(),
                    value: s.to_owned(),
                    expected: $expected.to_owned(),
                })
            }
        }
    };
}

choice_enum! {
    /// `acks`: how many replicas must acknowledge a produce request before it counts as written.
    pub enum Acks, option "acks", expected "one of: all, -1, 1, 0" {
        /// `all` (or `-1`): every in-sync replica. Java 3.x's default, required by idempotence.
        All = "all" | "-1",
        /// `1`: the partition leader alone.
        One = "1",
        /// `0`: no acknowledgement; the broker sends no response.
        Zero = "0",
    }
}

impl Acks {
    /// The value of the `acks` field of a Produce request.
    pub fn as_i16(&self) -> i16 {
        match self {
            Acks::All => -1,
            Acks::One => 1,
            Acks::Zero => 0,
        }
    }
}

choice_enum! {
    /// `security_protocol`: how connections to brokers are secured.
    pub enum SecurityProtocol, option "security_protocol",
        expected "one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL" {
        /// No TLS, no authentication.
        Plaintext = "PLAINTEXT",
        /// TLS, optionally with a client certificate.
        Ssl = "SSL",
        /// SASL authentication without TLS.
        SaslPlaintext = "SASL_PLAINTEXT",
        /// SASL authentication over TLS.
        SaslSsl = "SASL_SSL",
    }
}

impl SecurityProtocol {
    /// Whether connections use TLS.
    pub fn uses_tls(&self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(&self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

choice_enum! {
    /// `sasl_mechanism`: the SASL mechanism used when `security_protocol` is `SASL_*`.
    ///
    /// GSSAPI (Kerberos), Java's default, is not supported.
    #[non_exhaustive]
    pub enum SaslMechanism, option "sasl_mechanism",
        expected "one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (GSSAPI is not supported)" {
        /// `PLAIN` (RFC 4616): username and password in clear, so use it with TLS.
        Plain = "PLAIN",
        /// `SCRAM-SHA-256` (RFC 5802, RFC 7677).
        ScramSha256 = "SCRAM-SHA-256" | "SCRAM_SHA_256",
        /// `SCRAM-SHA-512`.
        ScramSha512 = "SCRAM-SHA-512" | "SCRAM_SHA_512",
        /// `OAUTHBEARER` (RFC 7628, KIP-255) with a bearer token.
        OAuthBearer = "OAUTHBEARER",
    }
}

choice_enum! {
    /// `compression_type`: the codec the producer compresses record batches with.
    #[non_exhaustive]
    pub enum CompressionType, option "compression_type",
        expected "one of: none, gzip, snappy, lz4, zstd" {
        /// No compression.
        None = "none",
        /// gzip (deflate).
        Gzip = "gzip",
        /// Snappy (xerial framing, as Kafka writes it).
        Snappy = "snappy",
        /// LZ4 frame format.
        Lz4 = "lz4",
        /// Zstandard (needs brokers 2.1 or later).
        Zstd = "zstd",
    }
}

impl CompressionType {
    /// The codec id in the low three bits of a record batch's attributes.
    pub fn codec_id(&self) -> u8 {
        match self {
            CompressionType::None => 0,
            CompressionType::Gzip => 1,
            CompressionType::Snappy => 2,
            CompressionType::Lz4 => 3,
            CompressionType::Zstd => 4,
        }
    }
}

choice_enum! {
    /// `partitioner` (Java: `partitioner.class`): how the producer picks a partition for a
    /// record that does not name one.
    ///
    /// Java class names are accepted: `DefaultPartitioner` and `RoundRobinPartitioner` map to the
    /// variants below, and the deprecated `UniformStickyPartitioner` maps to
    /// [`Partitioner::Default`] with `partitioner_ignore_keys = true`.
    #[non_exhaustive]
    pub enum Partitioner, option "partitioner",
        expected "one of: default, sticky, round_robin (or a Java class name: DefaultPartitioner, RoundRobinPartitioner, UniformStickyPartitioner)" {
        /// Java's built-in partitioner (KIP-794): murmur2 of the key modulo the partition count
        /// for keyed records, and for keyless records a sticky partition switched after each
        /// batch (adaptively weighted by broker load unless disabled).
        Default = "default" | "sticky" | "murmur2" | "DefaultPartitioner",
        /// Each record to the next partition in turn, keyed or not.
        RoundRobin = "round_robin" | "roundrobin" | "round-robin" | "RoundRobinPartitioner",
    }
}

choice_enum! {
    /// `auto_offset_reset`: where a consumer starts when it has no committed offset, or its
    /// offset is out of range.
    #[non_exhaustive]
    pub enum AutoOffsetReset, option "auto_offset_reset",
        expected "one of: earliest, latest, none" {
        /// The earliest offset still in the log (kafka-python also accepts `smallest`).
        Earliest = "earliest" | "smallest",
        /// The end of the log: only new records (kafka-python also accepts `largest`).
        Latest = "latest" | "largest",
        /// Fail: report the missing offset to the application.
        None = "none",
    }
}

choice_enum! {
    /// `isolation_level`: whether a consumer sees records of open and aborted transactions.
    pub enum IsolationLevel, option "isolation_level",
        expected "one of: read_uncommitted, read_committed" {
        /// Every record, including those of open and aborted transactions.
        ReadUncommitted = "read_uncommitted",
        /// Only committed transactional records (and all non-transactional ones), up to the
        /// last stable offset.
        ReadCommitted = "read_committed",
    }
}

impl IsolationLevel {
    /// The value of the `isolation_level` field of Fetch and ListOffsets requests.
    pub fn as_i8(&self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

choice_enum! {
    /// One entry of `partition_assignment_strategy`: a partition assignor of the classic group
    /// protocol, named by its protocol name. Java (`RangeAssignor`, ...) and kafka-python
    /// (`RangePartitionAssignor`, ...) class names are accepted, with or without package.
    #[non_exhaustive]
    pub enum AssignmentStrategy, option "partition_assignment_strategy",
        expected "a comma-separated list of: range, roundrobin, sticky, cooperative-sticky (or Java/kafka-python assignor class names)" {
        /// `range`: per topic, consecutive partition ranges to members in order.
        Range = "range" | "RangeAssignor" | "RangePartitionAssignor",
        /// `roundrobin`: all partitions dealt to members in turn.
        RoundRobin = "roundrobin" | "round_robin" | "RoundRobinAssignor" | "RoundRobinPartitionAssignor",
        /// `sticky`: balanced, keeping previous assignments (eager rebalancing).
        Sticky = "sticky" | "StickyAssignor" | "StickyPartitionAssignor",
        /// `cooperative-sticky`: sticky with incremental cooperative rebalancing (KIP-429).
        CooperativeSticky = "cooperative-sticky" | "cooperative_sticky" | "CooperativeStickyAssignor",
    }
}

choice_enum! {
    /// `group_protocol`: which consumer group protocol a member speaks.
    pub enum GroupProtocol, option "group_protocol",
        expected "one of: classic, consumer" {
        /// The classic protocol (JoinGroup / SyncGroup / Heartbeat): the client-side
        /// assignors of `partition_assignment_strategy` split the partitions.
        Classic = "classic",
        /// KIP-848's consumer protocol (ConsumerGroupHeartbeat, Kafka 4.0+): the coordinator
        /// assigns (`group_remote_assignor`) and members reconcile incrementally.
        Consumer = "consumer",
    }
}

impl AssignmentStrategy {
    /// The protocol name the member advertises in JoinGroup.
    pub fn protocol_name(&self) -> &'static str {
        self.as_str()
    }
}

/// A broker version pinned with `api_version` (kafka-python), such as `2.8.0`.
///
/// Parsed from `2.8.0`, `2.8`, `3`, `0.10.1.0` (a fourth component is dropped), or a Python
/// tuple `(0, 10, 1)`; displayed as `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl BrokerVersion {
    /// A version from its components.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        BrokerVersion {
            major,
            minor,
            patch,
        }
    }

    /// What `api_version` accepts.
    pub(crate) const EXPECTED: &'static str =
        "a broker version such as 2.8.0, 2.8 or (0, 10, 1), or empty/auto to negotiate";

    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or(s);
        let sep = if s.contains(',') { ',' } else { '.' };
        let parts: Vec<u16> = s
            .split(sep)
            .map(|p| p.trim().parse::<u16>().ok())
            .collect::<Option<_>>()?;
        match parts.as_slice() {
            [a] => Some(BrokerVersion::new(*a, 0, 0)),
            [a, b] => Some(BrokerVersion::new(*a, *b, 0)),
            [a, b, c] | [a, b, c, _] => Some(BrokerVersion::new(*a, *b, *c)),
            _ => None,
        }
    }
}

impl From<(u16, u16, u16)> for BrokerVersion {
    fn from((major, minor, patch): (u16, u16, u16)) -> Self {
        BrokerVersion::new(major, minor, patch)
    }
}

impl fmt::Display for BrokerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for BrokerVersion {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        BrokerVersion::parse(s).ok_or_else(|| ConfigError::InvalidValue {
            option: "api_version".to_owned(),
            value: s.to_owned(),
            expected: BrokerVersion::EXPECTED.to_owned(),
        })
    }
}

/// Parses `api_version`: empty or `auto` means negotiate.
pub(crate) fn api_version(v: &str) -> Result<Option<BrokerVersion>, Rejection> {
    let t = v.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("auto") || t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    BrokerVersion::parse(t)
        .map(Some)
        .ok_or(Rejection::Expected(Cow::Borrowed(BrokerVersion::EXPECTED)))
}

/// Values accepted for `bootstrap_servers`: a comma-separated string, or a list of
/// `host:port` strings.
pub trait IntoBootstrapServers {
    /// The individual entries, not yet normalised.
    fn into_entries(self) -> Vec<String>;
}

impl IntoBootstrapServers for &str {
    fn into_entries(self) -> Vec<String> {
        list(self).map(str::to_owned).collect()
    }
}

impl IntoBootstrapServers for String {
    fn into_entries(self) -> Vec<String> {
        self.as_str().into_entries()
    }
}

impl IntoBootstrapServers for &String {
    fn into_entries(self) -> Vec<String> {
        self.as_str().into_entries()
    }
}

impl<S: AsRef<str>> IntoBootstrapServers for Vec<S> {
    fn into_entries(self) -> Vec<String> {
        self.iter()
            .flat_map(|s| s.as_ref().into_entries())
            .collect()
    }
}

impl<S: AsRef<str>> IntoBootstrapServers for &[S] {
    fn into_entries(self) -> Vec<String> {
        self.iter()
            .flat_map(|s| s.as_ref().into_entries())
            .collect()
    }
}

impl<S: AsRef<str>, const N: usize> IntoBootstrapServers for [S; N] {
    fn into_entries(self) -> Vec<String> {
        self.iter()
            .flat_map(|s| s.as_ref().into_entries())
            .collect()
    }
}

/// The port a bootstrap server without one gets (kafka-python's behaviour).
pub(crate) const DEFAULT_PORT: u16 = 9092;

/// Normalises one bootstrap entry: strips a `SCHEME://` prefix (Java tolerates
/// `PLAINTEXT://host:9092`) and adds `:9092` when no port is given.
pub(crate) fn normalize_server(entry: &str) -> String {
    let e = entry.trim();
    let e = e.split_once("://").map_or(e, |(_, rest)| rest);
    if split_host_port(e).is_some() {
        return e.to_owned();
    }
    let bracketed = e.starts_with('[') && e.ends_with(']');
    let bare_ipv6 = e.matches(':').count() >= 2 && !e.starts_with('[');
    // An unbracketed IPv6 address followed by `:port` (`::1:9092`): the last group is the
    // port when what comes before it is an address on its own, as Java's client reads it.
    if bare_ipv6 {
        if let Some((host, port)) = e.rsplit_once(':') {
            let is_port = port.parse::<u16>().is_ok_and(|p| p != 0)
                && port.bytes().all(|b| b.is_ascii_digit());
            if is_port && host.parse::<std::net::Ipv6Addr>().is_ok() {
                return format!("[{host}]:{port}");
            }
        }
    }
    if bracketed {
        format!("{e}:{DEFAULT_PORT}")
    } else if bare_ipv6 {
        format!("[{e}]:{DEFAULT_PORT}")
    } else if !e.contains(':') && !e.is_empty() {
        format!("{e}:{DEFAULT_PORT}")
    } else {
        e.to_owned()
    }
}

/// Splits `host:port` or `[ipv6]:port` with a non-empty host and a port in 1..=65535.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']')?
    } else if host.contains(':') {
        return None;
    } else {
        host
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    valid.then_some((host, port))
}

/// The `expected` text for `bootstrap_servers`.
pub(crate) const SERVERS_EXPECTED: &str =
    "a non-empty comma-separated list of host:port (or host, meaning port 9092)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        assert_eq!(choice::<Acks>("-1").ok(), Some(Acks::All));
        assert_eq!(choice::<Acks>(" ALL ").ok(), Some(Acks::All));
        assert_eq!(
            choice::<AssignmentStrategy>("org.apache.kafka.clients.consumer.RangeAssignor").ok(),
            Some(AssignmentStrategy::Range)
        );
        assert_eq!(
            choice::<SaslMechanism>("scram-sha-512").ok(),
            Some(SaslMechanism::ScramSha512)
        );
        assert!(choice::<SaslMechanism>("GSSAPI").is_err());
        assert_eq!(
            "lz4".parse::<CompressionType>().unwrap(),
            CompressionType::Lz4
        );
        assert!("2".parse::<Acks>().is_err());
    }

    #[test]
    fn versions() {
        let v = |s: &str| BrokerVersion::parse(s);
        assert_eq!(v("2.8.0"), Some(BrokerVersion::new(2, 8, 0)));
        assert_eq!(v("0.9"), Some(BrokerVersion::new(0, 9, 0)));
        assert_eq!(v("(0, 10, 1)"), Some(BrokerVersion::new(0, 10, 1)));
        assert_eq!(v("0.10.1.0"), Some(BrokerVersion::new(0, 10, 1)));
        assert_eq!(v("x"), None);
        assert_eq!(v("1.2.3.4.5"), None);
        assert!(BrokerVersion::new(0, 10, 1) < BrokerVersion::new(2, 0, 0));
        assert_eq!(BrokerVersion::new(2, 8, 0).to_string(), "2.8.0");
    }

    #[test]
    fn servers() {
        assert_eq!(normalize_server("localhost"), "localhost:9092");
        assert_eq!(normalize_server("::1:9092"), "[::1]:9092");
        assert_eq!(normalize_server("::1"), "[::1]:9092");
        assert_eq!(normalize_server("fe80::1"), "[fe80::1]:9092");
        assert_eq!(normalize_server("2001:db8::7:19092"), "[2001:db8::7]:19092");
        assert_eq!(normalize_server("[::1]:9093"), "[::1]:9093");
        assert_eq!(normalize_server("PLAINTEXT://b1:9093"), "b1:9093");
        assert_eq!(normalize_server("::1"), "[::1]:9092");
        assert_eq!(normalize_server("[::1]"), "[::1]:9092");
        assert_eq!(normalize_server("[::1]:9093"), "[::1]:9093");
        assert_eq!(split_host_port("h:0"), None);
        assert_eq!(split_host_port(":9092"), None);
        assert_eq!(split_host_port("a b:1"), None);
        assert_eq!(
            split_host_port("[fe80::1%eth0]:1"),
            Some(("fe80::1%eth0", 1))
        );
    }
}
