//! End-to-end tests of the `kafkit` binary: usage errors, unreachable brokers, and a live
//! broker (librdkafka's mock cluster, or the cluster in KAFKA_BOOTSTRAP when it is set).

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `kafkit` with `args` and no KAFKA_BOOTSTRAP from the environment; returns its output
/// and how long it took.
fn kafkit(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("running kafkit");
    (out, start.elapsed())
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts a successful run and returns its stdout.
fn success(args: &[&str]) -> String {
    let (out, _) = kafkit(args);
    assert!(
        out.status.success(),
        "kafkit {args:?} failed with {}: {}",
        out.status,
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts a successful run with --json and returns the parsed object.
fn success_json(args: &[&str]) -> Value {
    let text = success(args);
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "--json output to a pipe is one line: {text}"
    );
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("kafkit {args:?}: bad JSON ({e}): {text}"))
}

/// Asserts a failed run with `code`, one line on stderr (`kafkit: error: ...`), and returns
/// that line.
fn failure(args: &[&str], code: i32, within: Duration) -> String {
    let (out, took) = kafkit(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "kafkit {args:?}: stdout {} stderr {err}",
        stdout(&out)
    );
    assert!(took < within, "kafkit {args:?} took {took:?}");
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.starts_with("kafkit: error: "), "{err:?}");
    assert!(!err.contains("panicked"), "{err:?}");
    assert!(stdout(&out).is_empty(), "nothing on stdout");
    err
}

/// A localhost port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

// (a) Usage and configuration errors exit 2 and name the option.

#[test]
fn unknown_option_exits_2_naming_it() {
    let err = failure(
        &["-X", "no.such.option=1", "probe"],
        2,
        Duration::from_secs(10),
    );
    assert!(err.contains("no.such.option"), "{err}");
    let err = failure(
        &["-X", "request_timout_ms=1", "metadata"],
        2,
        Duration::from_secs(10),
    );
    assert!(
        err.contains("request_timeout_ms"),
        "suggests the right name: {err}"
    );
}

#[test]
fn bad_value_exits_2_naming_option_and_accepted_values() {
    let err = failure(
        &["-X", "request.timeout.ms=soon", "probe"],
        2,
        Duration::from_secs(10),
    );
    assert!(err.contains("request.timeout.ms"), "{err}");
    assert!(err.contains("integer"), "says what is accepted: {err}");
    let err = failure(
        &["-X", "security_protocol=TLS", "probe"],
        2,
        Duration::from_secs(10),
    );
    assert!(err.contains("security_protocol"), "{err}");
    assert!(err.contains("SASL_SSL"), "lists the accepted values: {err}");
}

