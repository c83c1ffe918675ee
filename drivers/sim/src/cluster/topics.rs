//! Topics: their partitions, ids and configuration (Kafka's topic-level configs with their
//! defaults), and the name and value checks Kafka applies.

use std::collections::BTreeMap;

use kafkit_core::codec::Uuid;

use super::log::PartitionLog;

/// The type of a config value, as DescribeConfigs v3+ reports it (`ConfigType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `BOOLEAN` (1).
    Boolean = 1,
    /// `STRING` (2).
    String = 2,
    /// `INT` (3).
    Int = 3,
    /// `LONG` (5).
    Long = 5,
    /// `LIST` (7).
    List = 7,
}

/// A known topic config: name, Kafka's default and type.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// The config name.
    pub name: &'static str,
    /// Kafka's default value.
    pub default: &'static str,
    /// The value type.
    pub ty: ConfigType,
}

/// The topic configs the model knows, with Kafka's defaults.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        default: "delete",
        ty: ConfigType::List,
    },
    TopicConfigDef {
        name: "compression.type",
        default: "producer",
        ty: ConfigType::String,
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        default: "86400000",
        ty: ConfigType::Long,
    },
    TopicConfigDef {
        name: "max.message.bytes",
        default: "1048588",
        ty: ConfigType::Int,
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        default: "CreateTime",
        ty: ConfigType::String,
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        default: "1",
        ty: ConfigType::Int,
    },
    TopicConfigDef {
        name: "retention.bytes",
        default: "-1",
        ty: ConfigType::Long,
    },
    TopicConfigDef {
        name: "retention.ms",
        default: "604800000",
        ty: ConfigType::Long,
    },
    TopicConfigDef {
        name: "segment.bytes",
        default: "1073741824",
        ty: ConfigType::Int,
    },
    TopicConfigDef {
        name: "segment.ms",
        default: "604800000",
        ty: ConfigType::Long,
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        default: "false",
        ty: ConfigType::Boolean,
    },
];

/// The definition of topic config `name`, if the model knows it.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks a topic config value; the error is the message for `INVALID_CONFIG`.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    let Some(def) = topic_config_def(name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let bad = || format!("Invalid value {value} for configuration {name}");
    match def.ty {
        ConfigType::Boolean => {
            value.parse::<bool>().map_err(|_| bad())?;
        }
        ConfigType::Int => {
            let v = value.trim().parse::<i32>().map_err(|_| bad())?;
            let min = match name {
                "min.insync.replicas" => 1,
                "segment.bytes" => 14,
                _ => 0,
            };
            if v < min {
                return Err(bad());
            }
        }
        ConfigType::Long => {
            let v = value.trim().parse::<i64>().map_err(|_| bad())?;
            if v < -1 {
                return Err(bad());
            }
        }
        ConfigType::List => {
            for item in value.split(',').map(str::trim) {
                if !matches!(item, "delete" | "compact") {
                    return Err(bad());
                }
            }
        }
        ConfigType::String => {
            let ok = match name {
                "message.timestamp.type" => matches!(value, "CreateTime" | "LogAppendTime"),
                "compression.type" => matches!(
                    value,
                    "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd"
                ),
                _ => true,
            };
            if !ok {
                return Err(bad());
            }
        }
    }
    Ok(())
}

/// Checks a topic name as Kafka does; the error is the message for
/// `INVALID_TOPIC_EXCEPTION`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// A topic: id, partitions and config overrides.
#[derive(Debug)]
pub struct Topic {
    /// The topic name.
    pub name: String,
    /// The topic id (never zero).
    pub id: Uuid,
    /// Partitions by index (`0..n`).
    pub partitions: Vec<PartitionLog>,
    /// Config overrides (keys absent here take the defaults of [`TOPIC_CONFIGS`]).
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    /// The effective value of config `name` (override or default), `None` if unknown.
    pub fn config(&self, name: &str) -> Option<&str> {
        self.configs
            .get(name)
            .map(String::as_str)
            .or_else(|| topic_config_def(name).map(|d| d.default))
    }

    /// An integer config, falling back to its default when unparsable.
    pub fn config_i64(&self, name: &str) -> i64 {
        let default = topic_config_def(name)
            .and_then(|d| d.default.parse().ok())
            .unwrap_or(-1);
        self.config(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// Whether the topic stamps batches with the broker's time (`LogAppendTime`).
    pub fn log_append_time(&self) -> bool {
        self.config("message.timestamp.type") == Some("LogAppendTime")
    }

    /// The partition `index`, if it exists.
    pub fn partition(&self, index: i32) -> Option<&PartitionLog> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// The partition `index` for changes, if it exists.
    pub fn partition_mut(&mut self, index: i32) -> Option<&mut PartitionLog> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get_mut(i))
    }
}
