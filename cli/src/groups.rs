//! `kafkit groups list|describe|delete`: consumer groups through the low-level client
//! (ListGroups on every broker; ConsumerGroupDescribe or DescribeGroups, OffsetFetch and
//! DeleteGroups at each group's coordinator; ListOffsets at the partition leaders for the lag).
//!
//! `describe` prints what `kafka-consumer-groups.sh --describe` prints: one row per partition
//! the group has a committed offset for or a member is assigned, with the committed offset,
//! the log end offset, the lag between them and the member that owns the partition.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use kafkit_blocking::LowLevelClient;
use kafkit_core::config::CommonConfig;
use kafkit_core::consumer::assignor::decode_assignment;
use kafkit_core::network::{ClusterView, CoordinatorKind, NetError, Response, Target};
use kafkit_core::protocol::describe_groups::response::DescribedGroup;
use kafkit_core::protocol::list_offsets::request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_core::protocol::offset_fetch::request::OffsetFetchRequestGroup;
use kafkit_core::protocol::offset_fetch::response::OffsetFetchResponse;
use kafkit_core::protocol::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, ErrorCode, ListGroupsRequest,
    ListOffsetsRequest, OffsetFetchRequest, RequestBody, UnexpectedResponse,
};
use serde_json::{json, Value};

use crate::args::OutputArgs;
use crate::error::{self, CliError};
use crate::output::{print_json, Output};

mod consumer;

/// How long a coordinator that is still loading its groups is waited for.
const COORDINATOR_LOAD_WAIT: Duration = Duration::from_secs(10);

/// `kafkit groups`.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: GroupsCommand,
}

/// The `kafkit groups` commands.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List the groups of every broker: group id, type, protocol type, state and coordinator.
    #[command(long_about = "\
List the groups of every broker: group id, group type (classic, or consumer for KIP-848 \
consumer-protocol groups; brokers before Kafka 3.7 have only classic groups), protocol type \
(consumer for consumer groups), state (brokers from Kafka 2.6 on say it) and coordinator.

