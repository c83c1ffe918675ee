//! ConsumerGroupHeartbeat (Kafka's `GroupMetadataManager.consumerGroupHeartbeat`): joining,
//! heartbeating and leaving, the group epoch and target assignment, static members.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafkit_core::protocol::consumer_group_heartbeat::request::TopicPartitions as ReqTopicPartitions;
use kafkit_core::protocol::consumer_group_heartbeat::response::{
    Assignment as RespAssignment, TopicPartitions as RespTopicPartitions,
};
use kafkit_core::protocol::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ErrorCode,
};
use regex::Regex;

use super::assign::{assign, AssignorMember};
use super::reconcile::reconcile;
use super::{
    Assignment, ConsumerGroup, ConsumerGroups, Member, MemberState, Topics, ASSIGNORS,
    LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};

/// Who sent a heartbeat.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    /// The request's API version.
    pub version: i16,
    /// The request header's client id.
    pub client_id: &'a str,
    /// The client's host (`/127.0.0.1`).
    pub client_host: &'a str,
}

/// A refused heartbeat: its error code and message.
type Refusal = (ErrorCode, String);

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

fn error(code: ErrorCode, message: impl Into<String>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: code.code(),
        error_message: Some(message.into()),
        ..Default::default()
    }
}

/// A full-match regular expression (Kafka matches the whole topic name).
pub(super) fn compile(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{re})$"))
}

fn to_assignment(parts: &[ReqTopicPartitions]) -> Assignment {
    let mut out = Assignment::new();
    for tp in parts {
        if !tp.partitions.is_empty() {
            out.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
    }
    out
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, parts)| parts.is_empty() || b.get(t).is_some_and(|have| parts.is_subset(have)))
}

/// The topics of `topics` a member with these subscriptions reads.
pub(super) fn resolve<'a>(m: &Member, topics: &'a Topics) -> BTreeSet<&'a str> {
    let re = m
        .subscribed_topic_regex
        .as_deref()
        .and_then(|r| compile(r).ok());
    topics
        .keys()
        .filter(|name| {
            m.subscribed_topic_names.iter().any(|n| n == *name)
                || re.as_ref().is_some_and(|re| re.is_match(name))
        })
        .map(String::as_str)
        .collect()
}

impl ConsumerGroup {
    /// Bumps the group epoch (something the target depends on changed) and recomputes the
    /// target assignment from the stored subscription metadata.
    pub(super) fn bump_and_assign(&mut self) {
        self.group_epoch += 1;
        self.compute_target();
    }

    fn compute_target(&mut self) {
        let meta = &self.subscription_metadata;
        // The most asked-for server assignor; ties and no preference go to the default.
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref() {
                *votes.entry(a).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        let assignor = ASSIGNORS
            .iter()
            .find(|a| votes.get(**a) == Some(&best) && best > 0)
            .unwrap_or(&ASSIGNORS[0]);
        let inputs: Vec<AssignorMember<'_>> = self
            .members
            .values()
            .map(|m| AssignorMember {
                id: &m.id,
                topics: resolve(m, meta),
                previous: self.target.get(&m.id),
            })
            .collect();
        let target = assign(assignor, &inputs, meta);
        self.target = target;
        self.assignor = (*assignor).to_owned();
        self.assignment_epoch = self.group_epoch;
    }

    /// Re-resolves the members' subscriptions against the cluster's topics; a change in the
    /// subscribed topics or their partition counts bumps the group epoch.
    fn refresh_metadata(&mut self, topics: &Topics) -> bool {
        let mut meta = Topics::new();
        for m in self.members.values() {
            for name in resolve(m, topics) {
                meta.insert(name.to_owned(), topics[name]);
            }
        }
        if meta != self.subscription_metadata {
            self.subscription_metadata = meta;
            return true;
        }
        false
    }

    /// Removes a member (leave, session expiry, revocation timeout): its partitions become
    /// free and the others are reassigned.
    pub(super) fn remove_member(&mut self, id: &str) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.bump_and_assign();
        }
    }
}

