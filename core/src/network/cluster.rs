//! The client's view of the cluster: brokers, controller, topics, partitions and their
//! leaders, leader epochs, replicas and ISR, as the latest Metadata response described them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::Uuid;
use crate::protocol::{ErrorCode, MetadataResponse};

use super::NodeId;

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub node_id: NodeId,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Rack, if the broker has one.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port` (`[host]:port` for an IPv6 address).
    pub fn address(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `host:port`, an IPv6 address bracketed (`[::1]:9092`) so that the port stays apart.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One partition's replica state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader node id, or -1 when there is none.
    pub leader: NodeId,
    /// Leader epoch (-1 if the broker does not report it).
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<NodeId>,
    /// In-sync replica node ids.
    pub isr: Vec<NodeId>,
    /// Offline replica node ids.
    pub offline_replicas: Vec<NodeId>,
    /// The partition-level error code (LEADER_NOT_AVAILABLE while electing, ...).
    pub error: ErrorCode,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id (zero when the broker predates topic ids).
    pub topic_id: Uuid,
    /// Whether the topic is internal (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// Partitions, by index.
    pub partitions: Vec<PartitionInfo>,
    /// The topic-level error code (UNKNOWN_TOPIC_OR_PARTITION, ...).
    pub error: ErrorCode,
}

/// An immutable snapshot of cluster metadata; cheap to clone and share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// Controller node id, or -1.
    pub controller: NodeId,
    /// Brokers, by node id.
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    /// Topics, by name. Only topics the client asked about (or all, after a full refresh).
    pub topics: BTreeMap<String, Arc<TopicInfo>>,
}

impl ClusterView {
    /// Merges a Metadata response. Brokers and controller are replaced; topics in the response
    /// replace their old entries and, when `full` (the request asked for all topics), topics
    /// absent from it are dropped.
    pub fn update(&mut self, resp: &MetadataResponse, full: bool) {
        self.cluster_id = resp.cluster_id.clone();
        self.controller = resp.controller_id;
        self.brokers = resp
            .brokers
            .iter()
            .filter(|b| (0..=u16::MAX as i32).contains(&b.port))
            .map(|b| {
                (
                    b.node_id,
                    BrokerInfo {
                        node_id: b.node_id,
                        host: b.host.clone(),
                        port: b.port as u16,
                        rack: b.rack.clone(),
                    },
                )
            })
            .collect();
        if full {
            self.topics.clear();
        }
        for t in &resp.topics {
            let Some(name) = t.name.clone() else { continue };
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    offline_replicas: p.offline_replicas.clone(),
                    error: p.error(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let info = TopicInfo {
                name: name.clone(),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions,
                error: t.error(),
            };
            self.topics.insert(name, Arc::new(info));
        }
    }

    /// The topic, if known and not in error.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicInfo>> {
        self.topics.get(name)
    }

    /// The partition's leader, if known and available.
    pub fn leader_for(&self, topic: &str, partition: i32) -> Option<NodeId> {
        let t = self.topics.get(topic)?;
        let p = t.partitions.iter().find(|p| p.partition == partition)?;
        (p.leader >= 0 && self.brokers.contains_key(&p.leader)).then_some(p.leader)
    }

    /// Number of partitions of a topic, if known.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.topics
            .get(topic)
            .filter(|t| t.error.is_ok())
            .map(|t| t.partitions.len())
    }
}
