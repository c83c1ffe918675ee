//! DescribeConfigs and the config changes: IncrementalAlterConfigs, or on brokers without it
//! (before 2.3) the legacy AlterConfigs, which replaces a resource's whole set of overrides:
//! kafkit then describes the resource first and sends its current overrides with the
//! changes applied, as Kafka's own tools did for those brokers.

use std::collections::BTreeMap;

use crate::network::{NetError, Response, Target};
use crate::protocol::describe_configs::request::DescribeConfigsResource;
use crate::protocol::{
    alter_configs, incremental_alter_configs, AlterConfigsRequest, ApiKey, DescribeConfigsRequest,
    ErrorCode, IncrementalAlterConfigsRequest, RequestBody, ResponseBody, UnexpectedResponse,
};

use super::engine::{answer, Api, Call, Ctx, NoAnswer, Refresh, Verdict};
use super::types::{AdminError, AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource};
use super::AdminOutcome;

fn target(r: &ConfigResource) -> Target {
    match r.broker_id() {
        Some(id) => Target::Node(id),
        None => Target::Any,
    }
}

/// Groups resources by the broker their request goes to: one request per broker resource,
/// one for every topic.
fn by_target(keys: &[ConfigResource]) -> Vec<(Target, Vec<ConfigResource>)> {
    let mut out: Vec<(Target, Vec<ConfigResource>)> = Vec::new();
    for k in keys {
        let t = target(k);
        match out.iter_mut().find(|(x, _)| *x == t) {
            Some((_, v)) => v.push(k.clone()),
            None => out.push((t, vec![k.clone()])),
        }
    }
    out
}