Asks every broker (ListGroups), since each lists only the groups it coordinates. If a broker \
cannot be asked, the groups of the others are listed and the exit status is 1.")]
    List {
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Describe groups: state, members and their assignments, committed offsets and lag.
    #[command(long_about = "\
Describe groups: state, members and their assignments, committed offsets and lag (like \
kafka-consumer-groups.sh --describe).

For each group, its coordinator describes it: ConsumerGroupDescribe for KIP-848 \
consumer-protocol groups (Kafka 4.0+), with the group epoch, the assignment epoch and per \
member its epoch and current vs target assignment; DescribeGroups for classic groups. Both \
give the state, the protocol or assignor and every member's id, instance id, client id, host \
and assignment (decoded for consumer groups). Then \
one row per partition that has a committed offset (OffsetFetch) or an owner: the committed \
offset, the log end offset (ListOffsets at the partition's leader), the lag between them and \
the member that owns it. A group that does not exist or cannot be described is named on \
stderr and the exit status is 1.")]
    Describe {
        /// The groups.
        #[arg(value_name = "GROUP", required = true)]
        groups: Vec<String>,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete groups (only groups without members, and their committed offsets).
    #[command(long_about = "\
Delete groups (DeleteGroups at each group's coordinator): the group and its committed offsets \
go. Only groups without active members can be deleted. Each group that was not deleted is \
named on stderr with the broker's reason (NON_EMPTY_GROUP: it still has members; \
GROUP_ID_NOT_FOUND: it does not exist) and the exit status is 1.")]
    Delete {
        /// The groups.
        #[arg(value_name = "GROUP", required = true)]
        groups: Vec<String>,
        /// Output format.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Runs the command.
pub fn run(config: &CommonConfig, args: &GroupsArgs) -> Result<(), CliError> {
    let client = LowLevelClient::start(config)?;
    match &args.command {
        GroupsCommand::List { output } => list(&client, config, output.json),
        GroupsCommand::Describe { groups, output } => {
            describe(&client, config, groups, output.json)
        }
        GroupsCommand::Delete { groups, output } => delete(&client, config, groups, output.json),
    }
}

// ---- list ---------------------------------------------------------------------------------

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    group_id: String,
    protocol_type: String,
    /// The state (ListGroups v4+; older brokers do not say).
    state: Option<String>,
    /// `classic`, `consumer`, ... (ListGroups v5+; brokers before have only classic groups).
    group_type: String,
    /// The broker that listed it (its coordinator).
    coordinator: i32,
}

fn list(client: &LowLevelClient, config: &CommonConfig, json: bool) -> Result<(), CliError> {
    let view = client
        .metadata(Some(Vec::new()))
        .map_err(|e| error::net(e, config))?;
    let mut groups: Vec<Listed> = Vec::new();
    let mut failures: Vec<(i32, String)> = Vec::new();
    for &node in view.brokers.keys() {
        match list_on(client, node) {
            Ok(mut g) => groups.append(&mut g),
            Err(e) => failures.push((node, e)),
        }
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    if json {
        print_json(&list_json(&groups, &failures))?;
    } else {
        let mut out = Output::default();
        list_text(&groups, &view, &mut out);
        out.print()?;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        let detail: Vec<String> = failures
            .iter()
            .map(|(node, e)| format!("broker {node}: {e}"))
            .collect();
        Err(CliError::Failed(format!(
            "ListGroups failed on {} of {} brokers (the list lacks their groups): {}",
            failures.len(),
            view.brokers.len(),
            detail.join("; ")
        )))
    }
}

/// The groups one broker coordinates.
fn list_on(client: &LowLevelClient, node: i32) -> Result<Vec<Listed>, String> {
    let deadline = Instant::now() + COORDINATOR_LOAD_WAIT;
    loop {
        let resp = client
            .send(Target::Node(node), ListGroupsRequest::default(), None)
            .map_err(|e| e.to_string())?;
        let version = resp.version;
        let r = resp
            .body_as::<ListGroupsRequest>()
            .map_err(|e| e.to_string())?;
        let code = r.error();
        if code == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        code.ok().map_err(|c| c.to_string())?;
        return Ok(r
            .groups
            .into_iter()
            .map(|g| Listed {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                state: (version >= 4 && !g.group_state.is_empty()).then_some(g.group_state),
                group_type: if version >= 5 && !g.group_type.is_empty() {
                    g.group_type.to_lowercase()
                } else {
                    "classic".into()
                },
                coordinator: node,
            })
            .collect());
    }
}

fn list_json(groups: &[Listed], failures: &[(i32, String)]) -> Value {
    json!({
        "groups": groups
            .iter()
            .map(|g| json!({
                "group_id": g.group_id,
                "group_type": g.group_type,
                "protocol_type": g.protocol_type,
                "state": g.state,
                "coordinator": g.coordinator,
            }))
            .collect::<Vec<_>>(),
        "errors": failures
            .iter()
            .map(|(node, e)| json!({ "broker": node, "error": e }))
            .collect::<Vec<_>>(),
    })
}

fn list_text(groups: &[Listed], view: &ClusterView, out: &mut Output) {
    if groups.is_empty() {
        out.line("No groups.");
        return;
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.group_id.clone(),
                g.group_type.clone(),
                dash(&g.protocol_type),
                g.state.clone().unwrap_or_else(|| "-".into()),
                broker(view, g.coordinator),
            ]
        })
        .collect();
    out.table(
        0,
        &["GROUP", "TYPE", "PROTOCOL", "STATE", "COORDINATOR"],
        &rows,
        &[],
    );
}

// ---- describe -----------------------------------------------------------------------------

/// One member of a described group.
#[derive(Debug, Clone, Default, PartialEq)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// The decoded assignment (`None` when the group is not Stable or is not a consumer
    /// group, or the bytes did not decode); a consumer-protocol member's current assignment.
    assignment: Option<Vec<(String, i32)>>,
    /// Consumer-protocol members only: the member epoch.
    member_epoch: Option<i32>,
    /// Consumer-protocol members only: the assignment it is reconciling towards.
    target_assignment: Option<Vec<(String, i32)>>,
    /// Consumer-protocol members only: the topics it subscribes to by name.
    subscribed_topics: Vec<String>,
    /// Consumer-protocol members only: the regular expression it subscribes with.
    subscribed_topic_regex: Option<String>,
}

