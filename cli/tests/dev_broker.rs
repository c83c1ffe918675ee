//! End-to-end tests of `kafkit dev-broker`: the first stdout line is the bootstrap address,
//! other kafkit commands (and SASL) work against it, and it stops when its stdin pipe closes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `kafkit dev-broker`, killed on drop.
struct DevBroker {
    child: Child,
    bootstrap: String,
    _stdout: BufReader<ChildStdout>,
}

impl DevBroker {
    fn start(args: &[&str]) -> DevBroker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
            .arg("dev-broker")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running kafkit dev-broker");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading the first line");
        let bootstrap = line.trim().to_owned();
        assert!(!bootstrap.is_empty(), "no bootstrap line");
        DevBroker {
            child,
            bootstrap,
            _stdout: stdout,
        }
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kafkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .output()
        .expect("running kafkit")
}

#[test]
fn first_line_is_the_bootstrap_and_metadata_works() {
    let broker = DevBroker::start(&["--brokers", "3", "--port", "0", "--partitions", "4"]);
    let addrs: Vec<&str> = broker.bootstrap.split(',').collect();
    assert_eq!(addrs.len(), 3, "{}", broker.bootstrap);
    assert!(addrs.iter().all(|a| a.starts_with("127.0.0.1:")));
    let out = kafkit(&["-b", &broker.bootstrap, "metadata", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for a in &addrs {
        let port = a.rsplit(':').next().unwrap();
        assert!(text.contains(port), "metadata lists port {port}: {text}");
    }
}

#[test]
fn sasl_users_must_authenticate() {
    let broker = DevBroker::start(&[
        "--port",
        "0",
        "--sasl-users",
        "alice:secret",
        "--sasl-mechanisms",
        "SCRAM-SHA-256",
    ]);
    let with = |password: &str| {
        kafkit(&[
            "-b",
            &broker.bootstrap,
            "-X",
            "security_protocol=SASL_PLAINTEXT",
            "-X",
            "sasl_mechanism=SCRAM-SHA-256",
            "-X",
            "sasl_plain_username=alice",
            "-X",
            &format!("sasl_plain_password={password}"),
            "-X",
            "request_timeout_ms=5000",
            "metadata",
        ])
    };
    let ok = with("secret");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = with("wrong");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("authentication"), "{err}");
    assert!(err.contains(&broker.bootstrap), "{err}");
}

#[test]
fn stops_when_its_stdin_pipe_closes() {
    let mut broker = DevBroker::start(&["--port", "0", "--quiet"]);
    drop(broker.child.stdin.take());
    let started = Instant::now();
    loop {
        if let Some(status) = broker.child.try_wait().expect("try_wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    broker._stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "only the bootstrap line on stdout");
}

#[test]
fn a_taken_port_fails_with_status_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = kafkit(&["dev-broker", "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("kafkit: error: cannot listen on"), "{err}");
    assert!(out.stdout.is_empty());
}
