//! Metadata (with topic auto-creation) and DescribeCluster.

use kafkit_core::codec::Uuid;
use kafkit_core::protocol::describe_cluster::response::DescribeClusterBroker;
use kafkit_core::protocol::metadata::response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkit_core::protocol::{
    DescribeClusterRequest, DescribeClusterResponse, ErrorCode, MetadataRequest, MetadataResponse,
    ResponseBody,
};

use super::topics::validate_topic_name;
use super::{Cluster, Ctx, Outcome};

impl Cluster {
    /// The controller: the lowest live node id (-1 if every broker is down).
    pub(super) fn controller_id(&self) -> i32 {
        self.brokers.iter().find(|b| b.alive).map_or(-1, |b| b.id)
    }

    fn topic_metadata(&self, name: &str) -> MetadataResponseTopic {
        let Some(t) = self.topics.get(name) else {
            return MetadataResponseTopic {
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                name: Some(name.to_owned()),
                ..Default::default()
            };
        };
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let leader_ok = p.leader >= 0 && self.is_alive(p.leader);
                MetadataResponsePartition {
                    error_code: if leader_ok {
                        ErrorCode::NONE.code()
                    } else {
                        ErrorCode::LEADER_NOT_AVAILABLE.code()
                    },
                    partition_index: p.index,
                    leader_id: if leader_ok { p.leader } else { -1 },
                    leader_epoch: p.leader_epoch,
                    replica_nodes: p.replicas.clone(),
                    isr_nodes: p.isr.clone(),
                    offline_replicas: p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|&r| !self.is_alive(r))
                        .collect(),
                    ..Default::default()
                }
            })
            .collect();
        MetadataResponseTopic {
            error_code: ErrorCode::NONE.code(),
            name: Some(t.name.clone()),
            topic_id: t.id,
            is_internal: false,
            partitions,
            ..Default::default()
        }
    }

    fn unknown_topic_id(id: Uuid) -> MetadataResponseTopic {
        MetadataResponseTopic {
            error_code: ErrorCode::UNKNOWN_TOPIC_ID.code(),
            name: None,
            topic_id: id,
            ..Default::default()
        }
    }

    pub(super) fn handle_metadata(&mut self, ctx: &Ctx, req: MetadataRequest) -> Outcome {
        let v = ctx.version;
        let allow_auto = (v < 4 || req.allow_auto_topic_creation) && self.config.auto_create_topics;
        // Asked for, a topic's operations are all it supports (READ..ALTER_CONFIGS but
        // CLUSTER_ACTION), as Kafka answers without an authorizer; i32::MIN is "not asked".
        let topic_ops = if req.include_topic_authorized_operations {
            0xDF8
        } else {
            i32::MIN
        };
        let requested = match req.topics {
            None => None,
            Some(t) if t.is_empty() && v == 0 => None,
            Some(t) => Some(t),
        };
        let mut topics = Vec::new();
        match requested {
            None => {
                for name in self.topics.keys() {
                    topics.push(self.topic_metadata(name));
                }
            }
            Some(list) => {
                for t in list {
                    let name = t.name.filter(|n| !n.is_empty() || t.topic_id == Uuid::ZERO);
                    let Some(name) = name else {
                        match self.topic_names.get(&t.topic_id) {
                            Some(n) => topics.push(self.topic_metadata(&n.clone())),
                            None => topics.push(Self::unknown_topic_id(t.topic_id)),
                        }
                        continue;
                    };
                    if self.topics.contains_key(&name) {
                        topics.push(self.topic_metadata(&name));
                        continue;
                    }
                    if let Err(msg) = validate_topic_name(&name) {
                        tracing::debug!(%name, %msg, "metadata: invalid topic name");
                        topics.push(MetadataResponseTopic {
                            error_code: ErrorCode::INVALID_TOPIC_EXCEPTION.code(),
                            name: Some(name),
                            ..Default::default()
                        });
                        continue;
                    }
                    if allow_auto {
                        let live = self.brokers.iter().filter(|b| b.alive).count();
                        let rf = (self.config.replication_factor.max(1) as usize).min(live.max(1));
                        let partitions = self.config.default_partitions.max(1);
                        if self
                            .create_topic(&name, partitions, rf as i16, None, Default::default())
                            .is_ok()
                        {
                            topics.push(self.topic_metadata(&name));
                            continue;
                        }
                    }
                    topics.push(self.topic_metadata(&name));
                }
            }
        }
        let brokers = self
            .brokers
            .iter()
            .filter(|b| b.alive)
            .map(|b| MetadataResponseBroker {
                node_id: b.id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
                ..Default::default()
            })
            .collect();
        topics
            .iter_mut()
            .filter(|t| t.error_code == 0)
            .for_each(|t| t.topic_authorized_operations = topic_ops);
        Outcome::Reply(ResponseBody::Metadata(MetadataResponse {
            brokers,
            cluster_id: Some(self.config.cluster_id.clone()),
            controller_id: self.controller_id(),
            topics,
            // The cluster's (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE/ALTER_CONFIGS,
            // IDEMPOTENT_WRITE), likewise.
            cluster_authorized_operations: if req.include_cluster_authorized_operations {
                0x1FA0
            } else {
                i32::MIN
            },
            ..Default::default()
        }))
    }

    pub(super) fn handle_describe_cluster(
        &mut self,
        _ctx: &Ctx,
        req: DescribeClusterRequest,
    ) -> Outcome {
        let mut resp = DescribeClusterResponse {
            endpoint_type: req.endpoint_type,
            cluster_id: self.config.cluster_id.clone(),
            controller_id: self.controller_id(),
            ..Default::default()
        };
        if req.endpoint_type != 1 {
            resp.error_code = ErrorCode::MISMATCHED_ENDPOINT_TYPE.code();
            resp.error_message = Some("The request was sent to a broker, not a controller".into());
        } else {
            resp.brokers = self
                .brokers
                .iter()
                .filter(|b| b.alive)
                .map(|b| DescribeClusterBroker {
                    broker_id: b.id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                    ..Default::default()
                })
                .collect();
        }
        Outcome::Reply(ResponseBody::DescribeCluster(resp))
    }
}
