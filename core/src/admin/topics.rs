//! Topic and cluster calls: CreateTopics, DeleteTopics, CreatePartitions (to the controller),
//! Metadata for listing and describing topics, DescribeCluster (Metadata on brokers without it).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::network::{ClusterView, NetError, Response, Target};
use crate::protocol::create_partitions::request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use crate::protocol::create_topics::request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use crate::protocol::metadata::request::MetadataRequestTopic;
use crate::protocol::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, ErrorCode, MetadataRequest, Request, RequestBody, ResponseBody,
    UnexpectedResponse,
};

use super::engine::{
    answer, controller_verdict, net_verdict, Api, Call, Ctx, NoAnswer, Refresh, Verdict,
};
use super::types::{
    AdminError, ClusterDescription, NewPartitions, NewTopic, TopicDescription, TopicListing,
};
use super::AdminOutcome;

/// DeleteTopics v6 names topics in another field; v5 is what every broker since 2.4 speaks.
const MAX_DELETE_TOPICS_VERSION: i16 = 5;

fn remaining_ms(ctx: &Ctx<'_>) -> i32 {
    ctx.deadline
        .saturating_duration_since(ctx.now)
        .as_millis()
        .min(i32::MAX as u128) as i32
}

/// Where a controller API's request goes: the controller once metadata names one; any broker
/// when the metadata names none that is known (a broker that is not the controller answers
/// NOT_CONTROLLER, which is retried; one that lacks the API says so); `None` before any
/// metadata, which is then asked for first (see [`first_metadata`]).
fn controller_target(ctx: &Ctx<'_>) -> Option<Target> {
    let view = ctx.net.cluster();
    if view.brokers.is_empty() {
        None
    } else if view.brokers.contains_key(&view.controller) {
        Some(Target::Controller)
    } else {
        Some(Target::Any)
    }
}

/// A controller API's request for `keys`, or the Metadata request that must come first.
fn controller_call(
    ctx: &Ctx<'_>,
    body: impl FnOnce() -> RequestBody,
    max_version: Option<i16>,
    keys: &[String],
) -> Vec<(Call, Vec<String>)> {
    let call = match controller_target(ctx) {
        Some(target) => Call {
            target,
            body: body(),
            max_version,
            tag: 0,
        },
        None => any(metadata_request(Some(&[]))),
    };
    vec![(call, keys.to_vec())]
}

/// The answer to [`controller_call`]'s Metadata request: ask again, now with metadata.
fn first_metadata(
    result: &Result<Response, NetError>,
    keys: &[String],
) -> Option<Vec<(String, Verdict<()>)>> {
    match result {
        Ok(r) if r.body.api_key() == ApiKey::Metadata => {
            Some(keys.iter().map(|k| (k.clone(), Verdict::Again)).collect())
        }
        _ => None,
    }
}

/// Per-topic results of controller API `R`: `items` lists (error code, topic, message).
fn controller_parse<R: Request>(
    result: Result<Response, NetError>,
    keys: &[String],
    items: impl FnOnce(R::Response) -> Vec<(ErrorCode, String, Option<String>)>,
) -> Vec<(String, Verdict<()>)> {
    match answer::<R>(result) {
        Ok(r) => items(r)
            .into_iter()
            .map(|(code, name, message)| (name, controller_verdict(R::API_KEY, code, message)))
            .collect(),
        Err(e) => e.each(keys, Refresh::Metadata),
    }
}

/// CreateTopics.
pub(crate) struct CreateTopics {
    pub topics: BTreeMap<String, NewTopic>,
    pub validate_only: bool,
}

impl Api for CreateTopics {
    type Key = String;
    type Value = ();