/// One row of the offsets table.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    end: Option<i64>,
    /// Index into the group's members of the partition's owner.
    owner: Option<usize>,
}

impl Row {
    fn lag(&self) -> Option<i64> {
        Some((self.end? - self.committed?).max(0))
    }
}

/// What `describe` found out about one group.
#[derive(Debug, Clone, Default, PartialEq)]
struct Described {
    group_id: String,
    coordinator: Option<i32>,
    /// Why the group could not be described (then nothing else is set).
    error: Option<String>,
    state: String,
    protocol_type: String,
    /// The classic group's protocol (the assignor), or a consumer-protocol group's assignor.
    protocol: String,
    /// `classic` or `consumer`: which describe call described it.
    group_type: String,
    /// Consumer-protocol groups only: the group epoch and the target assignment's epoch.
    group_epoch: Option<i32>,
    assignment_epoch: Option<i32>,
    members: Vec<Member>,
    rows: Vec<Row>,
    /// Why committed offsets or end offsets are missing, if they are.
    offsets_error: Option<String>,
}

fn describe(
    client: &LowLevelClient,
    config: &CommonConfig,
    groups: &[String],
    json: bool,
) -> Result<(), CliError> {
    let described: Vec<Described> = groups
        .iter()
        .map(|g| describe_one(client, config, g))
        .collect();
    if json {
        print_json(&json!({
            "groups": described.iter().map(describe_json).collect::<Vec<_>>()
        }))?;
    } else {
        let view = client.metadata(Some(Vec::new())).ok();
        let mut out = Output::default();
        for (i, d) in described.iter().filter(|d| d.error.is_none()).enumerate() {
            if i > 0 {
                out.line("");
            }
            describe_text(d, view.as_deref(), &mut out);
        }
        out.print()?;
    }
    // A group described but whose offsets could not be read is a failure too (exit status 1),
    // after what could be read is printed.
    let failed: Vec<String> = described
        .iter()
        .filter_map(|d| {
            let why = d.error.as_ref().or(d.offsets_error.as_ref())?;
            Some(format!("group {}: {why}", d.group_id))
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(CliError::Failed(failed.join("; ")))
}

fn describe_one(client: &LowLevelClient, config: &CommonConfig, group: &str) -> Described {
    let mut d = Described {
        group_id: group.to_owned(),
        ..Default::default()
    };
    match consumer::describe(client, group) {
        Ok(Some(g)) => {
            d.coordinator = Some(g.coordinator);
            d.state = g.state;
            d.protocol_type = "consumer".into();
            d.protocol = g.assignor;
            d.group_type = "consumer".into();
            d.group_epoch = Some(g.group_epoch);
            d.assignment_epoch = Some(g.assignment_epoch);
            d.members = g.members;
        }
        Ok(None) => {
            if let Err(e) = describe_classic(client, group, &mut d) {
                d.error = Some(e.message(config));
                return d;
            }
            if d.state == "Dead" {
                d.error = Some("the group does not exist".into());
                return d;
            }
        }
        Err(e) => {
            d.error = Some(e.message(config));
            return d;
        }
    }

    // Every partition with a committed offset or an owner.
    let mut rows: BTreeMap<(String, i32), Row> = BTreeMap::new();
    match committed_offsets(client, group) {
        Ok(committed) => {
            for ((topic, partition), offset) in committed {
                row(&mut rows, &topic, partition).committed = Some(offset);
            }
        }
        Err(e) => d.offsets_error = Some(format!("committed offsets: {}", e.message(config))),
    }
    for (i, m) in d.members.iter().enumerate() {
        for (topic, partition) in m.assignment.iter().flatten() {
            row(&mut rows, topic, *partition).owner = Some(i);
        }
    }
    let partitions: BTreeSet<(String, i32)> = rows.keys().cloned().collect();
    match end_offsets(client, &partitions) {
        Ok(ends) => {
            for (key, end) in ends {
                if let Some(r) = rows.get_mut(&key) {
                    r.end = Some(end);
                }
            }
        }
        Err(e) => {
            let e = format!("end offsets: {}", e.message(config));
            d.offsets_error = Some(match d.offsets_error.take() {
                Some(before) => format!("{before}; {e}"),
                None => e,
            });
        }
    }
    d.rows = rows.into_values().collect();
    d
}

/// Fills `d` from DescribeGroups (a classic group, or none: `Dead`).
fn describe_classic(
    client: &LowLevelClient,
    group: &str,
    d: &mut Described,
) -> Result<(), Failure> {
    let (node, described) = describe_group(client, group)?;
    d.coordinator = Some(node);
    d.state = described.group_state;
    d.protocol_type = described.protocol_type;
    d.protocol = described.protocol_data;
    d.group_type = "classic".into();
    let consumer = d.protocol_type == "consumer" || d.protocol_type.is_empty();
    d.members = described
        .members
        .into_iter()
        .map(|m| Member {
            assignment: (consumer && !m.member_assignment.is_empty())
                .then(|| decode_assignment(&m.member_assignment).ok())
                .flatten()
                .map(|a| {
                    a.partitions
                        .iter()
                        .map(|tp| (tp.topic.to_string(), tp.partition))
                        .collect()
                }),
            member_id: m.member_id,
            instance_id: m.group_instance_id,
            client_id: m.client_id,
            host: m.client_host,
            ..Default::default()
        })
        .collect();
    Ok(())
}

/// The row of a partition, made on first use.
fn row<'a>(rows: &'a mut BTreeMap<(String, i32), Row>, topic: &str, partition: i32) -> &'a mut Row {
    rows.entry((topic.to_owned(), partition))
        .or_insert_with(|| Row {
            topic: topic.to_owned(),
            partition,
            committed: None,
            end: None,
            owner: None,
        })
}

