//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, and the replica
//! placement they share.

use std::collections::{BTreeMap, HashMap};

use kafkit_core::codec::Uuid;
use kafkit_core::protocol::create_partitions::response::CreatePartitionsTopicResult;
use kafkit_core::protocol::create_topics::response::{CreatableTopicConfigs, CreatableTopicResult};
use kafkit_core::protocol::delete_topics::response::DeletableTopicResult;
use kafkit_core::protocol::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, ErrorCode, ResponseBody,
};

use super::log::PartitionLog;
use super::topics::{validate_topic_config, validate_topic_name, Topic, TOPIC_CONFIGS};
use super::{Cluster, Ctx, Outcome};

/// A per-item failure: code and message.
pub(super) type ItemError = (ErrorCode, String);

/// A checked new topic: partitions, replication factor, explicit assignment.
type NewTopicPlan = (i32, i16, Option<Vec<Vec<i32>>>);

/// Most partitions one topic may have in the model (a bound on memory a request can make
/// the cluster allocate; Kafka has no such limit).
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

fn too_many_partitions(n: i32) -> ItemError {
    (
        ErrorCode::INVALID_PARTITIONS,
        format!(
            "{n} partitions exceed the simulated cluster's limit of {MAX_PARTITIONS_PER_TOPIC}"
        ),
    )
}

impl Cluster {
    fn live_broker_ids(&self) -> Vec<i32> {
        self.brokers
            .iter()
            .filter(|b| b.alive)
            .map(|b| b.id)
            .collect()
    }

    /// Kafka's rack-unaware placement: a random start broker and shift, replicas spread
    /// round-robin. Partitions `first..first + count`.
    fn assign_replicas(&mut self, first: i32, count: i32, rf: usize) -> Vec<Vec<i32>> {
        let brokers = self.live_broker_ids();
        let n = brokers.len();
        if n == 0 {
            return vec![Vec::new(); count.max(0) as usize];
        }
        let start = self.rng.below(n as u64) as usize;
        let mut shift = self.rng.below(n as u64) as usize;
        let mut out = Vec::new();
        for p in first..first + count {
            let p = p as usize;
            if p > 0 && p.is_multiple_of(n) {
                shift += 1;
            }
            let lead = (p + start) % n;
            let mut replicas = vec![brokers[lead]];
            for j in 0..rf.saturating_sub(1) {
                let step = 1 + (shift + j) % (n - 1).max(1);
                replicas.push(brokers[(lead + step) % n]);
            }
            replicas.dedup();
            out.push(replicas);
        }
        out
    }

    fn new_topic_id(&mut self) -> Uuid {
        loop {
            let v = ((self.rng.next_u64() as u128) << 64) | self.rng.next_u64() as u128;
            let id = Uuid::from_u128(v);
            if id != Uuid::ZERO && !self.topic_names.contains_key(&id) {
                return id;
            }
        }
    }

