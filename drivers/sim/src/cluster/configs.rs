//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topic and broker resources.

use std::collections::{BTreeMap, HashSet};

use kafkit_core::protocol::describe_configs::response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafkit_core::protocol::{
    alter_configs, incremental_alter_configs, AlterConfigsRequest, AlterConfigsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, ErrorCode, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ResponseBody,
};

use super::admin::ItemError;
use super::topics::{topic_config_def, validate_topic_config, ConfigType, TOPIC_CONFIGS};
use super::{Cluster, Ctx, Outcome};

/// `ResourceType` of a topic.
const TOPIC: i8 = 2;
/// `ResourceType` of a broker.
const BROKER: i8 = 4;

/// `ConfigSource` values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Broker configs the model reports: name, type, read-only.
const BROKER_CONFIGS: &[(&str, ConfigType, bool)] = &[
    ("auto.create.topics.enable", ConfigType::Boolean, true),
    ("broker.id", ConfigType::Int, true),
    ("compression.type", ConfigType::String, false),
    ("default.replication.factor", ConfigType::Int, true),
    ("group.initial.rebalance.delay.ms", ConfigType::Int, true),
    ("group.max.session.timeout.ms", ConfigType::Int, true),
    ("group.min.session.timeout.ms", ConfigType::Int, true),
    ("log.message.timestamp.type", ConfigType::String, false),
    ("log.retention.bytes", ConfigType::Long, false),
    ("log.retention.ms", ConfigType::Long, false),
    ("log.segment.bytes", ConfigType::Int, false),
    ("message.max.bytes", ConfigType::Int, false),
    ("min.insync.replicas", ConfigType::Int, false),
    ("num.partitions", ConfigType::Int, false),
];

/// The change one IncrementalAlterConfigs entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    Delete,
    Append,
    Subtract,
}

impl Cluster {
    /// The static value of broker config `name` on `broker`.
    fn broker_static(&self, broker: i32, name: &str) -> Option<String> {
        let c = &self.config;
        Some(match name {
            "auto.create.topics.enable" => c.auto_create_topics.to_string(),
            "broker.id" => broker.to_string(),
            "compression.type" => "producer".into(),
            "default.replication.factor" => c.replication_factor.to_string(),
            "group.initial.rebalance.delay.ms" => c.group_initial_rebalance_delay_ms.to_string(),
            "group.max.session.timeout.ms" => c.group_max_session_timeout_ms.to_string(),
            "group.min.session.timeout.ms" => c.group_min_session_timeout_ms.to_string(),
            "log.message.timestamp.type" => "CreateTime".into(),
            "log.retention.bytes" => c.retention_bytes.to_string(),
            "log.retention.ms" => "604800000".into(),
            "log.segment.bytes" => "1073741824".into(),
            "message.max.bytes" => "1048588".into(),
            "min.insync.replicas" => "1".into(),
            "num.partitions" => c.default_partitions.to_string(),
            _ => return None,
        })
    }