/// A request that failed: on the network, or with an error code from the broker.
#[derive(Debug)]
enum Failure {
    Net(NetError),
    Code(ErrorCode),
    Other(String),
}

impl From<UnexpectedResponse> for Failure {
    fn from(e: UnexpectedResponse) -> Self {
        Failure::Other(e.to_string())
    }
}

impl Failure {
    fn message(&self, config: &CommonConfig) -> String {
        match self {
            Failure::Net(e) => error::net(e.clone(), config).to_string(),
            Failure::Code(c) => code_message(*c),
            Failure::Other(m) => m.clone(),
        }
    }
}

impl From<NetError> for Failure {
    fn from(e: NetError) -> Self {
        Failure::Net(e)
    }
}

/// An error code with what it means for a group command.
fn code_message(code: ErrorCode) -> String {
    let hint = match code {
        ErrorCode::GROUP_ID_NOT_FOUND => Some("the group does not exist"),
        ErrorCode::NON_EMPTY_GROUP => Some("the group still has members; stop them first"),
        ErrorCode::GROUP_AUTHORIZATION_FAILED => Some("not authorized for this group"),
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => Some("the coordinator is still loading"),
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
            Some("the group's coordinator moved or is unavailable; try again")
        }
        ErrorCode::INVALID_GROUP_ID => Some("not a valid group id"),
        _ => None,
    };
    match hint {
        Some(h) => format!("{code}: {h}"),
        None => code.to_string(),
    }
}