#[test]
fn malformed_x_and_bad_bootstrap_exit_2() {
    let (out, _) = kafkit(&["-X", "novalue", "probe"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("KEY=VALUE"), "{}", stderr(&out));
    let err = failure(&["-b", "host:port", "probe"], 2, Duration::from_secs(10));
    assert!(err.contains("host:port"), "{err}");
}

#[test]
fn options_lists_both_names() {
    let text = success(&["options"]);
    assert!(
        text.contains("request.timeout.ms / request_timeout_ms"),
        "{text}"
    );
    let json = success_json(&["options", "--json"]);
    let list = json["options"].as_array().expect("an options array");
    assert!(list
        .iter()
        .any(|o| o["java_name"] == "bootstrap.servers" && o["python_name"] == "bootstrap_servers"));
    // Every kind's options, each with its kind, and the librdkafka names.
    for (name, kind) in [
        ("linger.ms", "producer"),
        ("enable.idempotence", "producer"),
        ("fetch.max.wait.ms", "consumer"),
        ("request.timeout.ms", "common"),
    ] {
        assert!(
            list.iter()
                .any(|o| o["java_name"] == name && o["kind"] == kind),
            "{name} ({kind})"
        );
    }
    assert!(
        text.contains("sasl.password = sasl_plain_password"),
        "{text}"
    );
}

#[test]
fn librdkafka_names_work_and_suggestions_stay_in_the_family() {
    // Accepted: the failure is reaching the closed port, not the option.
    let port = closed_port().to_string();
    let bootstrap = format!("127.0.0.1:{port}");
    let (out, _) = kafkit(&[
        "-b",
        &bootstrap,
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=PLAIN",
        "-X",
        "sasl.username=u",
        "-X",
        "sasl.password=p",
        "-X",
        "request.timeout.ms=2000",
        "probe",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("unknown option"), "{err}");
    // A name of no family kafkit knows gets no suggestion from another family.
    let err = failure(
        &["-X", "sasl.pasword.x=p", "probe"],
        2,
        Duration::from_secs(10),
    );
    assert!(!err.contains("ssl.key.password"), "{err}");
}

#[test]
fn help_has_usage_text() {
    let text = success(&["--help"]);
    assert!(text.contains("KAFKA_BOOTSTRAP"), "{text}");
    assert!(text.contains("Examples:"), "{text}");
    assert!(success(&["probe", "--help"]).contains("--json"));
    assert!(success(&["metadata", "--help"]).contains("--topic"));
}

// (b) An unreachable broker fails within request_timeout_ms, in one line naming it.

#[test]
fn probe_against_a_closed_port_fails_fast_in_one_line() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let err = failure(
        &["-b", &addr, "-X", "request.timeout.ms=1500", "probe"],
        1,
        Duration::from_secs(8),
    );
    assert!(err.contains(&addr), "names the broker: {err}");
}

#[test]
fn metadata_against_a_closed_port_fails_fast_in_one_line() {
    let addr = format!("127.0.0.1:{}", closed_port());
    for json in [false, true] {
        let mut args = vec!["-b", &addr, "-X", "request_timeout_ms=1500", "metadata"];
        if json {
            args.push("--json");
        }
        let err = failure(&args, 1, Duration::from_secs(8));
        assert!(err.contains(&addr), "names the broker: {err}");
    }
}

// (c) A live broker.

/// The cluster the live tests run against: the one in KAFKA_BOOTSTRAP, or a fresh
/// three-broker mock cluster with a topic.
enum Cluster {
    Mock(rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
    External(String),
}

impl Cluster {
    fn start() -> Cluster {
        match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) if !b.trim().is_empty() => Cluster::External(b),
            _ => {
                let mock =
                    rdkafka::mocking::MockCluster::new(3).expect("starting the mock cluster");
                mock.broker_rack(1, "rack-a").expect("setting a rack");
                Cluster::Mock(mock)
            }
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Cluster::Mock(m) => m.bootstrap_servers(),
            Cluster::External(b) => b.clone(),
        }
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        match self {
            Cluster::Mock(m) => m
                .create_topic(name, partitions, 3)
                .expect("creating a topic"),
            Cluster::External(b) => external::create_topic(b, name, partitions),
        }
    }

    fn delete_topic(&self, name: &str) {
        if let Cluster::External(b) = self {
            external::delete_topic(b, name);
        }
    }
}

mod external {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::ClientConfig;

    fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("an admin client")
    }

    pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = futures_executor::block_on(
            admin(bootstrap).create_topics([&topic], &AdminOptions::new()),
        )
        .expect("CreateTopics");
        for r in results {
            r.expect("creating the topic");
        }
    }

    pub fn delete_topic(bootstrap: &str, name: &str) {
        let _ = futures_executor::block_on(
            admin(bootstrap).delete_topics(&[name], &AdminOptions::new()),
        );
    }
}

