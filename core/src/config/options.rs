//! The option tables: one entry per option, driving the generic setter, getter, validation,
//! listing and typo suggestions.

use std::borrow::Cow;
use std::fmt;

use super::{AdminConfig, CommonConfig, ConfigError, ConsumerConfig, ProducerConfig};

/// Where an option comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// The Java client has it, under [`OptionInfo::java_name`] (kafka-python usually has it too,
    /// under [`OptionInfo::python_name`]).
    Java,
    /// Only kafka-python has it; the dotted name is kafkit's spelling of the Python name.
    KafkaPython,
    /// kafkit's own; both names are kafkit's.
    Kafkit,
}

/// One option: its two names, its default and a one-line description.
///
/// Listed by `ProducerConfig::options()` and the like, for documentation, `--help`-style
/// listings and typo suggestions; the same entry drives the generic `set`/`get`.
#[derive(Clone, Copy)]
pub struct OptionInfo {
    /// The kafka-python style name (`request_timeout_ms`); for options kafka-python lacks, a
    /// snake_case spelling of the Java name.
    pub python_name: &'static str,
    /// The Java client's name (`request.timeout.ms`); for options Java lacks, a dotted
    /// spelling of the Python name (see [`OptionInfo::origin`]).
    pub java_name: &'static str,
    /// The default, as the generic getter renders it (the empty string means "not set").
    pub default: &'static str,
    /// One line on what the option does and what it accepts.
    pub doc: &'static str,
    /// Where the option comes from.
    pub origin: Origin,
    /// Whether the value is secret: the getter and errors show `[redacted]` instead.
    pub secret: bool,
    pub(super) access: Access,
}

impl fmt::Debug for OptionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptionInfo")
            .field("python_name", &self.python_name)
            .field("java_name", &self.java_name)
            .field("default", &self.default)
            .field("doc", &self.doc)
            .field("origin", &self.origin)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Which client kinds take an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptionKind {
    /// Every client: connection, security, retries, metadata.
    Common,
    /// Producers only.
    Producer,
    /// Consumers only.
    Consumer,
    /// Admin clients only.
    Admin,
}

impl fmt::Display for OptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptionKind::Common => "common",
            OptionKind::Producer => "producer",
            OptionKind::Consumer => "consumer",
            OptionKind::Admin => "admin",
        })
    }
}

impl OptionInfo {
    /// Whether `name` is one of this option's two names.
    pub fn matches(&self, name: &str) -> bool {
        self.python_name == name || self.java_name == name
    }

    /// Which client kinds take the option.
    pub fn kind(&self) -> OptionKind {
        match self.access {
            Access::Common(..) => OptionKind::Common,
            Access::Producer(..) => OptionKind::Producer,
            Access::Consumer(..) => OptionKind::Consumer,
            Access::Admin(..) => OptionKind::Admin,
        }
    }
}

/// librdkafka's (and so kcat's and confluent-kafka's) names for options kafkit has under
/// another name, with the kafka-python name each one sets. They are accepted wherever the
/// option is, with the same value syntax.
pub const LIBRDKAFKA_ALIASES: &[(&str, &str)] = &[
    ("sasl.username", "sasl_plain_username"),
    ("sasl.password", "sasl_plain_password"),
    ("sasl.mechanisms", "sasl_mechanism"),
    ("ssl.ca.location", "ssl_cafile"),
    ("ssl.certificate.location", "ssl_certfile"),
    ("ssl.key.location", "ssl_keyfile"),
    ("queue.buffering.max.ms", "linger_ms"),
    ("compression.codec", "compression_type"),
    ("request.required.acks", "acks"),
    ("message.timeout.ms", "delivery_timeout_ms"),
    ("topic.metadata.refresh.interval.ms", "metadata_max_age_ms"),
    ("fetch.wait.max.ms", "fetch_max_wait_ms"),
];

/// The kafka-python name a librdkafka alias stands for.
fn alias_target(name: &str) -> Option<&'static str> {
    LIBRDKAFKA_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, target)| *target)
}

