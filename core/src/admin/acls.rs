//! ACLs (DescribeAcls, CreateAcls, DeleteAcls, to any broker) and DescribeLogDirs (to each
//! broker asked about).

use std::collections::BTreeMap;

use crate::consumer::TopicPartition;
use crate::network::{NetError, NodeId, Response, Target};
use crate::protocol::create_acls::request::AclCreation;
use crate::protocol::delete_acls::request::DeleteAclsFilter;
use crate::protocol::{
    ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, DescribeLogDirsRequest,
    ErrorCode, RequestBody,
};

use super::engine::{answer, Api, Call, Ctx, Refresh, Verdict};
use super::types::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermissionType, AclResourceType,
    AdminError, LogDirDescription, ReplicaInfo,
};
use super::AdminOutcome;

fn any(body: RequestBody) -> Call {
    Call {
        target: Target::Any,
        body,
        max_version: None,
        tag: 0,
    }
}

fn code_verdict<V>(
    api: ApiKey,
    code: ErrorCode,
    message: Option<String>,
    ok: impl FnOnce() -> V,
) -> Verdict<V> {
    if code.is_ok() {
        Verdict::Done(Ok(ok()))
    } else if code.is_retriable() {
        Verdict::Retry(AdminError::broker(api, code, message), Refresh::None)
    } else {
        Verdict::Done(Err(AdminError::broker(api, code, message)))
    }
}

#[allow(clippy::too_many_arguments)]
fn binding(
    resource_type: i8,
    resource_name: String,
    pattern_type: i8,
    principal: String,
    host: String,
    operation: i8,
    permission_type: i8,
) -> AclBinding {
    AclBinding {
        resource_type: AclResourceType(resource_type),
        resource_name,
        pattern_type: AclPatternType(pattern_type),
        principal,
        host,
        operation: AclOperation(operation),
        permission_type: AclPermissionType(permission_type),
    }
}

/// DescribeAcls.
pub(crate) struct DescribeAcls {
    pub filter: AclBindingFilter,
}

impl Api for DescribeAcls {
    type Key = ();
    type Value = Vec<AclBinding>;

    fn requests(&mut self, _: &[()], _: &mut Ctx<'_>) -> Vec<(Call, Vec<()>)> {
        let f = &self.filter;
        let body = RequestBody::DescribeAcls(DescribeAclsRequest {
            resource_type_filter: f.resource_type.0,
            resource_name_filter: f.resource_name.clone(),
            pattern_type_filter: f.pattern_type.0,
            principal_filter: f.principal.clone(),
            host_filter: f.host.clone(),
            operation: f.operation.0,
            permission_type: f.permission_type.0,
            ..Default::default()
        });
        vec![(any(body), vec![()])]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[()],
    ) -> Vec<((), Verdict<Vec<AclBinding>>)> {
        let api = ApiKey::DescribeAcls;
        match answer::<DescribeAclsRequest>(result) {
            Err(e) => e.each(keys, Refresh::None),
            Ok(r) => {
                let v = code_verdict(api, r.error(), r.error_message, || {
                    let mut out = Vec::new();
                    for res in r.resources {
                        for a in res.acls {
                            out.push(binding(
                                res.resource_type,
                                res.resource_name.clone(),
                                res.pattern_type,
                                a.principal,
                                a.host,
                                a.operation,
                                a.permission_type,
                            ));
                        }
                    }
                    out.sort();
                    out
                });
                vec![((), v)]
            }
        }
    }

    fn finish(
        self,
        mut results: BTreeMap<(), Result<Vec<AclBinding>, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::Acls(results.remove(&()).unwrap_or(Err(AdminError::Closed)))
    }
}

/// CreateAcls: a result per binding.
pub(crate) struct CreateAcls;

impl Api for CreateAcls {
    type Key = AclBinding;
    type Value = ();