    /// Resolves a broker resource name: `""` is the cluster-wide default (-1), otherwise it
    /// must be the id of the broker handling the request.
    fn broker_resource(&self, ctx: &Ctx, name: &str) -> Result<i32, ItemError> {
        if name.is_empty() {
            return Ok(-1);
        }
        match name.parse::<i32>() {
            Ok(id) if id == ctx.broker => Ok(id),
            _ => Err((
                ErrorCode::INVALID_REQUEST,
                format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    ctx.broker
                ),
            )),
        }
    }

    fn describe_topic(
        &self,
        name: &str,
        keys: Option<&[String]>,
        v: i16,
        synonyms: bool,
    ) -> Result<Vec<DescribeConfigsResourceResult>, ItemError> {
        let t = self.topics.get(name).ok_or_else(|| {
            (
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        Ok(TOPIC_CONFIGS
            .iter()
            .filter(|d| keys.is_none_or(|k| k.iter().any(|x| x == d.name)))
            .map(|d| {
                let set = t.configs.get(d.name);
                let value = set.map_or(d.default, String::as_str).to_owned();
                let mut syn = Vec::new();
                if synonyms && v >= 1 {
                    if let Some(s) = set {
                        syn.push(DescribeConfigsSynonym {
                            name: d.name.into(),
                            value: Some(s.clone()),
                            source: DYNAMIC_TOPIC_CONFIG,
                            ..Default::default()
                        });
                    }
                    syn.push(DescribeConfigsSynonym {
                        name: d.name.into(),
                        value: Some(d.default.into()),
                        source: DEFAULT_CONFIG,
                        ..Default::default()
                    });
                }
                DescribeConfigsResourceResult {
                    name: d.name.into(),
                    value: Some(value),
                    read_only: false,
                    is_default: v == 0 && set.is_none(),
                    config_source: if v >= 1 {
                        if set.is_some() {
                            DYNAMIC_TOPIC_CONFIG
                        } else {
                            DEFAULT_CONFIG
                        }
                    } else {
                        -1
                    },
                    is_sensitive: false,
                    synonyms: syn,
                    config_type: if v >= 3 { d.ty as i8 } else { 0 },
                    documentation: None,
                    ..Default::default()
                }
            })
            .collect())
    }

    fn describe_broker(
        &self,
        ctx: &Ctx,
        name: &str,
        keys: Option<&[String]>,
        v: i16,
    ) -> Result<Vec<DescribeConfigsResourceResult>, ItemError> {
        let id = self.broker_resource(ctx, name)?;
        let default_overrides = self.broker_configs.get(&-1);
        let own = self.broker_configs.get(&id).filter(|_| id >= 0);
        Ok(BROKER_CONFIGS
            .iter()
            .filter(|(n, _, _)| keys.is_none_or(|k| k.iter().any(|x| x == n)))
            .filter_map(|&(n, ty, read_only)| {
                let (value, source) = if let Some(x) = own.and_then(|m| m.get(n)) {
                    (x.clone(), DYNAMIC_BROKER_CONFIG)
                } else if let Some(x) = default_overrides.and_then(|m| m.get(n)) {
                    (x.clone(), DYNAMIC_DEFAULT_BROKER_CONFIG)
                } else if id < 0 {
                    // The cluster-wide resource lists only dynamic defaults.
                    return None;
                } else {
                    (self.broker_static(id, n)?, STATIC_BROKER_CONFIG)
                };
                Some(DescribeConfigsResourceResult {
                    name: n.into(),
                    value: Some(value),
                    read_only,
                    is_default: false,
                    config_source: if v >= 1 { source } else { -1 },
                    is_sensitive: false,
                    config_type: if v >= 3 { ty as i8 } else { 0 },
                    documentation: None,
                    ..Default::default()
                })
            })
            .collect())
    }

    pub(super) fn handle_describe_configs(
        &mut self,
        ctx: &Ctx,
        req: DescribeConfigsRequest,
    ) -> Outcome {
        let v = ctx.version;
        let mut results = Vec::new();
        for r in req.resources {
            let keys = r.configuration_keys.as_deref();
            let described = match r.resource_type {
                TOPIC => self.describe_topic(&r.resource_name, keys, v, req.include_synonyms),
                BROKER => self.describe_broker(ctx, &r.resource_name, keys, v),
                other => Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Unsupported resource type {other}"),
                )),
            };
            let mut res = DescribeConfigsResult {
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                error_message: None,
                ..Default::default()
            };
            match described {
                Ok(configs) => res.configs = configs,
                Err((code, msg)) => {
                    res.error_code = code.code();
                    res.error_message = Some(msg);
                }
            }
            results.push(res);
        }
        Outcome::Reply(ResponseBody::DescribeConfigs(DescribeConfigsResponse {
            results,
            ..Default::default()
        }))
    }

    /// Checks a broker config change.
    fn validate_broker_config(name: &str, value: Option<&str>) -> Result<(), ItemError> {
        let Some(&(_, ty, read_only)) = BROKER_CONFIGS.iter().find(|(n, _, _)| *n == name) else {
            return Err((
                ErrorCode::INVALID_CONFIG,
                format!("Unknown broker config {name}"),
            ));
        };
        if read_only {
            return Err((
                ErrorCode::INVALID_CONFIG,
                format!("Cannot update these configs dynamically: Set({name})"),
            ));
        }
        if let Some(value) = value {
            let ok = match ty {
                ConfigType::Int => value.trim().parse::<i32>().is_ok(),
                ConfigType::Long => value.trim().parse::<i64>().is_ok(),
                ConfigType::Boolean => value.parse::<bool>().is_ok(),
                _ => true,
            };
            if !ok {
                return Err((
                    ErrorCode::INVALID_CONFIG,
                    format!("Invalid value {value} for configuration {name}"),
                ));
            }
        }
        Ok(())
    }

    /// Applies (or with `validate_only` only checks) a full set of changes to a resource:
    /// `changes` maps names to the new value (`None` removes the override).
    fn apply_config_changes(
        &mut self,
        ctx: &Ctx,
        resource_type: i8,
        name: &str,
        changes: Vec<(String, Op, Option<String>)>,
        replace_all: bool,
        validate_only: bool,
    ) -> Result<(), ItemError> {
        let mut seen = HashSet::new();
        for (k, _, _) in &changes {
            if !seen.insert(k.clone()) {
                return Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Error due to duplicate config keys: {k}"),
                ));
            }
        }
        match resource_type {
            TOPIC => {
                let t = self.topics.get(name).ok_or_else(|| {
                    (
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("Topic '{name}' does not exist."),
                    )
                })?;
                let mut configs = if replace_all {
                    BTreeMap::new()
                } else {
                    t.configs.clone()
                };
                for (k, op, value) in changes {
                    let Some(def) = topic_config_def(&k) else {
                        return Err((
                            ErrorCode::INVALID_CONFIG,
                            format!("Unknown topic config name: {k}"),
                        ));
                    };
                    let current = configs
                        .get(&k)
                        .cloned()
                        .unwrap_or_else(|| def.default.to_owned());
                    let list_op = |what: &str| {
                        (
                            ErrorCode::INVALID_CONFIG,
                            format!("Config value {what} is not allowed for config key: {k}"),
                        )
                    };
                    match op {
                        Op::Set => {
                            let Some(v) = value else {
                                return Err((
                                    ErrorCode::INVALID_REQUEST,
                                    format!("Null value not supported for : {k}"),
                                ));
                            };
                            configs.insert(k, v);
                        }
                        Op::Delete => {
                            configs.remove(&k);
                        }
                        Op::Append | Op::Subtract => {
                            if def.ty != ConfigType::List {
                                return Err(list_op(if op == Op::Append {
                                    "append"
                                } else {
                                    "subtract"
                                }));
                            }
                            let mut items: Vec<String> = current
                                .split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect();
                            for x in value.unwrap_or_default().split(',').map(str::trim) {
                                if x.is_empty() {
                                    continue;
                                }
                                if op == Op::Append {
                                    if !items.iter().any(|i| i == x) {
                                        items.push(x.to_owned());
                                    }
                                } else {
                                    items.retain(|i| i != x);
                                }
                            }
                            configs.insert(k, items.join(","));
                        }
                    }
                }
                for (k, v) in &configs {
                    validate_topic_config(k, v).map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
                }
                if !validate_only {
                    if let Some(t) = self.topics.get_mut(name) {
                        t.configs = configs;
                    }
                }
                Ok(())
            }
            BROKER => {
                let id = self.broker_resource(ctx, name)?;
                let mut configs = if replace_all {
                    BTreeMap::new()
                } else {
                    self.broker_configs.get(&id).cloned().unwrap_or_default()
                };
                for (k, op, value) in changes {
                    Self::validate_broker_config(&k, value.as_deref())?;
                    match (op, value) {
                        (Op::Set, Some(v)) => {
                            configs.insert(k, v);
                        }
                        (Op::Delete, _) | (Op::Set, None) => {
                            configs.remove(&k);
                        }
                        _ => {
                            return Err((
                                ErrorCode::INVALID_CONFIG,
                                format!(
                                "Config value append/subtract is not allowed for config key: {k}"
                            ),
                            ))
                        }
                    }
                }
                if !validate_only {
                    self.broker_configs.insert(id, configs);
                }
                Ok(())
            }
            other => Err((
                ErrorCode::INVALID_REQUEST,
                format!("Unsupported resource type {other}"),
            )),
        }
    }

    pub(super) fn handle_alter_configs(&mut self, ctx: &Ctx, req: AlterConfigsRequest) -> Outcome {
        let mut responses = Vec::new();
        for r in req.resources {
            let changes = r
                .configs
                .into_iter()
                .map(|c| (c.name, Op::Set, c.value))
                .collect();
            let result = self.apply_config_changes(
                ctx,
                r.resource_type,
                &r.resource_name,
                changes,
                true,
                req.validate_only,
            );
            let (code, msg) = match result {
                Ok(()) => (ErrorCode::NONE, None),
                Err((c, m)) => (c, Some(m)),
            };
            responses.push(alter_configs::response::AlterConfigsResourceResponse {
                error_code: code.code(),
                error_message: msg,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            });
        }
        Outcome::Reply(ResponseBody::AlterConfigs(AlterConfigsResponse {
            responses,
            ..Default::default()
        }))
    }

    pub(super) fn handle_incremental_alter_configs(
        &mut self,
        ctx: &Ctx,
        req: IncrementalAlterConfigsRequest,
    ) -> Outcome {
        let mut responses = Vec::new();
        for r in req.resources {
            let mut bad_op = None;
            let changes = r
                .configs
                .into_iter()
                .map(|c| {
                    let op = match c.config_operation {
                        0 => Op::Set,
                        1 => Op::Delete,
                        2 => Op::Append,
                        3 => Op::Subtract,
                        other => {
                            bad_op = Some(other);
                            Op::Set
                        }
                    };
                    (c.name, op, c.value)
                })
                .collect();
            let result = match bad_op {
                Some(op) => Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Unknown config operation {op}"),
                )),
                None => self.apply_config_changes(
                    ctx,
                    r.resource_type,
                    &r.resource_name,
                    changes,
                    false,
                    req.validate_only,
                ),
            };
            let (code, msg) = match result {
                Ok(()) => (ErrorCode::NONE, None),
                Err((c, m)) => (c, Some(m)),
            };
            responses.push(
                incremental_alter_configs::response::AlterConfigsResourceResponse {
                    error_code: code.code(),
                    error_message: msg,
                    resource_type: r.resource_type,
                    resource_name: r.resource_name,
                    ..Default::default()
                },
            );
        }
        Outcome::Reply(ResponseBody::IncrementalAlterConfigs(
            IncrementalAlterConfigsResponse {
                responses,
                ..Default::default()
            },
        ))
    }
}
