//! `kafkit dev-broker`: kafkit's simulated Kafka cluster served on real sockets, for
//! development and tests with any Kafka client.
//!
//! The first line on stdout is the bootstrap address (flushed at once, so a parent process
//! can read it); everything else (a banner, one line per connection) goes to stderr. The
//! broker runs until it is interrupted or killed, or, when stdin is a pipe, until that pipe
//! closes (its parent went away).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kafkit_sim::dev_broker::{tls_server_config_from_files, DevBroker, DevBrokerConfig};

use crate::args::DevBrokerArgs;
use crate::error::CliError;
use crate::signals;

/// The SASL mechanisms the broker supports.
const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The broker configuration the arguments describe.
pub fn broker_config(args: &DevBrokerArgs) -> Result<DevBrokerConfig, CliError> {
    if args.brokers == 0 {
        return Err(CliError::Usage("--brokers must be at least 1".into()));
    }
    if args.partitions < 1 {
        return Err(CliError::Usage("--partitions must be at least 1".into()));
    }
    if args.retention_bytes == 0 {
        return Err(CliError::Usage(
            "--retention-bytes must be at least 1".into(),
        ));
    }
    if args.max_in_flight_request_bytes == 0 {
        return Err(CliError::Usage(
            "--max-in-flight-request-bytes must be at least 1".into(),
        ));
    }
    if args.request_read_timeout_ms == 0 {
        return Err(CliError::Usage(
            "--request-read-timeout-ms must be at least 1".into(),
        ));
    }
    let mut config = DevBrokerConfig::new(args.brokers)
        .host(&args.host)
        .port(args.port)
        .partitions(args.partitions)
        .retention_bytes(args.retention_bytes)
        .max_in_flight_request_bytes(args.max_in_flight_request_bytes)
        .request_read_timeout(std::time::Duration::from_millis(
            args.request_read_timeout_ms,
        ))
        .kafka_version(&args.kafka_version)
        .map_err(|e| CliError::Usage(format!("--kafka-version: {e}")))?;
    let users = parse_users(args.sasl_users.as_deref().unwrap_or(""))?;
    let mechanisms = parse_mechanisms(args.sasl_mechanisms.as_deref())?;
    if users.is_empty() && args.sasl_mechanisms.is_some() {
        return Err(CliError::Usage(
            "--sasl-mechanisms needs --sasl-users".into(),
        ));
    }
    for (user, password) in &users {
        for m in &mechanisms {
            config = config.sasl_user(m, user, password);
        }
    }
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = tls_server_config_from_files(cert, key)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            config = config.tls(tls);
        }
        (None, None) => {}
        _ => {
            return Err(CliError::Usage(
                "--tls-cert and --tls-key go together".into(),
            ))
        }
    }
    Ok(config)
}

/// `user:password,user:password`; a password may contain `:` (the first one splits).
fn parse_users(s: &str) -> Result<Vec<(String, String)>, CliError> {
    s.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| match u.split_once(':') {
            Some((name, pass)) if !name.is_empty() => Ok((name.to_owned(), pass.to_owned())),
            _ => Err(CliError::Usage(format!(
                "--sasl-users: `{u}` is not USER:PASSWORD"
            ))),
        })
        .collect()
}

/// The mechanisms named (case-insensitive), all three if none.
fn parse_mechanisms(s: Option<&str>) -> Result<Vec<&'static str>, CliError> {
    let Some(s) = s else {
        return Ok(MECHANISMS.to_vec());
    };
    let mut out = Vec::new();
    for m in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let found = MECHANISMS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(m))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--sasl-mechanisms: unknown mechanism `{m}` (known: {})",
                    MECHANISMS.join(", ")
                ))
            })?;
        if !out.contains(found) {
            out.push(*found);
        }
    }
    if out.is_empty() {
        return Err(CliError::Usage("--sasl-mechanisms is empty".into()));
    }
    Ok(out)
}

