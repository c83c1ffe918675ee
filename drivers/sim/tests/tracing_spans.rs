//! The clients' `tracing` spans against the simulated cluster: a SASL PLAIN producer sends
//! records with marked keys, values and header values, then a group consumer reads and
//! commits them. A capturing subscriber (below, on `tracing`'s own `Subscriber` trait) records
//! every span and event of kafkit-core at every level; the test checks the span names and
//! their attributes (OpenTelemetry's messaging conventions), and that no key, value, header
//! value, SASL user name or password byte appears in anything recorded.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_core::config::{AutoOffsetReset, ProducerConfig};
use kafkit_core::consumer::{ConsumerCore, ConsumerEvent, OpId};
use kafkit_core::network::NetOptions;
use kafkit_core::producer::{ProducerCore, ProducerEvent, ProducerRecord};
use kafkit_core::sasl::SaslConfig;
use kafkit_sim::cluster::SaslUser;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, LinkConfig, Simulation};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const TOPIC: &str = "traced";
const GROUP: &str = "tracing-group";
const USER: &str = "usr-marker-5c1e";
const PASSWORD: &str = "pwd-marker-93ab";
const KEY: &str = "key-marker-0d7f";
const VALUE: &str = "val-marker-b2e4";
const HEADER_VALUE: &str = "hdr-marker-66c9";
const RECORDS: usize = 6;

/// One span as recorded: name, attributes (as text), explicit or contextual parent.
#[derive(Debug, Clone)]
struct SpanRec {
    name: &'static str,
    fields: BTreeMap<String, String>,
    parent: Option<u64>,
    refs: usize,
    closed: bool,
}

#[derive(Default)]
struct State {
    next: u64,
    spans: BTreeMap<u64, SpanRec>,
    stack: Vec<u64>,
    /// Every event's fields (kafkit-core's only).
    events: Vec<Vec<(String, String)>>,
}

/// Records every span and event whose target is kafkit-core, at every level.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<State>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

fn ours(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("kafkit_core")
}

impl Subscriber for Capture {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        ours(meta)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut s = self.0.lock().unwrap();
        s.next += 1;
        let id = s.next;
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = if attrs.is_root() {
            None
        } else if let Some(p) = attrs.parent() {
            Some(p.into_u64())
        } else {
            s.stack.last().copied()
        };
        s.spans.insert(
            id,
            SpanRec {
                name: attrs.metadata().name(),
                fields,
                parent,
                refs: 1,
                closed: false,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut s = self.0.lock().unwrap();
        if let Some(rec) = s.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut rec.fields));
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .events
            .push(fields.into_iter().collect());
    }

    fn enter(&self, span: &Id) {
        self.0.lock().unwrap().stack.push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut s = self.0.lock().unwrap();
        if let Some(i) = s.stack.iter().rposition(|x| *x == span.into_u64()) {
            s.stack.remove(i);
        }
    }

    fn clone_span(&self, id: &Id) -> Id {
        if let Some(rec) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            rec.refs += 1;
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let mut s = self.0.lock().unwrap();
        let Some(rec) = s.spans.get_mut(&id.into_u64()) else {
            return false;
        };
        rec.refs -= 1;
        rec.closed = rec.refs == 0;
        rec.closed
    }
}

impl Capture {
    fn spans(&self, name: &str) -> Vec<SpanRec> {
        let s = self.0.lock().unwrap();
        s.spans
            .values()
            .filter(|r| r.name == name)
            .cloned()
            .collect()
    }

    fn span(&self, id: u64) -> SpanRec {
        self.0.lock().unwrap().spans[&id].clone()
    }

    /// Every recorded field value: span attributes and event fields.
    fn all_values(&self) -> Vec<String> {
        let s = self.0.lock().unwrap();
        let spans = s.spans.values().flat_map(|r| r.fields.values().cloned());
        let events = s
            .events
            .iter()
            .flat_map(|e| e.iter().map(|(_, v)| v.clone()));
        spans.chain(events).collect()
    }
}

fn field<'a>(span: &'a SpanRec, name: &str) -> &'a str {
    span.fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("span {} has no {name}: {:?}", span.name, span.fields))
}

fn num(span: &SpanRec, name: &str) -> u64 {
    field(span, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} of {} is not a number", span.name))
}

fn sasl() -> Arc<SaslConfig> {
    Arc::new(SaslConfig::plain(USER, PASSWORD))
}