impl ConsumerGroups {
    /// ConsumerGroupHeartbeat, for a group that is not a classic group with members (the
    /// caller answers those `GROUP_ID_NOT_FOUND`).
    pub fn heartbeat(
        &mut self,
        req: ConsumerGroupHeartbeatRequest,
        from: Sender<'_>,
        topics: &Topics,
        now: Instant,
    ) -> ConsumerGroupHeartbeatResponse {
        self.handle_timeout(now);
        if let Err((code, message)) = validate(&req, from.version) {
            return error(code, message);
        }
        if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            return self.leave(&req);
        }
        let member_id = if req.member_id.is_empty() {
            self.next_member_id()
        } else {
            req.member_id.clone()
        };
        let session = Duration::from_millis(self.config.session_timeout_ms.max(0) as u64);
        let interval = self.config.heartbeat_interval_ms;
        if req.member_epoch != 0 && !self.groups.contains_key(&req.group_id) {
            return error(ErrorCode::UNKNOWN_MEMBER_ID, "the group has no such member");
        }
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| ConsumerGroup::new(&req.group_id));
        let owned = req.topic_partitions.as_deref().map(to_assignment);
        let mut changed = false;
        if req.member_epoch == 0 {
            match join(group, &req, &member_id, from, now + session) {
                Ok(c) => changed = c,
                Err((code, message)) => return error(code, message),
            }
        } else {
            let Some(m) = group.members.get(&member_id) else {
                return error(ErrorCode::UNKNOWN_MEMBER_ID, "the group has no such member");
            };
            if let Some(instance) = &req.instance_id {
                if m.instance_id.as_deref() != Some(instance) {
                    return error(
                        ErrorCode::FENCED_INSTANCE_ID,
                        "instance id of another member",
                    );
                }
            }
            let lost_answer = req.member_epoch == m.previous_member_epoch
                && owned.as_ref().is_some_and(|o| is_subset(o, &m.assigned));
            if req.member_epoch > m.member_epoch
                || (req.member_epoch < m.member_epoch && !lost_answer)
            {
                return error(
                    ErrorCode::FENCED_MEMBER_EPOCH,
                    format!(
                        "member epoch {} is not the current one ({})",
                        req.member_epoch, m.member_epoch
                    ),
                );
            }
            if let Some(m) = group.members.get_mut(&member_id) {
                changed = update_subscription(m, &req);
                m.client_id = from.client_id.to_owned();
                m.client_host = from.client_host.to_owned();
                m.session_deadline = now + session;
            }
        }
        if group.refresh_metadata(topics) {
            changed = true;
        }
        if changed {
            group.bump_and_assign();
        }
        let before = group
            .members
            .get(&member_id)
            .map(|m| m.assigned.clone())
            .unwrap_or_default();
        let target = group.target.get(&member_id).cloned().unwrap_or_default();
        let target_epoch = group.assignment_epoch;
        let others: Vec<Member> = group
            .members
            .values()
            .filter(|m| m.id != member_id)
            .cloned()
            .collect();
        let Some(m) = group.members.get_mut(&member_id) else {
            return error(ErrorCode::UNKNOWN_MEMBER_ID, "the group has no such member");
        };
        let taken = |t, p| others.iter().any(|o| o.owns(t, p));
        reconcile(m, target_epoch, &target, owned.as_ref(), &taken);
        if m.state == MemberState::UnrevokedPartitions {
            if m.revocation_deadline.is_none() {
                let timeout = Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64);
                m.revocation_deadline = Some(now + timeout);
            }
        } else {
            m.revocation_deadline = None;
        }
        let send_assignment = req.member_epoch == 0
            || m.assigned != before
            || owned.as_ref().is_some_and(|o| *o != m.assigned);
        let assignment = send_assignment.then(|| RespAssignment {
            topic_partitions: m
                .assigned
                .iter()
                .map(|(t, parts)| RespTopicPartitions {
                    topic_id: *t,
                    partitions: parts.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        ConsumerGroupHeartbeatResponse {
            error_code: 0,
            member_id: Some(member_id),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: interval,
            assignment,
            ..Default::default()
        }
    }

    /// A heartbeat with epoch -1 (leave) or -2 (a static member leaving for now).
    fn leave(&mut self, req: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return error(ErrorCode::GROUP_ID_NOT_FOUND, "no such group");
        };
        let id = match &req.instance_id {
            Some(instance) => match group.static_member(instance) {
                None => {
                    return error(
                        ErrorCode::UNKNOWN_MEMBER_ID,
                        "no member has that instance id",
                    )
                }
                Some(m) if m.id != req.member_id => {
                    return error(
                        ErrorCode::FENCED_INSTANCE_ID,
                        "instance id of another member",
                    )
                }
                Some(m) => m.id.clone(),
            },
            None => {
                if !group.members.contains_key(&req.member_id) {
                    return error(ErrorCode::UNKNOWN_MEMBER_ID, "the group has no such member");
                }
                req.member_id.clone()
            }
        };
        let temporary =
            req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH && req.instance_id.is_some();
        if temporary {
            // It keeps its partitions until its session ends or its instance id rejoins.
            if let Some(m) = group.members.get_mut(&id) {
                m.previous_member_epoch = m.member_epoch;
                m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            }
        } else {
            group.remove_member(&id);
        }
        ConsumerGroupHeartbeatResponse {
            member_id: Some(id),
            member_epoch: req.member_epoch,
            ..Default::default()
        }
    }
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
fn validate(req: &ConsumerGroupHeartbeatRequest, version: i16) -> Result<(), Refusal> {
    let invalid = |m: &str| Err(refuse(ErrorCode::INVALID_REQUEST, m));
    if req.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if req.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if req.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return invalid("MemberEpoch is invalid.");
    }
    if req.member_id.is_empty() && (version >= 1 || req.member_epoch != 0) {
        return invalid("MemberId can't be empty.");
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        if req.topic_partitions.as_ref().is_some_and(|t| !t.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining.");
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return invalid(
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            );
        }
    }
    if let Some(re) = &req.subscribed_topic_regex {
        if let Err(e) = compile(re) {
            return Err(refuse(
                ErrorCode::INVALID_REGULAR_EXPRESSION,
                format!("SubscribedTopicRegex `{re}` is not a valid regular expression: {e}"),
            ));
        }
    }
    if let Some(a) = &req.server_assignor {
        if !ASSIGNORS.contains(&a.as_str()) {
            return Err(refuse(
                ErrorCode::UNSUPPORTED_ASSIGNOR,
                format!("ServerAssignor {a} is not supported; supported: uniform, range"),
            ));
        }
    }
    Ok(())
}

/// Applies the subscription fields the heartbeat carries; true if the target depends on what
/// changed.
fn update_subscription(m: &mut Member, req: &ConsumerGroupHeartbeatRequest) -> bool {
    let mut changed = false;
    if let Some(names) = &req.subscribed_topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        if names != m.subscribed_topic_names {
            m.subscribed_topic_names = names;
            changed = true;
        }
    }
    if let Some(re) = &req.subscribed_topic_regex {
        // An empty expression clears the regex subscription (Kafka's convention).
        let re = Some(re.clone()).filter(|r| !r.is_empty());
        if re != m.subscribed_topic_regex {
            m.subscribed_topic_regex = re;
            changed = true;
        }
    }
    if let Some(a) = &req.server_assignor {
        if m.server_assignor.as_deref() != Some(a) {
            m.server_assignor = Some(a.clone());
            changed = true;
        }
    }
    if req.rebalance_timeout_ms != -1 {
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if req.rack_id.is_some() {
        m.rack_id = req.rack_id.clone();
    }
    changed
}

/// A heartbeat with epoch 0: a new member, a member starting over, or a static member taking
/// its instance id back. True if the group epoch must move.
fn join(
    group: &mut ConsumerGroup,
    req: &ConsumerGroupHeartbeatRequest,
    member_id: &str,
    from: Sender<'_>,
    session_deadline: Instant,
) -> Result<bool, Refusal> {
    if let Some(instance) = &req.instance_id {
        if let Some(old) = group.static_member(instance).cloned() {
            if old.id != member_id && old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                return Err(refuse(
                    ErrorCode::UNRELEASED_INSTANCE_ID,
                    format!("instance id {instance} is still used by member {}", old.id),
                ));
            }
            if old.id != member_id {
                // The new incarnation takes the old one's place, partitions and epoch: no
                // rebalance for a restarted static member.
                group.members.remove(&old.id);
                let target = group.target.remove(&old.id);
                let mut m = old;
                m.id = member_id.to_owned();
                m.member_epoch = m.previous_member_epoch.max(0);
                m.client_id = from.client_id.to_owned();
                m.client_host = from.client_host.to_owned();
                m.session_deadline = session_deadline;
                let changed = update_subscription(&mut m, req);
                group.members.insert(member_id.to_owned(), m);
                if let Some(t) = target {
                    group.target.insert(member_id.to_owned(), t);
                }
                return Ok(changed);
            }
        }
    }
    // A member starting over with epoch 0 has dropped its partitions: they are free again.
    group.members.remove(member_id);
    let mut m = Member {
        id: member_id.to_owned(),
        instance_id: req.instance_id.clone(),
        rack_id: None,
        client_id: from.client_id.to_owned(),
        client_host: from.client_host.to_owned(),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: Vec::new(),
        subscribed_topic_regex: None,
        server_assignor: None,
        member_epoch: 0,
        previous_member_epoch: -1,
        state: MemberState::Stable,
        assigned: Assignment::new(),
        pending_revocation: Assignment::new(),
        session_deadline,
        revocation_deadline: None,
    };
    update_subscription(&mut m, req);
    group.members.insert(member_id.to_owned(), m);
    Ok(true)
}