    fn requests(&mut self, keys: &[AclBinding], _: &mut Ctx<'_>) -> Vec<(Call, Vec<AclBinding>)> {
        let body = RequestBody::CreateAcls(CreateAclsRequest {
            creations: keys
                .iter()
                .map(|b| AclCreation {
                    resource_type: b.resource_type.0,
                    resource_name: b.resource_name.clone(),
                    resource_pattern_type: b.pattern_type.0,
                    principal: b.principal.clone(),
                    host: b.host.clone(),
                    operation: b.operation.0,
                    permission_type: b.permission_type.0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        vec![(any(body), keys.to_vec())]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[AclBinding],
    ) -> Vec<(AclBinding, Verdict<()>)> {
        let api = ApiKey::CreateAcls;
        match answer::<CreateAclsRequest>(result) {
            Err(e) => e.each(keys, Refresh::None),
            // Results come in the order of the creations.
            Ok(r) => keys
                .iter()
                .cloned()
                .zip(r.results)
                .map(|(k, res)| (k, code_verdict(api, res.error(), res.error_message, || ())))
                .collect(),
        }
    }

    fn finish(self, results: BTreeMap<AclBinding, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::CreatedAcls(results)
    }
}

/// DeleteAcls: the bindings each filter deleted.
pub(crate) struct DeleteAcls;

impl Api for DeleteAcls {
    type Key = AclBindingFilter;
    type Value = Vec<AclBinding>;

    fn requests(
        &mut self,
        keys: &[AclBindingFilter],
        _: &mut Ctx<'_>,
    ) -> Vec<(Call, Vec<AclBindingFilter>)> {
        let body = RequestBody::DeleteAcls(DeleteAclsRequest {
            filters: keys
                .iter()
                .map(|f| DeleteAclsFilter {
                    resource_type_filter: f.resource_type.0,
                    resource_name_filter: f.resource_name.clone(),
                    pattern_type_filter: f.pattern_type.0,
                    principal_filter: f.principal.clone(),
                    host_filter: f.host.clone(),
                    operation: f.operation.0,
                    permission_type: f.permission_type.0,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        vec![(any(body), keys.to_vec())]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[AclBindingFilter],
    ) -> Vec<(AclBindingFilter, Verdict<Vec<AclBinding>>)> {
        let api = ApiKey::DeleteAcls;
        match answer::<DeleteAclsRequest>(result) {
            Err(e) => e.each(keys, Refresh::None),
            Ok(r) => keys
                .iter()
                .cloned()
                .zip(r.filter_results)
                .map(|(k, res)| {
                    let v = code_verdict(api, res.error(), res.error_message, || {
                        res.matching_acls
                            .into_iter()
                            .filter(|m| m.error().is_ok())
                            .map(|m| {
                                binding(
                                    m.resource_type,
                                    m.resource_name,
                                    m.pattern_type,
                                    m.principal,
                                    m.host,
                                    m.operation,
                                    m.permission_type,
                                )
                            })
                            .collect()
                    });
                    (k, v)
                })
                .collect(),
        }
    }

    fn finish(
        self,
        results: BTreeMap<AclBindingFilter, Result<Vec<AclBinding>, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::DeletedAcls(results)
    }
}

type LogDirs = BTreeMap<String, LogDirDescription>;

/// DescribeLogDirs, one request per broker.
pub(crate) struct DescribeLogDirs;

impl Api for DescribeLogDirs {
    type Key = NodeId;
    type Value = LogDirs;

    fn requests(&mut self, keys: &[NodeId], _: &mut Ctx<'_>) -> Vec<(Call, Vec<NodeId>)> {
        keys.iter()
            .map(|n| {
                let body = RequestBody::DescribeLogDirs(DescribeLogDirsRequest {
                    topics: None,
                    ..Default::default()
                });
                let call = Call {
                    target: Target::Node(*n),
                    body,
                    max_version: None,
                    tag: 0,
                };
                (call, vec![*n])
            })
            .collect()
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[NodeId],
    ) -> Vec<(NodeId, Verdict<LogDirs>)> {
        let api = ApiKey::DescribeLogDirs;
        match answer::<DescribeLogDirsRequest>(result) {
            Err(e) => e.each(keys, Refresh::None),
            Ok(r) => {
                let v = code_verdict(api, r.error(), None, || {
                    r.results
                        .into_iter()
                        .map(|d| {
                            let code = d.error();
                            let mut replicas = BTreeMap::new();
                            for t in d.topics {
                                for p in t.partitions {
                                    replicas.insert(
                                        TopicPartition::new(t.name.as_str(), p.partition_index),
                                        ReplicaInfo {
                                            size: p.partition_size,
                                            offset_lag: p.offset_lag,
                                            is_future: p.is_future_key,
                                        },
                                    );
                                }
                            }
                            let desc = LogDirDescription {
                                error: (!code.is_ok()).then(|| AdminError::broker(api, code, None)),
                                replicas,
                            };
                            (d.log_dir, desc)
                        })
                        .collect()
                });
                vec![(keys[0], v)]
            }
        }
    }

    fn finish(self, results: BTreeMap<NodeId, Result<LogDirs, AdminError>>) -> AdminOutcome {
        AdminOutcome::LogDirs(results)
    }
}
