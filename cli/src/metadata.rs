//! `kafkit metadata`: cluster id, controller, brokers, and topic partitions.

use kafkit_blocking::LowLevelClient;
use kafkit_core::codec::Uuid;
use kafkit_core::config::CommonConfig;
use kafkit_core::network::{ClusterView, PartitionInfo, TopicInfo};
use kafkit_core::protocol::ErrorCode;
use serde_json::{json, Value};

use crate::args::MetadataArgs;
use crate::error::{self, CliError};
use crate::output::{id_list, print_json, Output};

/// Runs the command.
pub fn run(config: &CommonConfig, args: &MetadataArgs) -> Result<(), CliError> {
    let client = LowLevelClient::start(config)?;
    let topics = (!args.topics.is_empty()).then(|| args.topics.clone());
    let view = client.metadata(topics).map_err(|e| error::net(e, config))?;
    if args.output.json {
        print_json(&to_json(&view))?;
    } else {
        let mut out = Output::default();
        to_text(&view, &mut out);
        out.print()?;
    }
    topic_errors(&view, &args.topics)
}

/// A failure naming every topic asked for (`-t`) that the answer has an error for, or leaves
/// out: the view is printed either way, but the exit status says it was not all there.
fn topic_errors(view: &ClusterView, asked: &[String]) -> Result<(), CliError> {
    let failed: Vec<String> = asked
        .iter()
        .filter_map(|name| match view.topics.get(name.as_str()) {
            Some(t) if t.error.is_err() => Some(format!("`{name}`: {}", t.error.name())),
            Some(_) => None,
            None => Some(format!("`{name}`: not in the broker's answer")),
        })
        .collect();
    match failed.as_slice() {
        [] => Ok(()),
        [one] => Err(CliError::Failed(format!("topic {one}"))),
        many => Err(CliError::Failed(format!("topics {}", many.join(", ")))),
    }
}

fn error_name(code: ErrorCode) -> Option<&'static str> {
    code.is_err().then(|| code.name())
}

fn topic_id(id: Uuid) -> Option<String> {
    (id != Uuid::ZERO).then(|| id.to_string())
}

/// The view as one JSON object.
pub fn to_json(view: &ClusterView) -> Value {
    let brokers: Vec<Value> = view
        .brokers
        .values()
        .map(|b| {
            json!({
                "id": b.node_id,
                "host": b.host,
                "port": b.port,
                "address": b.address(),
                "rack": b.rack,
            })
        })
        .collect();
    let topics: Vec<Value> = view.topics.values().map(|t| topic_json(t)).collect();
    json!({
        "cluster_id": view.cluster_id,
        "controller": (view.controller >= 0).then_some(view.controller),
        "brokers": brokers,
        "topics": topics,
    })
}

fn topic_json(t: &TopicInfo) -> Value {
    let partitions: Vec<Value> = t.partitions.iter().map(partition_json).collect();
    json!({
        "name": t.name,
        "topic_id": topic_id(t.topic_id),
        "internal": t.is_internal,
        "error": error_name(t.error),
        "error_code": t.error.code(),
        "partitions": partitions,
    })
}

fn partition_json(p: &PartitionInfo) -> Value {
    json!({
        "partition": p.partition,
        "leader": (p.leader >= 0).then_some(p.leader),
        "leader_epoch": (p.leader_epoch >= 0).then_some(p.leader_epoch),
        "replicas": p.replicas,
        "isr": p.isr,
        "offline_replicas": p.offline_replicas,
        "error": error_name(p.error),
        "error_code": p.error.code(),
    })
}

