//! The `tracing` spans of every client, defined in one place so their names and attributes
//! stay consistent (OpenTelemetry's messaging semantic conventions for Kafka).
//!
//! The cores are sans-IO: nothing in them awaits, so a span cannot be held across an await.
//! Instead a span stands for one piece of the core's own work and lives in the core's state
//! for as long as that work is in progress: a Produce or Fetch request's span is created when
//! the request is built and closed when its answer (or failure) has been handled; a
//! connection's from its `Connect` output until it is ready or fails; a rebalance's from the
//! first JoinGroup until the assignment is taken. Per-record work (a record's enqueue, `send`)
//! is entered and left at once, at TRACE. The spans of work that outlives the call that
//! started it (`produce`, `fetch`, `commit`, `rebalance`, `connect`) are roots, since the
//! application call or driver wake-up that happened to start them says nothing about them;
//! `send` and `poll` take the current span as parent (the application's, where the core is
//! driven on its thread); `authenticate` is a child of its connection's `connect`.
//!
//! | span | level | attributes |
//! | --- | --- | --- |
//! | `send` | TRACE | `messaging.destination.name`, `messaging.destination.partition.id` |
//! | `produce` | INFO | `messaging.destination.name` (one topic) or the topic count, `kafkit.partitions`, `messaging.batch.message_count`, `kafkit.bytes`, `server.*`, `error.type` |
//! | `fetch` | INFO | `kafkit.partitions`, `messaging.batch.message_count`, `kafkit.bytes`, `server.*`, `error.type` |
//! | `poll` | INFO | `messaging.consumer.group.name`, `messaging.batch.message_count` |
//! | `commit` | INFO | `messaging.consumer.group.name`, `kafkit.offsets`, `error.type` |
//! | `rebalance` | INFO | `messaging.consumer.group.name`, `kafkit.generation`, `kafkit.member_id`, `kafkit.assigned`, `kafkit.revoked`, `error.type` |
//! | `connect` | INFO | `server.address`, `server.port`, `kafkit.node_id`, `kafkit.tls`, `kafkit.sasl.mechanism`, `error.type` |
//! | `authenticate` | INFO | `kafkit.sasl.mechanism`, `error.type` |
//!
//! Every span also has `messaging.system = "kafka"`, `messaging.operation.name` and, where
//! the conventions define one, `messaging.operation.type`, and the client's
//! `messaging.client.id` where the site knows it. Record keys, values, header values, SASL
//! user names, passwords and tokens are never recorded; nor are error messages (only their
//! class, `error.type`), since a broker's message may quote what it was sent.

use tracing::field::Empty;
use tracing::Span;

use super::NetError;

/// The `connect` span of a new connection to `host:port`.
pub(crate) fn connect(
    host: &str,
    port: u16,
    node: i32,
    tls: bool,
    sasl: Option<&str>,
    client_id: Option<&str>,
) -> Span {
    tracing::info_span!(
        parent: None,
        "connect",
        messaging.system = "kafka",
        messaging.operation.name = "connect",
        messaging.client.id = client_id,
        server.address = host,
        server.port = port,
        kafkit.node_id = node,
        kafkit.tls = tls,
        kafkit.sasl.mechanism = sasl,
        error.type = Empty,
    )
}

/// The `authenticate` span of a connection's SASL exchange, a child of its `connect` span.
pub(crate) fn authenticate(connect: &Span, mechanism: &str) -> Span {
    tracing::info_span!(
        parent: connect,
        "authenticate",
        messaging.system = "kafka",
        messaging.operation.name = "authenticate",
        kafkit.sasl.mechanism = mechanism,
        error.type = Empty,
    )
}

/// Ends `span` (if it is still open) with `error`'s class, or as a success.
pub(crate) fn finish(span: &mut Span, error: Option<&NetError>) {
    if let Some(e) = error {
        span.record("error.type", e.kind());
    }
    *span = Span::none();
}

/// Records `error.type` on `span` (a class name, never a message).
pub(crate) fn record_error(span: &Span, kind: &str) {
    span.record("error.type", kind);
}

/// `error.type` of a consumer error: the broker's code name where there is one.
pub(crate) fn consumer_error_type(e: &crate::consumer::ConsumerError) -> &'static str {
    use crate::consumer::ConsumerError as E;
    match e {
        E::Group { error, .. } => error.name(),
        E::Network(n) => n.kind(),
        E::Timeout { .. } => "timeout",
        E::Closed => "closed",
        E::OffsetOutOfRange { .. } => "OFFSET_OUT_OF_RANGE",
        E::UnknownTopic { .. } => "UNKNOWN_TOPIC_OR_PARTITION",
        E::IllegalState { .. } => "illegal_state",
        _ => "consumer_error",
    }
}

/// The per-record `send` span (TRACE): entered around the record's enqueue.
#[inline]
pub(crate) fn send(topic: &str, partition: i32) -> Span {
    tracing::trace_span!(
        "send",
        messaging.system = "kafka",
        messaging.operation.name = "send",
        messaging.operation.type = "create",
        messaging.destination.name = topic,
        messaging.destination.partition.id = partition,
    )
}