/// Sends a request to the group's coordinator: again while the coordinator is loading, and
/// at a freshly looked-up coordinator after NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE (the
/// group moved, or its coordinator was restarting), until `COORDINATOR_LOAD_WAIT` has passed.
fn to_coordinator<T>(
    client: &LowLevelClient,
    group: &str,
    body: impl Into<RequestBody>,
    max_version: Option<i16>,
    answer: impl Fn(Response) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let body = body.into();
    let deadline = Instant::now() + COORDINATOR_LOAD_WAIT;
    loop {
        let target = Target::Coordinator {
            kind: CoordinatorKind::Group,
            key: group.to_owned(),
        };
        let resp = client.send(target, body.clone(), max_version)?;
        match answer(resp) {
            Err(Failure::Code(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(Failure::Code(
                ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE,
            )) if Instant::now() < deadline => {
                client.invalidate_coordinator(CoordinatorKind::Group, group)?;
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// DescribeGroups at the coordinator: its node and the group.
fn describe_group(client: &LowLevelClient, group: &str) -> Result<(i32, DescribedGroup), Failure> {
    let request = DescribeGroupsRequest {
        groups: vec![group.to_owned()],
        ..Default::default()
    };
    to_coordinator(client, group, request, None, |resp| {
        let node = resp.node;
        let g = resp
            .body_as::<DescribeGroupsRequest>()?
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| Failure::Other("the coordinator did not describe the group".into()))?;
        g.error().ok().map_err(Failure::Code)?;
        Ok((node, g))
    })
}

/// The group's committed offsets (OffsetFetch of every partition).
/// The highest OffsetFetch version this command reads.
const OFFSET_FETCH_MAX_VERSION: i16 = 9;

fn committed_offsets(
    client: &LowLevelClient,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, Failure> {
    // The highest version both sides support (the brokers' table, as a broker answers it):
    // v0-7 carry the one group at the top level, v8+ a list of groups.
    let (_, _, table) = client.check_version().map_err(Failure::Net)?;
    let version = table
        .negotiate(ApiKey::OffsetFetch, Some(OFFSET_FETCH_MAX_VERSION))
        .unwrap_or(7);
    let request = if version >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.to_owned(),
                member_id: None,
                member_epoch: -1,
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.to_owned(),
            topics: None,
            ..Default::default()
        }
    };
    to_coordinator(client, group, request, Some(version), |resp| {
        committed_of(&resp.body_as::<OffsetFetchRequest>()?, group)
    })
}

fn committed_of(
    r: &OffsetFetchResponse,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, Failure> {
    let mut out = BTreeMap::new();
    let mut add = |topic: &str, partition: i32, offset: i64, code: i16| {
        ErrorCode(code).ok().map_err(Failure::Code)?;
        if offset >= 0 {
            out.insert((topic.to_owned(), partition), offset);
        }
        Ok::<(), Failure>(())
    };
    if r.groups.is_empty() {
        r.error().ok().map_err(Failure::Code)?;
        for t in &r.topics {
            for p in &t.partitions {
                add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    } else {
        let g = r
            .groups
            .iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| {
                Failure::Other(format!(
                    "the OffsetFetch answer has no entry for group {group}"
                ))
            })?;
        g.error().ok().map_err(Failure::Code)?;
        for t in &g.topics {
            for p in &t.partitions {
                add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    }
    Ok(out)
}

/// The log end offsets (high watermarks) of `partitions`, asked of their leaders. Partitions
/// without a leader or that failed are left out.
fn end_offsets(
    client: &LowLevelClient,
    partitions: &BTreeSet<(String, i32)>,
) -> Result<BTreeMap<(String, i32), i64>, Failure> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let topics: BTreeSet<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
    let view = client.metadata(Some(topics.into_iter().collect()))?;
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for (topic, partition) in partitions {
        let leader = view
            .topics
            .get(topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == *partition))
            .map(|p| p.leader)
            .filter(|l| *l >= 0);
        if let Some(leader) = leader {
            by_leader
                .entry(leader)
                .or_default()
                .entry(topic.clone())
                .or_default()
                .push(*partition);
        }
    }
    let mut out = BTreeMap::new();
    for (leader, topics) in by_leader {
        let request = ListOffsetsRequest {
            replica_id: -1,
            topics: topics
                .into_iter()
                .map(|(name, ps)| ListOffsetsTopic {
                    name,
                    partitions: ps
                        .into_iter()
                        .map(|p| ListOffsetsPartition {
                            partition_index: p,
                            current_leader_epoch: -1,
                            timestamp: -1,
                            max_num_offsets: 1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let resp = client.send(Target::Node(leader), request, None)?;
        let version = resp.version;
        let r = resp.body_as::<ListOffsetsRequest>()?;
        for t in r.topics {
            for p in t.partitions {
                if p.error().is_err() {
                    continue;
                }
                let offset = if version == 0 {
                    p.old_style_offsets.first().copied()
                } else {
                    Some(p.offset)
                };
                if let Some(o) = offset.filter(|o| *o >= 0) {
                    out.insert((t.name.clone(), p.partition_index), o);
                }
            }
        }
    }
    Ok(out)
}

fn describe_json(d: &Described) -> Value {
    if let Some(e) = &d.error {
        return json!({
            "group_id": d.group_id,
            "coordinator": d.coordinator,
            "error": e,
        });
    }
    let member = |i: Option<usize>| i.and_then(|i| d.members.get(i));
    json!({
        "group_id": d.group_id,
        "coordinator": d.coordinator,
        "error": Value::Null,
        "state": d.state,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "group_type": d.group_type,
        "group_epoch": d.group_epoch,
        "assignment_epoch": d.assignment_epoch,
        "members": d.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "group_instance_id": m.instance_id,
            "client_id": m.client_id,
            "host": m.host,
            "assignment": partitions_json(m.assignment.as_deref()),
            "member_epoch": m.member_epoch,
            "target_assignment": partitions_json(m.target_assignment.as_deref()),
            "subscribed_topics": m.subscribed_topics,
            "subscribed_topic_regex": m.subscribed_topic_regex,
        })).collect::<Vec<_>>(),
        "offsets": d.rows.iter().map(|r| json!({
            "topic": r.topic,
            "partition": r.partition,
            "committed_offset": r.committed,
            "log_end_offset": r.end,
            "lag": r.lag(),
            "member_id": member(r.owner).map(|m| &m.member_id),
            "client_id": member(r.owner).map(|m| &m.client_id),
            "host": member(r.owner).map(|m| &m.host),
        })).collect::<Vec<_>>(),
        "total_lag": d.rows.iter().filter_map(Row::lag).sum::<i64>(),
        "offsets_error": d.offsets_error,
    })
}

/// `[{"topic": .., "partition": ..}, ..]`, or null.
fn partitions_json(partitions: Option<&[(String, i32)]>) -> Value {
    match partitions {
        Some(a) => a
            .iter()
            .map(|(t, p)| json!({ "topic": t, "partition": p }))
            .collect(),
        None => Value::Null,
    }
}

fn describe_text(d: &Described, view: Option<&ClusterView>, out: &mut Output) {
    let coordinator = match (d.coordinator, view) {
        (Some(c), Some(v)) => broker(v, c),
        (Some(c), None) => c.to_string(),
        (None, _) => "-".into(),
    };
    let protocol = match (d.protocol_type.as_str(), d.protocol.as_str()) {
        _ if d.group_type == "consumer" => format!(
            "consumer group protocol (KIP-848), assignor {}, group epoch {}, assignment epoch {}",
            dash(&d.protocol),
            d.group_epoch.map_or_else(|| "-".into(), |e| e.to_string()),
            d.assignment_epoch
                .map_or_else(|| "-".into(), |e| e.to_string()),
        ),
        ("", "") => "no protocol".to_owned(),
        (t, "") => format!("protocol type {t}"),
        (t, p) => format!("{t} protocol {p}"),
    };
    out.line(format!(
        "Group {}: {}, {protocol}, {} member{}, coordinator {coordinator}",
        d.group_id,
        d.state,
        d.members.len(),
        if d.members.len() == 1 { "" } else { "s" },
    ));
    if d.members.is_empty() {
        out.line(format!("Group '{}' has no active members.", d.group_id));
    } else {
        out.line("");
        let text = |a: &Option<Vec<(String, i32)>>| {
            a.as_ref()
                .map_or_else(|| "-".into(), |a| assignment_text(a))
        };
        let kip848 = d.group_type == "consumer";
        let rows: Vec<Vec<String>> = d
            .members
            .iter()
            .map(|m| {
                let mut row = vec![
                    m.member_id.clone(),
                    m.instance_id.clone().unwrap_or_else(|| "-".into()),
                    dash(&m.client_id),
                    dash(&m.host),
                ];
                if kip848 {
                    row.push(m.member_epoch.map_or_else(|| "-".into(), |e| e.to_string()));
                }
                row.push(text(&m.assignment));
                if kip848 {
                    row.push(text(&m.target_assignment));
                }
                row
            })
            .collect();
        let headers: &[&str] = if kip848 {
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "EPOCH",
                "ASSIGNMENT",
                "TARGET-ASSIGNMENT",
            ]
        } else {
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "ASSIGNMENT",
            ]
        };
        out.table(0, headers, &rows, if kip848 { &[4] } else { &[] });
    }
    out.line("");
    if d.rows.is_empty() && d.offsets_error.is_some() {
        // Nothing to show because the offsets could not be read (said below), not because
        // there are none.
        out.line("Offsets could not be read.");
    } else if d.rows.is_empty() {
        out.line("No committed offsets and no assigned partitions.");
    } else {
        let member = |i: Option<usize>| i.and_then(|i| d.members.get(i));
        let opt = |v: Option<i64>| v.map_or_else(|| "-".into(), |v| v.to_string());
        let rows: Vec<Vec<String>> = d
            .rows
            .iter()
            .map(|r| {
                let m = member(r.owner);
                vec![
                    d.group_id.clone(),
                    r.topic.clone(),
                    r.partition.to_string(),
                    opt(r.committed),
                    opt(r.end),
                    opt(r.lag()),
                    m.map_or_else(|| "-".into(), |m| m.member_id.clone()),
                    m.map_or_else(|| "-".into(), |m| dash(&m.host)),
                    m.map_or_else(|| "-".into(), |m| dash(&m.client_id)),
                ]
            })
            .collect();
        out.table(
            0,
            &[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ],
            &rows,
            &[2, 3, 4, 5],
        );
        let total: i64 = d.rows.iter().filter_map(Row::lag).sum();
        out.line(format!("Total lag: {total}"));
    }
    if let Some(e) = &d.offsets_error {
        out.line(format!("warning: {e}"));
    }
}

/// `orders:0,1 payments:3`.
fn assignment_text(partitions: &[(String, i32)]) -> String {
    if partitions.is_empty() {
        return "(none)".into();
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}:{}", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- delete -------------------------------------------------------------------------------

fn delete(
    client: &LowLevelClient,
    config: &CommonConfig,
    groups: &[String],
    json: bool,
) -> Result<(), CliError> {
    let mut seen = BTreeSet::new();
    let results: Vec<(String, Result<(), String>)> = groups
        .iter()
        .filter(|g| seen.insert(g.as_str()))
        .map(|g| {
            let result = delete_one(client, g).map_err(|e| e.message(config));
            (g.clone(), result)
        })
        .collect();
    if json {
        print_json(&json!({
            "results": results.iter().map(|(g, r)| json!({
                "group_id": g,
                "deleted": r.is_ok(),
                "error": r.as_ref().err(),
            })).collect::<Vec<_>>()
        }))?;
    } else {
        let mut out = Output::default();
        for (g, r) in &results {
            if r.is_ok() {
                out.line(format!("Deleted group {g}."));
            }
        }
        out.print()?;
        for (g, r) in &results {
            if let Err(e) = r {
                eprintln!("kafkit: group {g} not deleted: {e}");
            }
        }
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{failed} of {} groups not deleted",
            results.len()
        )))
    }
}

fn delete_one(client: &LowLevelClient, group: &str) -> Result<(), Failure> {
    let request = DeleteGroupsRequest {
        groups_names: vec![group.to_owned()],
        ..Default::default()
    };
    to_coordinator(client, group, request, None, |resp| {
        let result = resp
            .body_as::<DeleteGroupsRequest>()?
            .results
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| Failure::Other("the coordinator did not answer for the group".into()))?;
        result.error().ok().map_err(Failure::Code)
    })
}

// ---- helpers ------------------------------------------------------------------------------

/// `1 (127.0.0.1:9093)`, or the bare id for a broker the view does not know.
fn broker(view: &ClusterView, id: i32) -> String {
    match view.brokers.get(&id) {
        Some(b) => format!("{id} ({})", b.address()),
        None => id.to_string(),
    }
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests;