/// Why a setter refused a value.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// The value is malformed or out of range; says what is accepted.
    Expected(Cow<'static, str>),
    /// The value names something kafkit does not support.
    Unsupported(Cow<'static, str>),
}

impl Rejection {
    fn into_error(self, option: &str, value: &str, secret: bool) -> ConfigError {
        match self {
            Rejection::Expected(expected) => ConfigError::InvalidValue {
                option: option.to_owned(),
                value: if secret {
                    REDACTED.to_owned()
                } else {
                    value.to_owned()
                },
                expected: expected.into_owned(),
            },
            Rejection::Unsupported(reason) => ConfigError::Unsupported {
                option: option.to_owned(),
                reason: reason.into_owned(),
            },
        }
    }
}

pub(crate) const REDACTED: &str = "[redacted]";

pub(crate) type Setter<C> = fn(&mut C, &str) -> Result<(), Rejection>;
pub(crate) type Getter<C> = fn(&C) -> String;

/// How an option reads and writes its config.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    Common(Setter<CommonConfig>, Getter<CommonConfig>),
    Producer(Setter<ProducerConfig>, Getter<ProducerConfig>),
    Consumer(Setter<ConsumerConfig>, Getter<ConsumerConfig>),
    Admin(Setter<AdminConfig>, Getter<AdminConfig>),
}

/// Defines one table entry.
///
/// `opt!(Kind, "python_name", "java.name", Origin, "default", "doc", <how>)` where `<how>` is
/// `int(field, min, max)`, `bool(field)`, `choice(field)`, or a custom
/// `|c, v| { ... }, |c| getter` pair (optionally followed by `secret`).
macro_rules! opt {
    (@secret) => { false };
    (@secret secret) => { true };
    ($kind:ident, $py:literal, $java:literal, $origin:ident, $default:literal, $doc:literal,
     int($f:ident, $min:expr, $max:expr)) => {
        opt!($kind, $py, $java, $origin, $default, $doc,
            |c, v| { c.$f = $crate::config::values::int(v, $min, $max)?; },
            |c| c.$f.to_string())
    };
    ($kind:ident, $py:literal, $java:literal, $origin:ident, $default:literal, $doc:literal,
     bool($f:ident)) => {
        opt!($kind, $py, $java, $origin, $default, $doc,
            |c, v| { c.$f = $crate::config::values::boolean(v)?; },
            |c| c.$f.to_string())
    };
    ($kind:ident, $py:literal, $java:literal, $origin:ident, $default:literal, $doc:literal,
     choice($f:ident)) => {
        opt!($kind, $py, $java, $origin, $default, $doc,
            |c, v| { c.$f = $crate::config::values::choice(v)?; },
            |c| c.$f.to_string())
    };
    ($kind:ident, $py:literal, $java:literal, $origin:ident, $default:literal, $doc:literal,
     |$c:ident, $v:ident| $set:block, |$g:ident| $get:expr $(, $secret:ident)?) => {
        $crate::config::options::OptionInfo {
            python_name: $py,
            java_name: $java,
            default: $default,
            doc: $doc,
            origin: $crate::config::options::Origin::$origin,
            secret: opt!(@secret $($secret)?),
            access: $crate::config::options::Access::$kind(
                |$c, $v| {
                    $set
                    Ok(())
                },
                |$g| $get,
            ),
        }
    };
}
pub(crate) use opt;

