//! `kafkit groups describe` for KIP-848 consumer-protocol groups: ConsumerGroupDescribe at the
//! coordinator, tried before DescribeGroups as Java's admin client does. A coordinator that
//! lacks the API, or does not know the group as a consumer-protocol group (a classic group, or
//! none), leaves the group to DescribeGroups.

use kafkit_blocking::LowLevelClient;
use kafkit_core::network::NetError;
use kafkit_core::protocol::consumer_group_describe::response::{Assignment, DescribedGroup};
use kafkit_core::protocol::{ApiKey, ConsumerGroupDescribeRequest, ErrorCode};

use super::{to_coordinator, Failure, Member};

/// What ConsumerGroupDescribe says of a consumer-protocol group.
pub(super) struct ConsumerGroup {
    pub coordinator: i32,
    pub state: String,
    pub assignor: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: Vec<Member>,
}

/// The group as a consumer-protocol group, or `None` when DescribeGroups should describe it
/// (the coordinator lacks ConsumerGroupDescribe, or does not know the group as one).
pub(super) fn describe(
    client: &LowLevelClient,
    group: &str,
) -> Result<Option<ConsumerGroup>, Failure> {
    let (_, _, table) = client.check_version().map_err(Failure::Net)?;
    if table
        .negotiate(ApiKey::ConsumerGroupDescribe, None)
        .is_none()
    {
        return Ok(None);
    }
    let request = ConsumerGroupDescribeRequest {
        group_ids: vec![group.to_owned()],
        ..Default::default()
    };
    let answer = to_coordinator(client, group, request, None, |resp| {
        let node = resp.node;
        let g = resp
            .body_as::<ConsumerGroupDescribeRequest>()?
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| Failure::Other("the coordinator did not describe the group".into()))?;
        g.error().ok().map_err(Failure::Code)?;
        Ok((node, g))
    });
    match answer {
        Ok((node, g)) => Ok(Some(consumer_group(node, g))),
        // Not a consumer-protocol group: a classic one, or none (DescribeGroups says which).
        Err(Failure::Code(ErrorCode::GROUP_ID_NOT_FOUND | ErrorCode::UNSUPPORTED_VERSION)) => {
            Ok(None)
        }
        // The coordinator (another broker than the one whose versions were checked) lacks it.
        Err(Failure::Net(NetError::Unsupported { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

fn consumer_group(node: i32, g: DescribedGroup) -> ConsumerGroup {
    ConsumerGroup {
        coordinator: node,
        state: g.group_state,
        assignor: g.assignor_name,
        group_epoch: g.group_epoch,
        assignment_epoch: g.assignment_epoch,
        members: g
            .members
            .into_iter()
            .map(|m| Member {
                member_id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                host: m.client_host,
                assignment: Some(partitions(m.assignment)),
                member_epoch: Some(m.member_epoch),
                target_assignment: Some(partitions(m.target_assignment)),
                subscribed_topics: m.subscribed_topic_names,
                subscribed_topic_regex: m.subscribed_topic_regex,
            })
            .collect(),
    }
}

/// The partitions of an assignment, sorted.
fn partitions(a: Assignment) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = a
        .topic_partitions
        .into_iter()
        .flat_map(|t| {
            let name = t.topic_name;
            t.partitions.into_iter().map(move |p| (name.clone(), p))
        })
        .collect();
    out.sort();
    out
}
