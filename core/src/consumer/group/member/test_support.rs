//! The member against scripted coordinator answers, for the tests beside each exchange:
//! requests stay queued in a network client without connections, and the test answers them
//! by request id.

pub(super) use super::*;
pub(super) use crate::consumer::assignor::{self, Assignment, Subscription};
pub(super) use crate::consumer::group::listener::{RebalanceCall, RebalanceOutcome};
pub(super) use crate::consumer::OpId;
pub(super) use crate::network::NetOptions;
pub(super) use crate::protocol::metadata::response::{
    MetadataResponsePartition, MetadataResponseTopic,
};
pub(super) use crate::protocol::{
    HeartbeatResponse, JoinGroupResponse, MetadataResponse, ResponseBody, SyncGroupResponse,
};

pub(super) struct T {
    pub g: GroupMember,
    pub net: NetworkClient,
    pub subs: SubscriptionState,
    pub now: Instant,
}

pub(super) fn tps(ps: &[i32]) -> BTreeSet<TopicPartition> {
    ps.iter().map(|&p| TopicPartition::new("t", p)).collect()
}

impl T {
    pub(super) fn new(tweak: impl FnOnce(&mut ConsumerConfig)) -> T {
        let mut c = ConsumerConfig {
            group_id: Some("g".into()),
            enable_auto_commit: false,
            partition_assignment_strategy: vec![crate::config::AssignmentStrategy::Range],
            ..Default::default()
        };
        tweak(&mut c);
        let assignors = c
            .partition_assignment_strategy
            .iter()
            .map(|s| assignor::built_in(*s))
            .collect();
        let mut t = T {
            g: GroupMember::new(&c, "g".into(), assignors),
            net: NetworkClient::new(NetOptions::new(vec![("b".into(), 9092)])),
            subs: SubscriptionState::new(c.auto_offset_reset),
            now: Instant::now(),
        };
        t.g.set_callbacks(true);
        let mut ctx = GroupCtx {
            net: &mut t.net,
            subs: &mut t.subs,
            now: t.now,
        };
        t.g.subscribe(Subscribed::Topics(["t".to_string()].into()), &mut ctx);
        t
    }

    pub(super) fn poll(&mut self, in_poll: bool) {
        let mut ctx = GroupCtx {
            net: &mut self.net,
            subs: &mut self.subs,
            now: self.now,
        };
        self.g.poll(&mut ctx, in_poll);
    }

    pub(super) fn pending(&self, want: fn(&Req) -> bool) -> Option<RequestId> {
        self.g
            .requests
            .iter()
            .rev()
            .find(|(_, r)| want(r))
            .map(|(id, _)| *id)
    }

    pub(super) fn respond(&mut self, id: RequestId, body: ResponseBody) {
        let mut ctx = GroupCtx {
            net: &mut self.net,
            subs: &mut self.subs,
            now: self.now,
        };
        self.g.handle_response(
            id,
            Ok(Response {
                node: 1,
                version: 5,
                body,
            }),
            &mut ctx,
        );
    }

    pub(super) fn complete(&mut self) -> RebalanceCall {
        let call = self
            .g
            .pending_call()
            .cloned()
            .expect("a callback is pending");
        let mut ctx = GroupCtx {
            net: &mut self.net,
            subs: &mut self.subs,
            now: self.now,
        };
        self.g
            .complete_call(call.seq, RebalanceOutcome::default(), &mut ctx);
        call
    }

    pub(super) fn join_response(&mut self, code: ErrorCode, member: &str, leader: &str) {
        let id = self
            .pending(|r| matches!(r, Req::Join))
            .expect("JoinGroup sent");
        let me = assignor::encode_subscription(
            &Subscription {
                topics: vec!["t".into()],
                ..Default::default()
            },
            3,
        )
        .unwrap();
        self.respond(
            id,
            ResponseBody::JoinGroup(JoinGroupResponse {
                error_code: code.0,
                generation_id: 1,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                leader: leader.into(),
                member_id: member.into(),
                members: if leader == member {
                    vec![JoinGroupResponseMember {
                        member_id: member.into(),
                        metadata: me,
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                },
                ..Default::default()
            }),
        );
    }

    pub(super) fn sync_response(&mut self, partitions: &[i32]) {
        let id = self
            .pending(|r| matches!(r, Req::Sync))
            .expect("SyncGroup sent");
        let a = assignor::encode_assignment(
            &Assignment {
                partitions: tps(partitions).into_iter().collect(),
                user_data: None,
            },
            3,
        )
        .unwrap();
        self.respond(
            id,
            ResponseBody::SyncGroup(SyncGroupResponse {
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: a,
                ..Default::default()
            }),
        );
    }

    pub(super) fn heartbeat_response(&mut self, code: ErrorCode) {
        self.now += Duration::from_secs(3);
        self.poll(true);
        let id = self
            .pending(|r| matches!(r, Req::Heartbeat(_)))
            .expect("heartbeat sent");
        self.respond(
            id,
            ResponseBody::Heartbeat(HeartbeatResponse {
                error_code: code.0,
                ..Default::default()
            }),
        );
    }

    /// Joins as a follower and gets `partitions`.
    pub(super) fn join_as_follower(&mut self, partitions: &[i32]) {
        self.poll(true);
        self.join_response(ErrorCode::MEMBER_ID_REQUIRED, "m-1", "");
        assert_eq!(self.g.member_id, "m-1");
        self.join_response(ErrorCode::NONE, "m-1", "leader");
        assert_eq!(self.g.state(), MemberState::Syncing);
        self.sync_response(partitions);
        assert_eq!(self.g.state(), MemberState::Stable);
        let call = self.complete();
        assert_eq!(call.kind, RebalanceKind::Assigned);
        assert_eq!(call.partitions, tps(partitions));
    }
}