/// Concatenates two option lists into one table (the common options, then a kind's own).
pub(crate) const fn concat<const N: usize>(a: &[OptionInfo], b: &[OptionInfo]) -> [OptionInfo; N] {
    assert!(a.len() + b.len() == N && !a.is_empty());
    let mut out = [a[0]; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

/// Known Java and kafka-python options that kafkit accepts and ignores: they configure
/// JVM or Python machinery (serializers, interceptors, metrics reporters, JAAS login classes)
/// or tune behaviour kafkit does not have. `ignored_options()` lists the ones a config was
/// given, so a driver can log them.
pub(crate) const IGNORED: &[&str] = &[
    // Java, every client kind.
    "auto.include.jmx.reporter",
    "client.dns.lookup",
    "enable.metrics.push",
    "interceptor.classes",
    "metadata.recovery.rebootstrap.trigger.ms",
    "metadata.recovery.strategy",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.recording.level",
    "metrics.sample.window.ms",
    "sasl.client.callback.handler.class",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.service.name",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.login.callback.handler.class",
    "sasl.login.class",
    "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms",
    "sasl.login.refresh.buffer.seconds",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.retry.backoff.max.ms",
    "sasl.login.retry.backoff.ms",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "security.providers",
    "ssl.cipher.suites",
    "ssl.enabled.protocols",
    "ssl.engine.factory.class",
    "ssl.keymanager.algorithm",
    "ssl.protocol",
    "ssl.provider",
    "ssl.secure.random.implementation",
    "ssl.trustmanager.algorithm",
    // Java producer.
    "key.serializer",
    "value.serializer",
    // Java consumer.
    "key.deserializer",
    "value.deserializer",
    "internal.leave.group.on.close",
    "internal.throw.on.fetch.stable.offset.unsupported",
    // kafka-python, every client kind.
    "kafka_client",
    "metric_group_prefix",
    "metrics_enabled",
    "metrics_num_samples",
    "metrics_sample_window_ms",
    "raise_upon_socket_err_during_wakeup",
    "sasl_kerberos_domain_name",
    "sasl_kerberos_name",
    "sasl_kerberos_service_name",
    "sasl_oauth_token_provider",
    "selector",
    "sock_chunk_buffer_count",
    "sock_chunk_bytes",
    "socket_options",
    "ssl_ciphers",
    // kafka-python producer.
    "bootstrap_topics_filter",
    "key_serializer",
    "value_serializer",
    // kafka-python consumer.
    "default_offset_commit_callback",
    "key_deserializer",
    "legacy_iterator",
    "value_deserializer",
];

/// Known options kafkit refuses because ignoring them would silently change behaviour.
pub(crate) const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "ssl.truststore.password",
        "kafkit reads PEM trust stores (ssl_cafile), which have no password",
    ),
    (
        "ssl.keystore.password",
        "kafkit reads PEM files; put the private key's password in ssl_password \
         (ssl.key.password)",
    ),
    (
        "ssl.truststore.certificates",
        "inline PEM is not supported yet; write the certificates to a file and set ssl_cafile",
    ),
    (
        "ssl.keystore.certificate.chain",
        "inline PEM is not supported yet; write the chain to a file and set ssl_certfile",
    ),
    (
        "ssl.keystore.key",
        "inline PEM is not supported yet; write the key to a file and set ssl_keyfile",
    ),
    (
        "ssl_crlfile",
        "certificate revocation lists are not supported",
    ),
    ("socks5_proxy", "SOCKS proxies are not supported"),
    (
        "ssl_context",
        "it takes a Python SSLContext; set ssl_cafile, ssl_certfile and ssl_keyfile instead",
    ),
    (
        "metric_reporters",
        "kafkit has no metrics reporter classes; remove it",
    ),
    (
        "sasl.oauthbearer.token.endpoint.url",
        "kafkit does not fetch OAuth tokens itself; obtain one and set sasl_oauth_token",
    ),
    (
        "bootstrap.controllers",
        "kafkit's admin client talks to brokers; set bootstrap_servers",
    ),
];

/// The interface the generic functions below need from each config kind.
pub(crate) trait Configurable: Sized + Clone {
    /// The kind's option table.
    fn table() -> &'static [OptionInfo];
    /// Runs an entry's setter.
    fn apply(&mut self, access: Access, value: &str) -> Result<(), Rejection>;
    /// Runs an entry's getter (secrets unredacted).
    fn render(&self, access: Access) -> String;
    /// The ignored option names.
    fn ignored(&self) -> &[String];
    /// The ignored option names, to add to.
    fn ignored_mut(&mut self) -> &mut Vec<String>;
    /// Cross-option checks, run after every option's range check.
    fn check(&self) -> Result<(), ConfigError>;
}