fn describe_request(keys: &[ConfigResource]) -> RequestBody {
    RequestBody::DescribeConfigs(DescribeConfigsRequest {
        resources: keys
            .iter()
            .map(|k| DescribeConfigsResource {
                resource_type: k.resource_type.code(),
                resource_name: k.name.clone(),
                configuration_keys: None,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn key_of(resource_type: i8, name: String) -> ConfigResource {
    ConfigResource {
        resource_type: super::types::ConfigResourceType::from_code(resource_type),
        name,
    }
}

/// One resource's entries, or its error code and message.
type Described = (
    ConfigResource,
    Result<Vec<ConfigEntry>, (ErrorCode, Option<String>)>,
);

/// Per-resource entries of a DescribeConfigs response.
fn described(r: crate::protocol::DescribeConfigsResponse) -> Vec<Described> {
    r.results
        .into_iter()
        .map(|res| {
            let code = res.error();
            let key = key_of(res.resource_type, res.resource_name);
            if !code.is_ok() {
                return (key, Err((code, res.error_message)));
            }
            let entries = res
                .configs
                .into_iter()
                .map(|c| {
                    // v0 has no source: is_default says it all.
                    let source = match (c.config_source, c.is_default) {
                        (-1 | 0, true) => ConfigSource::DefaultConfig,
                        (s, _) => ConfigSource::from_code(s),
                    };
                    ConfigEntry {
                        is_default: c.is_default || source == ConfigSource::DefaultConfig,
                        name: c.name,
                        value: c.value,
                        source,
                        read_only: c.read_only,
                        is_sensitive: c.is_sensitive,
                    }
                })
                .collect();
            (key, Ok(entries))
        })
        .collect()
}

/// A resource's error code: final, as in Java (UNKNOWN_TOPIC_OR_PARTITION, retriable in
/// general, means here that the topic does not exist).
fn item_verdict<V>(api: ApiKey, code: ErrorCode, message: Option<String>) -> Verdict<V> {
    Verdict::Done(Err(AdminError::broker(api, code, message)))
}

fn spread<K: Clone, V>(keys: &[K], v: impl Fn() -> Verdict<V>) -> Vec<(K, Verdict<V>)> {
    keys.iter().map(|k| (k.clone(), v())).collect()
}

fn net_spread<K: Clone, V>(keys: &[K], e: NetError) -> Vec<(K, Verdict<V>)> {
    NoAnswer::Net(e).each(keys, Refresh::None)
}

/// DescribeConfigs.
pub(crate) struct DescribeConfigs;

impl Api for DescribeConfigs {
    type Key = ConfigResource;
    type Value = Vec<ConfigEntry>;

    fn requests(
        &mut self,
        keys: &[ConfigResource],
        _: &mut Ctx<'_>,
    ) -> Vec<(Call, Vec<ConfigResource>)> {
        by_target(keys)
            .into_iter()
            .map(|(target, keys)| {
                let call = Call {
                    target,
                    body: describe_request(&keys),
                    max_version: None,
                    tag: 0,
                };
                (call, keys)
            })
            .collect()
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[ConfigResource],
    ) -> Vec<(ConfigResource, Verdict<Vec<ConfigEntry>>)> {
        match answer::<DescribeConfigsRequest>(result) {
            Err(e) => e.each(keys, Refresh::None),
            Ok(r) => described(r)
                .into_iter()
                .map(|(k, r)| {
                    let v = match r {
                        Ok(entries) => Verdict::Done(Ok(entries)),
                        Err((code, message)) => {
                            item_verdict(ApiKey::DescribeConfigs, code, message)
                        }
                    };
                    (k, v)
                })
                .collect(),
        }
    }

    fn finish(
        self,
        results: BTreeMap<ConfigResource, Result<Vec<ConfigEntry>, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::Configs(results)
    }
}

/// IncrementalAlterConfigs, falling back to DescribeConfigs + AlterConfigs.
pub(crate) struct AlterConfigs {
    pub changes: BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
    pub validate_only: bool,
    /// The broker lacks IncrementalAlterConfigs.
    pub legacy: bool,
    /// Legacy mode: each resource's current overrides, once described.
    pub current: BTreeMap<ConfigResource, BTreeMap<String, String>>,
}

impl AlterConfigs {
    fn incremental(&self, keys: &[ConfigResource]) -> RequestBody {
        use incremental_alter_configs::request::{AlterConfigsResource, AlterableConfig};
        RequestBody::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
            resources: keys
                .iter()
                .map(|k| AlterConfigsResource {
                    resource_type: k.resource_type.code(),
                    resource_name: k.name.clone(),
                    configs: self.changes[k]
                        .iter()
                        .map(|op| {
                            let (code, value) = match op {
                                AlterConfigOp::Set(_, v) => (0, Some(v.clone())),
                                AlterConfigOp::Delete(_) => (1, None),
                                AlterConfigOp::Append(_, v) => (2, Some(v.clone())),
                                AlterConfigOp::Subtract(_, v) => (3, Some(v.clone())),
                            };
                            AlterableConfig {
                                name: op.name().to_owned(),
                                config_operation: code,
                                value,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            validate_only: self.validate_only,
            ..Default::default()
        })
    }

    /// The full set of overrides after the changes (legacy AlterConfigs).
    fn legacy_request(&self, keys: &[ConfigResource]) -> RequestBody {
        use alter_configs::request::{AlterConfigsResource, AlterableConfig};
        RequestBody::AlterConfigs(AlterConfigsRequest {
            resources: keys
                .iter()
                .map(|k| {
                    let mut values = self.current.get(k).cloned().unwrap_or_default();
                    for op in &self.changes[k] {
                        apply(&mut values, op);
                    }
                    AlterConfigsResource {
                        resource_type: k.resource_type.code(),
                        resource_name: k.name.clone(),
                        configs: values
                            .into_iter()
                            .map(|(name, value)| AlterableConfig {
                                name,
                                value: Some(value),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }
                })
                .collect(),
            validate_only: self.validate_only,
            ..Default::default()
        })
    }
}

/// Applies one change to a resource's overrides; list values are comma-separated.
fn apply(values: &mut BTreeMap<String, String>, op: &AlterConfigOp) {
    let list = |v: Option<&String>| -> Vec<String> {
        v.map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
    };
    match op {
        AlterConfigOp::Set(n, v) => {
            values.insert(n.clone(), v.clone());
        }
        AlterConfigOp::Delete(n) => {
            values.remove(n);
        }
        AlterConfigOp::Append(n, v) => {
            let mut items = list(values.get(n));
            for item in v.split(',').filter(|s| !s.is_empty()) {
                if !items.iter().any(|i| i == item) {
                    items.push(item.to_owned());
                }
            }
            values.insert(n.clone(), items.join(","));
        }
        AlterConfigOp::Subtract(n, v) => {
            let gone: Vec<&str> = v.split(',').collect();
            let items: Vec<String> = list(values.get(n))
                .into_iter()
                .filter(|i| !gone.contains(&i.as_str()))
                .collect();
            values.insert(n.clone(), items.join(","));
        }
    }
}

impl Api for AlterConfigs {
    type Key = ConfigResource;
    type Value = ();

    fn requests(
        &mut self,
        keys: &[ConfigResource],
        _: &mut Ctx<'_>,
    ) -> Vec<(Call, Vec<ConfigResource>)> {
        let mut calls = Vec::new();
        for (target, keys) in by_target(keys) {
            if !self.legacy {
                let body = self.incremental(&keys);
                calls.push((call(target, body), keys));
                continue;
            }
            let (known, unknown): (Vec<_>, Vec<_>) =
                keys.into_iter().partition(|k| self.current.contains_key(k));
            if !unknown.is_empty() {
                calls.push((call(target.clone(), describe_request(&unknown)), unknown));
            }
            if !known.is_empty() {
                calls.push((call(target, self.legacy_request(&known)), known));
            }
        }
        calls
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[ConfigResource],
    ) -> Vec<(ConfigResource, Verdict<()>)> {
        let responses = match result {
            Err(NetError::Unsupported {
                api: ApiKey::IncrementalAlterConfigs,
                ..
            }) if !self.legacy => {
                self.legacy = true;
                return spread(keys, || Verdict::Again);
            }
            Err(e) => return net_spread(keys, e),
            Ok(Response {
                body: ResponseBody::DescribeConfigs(r),
                ..
            }) => {
                return described(r)
                    .into_iter()
                    .map(|(k, r)| match r {
                        Ok(entries) => {
                            let overrides = entries
                                .into_iter()
                                .filter(|e| {
                                    !e.is_default
                                        && !e.read_only
                                        && matches!(
                                            e.source,
                                            ConfigSource::DynamicTopicConfig
                                                | ConfigSource::DynamicBrokerConfig
                                                | ConfigSource::DynamicBrokerLoggerConfig
                                                | ConfigSource::Unknown
                                        )
                                })
                                .filter_map(|e| Some((e.name, e.value?)))
                                .collect();
                            self.current.insert(k.clone(), overrides);
                            (k, Verdict::Again)
                        }
                        Err((code, message)) => {
                            (k, item_verdict(ApiKey::DescribeConfigs, code, message))
                        }
                    })
                    .collect();
            }
            Ok(Response {
                body: ResponseBody::IncrementalAlterConfigs(r),
                ..
            }) => r
                .responses
                .into_iter()
                .map(|x| {
                    (
                        ApiKey::IncrementalAlterConfigs,
                        x.error(),
                        x.resource_type,
                        x.resource_name,
                        x.error_message,
                    )
                })
                .collect::<Vec<_>>(),
            Ok(Response {
                body: ResponseBody::AlterConfigs(r),
                ..
            }) => r
                .responses
                .into_iter()
                .map(|x| {
                    (
                        ApiKey::AlterConfigs,
                        x.error(),
                        x.resource_type,
                        x.resource_name,
                        x.error_message,
                    )
                })
                .collect(),
            Ok(r) => {
                let unexpected = UnexpectedResponse {
                    expected: ApiKey::IncrementalAlterConfigs,
                    got: r.body.api_key(),
                };
                return NoAnswer::Unexpected(unexpected).each(keys, Refresh::None);
            }
        };
        responses
            .into_iter()
            .map(|(api, code, rtype, name, message)| {
                let k = key_of(rtype, name);
                if code.is_ok() {
                    (k, Verdict::Done(Ok(())))
                } else {
                    (k, item_verdict(api, code, message))
                }
            })
            .collect()
    }

    fn finish(self, results: BTreeMap<ConfigResource, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::Altered(results)
    }
}

fn call(target: Target, body: RequestBody) -> Call {
    Call {
        target,
        body,
        max_version: None,
        tag: 0,
    }
}
