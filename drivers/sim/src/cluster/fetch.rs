//! Fetch: reads within byte limits, long polls in virtual time, isolation levels, leader
//! epoch checks, and KIP-227 fetch sessions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::codec::Uuid;
use kafkit_core::protocol::fetch::response::{
    FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafkit_core::protocol::{ErrorCode, FetchRequest, FetchResponse, RequestHeader, ResponseBody};

use super::{Cluster, ConnKey, Ctx, Outcome, Waiting};

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
        Ok((
            w.header.clone(),
            Outcome::Reply(ResponseBody::Fetch(response)),
        ))
    }

    fn fetch_response(&mut self, w: &FetchWait, reads: Vec<PartRead>) -> FetchResponse {
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
            let records = match read.records.len() {
                0 => Bytes::new(),
                1 => read.records[0].clone(),
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
                aborted_transactions: (w.isolation == 1).then(Vec::new),
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
        resp
    }
}