pub(crate) fn wrong_kind() -> Rejection {
    Rejection::Expected(Cow::Borrowed("an option of this client kind"))
}

pub(crate) fn find(table: &'static [OptionInfo], name: &str) -> Option<&'static OptionInfo> {
    table.iter().find(|o| o.matches(name))
}

fn known_elsewhere(name: &str) -> bool {
    let name = alias_target(name).unwrap_or(name);
    IGNORED.contains(&name)
        || [
            ProducerConfig::options(),
            ConsumerConfig::options(),
            AdminConfig::options(),
        ]
        .iter()
        .any(|t| find(t, name).is_some())
}

pub(crate) fn set<C: Configurable>(c: &mut C, name: &str, value: &str) -> Result<(), ConfigError> {
    let info = find(C::table(), name).or_else(|| find(C::table(), alias_target(name)?));
    if let Some(info) = info {
        return c
            .apply(info.access, value)
            .map_err(|r| r.into_error(name, value, info.secret));
    }
    if let Some((_, reason)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        return Err(ConfigError::Unsupported {
            option: name.to_owned(),
            reason: (*reason).to_owned(),
        });
    }
    if known_elsewhere(name) {
        let ignored = c.ignored_mut();
        if !ignored.iter().any(|n| n == name) {
            ignored.push(name.to_owned());
        }
        return Ok(());
    }
    Err(ConfigError::UnknownOption {
        name: name.to_owned(),
        suggestion: suggest(C::table(), name),
    })
}

pub(crate) fn get<C: Configurable>(c: &C, name: &str) -> Option<String> {
    find(C::table(), name)
        .or_else(|| find(C::table(), alias_target(name)?))
        .map(|info| render_redacted(c, info))
}

fn render_redacted<C: Configurable>(c: &C, info: &OptionInfo) -> String {
    let v = c.render(info.access);
    if info.secret && !v.is_empty() {
        REDACTED.to_owned()
    } else {
        v
    }
}

pub(crate) fn values<C: Configurable>(c: &C) -> Vec<(&'static str, String)> {
    C::table()
        .iter()
        .map(|info| (info.python_name, render_redacted(c, info)))
        .collect()
}

/// Checks every option by running its current value, rendered, back through its own parser
/// (so the ranges live in one place, the table), then the kind's cross-option rules.
pub(crate) fn validate<C: Configurable>(c: &C) -> Result<(), ConfigError> {
    let mut scratch = c.clone();
    for info in C::table().iter().filter(|i| !i.secret) {
        let rendered = c.render(info.access);
        scratch
            .apply(info.access, &rendered)
            .map_err(|r| r.into_error(info.python_name, &rendered, false))?;
    }
    c.check()
}

pub(crate) fn from_pairs<C, I, K, V>(mut c: C, pairs: I) -> Result<C, ConfigError>
where
    C: Configurable,
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    for (k, v) in pairs {
        set(&mut c, k.as_ref(), v.as_ref())?;
    }
    validate(&c)?;
    Ok(c)
}