/// The `security.protocol` clients need.
fn security_protocol(sasl: bool, tls: bool) -> &'static str {
    match (sasl, tls) {
        (false, false) => "PLAINTEXT",
        (false, true) => "SSL",
        (true, false) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

/// Runs the broker until interrupted (or stdin, a pipe, closes).
pub fn run(args: &DevBrokerArgs) -> Result<(), CliError> {
    let config = broker_config(args)?;
    let sasl = !config.cluster.sasl_users.is_empty();
    let tls = config.tls.is_some();
    let quiet = args.quiet;
    let config = config.on_connection(move |event| {
        if !quiet {
            // Never panic on a closed stderr.
            let _ = writeln!(std::io::stderr(), "kafkit dev-broker: {event}");
        }
    });
    let broker = DevBroker::start(config).map_err(|e| CliError::Failed(e.to_string()))?;
    // Before the bootstrap line: whoever reads it may signal at once, and that signal must
    // find the broker stopping cleanly, not exiting mid-banner.
    signals::graceful();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", broker.bootstrap())?;
    stdout.flush()?;
    drop(stdout);
    let mut banner = format!(
        "kafkit dev-broker: {} broker{} at {} as Kafka {}, security.protocol={}",
        args.brokers,
        if args.brokers == 1 { "" } else { "s" },
        broker.bootstrap(),
        args.kafka_version,
        security_protocol(sasl, tls),
    );
    if sasl {
        let users = parse_users(args.sasl_users.as_deref().unwrap_or(""))?;
        let names: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
        banner.push_str(&format!(
            ", SASL users {} ({})",
            names.join(", "),
            parse_mechanisms(args.sasl_mechanisms.as_deref())?.join(", ")
        ));
    }
    banner.push_str(&format!(
        "; each partition keeps its newest {} bytes (--retention-bytes); Ctrl-C stops it",
        args.retention_bytes
    ));
    let _ = writeln!(std::io::stderr(), "{banner}");

    // With stdin a pipe, its closing (the parent went away) stops the broker too.
    let stdin_closed = Arc::new(AtomicBool::new(false));
    if stdin_is_a_pipe() {
        let closed = stdin_closed.clone();
        let main = std::thread::current();
        std::thread::Builder::new()
            .name("kafkit-stdin".into())
            .spawn(move || {
                let mut sink = [0u8; 4096];
                let mut stdin = std::io::stdin().lock();
                while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                closed.store(true, Ordering::SeqCst);
                main.unpark();
            })?;
    }
    loop {
        if stdin_closed.load(Ordering::SeqCst) {
            let _ = writeln!(
                std::io::stderr(),
                "kafkit dev-broker: stdin closed, stopping"
            );
            broker.shutdown();
            return Ok(());
        }
        if let Some(signal) = signals::stop_requested() {
            let _ = writeln!(
                std::io::stderr(),
                "kafkit dev-broker: {}, stopping",
                signals::name(signal)
            );
            broker.shutdown();
            return Err(CliError::Interrupted(signal));
        }
        // Woken early by the stdin thread; a signal is noticed within the timeout.
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

/// Whether stdin is a pipe or socket (whose closing means the parent went away), not a
/// terminal, a file or `/dev/null` (which would end the broker at once).
fn stdin_is_a_pipe() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata("/dev/stdin")
            .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn args(line: &[&str]) -> DevBrokerArgs {
        let cli = Cli::try_parse_from(std::iter::once("kafkit").chain(line.iter().copied()))
            .expect("parses");
        match cli.command {
            Command::DevBroker(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let a = args(&["dev-broker"]);
        assert_eq!((a.brokers, a.port, a.host.as_str()), (1, 9092, "127.0.0.1"));
        let c = broker_config(&a).unwrap();
        assert_eq!(c.cluster.brokers, 1);
        assert_eq!(c.cluster.retention_bytes, 64 << 20);
        assert_eq!(c.max_in_flight_request_bytes, 256 << 20);
        assert_eq!(c.request_read_timeout, std::time::Duration::from_secs(30));
        assert!(c.cluster.sasl_users.is_empty());
        assert!(c.tls.is_none());
    }

    #[test]
    fn kafka_version_selects_a_release_profile() {
        let c = broker_config(&args(&["dev-broker", "--kafka-version", "0.9.0"])).unwrap();
        let table = c.cluster.version_table();
        assert_eq!(
            table.get(&kafkit_core::protocol::ApiKey::Fetch),
            Some(&(0, 1))
        );
        assert!(!table.contains_key(&kafkit_core::protocol::ApiKey::ApiVersions));
        assert_eq!(c.cluster.message_format, 0);
        let err = broker_config(&args(&["dev-broker", "--kafka-version", "0.7"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--kafka-version"), "{err}");
        assert!(err.contains("unknown Kafka release `0.7`"), "{err}");
        assert!(err.contains("0.10.2"), "{err}");
    }

    #[test]
    fn sasl_users_for_every_mechanism() {
        let a = args(&[
            "dev-broker",
            "--brokers",
            "3",
            "--port",
            "0",
            "--partitions",
            "6",
            "--sasl-users",
            "alice:secret,bob:pa:ss",
        ]);
        let c = broker_config(&a).unwrap();
        assert_eq!(c.cluster.brokers, 3);
        assert_eq!(c.cluster.default_partitions, 6);
        assert_eq!(c.cluster.sasl_users.len(), 6);
        assert!(c
            .cluster
            .sasl_users
            .iter()
            .any(|u| u.user == "bob" && u.password == "pa:ss" && u.mechanism == "SCRAM-SHA-512"));

        let a = args(&[
            "dev-broker",
            "--sasl-users",
            "alice:secret",
            "--sasl-mechanisms",
            "plain,SCRAM-SHA-256",
        ]);
        let mechs: Vec<String> = broker_config(&a)
            .unwrap()
            .cluster
            .sasl_users
            .iter()
            .map(|u| u.mechanism.clone())
            .collect();
        assert_eq!(mechs, ["PLAIN", "SCRAM-SHA-256"]);
    }

    #[test]
    fn limits() {
        let a = args(&[
            "dev-broker",
            "--retention-bytes",
            "1000",
            "--max-in-flight-request-bytes",
            "2000",
            "--request-read-timeout-ms",
            "1500",
        ]);
        let c = broker_config(&a).unwrap();
        assert_eq!(c.cluster.retention_bytes, 1000);
        assert_eq!(c.max_in_flight_request_bytes, 2000);
        assert_eq!(
            c.request_read_timeout,
            std::time::Duration::from_millis(1500)
        );
    }

    #[test]
    fn usage_errors() {
        for line in [
            &["dev-broker", "--brokers", "0"][..],
            &["dev-broker", "--sasl-users", "nopassword"],
            &[
                "dev-broker",
                "--sasl-users",
                "a:b",
                "--sasl-mechanisms",
                "GSSAPI",
            ],
            &["dev-broker", "--sasl-mechanisms", "PLAIN"],
            &["dev-broker", "--retention-bytes", "0"],
            &["dev-broker", "--max-in-flight-request-bytes", "0"],
            &["dev-broker", "--request-read-timeout-ms", "0"],
        ] {
            assert!(
                matches!(broker_config(&args(line)), Err(CliError::Usage(_))),
                "{line:?}"
            );
        }
        // clap rejects a certificate without its key.
        assert!(Cli::try_parse_from(["kafkit", "dev-broker", "--tls-cert", "c.pem"]).is_err());
    }

    #[test]
    fn protocols() {
        assert_eq!(security_protocol(true, true), "SASL_SSL");
        assert_eq!(security_protocol(false, false), "PLAINTEXT");
    }
}
