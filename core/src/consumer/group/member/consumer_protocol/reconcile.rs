//! Reconciliation: from the coordinator's target assignment (topic ids) to the member's
//! assignment (topic names), through the shared rebalance steps (Java's
//! `AbstractMembershipManager.maybeReconcile`).

use std::collections::BTreeSet;

use super::IdAssignment;
use crate::codec::Uuid;
use crate::consumer::group::listener::RebalanceKind;
use crate::consumer::group::member::rebalance::Step;
use crate::consumer::group::member::{GroupCtx, GroupMember, MemberState, Req};
use crate::consumer::record::TopicPartition;
use crate::network::{NetError, Response, Target};
use crate::protocol::{MetadataRequest, RequestBody};

impl GroupMember {
    /// The name of topic `id`: learned from metadata (the consumer's, or the member's own
    /// request for unknown ids).
    fn topic_name(&mut self, id: Uuid, ctx: &GroupCtx<'_>) -> Option<String> {
        if let Some(n) = self.cp().names.get(&id) {
            return Some(n.clone());
        }
        let cluster = ctx.net.cluster().clone();
        let name = cluster
            .topics
            .values()
            .find(|t| t.topic_id == id && id != Uuid::ZERO)
            .map(|t| t.name.clone())?;
        self.cp().names.insert(id, name.clone());
        Some(name)
    }

    /// The part of the target whose topic names are known, and whether some are not.
    fn resolve_target(&mut self, ctx: &GroupCtx<'_>) -> Option<(IdAssignment, bool)> {
        let target = self.cp.as_deref()?.target.clone()?;
        let mut resolved = IdAssignment::new();
        let mut unresolved = false;
        for (id, partitions) in target {
            if self.topic_name(id, ctx).is_some() {
                resolved.insert(id, partitions);
            } else {
                unresolved = true;
            }
        }
        Some((resolved, unresolved))
    }

    /// Starts a reconciliation when the target differs from the assignment and none is
    /// underway; marks the member stable when they agree. Returns whether steps were queued.
    pub(in crate::consumer::group::member) fn cp_maybe_reconcile(
        &mut self,
        ctx: &mut GroupCtx<'_>,
    ) -> bool {
        if !matches!(self.state, MemberState::Reconciling | MemberState::Stable)
            || self.cp().reconciling.is_some()
            || !self.steps.is_empty()
            || self.blocked.is_some()
            || self.closing.is_some()
            || self.fatal.is_some()
        {
            return false;
        }
        let Some((resolved, unresolved)) = self.resolve_target(ctx) else {
            return false;
        };
        if unresolved {
            let cp = self.cp();
            if !cp.metadata_in_flight && cp.metadata_at.is_none() {
                cp.metadata_at = Some(ctx.now);
            }
        }
        if resolved == self.cp().acked {
            if !unresolved && self.state == MemberState::Reconciling {
                let epoch = self.cp().epoch;
                tracing::debug!(group = %self.cfg.group_id, epoch, "stable");
                self.state = MemberState::Stable;
            }
            return false;
        }
        self.state = MemberState::Reconciling;
        let mut next: BTreeSet<TopicPartition> = BTreeSet::new();
        for (id, partitions) in &resolved {
            let name = self.cp().names[id].clone();
            let topic: std::sync::Arc<str> = name.into();
            next.extend(
                partitions
                    .iter()
                    .map(|&p| TopicPartition::new(topic.clone(), p)),
            );
        }
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&next).cloned().collect();
        let added: BTreeSet<TopicPartition> = next.difference(&self.owned).cloned().collect();
        let epoch = self.cp().epoch;
        tracing::debug!(group = %self.cfg.group_id, epoch, revoked = revoked.len(), added = added.len(), "reconciling");
        // Revocation first, with the auto-commit of the consumed positions before it (Java's
        // autoCommitSyncBeforeRevocation); the new partitions only once those are gone.
        if !revoked.is_empty() {
            if self.cfg.auto_commit.is_some() {
                self.steps.push_back(Step::AutoCommit);
            }
            self.steps
                .push_back(Step::Call(RebalanceKind::Revoked, revoked.clone()));
            self.steps.push_back(Step::Revoke(revoked));
        }
        self.steps.push_back(Step::Assign(next));
        self.steps
            .push_back(Step::Call(RebalanceKind::Assigned, added));
        self.steps.push_back(Step::Reconciled);
        self.cp().reconciling = Some(resolved);
        true
    }

    /// The reconciliation's last step: the new assignment is the member's; the next
    /// heartbeat, sent at once, reports it.
    pub(in crate::consumer::group::member) fn cp_reconciled(&mut self, now: std::time::Instant) {
        let Some(cp) = self.cp.as_deref_mut() else {
            return;
        };
        if let Some(done) = cp.reconciling.take() {
            cp.acked = done;
            cp.next_due = Some(now);
        }
    }

    /// Asks for every topic's metadata when the target names topic ids not known yet.
    pub(in crate::consumer::group::member) fn cp_maybe_request_metadata(
        &mut self,
        ctx: &mut GroupCtx<'_>,
    ) {
        let cp = self.cp();
        if cp.metadata_in_flight || cp.metadata_at.is_none_or(|t| ctx.now < t) {
            return;
        }
        cp.metadata_at = None;
        cp.metadata_in_flight = true;
        let body = RequestBody::Metadata(MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        let id = ctx.net.send(Target::Any, body, None, true, ctx.now);
        self.requests.insert(id, Req::AssignmentMetadata);
    }

    /// Metadata for the target's topic ids: learn the names; ask again later for ids still
    /// unknown (a topic created a moment ago may not have reached every broker).
    pub(in crate::consumer::group::member) fn cp_on_metadata(
        &mut self,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let now = ctx.now;
        let cp = self.cp();
        cp.metadata_in_flight = false;
        let Ok(Ok(m)) = result.map(Response::body_as::<MetadataRequest>) else {
            cp.metadata_at = Some(now + cp.retry_backoff);
            return;
        };
        for t in &m.topics {
            if let Some(name) = &t.name {
                if t.topic_id != Uuid::ZERO && t.error().is_ok() {
                    cp.names.insert(t.topic_id, name.clone());
                }
            }
        }
        let unknown = cp
            .target
            .as_ref()
            .is_some_and(|t| t.keys().any(|id| !cp.names.contains_key(id)));
        if unknown {
            cp.metadata_at = Some(now + cp.retry_backoff);
        }
    }
}