/// The closest option name to a misspelt one, in the caller's style (dotted or snake_case),
/// if it is close enough to be a typo. A name in another family (its first word differs:
/// `sasl.password` and `ssl.key.password`) is suggested only for a one-letter slip, as such
/// a suggestion would otherwise point at an unrelated option.
fn suggest(table: &'static [OptionInfo], name: &str) -> Option<String> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], ".");
    let family = |s: &str| s.split('.').next().unwrap_or_default().to_owned();
    let target = norm(name);
    let max_distance = (target.len() / 4).clamp(1, 4);
    let (distance, info) = table
        .iter()
        .filter_map(|info| {
            let d = [info.python_name, info.java_name]
                .iter()
                .map(|n| norm(n))
                .map(|n| {
                    let d = levenshtein(&target, &n);
                    if d > 1 && family(&n) != family(&target) {
                        usize::MAX
                    } else {
                        d
                    }
                })
                .min()?;
            Some((d, info))
        })
        .min_by_key(|(d, _)| *d)?;
    (distance <= max_distance).then(|| {
        if name.contains('.') {
            info.java_name.to_owned()
        } else {
            info.python_name.to_owned()
        }
    })
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Generates the string-keyed API every config kind shares.
macro_rules! config_api {
    ($ty:ident) => {
        impl $ty {
            /// Every option this kind accepts, common options first, for documentation,
            /// `--help`-style listings and typo suggestions.
            pub fn options() -> &'static [OptionInfo] {
                <$ty as $crate::config::options::Configurable>::table()
            }

            /// Sets one option from its string form, by its kafka-python name
            /// (`request_timeout_ms`) or its Java name (`request.timeout.ms`). The value is
            /// trimmed, as Java's `ConfigDef` does.
            ///
            /// Known Java or kafka-python options kafkit has no use for (serializers, metrics
            /// reporters, options of other client kinds) are recorded in
            /// [`Self::ignored_options`] rather than refused. Cross-option rules are checked by
            /// [`Self::validate`], not here.
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
                $crate::config::options::set(self, name, value)
            }

            /// The current value of one option in the form [`Self::set`] accepts, by either of
            /// its names; `[redacted]` for a secret that is set. `None` if no option has this
            /// name.
            pub fn get(&self, name: &str) -> Option<String> {
                $crate::config::options::get(self, name)
            }

            /// Every option's current value, by kafka-python name, in table order (secrets
            /// redacted): the "effective configuration" a driver may log at start-up.
            pub fn values(&self) -> Vec<(&'static str, String)> {
                $crate::config::options::values(self)
            }

            /// The defaults with `(name, value)` pairs applied in order (the last one for a
            /// name wins), then validated.
            pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, ConfigError>
            where
                I: IntoIterator<Item = (K, V)>,
                K: AsRef<str>,
                V: AsRef<str>,
            {
                $crate::config::options::from_pairs(Self::default(), pairs)
            }

            /// The defaults with Java properties text applied (see
            /// [`parse_properties`](crate::config::parse_properties) for the syntax), then
            /// validated. Users can paste their existing `client.properties`.
            pub fn from_properties(text: &str) -> Result<Self, ConfigError> {
                Self::from_pairs($crate::config::parse_properties(text)?)
            }

            /// Names of the options given to [`Self::set`] that kafkit knows but ignores, in
            /// the order first seen.
            pub fn ignored_options(&self) -> &[String] {
                <$ty as $crate::config::options::Configurable>::ignored(self)
            }

            /// Checks every option's range and the rules between options (what the builder's
            /// `build()` runs). Call it after changing public fields directly.
            pub fn validate(&self) -> Result<(), ConfigError> {
                $crate::config::options::validate(self)
            }
        }
    };
}
pub(crate) use config_api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("boostrap", "bootstrap"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let t = CommonConfig::options();
        assert_eq!(
            suggest(t, "boostrap.servers").as_deref(),
            Some("bootstrap.servers")
        );
        assert_eq!(
            suggest(t, "boostrap_servers").as_deref(),
            Some("bootstrap_servers")
        );
        assert_eq!(
            suggest(t, "REQUEST_TIMEOUT").as_deref(),
            Some("request_timeout_ms")
        );
        assert_eq!(suggest(t, "completely.different.thing"), None);
        // Another family is not a typo.
        assert_eq!(suggest(t, "sasl.pasword.x"), None);
        assert_eq!(
            suggest(t, "sasl.plain.pasword").as_deref(),
            Some("sasl.plain.password")
        );
    }

    #[test]
    fn librdkafka_names_set_ours() {
        let mut c = CommonConfig::default();
        c.set("sasl.username", "alice").unwrap();
        c.set("sasl.password", "secret").unwrap();
        c.set("sasl.mechanisms", "SCRAM-SHA-256").unwrap();
        c.set("ssl.ca.location", "/etc/ca.pem").unwrap();
        assert_eq!(c.get("sasl_plain_username").as_deref(), Some("alice"));
        assert_eq!(c.get("sasl.password").as_deref(), Some(REDACTED));
        assert_eq!(c.get("sasl_mechanism").as_deref(), Some("SCRAM-SHA-256"));
        assert_eq!(c.get("ssl_cafile").as_deref(), Some("/etc/ca.pem"));
        assert!(c.ignored_options().is_empty());
        // A producer alias on a common config is another kind's option: ignored, not unknown.
        c.set("queue.buffering.max.ms", "5").unwrap();
        assert_eq!(c.ignored_options(), ["queue.buffering.max.ms"]);
        let mut p = ProducerConfig::default();
        p.set("queue.buffering.max.ms", "7").unwrap();
        assert_eq!(p.linger_ms, 7);
        // Every alias names a real option.
        for (alias, target) in LIBRDKAFKA_ALIASES {
            let known = [
                CommonConfig::options(),
                ProducerConfig::options(),
                ConsumerConfig::options(),
                AdminConfig::options(),
            ]
            .iter()
            .any(|t| find(t, target).is_some());
            assert!(known, "{alias} -> {target}");
        }
    }

    #[test]
    fn options_that_would_be_ignored_are_refused() {
        for (name, value) in [("ssl_context", "x"), ("metric_reporters", "a.B")] {
            let err = CommonConfig::default().set(name, value).unwrap_err();
            assert!(matches!(err, ConfigError::Unsupported { .. }), "{err}");
        }
        let mut c = CommonConfig::default();
        c.set("api_version_auto_timeout_ms", "5000").unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Unsupported { .. })));
        for (name, value) in [
            ("partitioner.adaptive.partitioning.enable", "true"),
            ("partitioner.availability.timeout.ms", "100"),
            ("metadata.max.idle.ms", "60000"),
        ] {
            let mut p = ProducerConfig::default();
            p.set(name, value).unwrap();
            let err = p.validate().unwrap_err();
            assert!(
                matches!(err, ConfigError::Unsupported { .. }),
                "{name}: {err}"
            );
        }
        // Their defaults pass.
        ProducerConfig::default().validate().unwrap();
    }

    #[test]
    fn idempotence_turned_off_by_other_settings_is_reported() {
        let mut p = ProducerConfig::default();
        assert_eq!(p.idempotence_disabled_by(), None);
        p.set("acks", "1").unwrap();
        assert!(!p.idempotence_enabled());
        let why = p.idempotence_disabled_by().expect("a reason");
        assert!(why.contains("acks"), "{why}");
        let mut p = ProducerConfig::default();
        p.set("max.in.flight.requests.per.connection", "10")
            .unwrap();
        assert!(p
            .idempotence_disabled_by()
            .unwrap()
            .contains("max_in_flight"));
        // Said explicitly, it is Java's refusal instead.
        p.set("enable.idempotence", "true").unwrap();
        assert!(matches!(p.validate(), Err(ConfigError::Conflict { .. })));
        p.set("enable.idempotence", "false").unwrap();
        assert_eq!(p.idempotence_disabled_by(), None);
    }

    #[test]
    fn every_option_has_a_kind() {
        let kinds: std::collections::HashSet<OptionKind> = ProducerConfig::options()
            .iter()
            .chain(ConsumerConfig::options())
            .chain(AdminConfig::options())
            .map(OptionInfo::kind)
            .collect();
        assert!(
            kinds.contains(&OptionKind::Producer) && kinds.contains(&OptionKind::Consumer),
            "{kinds:?}"
        );
        assert!(CommonConfig::options()
            .iter()
            .all(|o| o.kind() == OptionKind::Common));
    }
}