/// Metadata of `topic` from `kafkit metadata --json`, retried while a new topic propagates.
fn topic_json(bootstrap: &str, topic: &str) -> (Value, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // While the topic is created, its error (exit status 1) comes with the JSON.
        let (out, _) = kafkit(&["-b", bootstrap, "metadata", "--json", "-t", topic]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        let json: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", stdout(&out)));
        let found = json["topics"]
            .as_array()
            .expect("a topics array")
            .iter()
            .find(|t| t["name"] == topic)
            .cloned()
            .expect("the topic asked for is listed");
        let ready = found["error"].is_null()
            && found["partitions"]
                .as_array()
                .is_some_and(|ps| !ps.is_empty() && ps.iter().all(|p| !p["leader"].is_null()));
        if ready || Instant::now() > deadline {
            return (json, found);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn probe_and_metadata_against_a_live_broker() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let is_mock = matches!(cluster, Cluster::Mock(_));
    let topic = format!("kafkit-cli-test-{}", std::process::id());
    cluster.create_topic(&topic, 4);

    // probe, text: the version guess and one line per API.
    let text = success(&["-b", &bootstrap, "probe"]);
    assert!(text.contains("Kafka version:"), "{text}");
    let api_line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .to_owned()
    };
    assert!(api_line("Metadata").starts_with("  3 "), "{text}");
    assert!(api_line("ApiVersions").contains(".."), "{text}");

    // probe, JSON.
    let json = success_json(&["-b", &bootstrap, "probe", "--json"]);
    let first = bootstrap.split(',').collect::<Vec<_>>();
    let address = json["broker"]["address"].as_str().expect("broker address");
    assert!(first.contains(&address), "{address} is one of {bootstrap}");
    assert!(json["broker"]["node"].is_i64());
    let guess = json["version_guess"].as_str().expect("a version guess");
    assert_eq!(guess.split('.').count(), 3, "{guess}");
    let apis = json["apis"].as_array().expect("an apis array");
    let metadata = apis
        .iter()
        .find(|a| a["key"] == 3)
        .expect("the broker lists Metadata");
    assert_eq!(metadata["name"], "Metadata");
    let (min, max) = (
        metadata["broker_min"].as_i64().unwrap(),
        metadata["broker_max"].as_i64().unwrap(),
    );
    let used = metadata["kafkit"]
        .as_i64()
        .expect("kafkit can use Metadata");
    assert!(min <= used && used <= max, "{metadata}");
    for a in apis {
        assert!(a["kafkit"].is_null() || a["kafkit"].is_i64(), "{a}");
    }

    // metadata, JSON: brokers, and the topic with its partitions.
    let (all, found) = topic_json(&bootstrap, &topic);
    let brokers = all["brokers"].as_array().expect("a brokers array");
    if is_mock {
        assert_eq!(brokers.len(), 3, "{all}");
        assert!(
            brokers
                .iter()
                .any(|b| b["id"] == 1 && b["rack"] == "rack-a"),
            "{all}"
        );
        assert!(all["controller"].is_i64(), "{all}");
    } else {
        assert!(!brokers.is_empty(), "{all}");
    }
    for b in brokers {
        assert_eq!(
            b["address"].as_str().unwrap(),
            format!("{}:{}", b["host"].as_str().unwrap(), b["port"])
        );
    }
    let partitions = found["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 4, "{found}");
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i as i64);
        assert!(p["leader"].is_i64(), "{p}");
        assert!(
            p["replicas"].as_array().is_some_and(|r| !r.is_empty()),
            "{p}"
        );
        assert!(
            p["isr"].is_array() && p["offline_replicas"].is_array(),
            "{p}"
        );
        assert!(p["error"].is_null(), "{p}");
        if is_mock {
            assert_eq!(p["replicas"].as_array().unwrap().len(), 3, "{p}");
        }
    }

    // metadata, JSON, every topic: ours is among them.
    let every = success_json(&["-b", &bootstrap, "metadata", "--json"]);
    assert!(every["topics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == topic.as_str()));

    // metadata, text.
    let text = success(&["-b", &bootstrap, "metadata", "-t", &topic]);
    assert!(text.contains("Cluster id:"), "{text}");
    assert!(text.contains("Controller:"), "{text}");
    assert!(
        text.contains(&format!("Brokers ({}):", brokers.len())),
        "{text}"
    );
    assert!(text.contains(&format!("{topic}  ")), "{text}");
    assert!(text.contains("4 partitions"), "{text}");
    assert!(
        text.contains("PARTITION  LEADER  EPOCH  REPLICAS  ISR"),
        "{text}"
    );
    if is_mock {
        assert!(text.contains("rack-a"), "{text}");
    }

    // An unknown topic is listed with its error, not created.
    let missing = format!("{topic}-missing");
    // It is printed, and the exit status is 1 with the error named on stderr.
    let (out, _) = kafkit(&["-b", &bootstrap, "metadata", "--json", "-t", &missing]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        format!("kafkit: error: topic `{missing}`: UNKNOWN_TOPIC_OR_PARTITION")
    );
    let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let t = &json["topics"][0];
    assert_eq!(t["name"], missing.as_str(), "{json}");
    assert_eq!(t["error"], "UNKNOWN_TOPIC_OR_PARTITION", "{json}");

    cluster.delete_topic(&topic);
}

#[test]
fn tls_and_sasl_failures_end_in_one_line() {
    // Only against the mock cluster: its brokers speak neither TLS nor SASL.
    if std::env::var("KAFKA_BOOTSTRAP").is_ok_and(|b| !b.trim().is_empty()) {
        return;
    }
    let mock = rdkafka::mocking::MockCluster::new(1).expect("starting the mock cluster");
    let bootstrap = mock.bootstrap_servers();
    let tls = failure(
        &[
            "-b",
            &bootstrap,
            "-X",
            "request.timeout.ms=1500",
            "-X",
            "security.protocol=SSL",
            "probe",
        ],
        1,
        Duration::from_secs(8),
    );
    assert!(tls.contains(&bootstrap), "names the broker: {tls}");
    let sasl = failure(
        &[
            "-b",
            &bootstrap,
            "-X",
            "request.timeout.ms=1500",
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=SCRAM-SHA-256",
            "-X",
            "sasl.plain.username=alice",
            "-X",
            "sasl.plain.password=secret",
            "metadata",
        ],
        1,
        Duration::from_secs(8),
    );
    assert!(sasl.contains(&bootstrap), "names the broker: {sasl}");
    assert!(
        !sasl.contains("secret"),
        "never prints the password: {sasl}"
    );
}
