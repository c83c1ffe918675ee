//! Fetch: reads within byte limits, long polls in virtual time, isolation levels, leader
//! epoch checks, and KIP-227 fetch sessions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::codec::Uuid;
use kafkit_core::protocol::fetch::response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafkit_core::protocol::{ErrorCode, FetchRequest, FetchResponse, RequestHeader, ResponseBody};

use super::{downconvert, wire, Cluster, ConnKey, Ctx, Outcome, Waiting};

/// Fetch sessions each broker keeps at most (then fetches run sessionless).
const MAX_SESSIONS_PER_BROKER: usize = 1000;

/// A topic as a fetch names it: by name before v13, by id from v13.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// One partition to read.
#[derive(Debug, Clone)]
struct FetchItem {
    topic: TopicRef,
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
    current_leader_epoch: i32,
}

/// What a session remembers of a partition: the request's parameters and what the last
/// response said, to send only changes in incremental responses.
#[derive(Debug, Clone)]
struct SessionPartition {
    item: FetchItem,
    last_hw: i64,
    last_lso: i64,
    last_log_start: i64,
}

#[derive(Debug)]
struct FetchSession {
    /// The epoch the next incremental request must carry.
    next_epoch: i32,
    partitions: Vec<SessionPartition>,
}

/// The fetch sessions of every broker.
#[derive(Debug, Default)]
pub(super) struct FetchSessions {
    sessions: HashMap<(i32, i32), FetchSession>,
}

impl FetchSessions {
    /// Forgets every session of `broker` (it crashed).
    pub(super) fn clear_broker(&mut self, broker: i32) {
        self.sessions.retain(|(b, _), _| *b != broker);
    }