/// The view as text.
pub fn to_text(view: &ClusterView, out: &mut Output) {
    out.line(format!(
        "Cluster id:  {}",
        view.cluster_id.as_deref().unwrap_or("(none)")
    ));
    let controller = if view.controller >= 0 {
        match view.brokers.get(&view.controller) {
            Some(b) => format!("{} ({})", view.controller, b.address()),
            None => view.controller.to_string(),
        }
    } else {
        "(none)".to_owned()
    };
    out.line(format!("Controller:  {controller}"));
    out.line("");
    out.line(format!("Brokers ({}):", view.brokers.len()));
    let rows: Vec<Vec<String>> = view
        .brokers
        .values()
        .map(|b| {
            vec![
                b.node_id.to_string(),
                b.address(),
                b.rack.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    out.table(2, &["ID", "ADDRESS", "RACK"], &rows, &[0]);
    out.line("");
    out.line(format!("Topics ({}):", view.topics.len()));
    for t in view.topics.values() {
        let mut head = format!("  {}", t.name);
        if let Some(id) = topic_id(t.topic_id) {
            head.push_str(&format!("  id {id}"));
        }
        if t.is_internal {
            head.push_str("  internal");
        }
        head.push_str(&format!("  {} partitions", t.partitions.len()));
        if t.error.is_err() {
            head.push_str(&format!("  error {}", t.error));
        }
        out.line(head);
        if t.partitions.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = t
            .partitions
            .iter()
            .map(|p| {
                vec![
                    p.partition.to_string(),
                    if p.leader >= 0 {
                        p.leader.to_string()
                    } else {
                        "none".to_owned()
                    },
                    if p.leader_epoch >= 0 {
                        p.leader_epoch.to_string()
                    } else {
                        "-".to_owned()
                    },
                    id_list(&p.replicas),
                    id_list(&p.isr),
                    id_list(&p.offline_replicas),
                    if p.error.is_err() {
                        p.error.to_string()
                    } else {
                        "-".to_owned()
                    },
                ]
            })
            .collect();
        out.table(
            4,
            &[
                "PARTITION",
                "LEADER",
                "EPOCH",
                "REPLICAS",
                "ISR",
                "OFFLINE",
                "ERROR",
            ],
            &rows,
            &[0, 1, 2],
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kafkit_core::network::BrokerInfo;

    use super::*;

    fn view() -> ClusterView {
        let mut view = ClusterView {
            cluster_id: Some("abc".into()),
            controller: 1,
            ..Default::default()
        };
        view.brokers.insert(
            1,
            BrokerInfo {
                node_id: 1,
                host: "k1".into(),
                port: 9092,
                rack: Some("r1".into()),
            },
        );
        view.topics.insert(
            "t".into(),
            Arc::new(TopicInfo {
                name: "t".into(),
                topic_id: Uuid::ZERO,
                is_internal: false,
                partitions: vec![PartitionInfo {
                    partition: 0,
                    leader: 1,
                    leader_epoch: 4,
                    replicas: vec![1],
                    isr: vec![1],
                    offline_replicas: vec![],
                    error: ErrorCode(0),
                }],
                error: ErrorCode(0),
            }),
        );
        view.topics.insert(
            "missing".into(),
            Arc::new(TopicInfo {
                name: "missing".into(),
                topic_id: Uuid::ZERO,
                is_internal: false,
                partitions: vec![],
                error: ErrorCode(3),
            }),
        );
        view
    }

    #[test]
    fn json_shape() {
        let v = to_json(&view());
        assert_eq!(v["cluster_id"], "abc");
        assert_eq!(v["controller"], 1);
        assert_eq!(v["brokers"][0]["address"], "k1:9092");
        assert_eq!(v["brokers"][0]["rack"], "r1");
        assert_eq!(v["topics"][0]["name"], "missing");
        assert_eq!(v["topics"][0]["error"], "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(v["topics"][1]["error"], Value::Null);
        assert_eq!(v["topics"][1]["topic_id"], Value::Null);
        assert_eq!(v["topics"][1]["partitions"][0]["leader_epoch"], 4);
    }

    #[test]
    fn text_lists_everything() {
        let mut out = Output::default();
        to_text(&view(), &mut out);
        let mut text = Vec::new();
        out.write_to(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("Controller:  1 (k1:9092)"), "{text}");
        assert!(
            text.contains("missing  0 partitions  error UNKNOWN_TOPIC_OR_PARTITION (3)"),
            "{text}"
        );
        assert!(text.contains("k1:9092  r1"), "{text}");
    }
}