    /// Creates a topic (checks done by the caller, except existence). Returns its id.
    pub(super) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        rf: i16,
        assignments: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
    ) -> Result<Uuid, ItemError> {
        if self.topics.contains_key(name) {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{name}' already exists."),
            ));
        }
        let assignment =
            assignments.unwrap_or_else(|| self.assign_replicas(0, partitions, rf.max(1) as usize));
        let id = self.new_topic_id();
        let partitions = assignment
            .into_iter()
            .enumerate()
            .map(|(i, replicas)| self.new_partition(i as i32, replicas))
            .collect();
        self.topics.insert(
            name.to_owned(),
            Topic {
                name: name.to_owned(),
                id,
                partitions,
                configs,
            },
        );
        self.topic_names.insert(id, name.to_owned());
        Ok(id)
    }

    /// A new partition whose leader is its first live replica.
    fn new_partition(&self, index: i32, replicas: Vec<i32>) -> PartitionLog {
        let mut p = PartitionLog::new(index, replicas);
        p.isr.retain(|&r| self.is_alive(r));
        if !self.is_alive(p.leader) {
            let next = p.isr.first().copied().unwrap_or(-1);
            p.leader = next;
        }
        p
    }

    /// Checks a requested topic and resolves defaults: `(partitions, rf, assignment)`.
    fn check_new_topic(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        assignments: &[(i32, Vec<i32>)],
    ) -> Result<NewTopicPlan, ItemError> {
        validate_topic_name(name).map_err(|m| (ErrorCode::INVALID_TOPIC_EXCEPTION, m))?;
        if self.topics.contains_key(name) {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{name}' already exists."),
            ));
        }
        let live = self.live_broker_ids();
        if !assignments.is_empty() {
            if num_partitions != -1 || replication_factor != -1 {
                return Err((
                    ErrorCode::INVALID_REQUEST,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. \
                     Both cannot be used at the same time."
                        .into(),
                ));
            }
            let mut sorted: Vec<&(i32, Vec<i32>)> = assignments.iter().collect();
            sorted.sort_by_key(|(p, _)| *p);
            let mut out = Vec::new();
            for (i, (p, brokers)) in sorted.iter().enumerate() {
                if *p != i as i32 {
                    return Err((
                        ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                        "Partitions should be a consecutive 0-based integer sequence".into(),
                    ));
                }
                self.check_replica_list(brokers, None)?;
                out.push(brokers.clone());
            }
            let rf = out.first().map_or(0, Vec::len) as i16;
            return Ok((out.len() as i32, rf, Some(out)));
        }
        let partitions = match num_partitions {
            -1 => self.config.default_partitions,
            n if n <= 0 => {
                return Err((
                    ErrorCode::INVALID_PARTITIONS,
                    "Number of partitions was set to an invalid non-positive value.".into(),
                ))
            }
            n if n > MAX_PARTITIONS_PER_TOPIC => return Err(too_many_partitions(n)),
            n => n,
        };
        let rf = match replication_factor {
            -1 => self.config.replication_factor,
            n if n <= 0 => {
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    "Replication factor must be larger than 0, or -1 to use the default value."
                        .into(),
                ))
            }
            n => n,
        };
        if rf as usize > live.len() {
            return Err((
                ErrorCode::INVALID_REPLICATION_FACTOR,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication \
                     factor of {rf} cannot be reached because only {} broker(s) are registered.",
                    live.len()
                ),
            ));
        }
        Ok((partitions, rf, None))
    }

    fn check_replica_list(&self, brokers: &[i32], rf: Option<usize>) -> Result<(), ItemError> {
        let bad = |m: String| Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, m));
        if brokers.is_empty() {
            return bad("The replica assignment is empty".into());
        }
        if let Some(rf) = rf {
            if brokers.len() != rf {
                return bad(format!(
                    "Inconsistent replication factor: {} instead of {rf}",
                    brokers.len()
                ));
            }
        }
        let mut seen = brokers.to_vec();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != brokers.len() {
            return bad(format!("Duplicate brokers in the assignment {brokers:?}"));
        }
        if let Some(b) = brokers.iter().find(|&&b| self.broker(b).is_none()) {
            return bad(format!("Unknown broker {b} in the assignment"));
        }
        Ok(())
    }

    fn described_topic_configs(configs: &BTreeMap<String, String>) -> Vec<CreatableTopicConfigs> {
        TOPIC_CONFIGS
            .iter()
            .map(|d| {
                let set = configs.get(d.name);
                CreatableTopicConfigs {
                    name: d.name.to_owned(),
                    value: Some(set.map_or(d.default, String::as_str).to_owned()),
                    read_only: false,
                    config_source: if set.is_some() { 1 } else { 5 },
                    is_sensitive: false,
                    ..Default::default()
                }
            })
            .collect()
    }

    pub(super) fn handle_create_topics(&mut self, ctx: &Ctx, req: CreateTopicsRequest) -> Outcome {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for t in &req.topics {
            *counts.entry(t.name.as_str()).or_default() += 1;
        }
        let dups: Vec<String> = {
            let mut d: Vec<String> = counts
                .iter()
                .filter(|(_, &n)| n > 1)
                .map(|(k, _)| (*k).to_owned())
                .collect();
            d.sort();
            d
        };
        let mut results = Vec::new();
        for t in &req.topics {
            let mut r = CreatableTopicResult {
                name: t.name.clone(),
                error_message: None,
                ..Default::default()
            };
            if dups.contains(&t.name) {
                r.error_code = ErrorCode::INVALID_REQUEST.code();
                r.error_message = Some(format!(
                    "Create topics request from client `{}` contains multiple entries for the \
                     following topics: {}",
                    ctx.header.client_id.clone().unwrap_or_default(),
                    dups.join(",")
                ));
                results.push(r);
                continue;
            }
            let assignments: Vec<(i32, Vec<i32>)> = t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.clone()))
                .collect();
            let checked = self
                .check_new_topic(
                    &t.name,
                    t.num_partitions,
                    t.replication_factor,
                    &assignments,
                )
                .and_then(|ok| {
                    let mut configs = BTreeMap::new();
                    for c in &t.configs {
                        let Some(value) = &c.value else {
                            return Err((
                                ErrorCode::INVALID_CONFIG,
                                format!("Null value not supported for topic configs: {}", c.name),
                            ));
                        };
                        validate_topic_config(&c.name, value)
                            .map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
                        configs.insert(c.name.clone(), value.clone());
                    }
                    Ok((ok, configs))
                });
            match checked {
                Err((code, msg)) => {
                    r.error_code = code.code();
                    r.error_message = Some(msg);
                }
                Ok(((partitions, rf, assignment), configs)) => {
                    r.num_partitions = partitions;
                    r.replication_factor = rf;
                    r.configs = Some(Self::described_topic_configs(&configs));
                    if !req.validate_only {
                        match self.create_topic(&t.name, partitions, rf, assignment, configs) {
                            Ok(id) => r.topic_id = id,
                            Err((code, msg)) => {
                                r.error_code = code.code();
                                r.error_message = Some(msg);
                            }
                        }
                    }
                }
            }
            if ctx.version < 5 {
                r.num_partitions = -1;
                r.replication_factor = -1;
                r.configs = Some(Vec::new());
            }
            results.push(r);
        }
        Outcome::Reply(ResponseBody::CreateTopics(CreateTopicsResponse {
            topics: results,
            ..Default::default()
        }))
    }

    /// Removes a topic and everything that refers to it.
    fn delete_topic(&mut self, name: &str) {
        if let Some(t) = self.topics.remove(name) {
            self.topic_names.remove(&t.id);
            self.replication.retain(|_, r| r.topic != name);
            self.groups.topic_deleted(name);
            self.wake_all();
        }
    }

    pub(super) fn handle_delete_topics(&mut self, ctx: &Ctx, req: DeleteTopicsRequest) -> Outcome {
        let mut responses = Vec::new();
        let items: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
            req.topics
                .into_iter()
                .map(|t| (t.name, t.topic_id))
                .collect()
        } else {
            req.topic_names
                .into_iter()
                .map(|n| (Some(n), Uuid::ZERO))
                .collect()
        };
        for (name, id) in items {
            let mut r = DeletableTopicResult {
                name: name.clone(),
                topic_id: id,
                error_message: None,
                ..Default::default()
            };
            let resolved = match (&name, id) {
                (Some(n), Uuid::ZERO) => match self.topics.get(n) {
                    Some(t) => Ok((n.clone(), t.id)),
                    None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                },
                (None, id) if id != Uuid::ZERO => match self.topic_names.get(&id) {
                    Some(n) => Ok((n.clone(), id)),
                    None => Err(ErrorCode::UNKNOWN_TOPIC_ID),
                },
                _ => Err(ErrorCode::INVALID_REQUEST),
            };
            match resolved {
                Ok((n, id)) => {
                    self.delete_topic(&n);
                    r.name = Some(n);
                    if ctx.version >= 6 {
                        r.topic_id = id;
                    }
                }
                Err(code) => {
                    r.error_code = code.code();
                    if ctx.version >= 5 {
                        r.error_message = Some(match code {
                            ErrorCode::UNKNOWN_TOPIC_ID => {
                                "This server does not host this topic ID.".into()
                            }
                            ErrorCode::INVALID_REQUEST => {
                                "Exactly one of topic name and topic id must be set.".into()
                            }
                            _ => "This server does not host this topic-partition.".into(),
                        });
                    }
                }
            }
            if ctx.version < 6 && r.name.is_none() {
                r.name = Some(String::new());
            }
            responses.push(r);
        }
        Outcome::Reply(ResponseBody::DeleteTopics(DeleteTopicsResponse {
            responses,
            ..Default::default()
        }))
    }

    pub(super) fn handle_create_partitions(
        &mut self,
        _ctx: &Ctx,
        req: CreatePartitionsRequest,
    ) -> Outcome {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for t in &req.topics {
            *counts.entry(t.name.as_str()).or_default() += 1;
        }
        let dup: Vec<String> = counts
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(k, _)| (*k).to_owned())
            .collect();
        let mut results = Vec::new();
        for t in &req.topics {
            let outcome: Result<(), ItemError> = (|| {
                if dup.contains(&t.name) {
                    return Err((
                        ErrorCode::INVALID_REQUEST,
                        "Duplicate topic in request.".into(),
                    ));
                }
                let Some(topic) = self.topics.get(&t.name) else {
                    return Err((
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("The topic '{}' does not exist.", t.name),
                    ));
                };
                let current = topic.partitions.len() as i32;
                let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
                if t.count <= current {
                    return Err((
                        ErrorCode::INVALID_PARTITIONS,
                        format!(
                            "Topic currently has {current} partitions, {} would not be an \
                             increase.",
                            t.count
                        ),
                    ));
                }
                if t.count > MAX_PARTITIONS_PER_TOPIC {
                    return Err(too_many_partitions(t.count));
                }
                let added = t.count - current;
                let assignment = match &t.assignments {
                    Some(a) if !a.is_empty() => {
                        if a.len() as i32 != added {
                            return Err((
                                ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                                format!(
                                    "Increasing the number of partitions by {added} but {} \
                                     assignments provided.",
                                    a.len()
                                ),
                            ));
                        }
                        for x in a {
                            self.check_replica_list(&x.broker_ids, Some(rf))?;
                        }
                        a.iter().map(|x| x.broker_ids.clone()).collect()
                    }
                    _ => {
                        let live = self.live_broker_ids().len();
                        if rf > live {
                            return Err((
                                ErrorCode::INVALID_REPLICATION_FACTOR,
                                format!("Only {live} live brokers for replication factor {rf}"),
                            ));
                        }
                        self.assign_replicas(current, added, rf)
                    }
                };
                if req.validate_only {
                    return Ok(());
                }
                let new: Vec<PartitionLog> = assignment
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| self.new_partition(current + i as i32, r))
                    .collect();
                if let Some(topic) = self.topics.get_mut(&t.name) {
                    topic.partitions.extend(new);
                }
                Ok(())
            })();
            let (code, msg) = match outcome {
                Ok(()) => (ErrorCode::NONE, None),
                Err((c, m)) => (c, Some(m)),
            };
            results.push(CreatePartitionsTopicResult {
                name: t.name.clone(),
                error_code: code.code(),
                error_message: msg,
                ..Default::default()
            });
        }
        Outcome::Reply(ResponseBody::CreatePartitions(CreatePartitionsResponse {
            results,
            ..Default::default()
        }))
    }
}