    fn requests(&mut self, keys: &[String], ctx: &mut Ctx<'_>) -> Vec<(Call, Vec<String>)> {
        let topics = keys
            .iter()
            .filter_map(|k| self.topics.get(k))
            .map(|t| {
                let explicit = !t.replica_assignments.is_empty();
                CreatableTopic {
                    name: t.name.clone(),
                    num_partitions: if explicit {
                        -1
                    } else {
                        t.num_partitions.unwrap_or(-1)
                    },
                    replication_factor: if explicit {
                        -1
                    } else {
                        t.replication_factor.unwrap_or(-1)
                    },
                    assignments: t
                        .replica_assignments
                        .iter()
                        .map(|(p, brokers)| CreatableReplicaAssignment {
                            partition_index: *p,
                            broker_ids: brokers.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.clone(),
                            value: Some(v.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect();
        let timeout_ms = remaining_ms(ctx);
        let validate_only = self.validate_only;
        let body = move || {
            RequestBody::CreateTopics(CreateTopicsRequest {
                topics,
                timeout_ms,
                validate_only,
                ..Default::default()
            })
        };
        controller_call(ctx, body, None, keys)
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[String],
    ) -> Vec<(String, Verdict<()>)> {
        if let Some(again) = first_metadata(&result, keys) {
            return again;
        }
        controller_parse::<CreateTopicsRequest>(result, keys, |r| {
            r.topics
                .into_iter()
                .map(|t| (t.error(), t.name, t.error_message))
                .collect()
        })
    }

    fn finish(self, results: BTreeMap<String, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::Topics(results)
    }
}

/// DeleteTopics.
pub(crate) struct DeleteTopics;

impl Api for DeleteTopics {
    type Key = String;
    type Value = ();

    fn requests(&mut self, keys: &[String], ctx: &mut Ctx<'_>) -> Vec<(Call, Vec<String>)> {
        let timeout_ms = remaining_ms(ctx);
        let body = || {
            RequestBody::DeleteTopics(DeleteTopicsRequest {
                topic_names: keys.to_vec(),
                timeout_ms,
                ..Default::default()
            })
        };
        controller_call(ctx, body, Some(MAX_DELETE_TOPICS_VERSION), keys)
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[String],
    ) -> Vec<(String, Verdict<()>)> {
        if let Some(again) = first_metadata(&result, keys) {
            return again;
        }
        controller_parse::<DeleteTopicsRequest>(result, keys, |r| {
            r.responses
                .into_iter()
                .map(|t| (t.error(), t.name.unwrap_or_default(), t.error_message))
                .collect()
        })
    }

    fn finish(self, results: BTreeMap<String, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::Topics(results)
    }
}

/// CreatePartitions.
pub(crate) struct CreatePartitions {
    pub topics: BTreeMap<String, NewPartitions>,
    pub validate_only: bool,
}

impl Api for CreatePartitions {
    type Key = String;
    type Value = ();

    fn requests(&mut self, keys: &[String], ctx: &mut Ctx<'_>) -> Vec<(Call, Vec<String>)> {
        let topics = keys
            .iter()
            .filter_map(|k| Some((k, self.topics.get(k)?)))
            .map(|(name, p)| CreatePartitionsTopic {
                name: name.clone(),
                count: p.total_count,
                assignments: p.new_assignments.as_ref().map(|a| {
                    a.iter()
                        .map(|brokers| CreatePartitionsAssignment {
                            broker_ids: brokers.clone(),
                            ..Default::default()
                        })
                        .collect()
                }),
                ..Default::default()
            })
            .collect();
        let timeout_ms = remaining_ms(ctx);
        let validate_only = self.validate_only;
        let body = move || {
            RequestBody::CreatePartitions(CreatePartitionsRequest {
                topics,
                timeout_ms,
                validate_only,
                ..Default::default()
            })
        };
        controller_call(ctx, body, None, keys)
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[String],
    ) -> Vec<(String, Verdict<()>)> {
        if let Some(again) = first_metadata(&result, keys) {
            return again;
        }
        controller_parse::<CreatePartitionsRequest>(result, keys, |r| {
            r.results
                .into_iter()
                .map(|t| (t.error(), t.name, t.error_message))
                .collect()
        })
    }

    fn finish(self, results: BTreeMap<String, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::Topics(results)
    }
}

fn metadata_request(topics: Option<&[String]>) -> RequestBody {
    RequestBody::Metadata(MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|name| MetadataRequestTopic {
                    name: Some(name.clone()),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    })
}

fn any(body: RequestBody) -> Call {
    Call {
        target: Target::Any,
        body,
        max_version: None,
        tag: 0,
    }
}

/// Metadata of every topic, listed.
pub(crate) struct ListTopics {
    pub list_internal: bool,
}

impl Api for ListTopics {
    type Key = ();
    type Value = Vec<TopicListing>;

    fn requests(&mut self, _: &[()], _: &mut Ctx<'_>) -> Vec<(Call, Vec<()>)> {
        vec![(any(metadata_request(None)), vec![()])]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        _: &[()],
    ) -> Vec<((), Verdict<Vec<TopicListing>>)> {
        let verdict = match answer::<MetadataRequest>(result) {
            Err(e) => e.verdict(Refresh::None),
            Ok(m) => {
                let mut topics: Vec<TopicListing> = m
                    .topics
                    .iter()
                    .filter(|t| self.list_internal || !t.is_internal)
                    .filter_map(|t| {
                        Some(TopicListing {
                            name: t.name.clone()?,
                            topic_id: t.topic_id,
                            is_internal: t.is_internal,
                        })
                    })
                    .collect();
                topics.sort_by(|a, b| a.name.cmp(&b.name));
                Verdict::Done(Ok(topics))
            }
        };
        vec![((), verdict)]
    }

    fn finish(
        self,
        mut results: BTreeMap<(), Result<Vec<TopicListing>, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::TopicListing(results.remove(&()).unwrap_or(Err(AdminError::Closed)))
    }
}

/// Metadata of named topics, described.
pub(crate) struct DescribeTopics;

impl Api for DescribeTopics {
    type Key = String;
    type Value = TopicDescription;

    fn requests(&mut self, keys: &[String], _: &mut Ctx<'_>) -> Vec<(Call, Vec<String>)> {
        vec![(any(metadata_request(Some(keys))), keys.to_vec())]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[String],
    ) -> Vec<(String, Verdict<TopicDescription>)> {
        let m = match answer::<MetadataRequest>(result) {
            Err(e) => return e.each(keys, Refresh::Metadata),
            Ok(m) => m,
        };
        let mut view = ClusterView::default();
        view.update(&m, false);
        view.topics
            .into_values()
            .map(|t: Arc<_>| {
                let code = t.error;
                let verdict = if code.is_ok() {
                    Verdict::Done(Ok(TopicDescription {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        is_internal: t.is_internal,
                        partitions: t.partitions.clone(),
                    }))
                } else if code == ErrorCode::LEADER_NOT_AVAILABLE {
                    // Being created: ask again shortly.
                    Verdict::Retry(
                        AdminError::broker(ApiKey::Metadata, code, None),
                        Refresh::None,
                    )
                } else {
                    Verdict::Done(Err(AdminError::broker(ApiKey::Metadata, code, None)))
                };
                (t.name.clone(), verdict)
            })
            .collect()
    }

    fn finish(
        self,
        results: BTreeMap<String, Result<TopicDescription, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::TopicDescriptions(results)
    }
}

/// DescribeCluster, or Metadata where the broker lacks it.
pub(crate) struct DescribeCluster {
    pub legacy: bool,
}

impl Api for DescribeCluster {
    type Key = ();
    type Value = ClusterDescription;

    fn requests(&mut self, _: &[()], _: &mut Ctx<'_>) -> Vec<(Call, Vec<()>)> {
        let body = if self.legacy {
            metadata_request(Some(&[]))
        } else {
            RequestBody::DescribeCluster(DescribeClusterRequest::default())
        };
        vec![(any(body), vec![()])]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        _: &[()],
    ) -> Vec<((), Verdict<ClusterDescription>)> {
        use crate::network::BrokerInfo;
        let verdict = match result {
            Err(NetError::Unsupported {
                api: ApiKey::DescribeCluster,
                ..
            }) if !self.legacy => {
                self.legacy = true;
                Verdict::Again
            }
            Err(e) => net_verdict(e, Refresh::None),
            Ok(Response {
                body: ResponseBody::DescribeCluster(r),
                ..
            }) => {
                let code = r.error();
                if code.is_ok() {
                    let brokers: Vec<BrokerInfo> = r
                        .brokers
                        .into_iter()
                        .filter(|b| (0..=u16::MAX as i32).contains(&b.port))
                        .map(|b| BrokerInfo {
                            node_id: b.broker_id,
                            host: b.host,
                            port: b.port as u16,
                            rack: b.rack,
                        })
                        .collect();
                    Verdict::Done(Ok(ClusterDescription {
                        cluster_id: Some(r.cluster_id),
                        controller: brokers
                            .iter()
                            .find(|b| b.node_id == r.controller_id)
                            .cloned(),
                        brokers,
                    }))
                } else if code.is_retriable() {
                    Verdict::Retry(
                        AdminError::broker(ApiKey::DescribeCluster, code, r.error_message),
                        Refresh::None,
                    )
                } else {
                    Verdict::Done(Err(AdminError::broker(
                        ApiKey::DescribeCluster,
                        code,
                        r.error_message,
                    )))
                }
            }
            Ok(Response {
                body: ResponseBody::Metadata(m),
                ..
            }) => {
                let mut view = ClusterView::default();
                view.update(&m, true);
                Verdict::Done(Ok(ClusterDescription {
                    cluster_id: view.cluster_id.clone(),
                    controller: view.brokers.get(&view.controller).cloned(),
                    brokers: view.brokers.into_values().collect(),
                }))
            }
            Ok(r) => NoAnswer::Unexpected(UnexpectedResponse {
                expected: ApiKey::DescribeCluster,
                got: r.body.api_key(),
            })
            .verdict(Refresh::None),
        };
        vec![((), verdict)]
    }

    fn finish(
        self,
        mut results: BTreeMap<(), Result<ClusterDescription, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::Cluster(results.remove(&()).unwrap_or(Err(AdminError::Closed)))
    }
}