/// A request's span whose broker is `node`: `produce` or `fetch`. Attributes that cost
/// anything to compute are filled in by the caller only if the span is enabled.
pub(crate) fn produce(node: i32, client_id: Option<&str>) -> Span {
    tracing::info_span!(
        parent: None,
        "produce",
        messaging.system = "kafka",
        messaging.operation.name = "produce",
        messaging.operation.type = "send",
        messaging.client.id = client_id,
        messaging.destination.name = Empty,
        kafkit.topics = Empty,
        kafkit.partitions = Empty,
        messaging.batch.message_count = Empty,
        kafkit.bytes = Empty,
        kafkit.node_id = node,
        server.address = Empty,
        server.port = Empty,
        error.type = Empty,
    )
}

/// The `fetch` span of one Fetch request to broker `node`.
pub(crate) fn fetch(node: i32, client_id: Option<&str>, group: Option<&str>) -> Span {
    tracing::info_span!(
        parent: None,
        "fetch",
        messaging.system = "kafka",
        messaging.operation.name = "fetch",
        messaging.operation.type = "receive",
        messaging.client.id = client_id,
        messaging.consumer.group.name = group,
        kafkit.partitions = Empty,
        messaging.batch.message_count = Empty,
        kafkit.bytes = Empty,
        kafkit.node_id = node,
        server.address = Empty,
        server.port = Empty,
        error.type = Empty,
    )
}

/// The `poll` span: the application taking records.
pub(crate) fn poll(client_id: Option<&str>, group: Option<&str>) -> Span {
    tracing::info_span!(
        "poll",
        messaging.system = "kafka",
        messaging.operation.name = "poll",
        messaging.operation.type = "receive",
        messaging.client.id = client_id,
        messaging.consumer.group.name = group,
        messaging.batch.message_count = Empty,
    )
}

/// The `commit` span of one OffsetCommit of `offsets` partitions for `group`.
pub(crate) fn commit(group: &str, offsets: usize) -> Span {
    tracing::info_span!(
        parent: None,
        "commit",
        messaging.system = "kafka",
        messaging.operation.name = "commit",
        messaging.operation.type = "settle",
        messaging.consumer.group.name = group,
        kafkit.offsets = offsets,
        error.type = Empty,
    )
}

/// The `rebalance` span of `group`, from the first JoinGroup until the member has its
/// assignment.
pub(crate) fn rebalance(group: &str) -> Span {
    tracing::info_span!(
        parent: None,
        "rebalance",
        messaging.system = "kafka",
        messaging.operation.name = "rebalance",
        messaging.consumer.group.name = group,
        kafkit.generation = Empty,
        kafkit.member_id = Empty,
        kafkit.assigned = Empty,
        kafkit.revoked = Empty,
        error.type = Empty,
    )
}

/// Fills in `server.address`/`server.port` from the cluster view, if the span is enabled.
pub(crate) fn record_server(span: &Span, cluster: &super::ClusterView, node: i32) {
    if span.is_disabled() {
        return;
    }
    if let Some(b) = cluster.brokers.get(&node) {
        span.record("server.address", b.host.as_str());
        span.record("server.port", b.port);
    }
}

/// A Fetch answer's size on its span, if enabled: bytes of record data and records in them
/// (from the batch headers; a pre-0.11 message set counts its entries, a compressed wrapper
/// as one), and its error code if it has one.
pub(crate) fn record_fetched(span: &Span, f: &crate::protocol::FetchResponse) {
    if span.is_disabled() {
        return;
    }
    if f.error().is_err() {
        span.record("error.type", f.error().name());
    }
    let (mut bytes, mut records) = (0usize, 0usize);
    for p in f.responses.iter().flat_map(|t| &t.partitions) {
        if let Some(data) = &p.records {
            bytes += data.len();
            records += records_in(data);
        }
    }
    span.record("kafkit.bytes", bytes);
    span.record("messaging.batch.message_count", records);
}

/// Records in a record set, read from the batch headers only: a v2 batch's `recordsCount`
/// (at byte 57; the magic byte is at 16), one per legacy entry; a partial batch at the end
/// counts nothing.
fn records_in(data: &[u8]) -> usize {
    let mut rest = data;
    let mut n = 0usize;
    while rest.len() >= 17 {
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Ok(total) = usize::try_from(len).map(|l| l + 12) else {
            break;
        };
        if total > rest.len() {
            break;
        }
        if rest[16] == 2 && total >= 61 {
            let c = i32::from_be_bytes([rest[57], rest[58], rest[59], rest[60]]);
            n += usize::try_from(c).unwrap_or(0);
        } else {
            n += 1;
        }
        rest = &rest[total..];
    }
    n
}

/// `t-0,t-1,u-3`: partitions as one attribute value.
pub(crate) fn partition_list<'a>(parts: impl IntoIterator<Item = (&'a str, i32)>) -> String {
    let mut out = String::new();
    for (t, p) in parts {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(t);
        out.push('-');
        out.push_str(&p.to_string());
    }
    out
}