fn produce(cluster: &Rc<RefCell<Cluster>>, start: Instant) -> Instant {
    let mut config = ProducerConfig::builder()
        .bootstrap_servers("broker-0:9092")
        .build()
        .unwrap();
    config.linger_ms = 5;
    let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
    opts.sasl = Some(sasl());
    let mut core = ProducerCore::new(config, opts).unwrap();
    core.handle_wall_clock(start, 1_700_000_000_000);
    let mut sim = Simulation::new(core, 5, start)
        .with_links(LinkConfig {
            latency: Duration::from_micros(300),
            jitter: Duration::ZERO,
        })
        .with_max_steps(100_000);
    serve_cluster(&mut sim, cluster);
    for i in 0..RECORDS {
        let now = sim.now();
        let record = ProducerRecord::new(TOPIC)
            .key(format!("{KEY}-{i}"))
            .value(format!("{VALUE}-{i}"))
            .header("trace-header", format!("{HEADER_VALUE}-{i}"));
        let _ = sim.core().send(Some(OpId(i as u64)), record, now).unwrap();
    }
    let mut delivered = 0;
    let done = sim
        .run_until(|s| {
            for e in s.take_events() {
                if let ProducerEvent::Delivered(d) = e {
                    for (op, r) in &d {
                        r.unwrap_or_else(|e| panic!("record {op} failed: {e}"));
                        delivered += 1;
                    }
                }
            }
            delivered == RECORDS
        })
        .unwrap();
    assert!(done, "{delivered} of {RECORDS} delivered");
    sim.now()
}

/// A group member reads everything, commits, and returns how many records it read.
fn consume(cluster: &Rc<RefCell<Cluster>>, start: Instant) -> usize {
    let mut cc = kafkit_core::config::ConsumerConfig::default();
    cc.group_id = Some(GROUP.into());
    cc.auto_offset_reset = AutoOffsetReset::Earliest;
    cc.enable_auto_commit = false;
    cc.fetch_max_wait_ms = 100;
    let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
    opts.sasl = Some(sasl());
    let core = ConsumerCore::new(cc, opts);
    let mut sim = Simulation::new(core, 6, start)
        .with_links(LinkConfig {
            latency: Duration::from_micros(300),
            jitter: Duration::ZERO,
        })
        .with_max_steps(200_000);
    serve_cluster(&mut sim, cluster);
    let now = sim.now();
    sim.core().subscribe([TOPIC], now).unwrap();
    let mut read = 0;
    let mut committed = None;
    let mut commit_sent = false;
    let done = sim
        .run_until(|s| {
            let now = s.now();
            loop {
                match s.core().take_records(500, now) {
                    Ok(r) if r.is_empty() => break,
                    Ok(r) => read += r.count(),
                    Err(e) => panic!("poll failed: {e}"),
                }
            }
            if read == RECORDS && !commit_sent {
                commit_sent = true;
                s.core()
                    .commit_sync(OpId(1), None, Duration::from_secs(10), now);
            }
            for e in s.take_events() {
                if let ConsumerEvent::Commit {
                    op: Some(OpId(1)),
                    result,
                    ..
                } = e
                {
                    committed = Some(result);
                }
            }
            committed.is_some()
        })
        .unwrap();
    assert!(done, "read {read} of {RECORDS}, commit {committed:?}");
    committed.unwrap().expect("the commit succeeds");
    read
}

