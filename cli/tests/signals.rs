//! SIGINT and SIGTERM on the command line: `consume -G` commits what it printed and leaves the
//! group, `produce` flushes what it read, `dev-broker` shuts down, each exiting with 128 + the
//! signal's number; a second signal exits at once even while the first is being handled.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kafkit_blocking::{Consumer, Producer, Wait};
use kafkit_core::config::{ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::TopicPartition;
use kafkit_core::producer::ProducerRecord;
use kafkit_sim::{DevBroker, DevBrokerConfig};

/// A child that is killed (by its own pid) if it outlives the test's patience, so a test that
/// fails never hangs.
struct Kid {
    child: Child,
}

impl Kid {
    fn spawn(args: &[&str], stdin: Stdio) -> Kid {
        let child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
            .args(args)
            .env_remove("KAFKA_BOOTSTRAP")
            .env_remove("RUST_BACKTRACE")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kafkit");
        Kid { child }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the exit (killing the child after a minute); returns its exit code and stderr.
    fn wait(mut self) -> (Option<i32>, String) {
        let pid = self.child.id();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(Duration::from_secs(60)).is_err() {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        });
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = self.child.wait().expect("wait");
        let _ = done_tx.send(());
        watchdog.join().expect("watchdog");
        (status.code(), err)
    }
}

/// A development broker with a topic of `partitions` partitions holding `records` records.
fn broker_with_records(topic: &str, partitions: i32, records: usize) -> DevBroker {
    let broker = DevBroker::start(DevBrokerConfig::new(1).port(0).partitions(partitions))
        .expect("dev broker");
    let producer = Producer::start(
        &ProducerConfig::builder()
            .bootstrap_servers(broker.bootstrap().as_str())
            .build()
            .expect("config"),
    )
    .expect("producer");
    let acks: Vec<_> = (0..records)
        .map(|i| {
            producer
                .enqueue(
                    ProducerRecord::new(topic)
                        .key(format!("k{i}"))
                        .value(format!("v{i}")),
                )
                .expect("send")
        })
        .collect();
    for a in acks {
        a.wait().expect("delivered");
    }
    producer.close(None).expect("close");
    broker
}

/// Every record of `topic` (read from the beginning, without a group).
fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<String> {
    let consumer = Consumer::start(
        &ConsumerConfig::builder()
            .bootstrap_servers(bootstrap)
            .build()
            .expect("config"),
    )
    .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone()).expect("assign");
    consumer.seek_to_beginning(&tps).expect("seek");
    let ends = consumer.end_offsets(&tps).expect("ends");
    let total: i64 = ends.values().sum();
    let mut out = Vec::new();
    while (out.len() as i64) < total {
        for r in consumer
            .poll(Duration::from_millis(200))
            .expect("poll")
            .iter()
        {
            out.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    out
}

#[test]
fn sigint_on_consume_with_a_group_commits_and_leaves() {
    let topic = "signals-consume";
    let broker = broker_with_records(topic, 3, 30);
    let bootstrap = broker.bootstrap();
    let group = "signals-group";
    let mut kid = Kid::spawn(
        &[
            "-b", &bootstrap, "consume", "-G", group, "-t", topic, "-f", "%s\\n",
        ],
        Stdio::null(),
    );
    // Every record printed: the member is up and has read it all.
    let stdout = kid.child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = 0;
    while printed < 30 {
        lines.next().expect("a line before EOF").expect("read");
        printed += 1;
    }
    kid.signal("INT");
    let (code, err) = kid.wait();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("consumed 30 records"), "{err}");

    // The member left (the group is empty at once, no session timeout to wait for) and its
    // positions are committed: a new member of the group has nothing to read.
    let state = broker
        .with_cluster(move |c| c.groups().group_state(group).map(|s| s.name().to_owned()))
        .expect("cluster");
    assert_eq!(state.as_deref(), Some("Empty"), "the member left the group");
    let next = Kid::spawn(
        &[
            "-b", &bootstrap, "consume", "-G", group, "-t", topic, "-e", "-f", "%s\\n",
        ],
        Stdio::null(),
    );
    let (code, err) = next.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("consumed 0 records"), "{err}");
}

#[test]
fn sigterm_on_produce_flushes_what_was_read() {
    let topic = "signals-produce";
    let broker = broker_with_records(topic, 1, 0);
    let bootstrap = broker.bootstrap();
    let mut kid = Kid::spawn(&["-b", &bootstrap, "produce", "-t", topic], Stdio::piped());
    let mut stdin = kid.child.stdin.take().expect("stdin");
    for i in 0..5 {
        writeln!(stdin, "line-{i}").unwrap();
    }
    stdin.flush().unwrap();
    // stdin stays open: only the signal can end the command. Once the producer is connected,
    // the signal handler is installed (it is, before anything else) and the records are
    // probably read (the summary says how many were).
    while broker.open_connections() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    kid.signal("TERM");
    let (code, err) = kid.wait();
    drop(stdin);
    assert_eq!(code, Some(143), "{err}");
    // What the summary reports delivered is in the topic, in order.
    let delivered: usize = err
        .split("kafkit: produced ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary: {err}"));
    assert!(delivered > 0, "{err}");
    let got = read_all(&bootstrap, topic, 1);
    let want: Vec<String> = (0..delivered).map(|i| format!("line-{i}")).collect();
    assert_eq!(got, want, "{err}");
}

#[test]
fn a_second_signal_exits_at_once() {
    // A "broker" that accepts and never answers: flushing on the first signal cannot finish
    // (it would wait for the delivery timeout).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let mut kid = Kid::spawn(&["-b", &addr, "produce", "-t", "t"], Stdio::piped());
    let mut stdin = kid.child.stdin.take().expect("stdin");
    writeln!(stdin, "a record").unwrap();
    stdin.flush().unwrap();
    let mut stderr = BufReader::new(kid.child.stderr.take().expect("stderr"));
    // Connecting comes after the signal handler is installed.
    let _connection = silent.accept().expect("the producer connects");
    kid.signal("INT");
    let mut line = String::new();
    stderr.read_line(&mut line).expect("stderr");
    assert!(line.contains("closing cleanly"), "{line}");
    kid.signal("INT");
    let (code, _) = kid.wait();
    assert_eq!(code, Some(130));
    drop((stdin, silent));
}

#[test]
fn sigint_stops_the_dev_broker() {
    let mut kid = Kid::spawn(&["dev-broker", "--port", "0", "-q"], Stdio::null());
    let stdout = kid.child.stdout.take().expect("stdout");
    let mut bootstrap = String::new();
    BufReader::new(stdout)
        .read_line(&mut bootstrap)
        .expect("bootstrap line");
    assert!(bootstrap.trim().contains(':'), "{bootstrap}");
    kid.signal("INT");
    let (code, err) = kid.wait();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("SIGINT, stopping"), "{err}");
}
