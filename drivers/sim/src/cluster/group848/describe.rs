//! ConsumerGroupDescribe, the consumer groups' ListGroups entries, and the member checks of
//! OffsetCommit v9+ and OffsetFetch v9+ for consumer groups.

use kafkit_core::protocol::consumer_group_describe::response::{
    Assignment as DescAssignment, DescribedGroup, Member as DescMember, TopicPartitions,
};
use kafkit_core::protocol::ErrorCode;

use super::{Assignment, ConsumerGroup, ConsumerGroups, Topics};

fn describe_assignment(a: &Assignment, topics: &Topics) -> DescAssignment {
    DescAssignment {
        topic_partitions: a
            .iter()
            .map(|(id, parts)| TopicPartitions {
                topic_id: *id,
                topic_name: topics
                    .iter()
                    .find(|(_, t)| t.id == *id)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default(),
                partitions: parts.iter().copied().collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

impl ConsumerGroup {
    /// This group as ConsumerGroupDescribe reports it.
    pub fn describe(&self, topics: &Topics) -> DescribedGroup {
        let empty = Assignment::new();
        DescribedGroup {
            error_code: 0,
            group_id: self.id.clone(),
            group_state: self.state().name().to_owned(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor_name: self.assignor.clone(),
            members: self
                .members
                .values()
                .map(|m| DescMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    assignment: describe_assignment(&m.assigned, topics),
                    target_assignment: describe_assignment(
                        self.target.get(&m.id).unwrap_or(&empty),
                        topics,
                    ),
                    ..Default::default()
                })
                .collect(),
            authorized_operations: i32::MIN,
            ..Default::default()
        }
    }
}

impl ConsumerGroups {
    /// OffsetCommit's member check for consumer group `group_id` (Kafka's
    /// `ConsumerGroup.validateOffsetCommit`): with no member id and a negative epoch (an admin
    /// client or a consumer without group management) only an empty group takes commits;
    /// otherwise the member must exist, commit with OffsetCommit v9 or later, at its current
    /// epoch.
    pub fn validate_offset_commit(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
        version: i16,
    ) -> Result<(), ErrorCode> {
        let Some(group) = self.groups.get(group_id) else {
            return Ok(());
        };
        if member_epoch < 0 && group.members.is_empty() {
            return Ok(());
        }
        let Some(member) = group.members.get(member_id) else {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        if version < 9 {
            return Err(ErrorCode::UNSUPPORTED_VERSION);
        }
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }

    /// OffsetFetch v9's member check for consumer group `group_id`: anyone may read with no
    /// member id and a negative epoch; a member must give its current epoch.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        let Some(group) = self.groups.get(group_id) else {
            return Ok(());
        };
        let member_id = member_id.unwrap_or("");
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        let Some(member) = group.members.get(member_id) else {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }
}