    fn count(&self, broker: i32) -> usize {
        self.sessions.keys().filter(|(b, _)| *b == broker).count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionMode {
    /// No session: the response lists every requested partition.
    Sessionless,
    /// A session's first (full) response.
    Full(i32),
    /// An incremental response: only partitions with news.
    Incremental(i32),
}

/// A fetch parked until enough data arrives or its wait ends.
pub(super) struct FetchWait {
    pub(super) deadline: Instant,
    header: RequestHeader,
    version: i16,
    broker: i32,
    min_bytes: i32,
    max_bytes: i32,
    isolation: i8,
    mode: SessionMode,
    items: Vec<FetchItem>,
}

impl FetchWait {
    /// Whether the fetch reads one of `partitions` (topic id, partition); `id_of` names the
    /// id of a topic the fetch names (before v13). A topic without an id counts as read.
    pub(super) fn reads_any(
        &self,
        partitions: &[(Uuid, i32)],
        id_of: impl Fn(&str) -> Option<Uuid>,
    ) -> bool {
        self.items.iter().any(|item| {
            let id = match &item.topic {
                TopicRef::Id(id) => *id,
                TopicRef::Name(name) => match id_of(name) {
                    Some(id) => id,
                    None => return true,
                },
            };
            partitions.contains(&(id, item.partition))
        })
    }
}

/// One partition's read.
struct PartRead {
    topic: TopicRef,
    name: Option<String>,
    partition: i32,
    error: ErrorCode,
    hw: i64,
    lso: i64,
    log_start: i64,
    records: Vec<Bytes>,
    leader: Option<(i32, i32)>,
    /// `read_committed`: the aborted transactions overlapping the read.
    aborted: Vec<AbortedTransaction>,
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl Cluster {
    pub(super) fn handle_fetch(&mut self, ctx: &Ctx, req: FetchRequest) -> Outcome {
        let v = ctx.version;
        let uses_ids = v >= 13;
        let to_ref = |name: &str, id: Uuid| {
            if uses_ids {
                TopicRef::Id(id)
            } else {
                TopicRef::Name(name.to_owned())
            }
        };
        let mut items = Vec::new();
        for t in &req.topics {
            let topic = to_ref(&t.topic, t.topic_id);
            for p in &t.partitions {
                items.push(FetchItem {
                    topic: topic.clone(),
                    partition: p.partition,
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: p.current_leader_epoch,
                });
            }
        }
        let (session_id, epoch) = if v >= 7 {
            (req.session_id, req.session_epoch)
        } else {
            (0, -1)
        };
        let broker = ctx.broker;
        let mode = if epoch == -1 || epoch == 0 {
            if session_id != 0 {
                self.sessions.sessions.remove(&(broker, session_id));
            }
            if epoch == -1 || self.sessions.count(broker) >= MAX_SESSIONS_PER_BROKER {
                SessionMode::Sessionless
            } else {
                let id = loop {
                    let id = (self.rng.next_u64() & 0x7fff_ffff) as i32;
                    if id != 0 && !self.sessions.sessions.contains_key(&(broker, id)) {
                        break id;
                    }
                };
                let partitions = items
                    .iter()
                    .map(|item| SessionPartition {
                        item: item.clone(),
                        last_hw: -1,
                        last_lso: -1,
                        last_log_start: -1,
                    })
                    .collect();
                self.sessions.sessions.insert(
                    (broker, id),
                    FetchSession {
                        next_epoch: 1,
                        partitions,
                    },
                );
                SessionMode::Full(id)
            }
        } else {
            let Some(session) = self.sessions.sessions.get_mut(&(broker, session_id)) else {
                return Self::session_error(ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
            };
            if session.next_epoch != epoch {
                return Self::session_error(ErrorCode::INVALID_FETCH_SESSION_EPOCH);
            }
            for item in &items {
                match session
                    .partitions
                    .iter_mut()
                    .find(|s| s.item.topic == item.topic && s.item.partition == item.partition)
                {
                    Some(s) => s.item = item.clone(),
                    None => session.partitions.push(SessionPartition {
                        item: item.clone(),
                        last_hw: -1,
                        last_lso: -1,
                        last_log_start: -1,
                    }),
                }
            }
            for f in &req.forgotten_topics_data {
                let topic = to_ref(&f.topic, f.topic_id);
                session.partitions.retain(|s| {
                    !(s.item.topic == topic && f.partitions.contains(&s.item.partition))
                });
            }
            session.next_epoch = next_epoch(epoch);
            items = session.partitions.iter().map(|s| s.item.clone()).collect();
            SessionMode::Incremental(session_id)
        };
        let wait = FetchWait {
            deadline: ctx.now + Duration::from_millis(req.max_wait_ms.max(0) as u64),
            header: ctx.header.clone(),
            version: v,
            broker,
            min_bytes: req.min_bytes,
            max_bytes: if v >= 3 { req.max_bytes } else { i32::MAX },
            isolation: if v >= 4 { req.isolation_level } else { 0 },
            mode,
            items,
        };
        let expired = req.max_wait_ms <= 0;
        match self.complete_fetch((ctx.broker, ctx.conn), Box::new(wait), expired, ctx.now) {
            Ok((_, outcome)) => outcome,
            Err(w) => Outcome::Wait(w),
        }
    }

    fn session_error(code: ErrorCode) -> Outcome {
        Outcome::Reply(ResponseBody::Fetch(FetchResponse {
            error_code: code.code(),
            session_id: 0,
            ..Default::default()
        }))
    }

    /// Reads every partition of a fetch under its byte limits.
    fn read_fetch(&self, w: &FetchWait) -> Vec<PartRead> {
        let mut remaining = if w.max_bytes <= 0 {
            i32::MAX as usize
        } else {
            w.max_bytes as usize
        };
        let mut min_one = true;
        let mut out = Vec::with_capacity(w.items.len());
        // What this fetcher can read, and what this broker's release serves.
        let magic = downconvert::fetch_magic(w.version).min(self.config.message_format);
        for item in &w.items {
            let (name, unknown) = match &item.topic {
                TopicRef::Name(n) => (Some(n.clone()), ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                TopicRef::Id(id) => (
                    self.topic_names.get(id).cloned(),
                    ErrorCode::UNKNOWN_TOPIC_ID,
                ),
            };
            let mut read = PartRead {
                topic: item.topic.clone(),
                name: name.clone(),
                partition: item.partition,
                error: ErrorCode::NONE,
                hw: -1,
                lso: -1,
                log_start: -1,
                records: Vec::new(),
                leader: None,
                aborted: Vec::new(),
            };
            let topic = name.as_deref().and_then(|n| self.topics.get(n));
            let Some(topic) = topic else {
                read.error = unknown;
                out.push(read);
                continue;
            };
            let Some(p) = topic.partition(item.partition) else {
                read.error = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
                out.push(read);
                continue;
            };
            if p.leader != w.broker || !self.is_alive(p.leader) {
                read.error = ErrorCode::NOT_LEADER_OR_FOLLOWER;
                read.leader = Some((p.leader, p.leader_epoch));
                out.push(read);
                continue;
            }
            read.hw = p.high_watermark();
            read.lso = p.last_stable_offset();
            read.log_start = p.log_start_offset();
            if item.current_leader_epoch >= 0 {
                if item.current_leader_epoch < p.leader_epoch {
                    read.error = ErrorCode::FENCED_LEADER_EPOCH;
                } else if item.current_leader_epoch > p.leader_epoch {
                    read.error = ErrorCode::UNKNOWN_LEADER_EPOCH;
                }
                if read.error.is_err() {
                    read.leader = Some((p.leader, p.leader_epoch));
                    out.push(read);
                    continue;
                }
            }
            if item.fetch_offset < p.log_start_offset() || item.fetch_offset > p.log_end_offset() {
                read.error = ErrorCode::OFFSET_OUT_OF_RANGE;
                out.push(read);
                continue;
            }
            let limit = if w.isolation == 1 { read.lso } else { read.hw };
            let budget = (item.max_bytes.max(0) as usize).min(remaining);
            read.records = p.read(item.fetch_offset, limit, budget, min_one);
            if magic < 2 {
                read.records = read
                    .records
                    .iter()
                    .filter_map(|b| downconvert::down_convert(b, magic))
                    .collect();
            }
            if w.isolation == 1 {
                read.aborted = p
                    .aborted_between(item.fetch_offset, limit)
                    .map(|a| AbortedTransaction {
                        producer_id: a.producer_id,
                        first_offset: a.first_offset,
                        ..Default::default()
                    })
                    .collect();
            }
            let size: usize = read.records.iter().map(Bytes::len).sum();
            if size > 0 {
                min_one = false;
                remaining = remaining.saturating_sub(size);
            }
            out.push(read);
        }
        out
    }

    /// Answers a fetch if it has enough data, an error, or `expired`; otherwise hands the
    /// wait back.
    pub(super) fn complete_fetch(
        &mut self,
        _key: (i32, ConnKey),
        w: Box<FetchWait>,
        expired: bool,
        _now: Instant,
    ) -> Result<(RequestHeader, Outcome), Waiting> {
        let reads = self.read_fetch(&w);
        let bytes: usize = reads
            .iter()
            .flat_map(|r| r.records.iter())
            .map(Bytes::len)
            .sum();
        let any_error = reads.iter().any(|r| r.error.is_err());
        let ready =
            expired || w.items.is_empty() || any_error || bytes as i64 >= w.min_bytes as i64;
        if !ready {
            return Err(Waiting::Fetch(w));
        }
        let response = self.fetch_response(&w, reads);
        Ok((w.header.clone(), response))
    }

    /// The response to `w` from `reads`: a Fetch reply whose records are the stored bytes,
    /// gathered into one buffer when they span several batches; or, with spliced fetches on
    /// (the dev broker), one with empty records and the stored batches beside it, for
    /// `wire::encode_fetch_pieces`.
    fn fetch_response(&mut self, w: &FetchWait, reads: Vec<PartRead>) -> Outcome {
        let mut spliced = self.spliced_fetches.then(wire::FetchRecords::default);
        let v = w.version;
        let (session_id, incremental) = match w.mode {
            SessionMode::Sessionless => (0, false),
            SessionMode::Full(id) => (id, false),
            SessionMode::Incremental(id) => (id, true),
        };
        let mut session = match w.mode {
            SessionMode::Sessionless => None,
            SessionMode::Full(id) | SessionMode::Incremental(id) => {
                self.sessions.sessions.get_mut(&(w.broker, id))
            }
        };
        let mut topics: Vec<FetchableTopicResponse> = Vec::new();
        let mut leaders = Vec::new();
        for read in reads {
            let size: usize = read.records.iter().map(Bytes::len).sum();
            if let Some(s) = session.as_deref_mut() {
                if let Some(sp) = s
                    .partitions
                    .iter_mut()
                    .find(|sp| sp.item.topic == read.topic && sp.item.partition == read.partition)
                {
                    let changed = read.error.is_err()
                        || size > 0
                        || sp.last_hw != read.hw
                        || sp.last_lso != read.lso
                        || sp.last_log_start != read.log_start;
                    sp.last_hw = read.hw;
                    sp.last_lso = read.lso;
                    sp.last_log_start = read.log_start;
                    if incremental && !changed {
                        continue;
                    }
                }
            }
            let records = match (read.records.len(), &mut spliced) {
                (_, Some(spliced)) => {
                    spliced.0.push(read.records);
                    Bytes::new()
                }
                (0, None) => Bytes::new(),
                (1, None) => read.records[0].clone(),
                _ => {
                    // Pooled memory: handed back once the response is encoded (`emit`).
                    let mut buf = self.frame_pool.take(size);
                    for r in &read.records {
                        buf.extend_from_slice(r);
                    }
                    buf.freeze()
                }
            };
            let mut pd = PartitionData {
                partition_index: read.partition,
                error_code: read.error.code(),
                high_watermark: read.hw,
                last_stable_offset: read.lso,
                log_start_offset: read.log_start,
                aborted_transactions: (w.isolation == 1).then_some(read.aborted),
                records: Some(records),
                ..Default::default()
            };
            if let Some((leader, epoch)) = read.leader {
                if v >= 12 {
                    pd.current_leader = LeaderIdAndEpoch {
                        leader_id: leader,
                        leader_epoch: epoch,
                        ..Default::default()
                    };
                }
                if leader >= 0 {
                    leaders.push(leader);
                }
            }
            let (topic_name, topic_id) = match &read.topic {
                TopicRef::Name(n) => (n.clone(), Uuid::ZERO),
                TopicRef::Id(id) => (read.name.clone().unwrap_or_default(), *id),
            };
            match topics.last_mut() {
                Some(t)
                    if (v >= 13 && t.topic_id == topic_id) || (v < 13 && t.topic == topic_name) =>
                {
                    t.partitions.push(pd)
                }
                _ => topics.push(FetchableTopicResponse {
                    topic: if v < 13 { topic_name } else { String::new() },
                    topic_id: if v >= 13 { topic_id } else { Uuid::ZERO },
                    partitions: vec![pd],
                    ..Default::default()
                }),
            }
        }
        let mut resp = FetchResponse {
            error_code: ErrorCode::NONE.code(),
            session_id,
            responses: topics,
            ..Default::default()
        };
        if v >= 16 {
            leaders.sort_unstable();
            leaders.dedup();
            resp.node_endpoints = leaders
                .into_iter()
                .filter_map(|id| self.broker(id))
                .map(|b| NodeEndpoint {
                    node_id: b.id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                    ..Default::default()
                })
                .collect();
        }
        match spliced {
            Some(records) => Outcome::ReplyFetchPieces(resp, records),
            None => Outcome::Reply(ResponseBody::Fetch(resp)),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafkit_core::compression::Compression;
    use kafkit_core::protocol::create_topics::request::CreatableTopic;
    use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic};
    use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
    use kafkit_core::protocol::{
        decode_response_frame, request_header_version, ApiKey, CreateTopicsRequest, Message,
        ProduceRequest, RequestBody,
    };
    use kafkit_core::records::RecordBatchBuilder;

    use super::*;
    use crate::cluster::ClusterConfig;

    fn frame(body: &RequestBody, version: i16, correlation_id: i32) -> Bytes {
        let api = body.api_key();
        let header = RequestHeader {
            request_api_key: api.as_i16(),
            request_api_version: version,
            correlation_id,
            client_id: Some("test".into()),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, request_header_version(api, version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn batch(value_len: usize, records: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None);
        for i in 0..records {
            b.append(1_000 + i as i64, None, Some(&vec![i as u8; value_len]), &[])
                .unwrap();
        }
        b.finish().unwrap()
    }

    /// Two identical clusters, the second answering fetches in pieces, fed the same requests.
    struct Twins {
        plain: Cluster,
        pieces: Cluster,
        now: Instant,
        correlation: i32,
    }

    impl Twins {
        /// Both clusters' answers: the plain one's frames, the other's pieces.
        fn send(&mut self, body: impl Into<RequestBody>, version: i16) -> (Vec<Bytes>, Vec<Bytes>) {
            self.correlation += 1;
            let f = frame(&body.into(), version, self.correlation);
            let a = self.plain.handle_frame(0, 1, f.clone(), self.now);
            let b = self.pieces.handle_frame(0, 1, f, self.now);
            assert!(!a.close && !b.close);
            (a.frames, b.frames)
        }
    }

    #[test]
    fn fetch_pieces_are_the_frame_the_encoder_makes() {
        let now = Instant::now();
        let config = ClusterConfig {
            brokers: 1,
            ..Default::default()
        };
        let mut t = Twins {
            plain: Cluster::new(config.clone(), now),
            pieces: Cluster::new(config, now),
            now,
            correlation: 0,
        };
        t.pieces.set_spliced_fetches(true);
        let create = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: 3,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        };
        let (a, b) = t.send(create, 7);
        assert_eq!(a, b);
        let created = decode_response_frame(ApiKey::CreateTopics, 7, a[0].slice(4..))
            .unwrap()
            .1
            .into_response::<CreateTopicsRequest>()
            .expect("a CreateTopics response");
        let id = created.topics[0].topic_id;
        // Partition 0: batches below and above the size that is copied; 1: one large batch;
        // 2: nothing.
        let batches = [
            (0, batch(100, 1)),
            (0, batch(5_000, 1)),
            (0, batch(10, 3)),
            (0, batch(1_000, 3)),
            (0, batch(20_000, 2)),
            (1, batch(3_000, 1)),
        ];
        for (partition, records) in batches {
            let produce = ProduceRequest {
                acks: 1,
                timeout_ms: 1000,
                topic_data: vec![TopicProduceData {
                    name: "t".into(),
                    partition_data: vec![PartitionProduceData {
                        index: partition,
                        records: Some(records),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let (a, b) = t.send(produce, 9);
            assert_eq!(a, b);
        }
        let stored: Vec<usize> = t
            .pieces
            .partition("t", 0)
            .unwrap()
            .batches()
            .chain(t.pieces.partition("t", 1).unwrap().batches())
            .map(|b| b.data.as_ptr() as usize)
            .collect();
        let mut shared = 0;
        for version in 4..=17 {
            // Whole logs; byte limits that cut partition 0 short, with the first batch over
            // them; an unknown partition; read committed; a session and an incremental fetch.
            for (max_bytes, partition_max, isolation, session_epoch) in [
                (i32::MAX, 1 << 20, 0, -1),
                (6_000, 1 << 20, 0, -1),
                (i32::MAX, 50, 0, -1),
                (i32::MAX, 1 << 20, 1, -1),
                (i32::MAX, 1 << 20, 0, 0),
            ] {
                let fetch = |session_id: i32, epoch: i32| FetchRequest {
                    max_wait_ms: 0,
                    min_bytes: 1,
                    max_bytes,
                    isolation_level: isolation,
                    session_id,
                    session_epoch: epoch,
                    topics: vec![FetchTopic {
                        topic: if version < 13 {
                            "t".into()
                        } else {
                            String::new()
                        },
                        topic_id: if version >= 13 { id } else { Uuid::ZERO },
                        partitions: [0, 1, 2, 7]
                            .into_iter()
                            .map(|p| FetchPartition {
                                partition: p,
                                fetch_offset: 0,
                                partition_max_bytes: partition_max,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let (a, b) = t.send(fetch(0, session_epoch), version);
                let what = format!("v{version} max {max_bytes}/{partition_max} iso {isolation}");
                assert_eq!(a.len(), 1, "{what}");
                assert_eq!(a[0], b.concat(), "{what}");
                shared += b
                    .iter()
                    .filter(|p| stored.contains(&(p.as_ptr() as usize)))
                    .count();
                if session_epoch == 0 && version >= 7 {
                    let r = decode_response_frame(ApiKey::Fetch, version, a[0].slice(4..))
                        .unwrap()
                        .1
                        .into_response::<FetchRequest>()
                        .expect("a Fetch response");
                    assert_ne!(r.session_id, 0, "{what}");
                    let (a, b) = t.send(fetch(r.session_id, 1), version);
                    assert_eq!(a.len(), 1, "{what} incremental");
                    assert_eq!(a[0], b.concat(), "{what} incremental");
                }
            }
        }
        // The large batches went out as the stored bytes themselves.
        assert!(shared >= 14 * 3, "{shared} pieces were stored batches");
    }

    #[test]
    fn fetch_pieces_reject_records_that_do_not_match_the_response() {
        let header = RequestHeader {
            request_api_key: ApiKey::Fetch.as_i16(),
            request_api_version: 12,
            ..Default::default()
        };
        let response = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![PartitionData {
                    records: Some(Bytes::new()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let too_many = wire::FetchRecords(vec![vec![], vec![]]);
        assert!(wire::encode_fetch_pieces(&header, response.clone(), too_many).is_err());
        let mut not_empty = response.clone();
        not_empty.responses[0].partitions[0].records = Some(Bytes::from_static(b"x"));
        let one = || wire::FetchRecords(vec![vec![]]);
        assert!(wire::encode_fetch_pieces(&header, not_empty, one()).is_err());
        let pieces = wire::encode_fetch_pieces(&header, response.clone(), one()).unwrap();
        let mut want = Vec::new();
        let frame = wire::encode_response_frame(
            &header,
            &ResponseBody::Fetch(response),
            &Default::default(),
        )
        .unwrap();
        want.extend_from_slice(&frame);
        assert_eq!(pieces.concat(), want);
    }
}