#[test]
fn clients_trace_with_otel_attributes_and_never_record_payloads_or_secrets() {
    let start = Instant::now();
    let cluster = Rc::new(RefCell::new(Cluster::new(
        ClusterConfig {
            brokers: 2,
            default_partitions: 2,
            sasl_users: vec![SaslUser::new("PLAIN", USER, PASSWORD)],
            seed: 4,
            ..ClusterConfig::default()
        },
        start,
    )));
    let capture = Capture::default();
    let read = tracing::subscriber::with_default(capture.clone(), || {
        let produced_at = produce(&cluster, start);
        consume(&cluster, produced_at)
    });
    assert_eq!(read, RECORDS);

    // Every span says it is Kafka's, and names its operation.
    for name in [
        "send",
        "produce",
        "fetch",
        "poll",
        "commit",
        "rebalance",
        "connect",
        "authenticate",
    ] {
        let spans = capture.spans(name);
        assert!(!spans.is_empty(), "no {name} span");
        for s in &spans {
            assert_eq!(field(s, "messaging.system"), "kafka", "{name}");
            assert_eq!(field(s, "messaging.operation.name"), name);
            assert!(s.closed, "{name} span left open: {:?}", s.fields);
        }
    }

    // send: one per record, at the partition it went to.
    let sends = capture.spans("send");
    assert_eq!(sends.len(), RECORDS);
    for s in &sends {
        assert_eq!(field(s, "messaging.operation.type"), "create");
        assert_eq!(field(s, "messaging.destination.name"), TOPIC);
        assert!(num(s, "messaging.destination.partition.id") < 2);
    }

    // produce: every record in exactly one successful request, with its size and broker.
    let produces = capture.spans("produce");
    let sent: u64 = produces
        .iter()
        .map(|s| num(s, "messaging.batch.message_count"))
        .sum();
    assert_eq!(sent, RECORDS as u64);
    for s in &produces {
        assert_eq!(field(s, "messaging.operation.type"), "send");
        assert_eq!(field(s, "messaging.destination.name"), TOPIC);
        assert_eq!(field(s, "messaging.client.id"), "kafkit");
        assert!(num(s, "kafkit.partitions") >= 1);
        assert!(num(s, "kafkit.bytes") > 0);
        assert!(field(s, "server.address").starts_with("broker-"));
        assert!((9092..9094).contains(&num(s, "server.port")));
        assert!(!s.fields.contains_key("error.type"), "{:?}", s.fields);
    }

    // fetch: the records arrived through fetches that say how many and how large.
    let fetches = capture.spans("fetch");
    let fetched: u64 = fetches
        .iter()
        .filter_map(|s| s.fields.get("messaging.batch.message_count"))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(fetched >= RECORDS as u64, "fetched {fetched}");
    for s in &fetches {
        assert_eq!(field(s, "messaging.operation.type"), "receive");
        assert_eq!(field(s, "messaging.consumer.group.name"), GROUP);
        assert!(num(s, "kafkit.partitions") >= 1);
        assert!(field(s, "server.address").starts_with("broker-"));
    }

    // poll: the application's polls hand out every record once.
    let polled: u64 = capture
        .spans("poll")
        .iter()
        .map(|s| num(s, "messaging.batch.message_count"))
        .sum();
    assert_eq!(polled, RECORDS as u64);

    // commit: one, of both partitions, successful.
    let commits = capture.spans("commit");
    assert_eq!(commits.len(), 1, "{commits:?}");
    assert_eq!(field(&commits[0], "messaging.consumer.group.name"), GROUP);
    assert_eq!(num(&commits[0], "kafkit.offsets"), 2);
    assert!(!commits[0].fields.contains_key("error.type"));

    // rebalance: one, ending with both partitions assigned in generation 1.
    let rebalances = capture.spans("rebalance");
    assert_eq!(rebalances.len(), 1, "{rebalances:?}");
    let r = &rebalances[0];
    assert_eq!(field(r, "messaging.consumer.group.name"), GROUP);
    assert_eq!(num(r, "kafkit.generation"), 1);
    assert_eq!(field(r, "kafkit.assigned"), format!("{TOPIC}-0,{TOPIC}-1"));
    assert_eq!(field(r, "kafkit.revoked"), "");
    assert!(!field(r, "kafkit.member_id").is_empty());

    // connect and authenticate: plaintext, SASL PLAIN, every one successful.
    let connects = capture.spans("connect");
    for c in &connects {
        assert!(field(c, "server.address").starts_with("broker-"));
        // The simulated brokers listen on 9092, 9093, ...
        assert!((9092..9094).contains(&num(c, "server.port")));
        assert_eq!(field(c, "kafkit.tls"), "false");
        assert_eq!(field(c, "kafkit.sasl.mechanism"), "PLAIN");
        assert!(!c.fields.contains_key("error.type"), "{:?}", c.fields);
    }
    let auths = capture.spans("authenticate");
    assert_eq!(
        auths.len(),
        connects.len(),
        "one SASL exchange per connection"
    );
    for a in &auths {
        assert_eq!(field(a, "kafkit.sasl.mechanism"), "PLAIN");
        assert!(!a.fields.contains_key("error.type"));
        let parent = a.parent.expect("authenticate has a parent");
        assert_eq!(capture.span(parent).name, "connect");
    }

    // Nothing recorded anywhere holds a payload or a secret.
    let values = capture.all_values();
    assert!(values.len() > 100, "the scan saw {} values", values.len());
    for v in &values {
        for marker in [USER, PASSWORD, KEY, VALUE, HEADER_VALUE] {
            assert!(
                !v.contains(marker),
                "{marker:?} recorded in {v:?} (span or event field)"
            );
        }
    }
}
