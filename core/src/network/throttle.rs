//! Broker quota throttling (KIP-219): which responses ask the client to hold back, and what
//! throttling did to each broker's traffic.
//!
//! A broker that throttles a client for a quota violation says so in the response's
//! `throttle_time_ms`. Before Kafka 2.0 it delayed the response itself, so the wait was over
//! once the answer arrived. Since 2.0 (KIP-219, a new version of every API that existed then)
//! it answers at once and then mutes the connection for the throttle time, and the client is
//! expected not to send on it until that time has passed (counted from receipt of the
//! response). [`NetworkClient`](super::NetworkClient) does so: requests for that connection
//! stay queued (their timeouts still run), and its `poll_timeout` names the throttle's end so
//! the driver wakes to send them. Other brokers, and the other connection to the same broker
//! (coordinator traffic has its own), are unaffected, as in the Java client, which throttles
//! per connection too.

use std::time::Instant;

use crate::protocol::ApiKey;

/// What throttling did to one broker's responses, as [`NetworkClient::throttle_stats`]
/// (super::NetworkClient::throttle_stats) reports it. Counts every response that carried a
/// throttle time, whether the client had to wait (KIP-219 versions) or the broker had already
/// delayed the answer (older versions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerThrottle {
    /// Responses that carried `throttle_time_ms > 0`.
    pub throttled_responses: u64,
    /// The sum of their throttle times, in milliseconds.
    pub total_ms: u64,
    /// The largest throttle time seen, in milliseconds.
    pub max_ms: i32,
    /// The latest throttle time seen, in milliseconds.
    pub last_ms: i32,
    /// Until when this client holds back requests to the broker (on the connection that got
    /// the latest client-side throttle), if that time is still ahead of the last input.
    pub until: Option<Instant>,
}

impl BrokerThrottle {
    /// Counts one response that carried `ms > 0`.
    pub(super) fn record(&mut self, ms: i32, until: Option<Instant>) {
        self.throttled_responses += 1;
        self.total_ms += ms as u64;
        self.max_ms = self.max_ms.max(ms);
        self.last_ms = ms;
        if let Some(t) = until {
            self.until = Some(self.until.map_or(t, |u| u.max(t)));
        }
    }
}

/// Whether a response of `api` at `version` that carries a throttle time asks the *client* to
/// wait: the version brokers since Kafka 2.0 answer before throttling (KIP-219), as the Java
/// client's `AbstractResponse::shouldClientThrottle` has them. APIs added after 2.0 always do;
/// OffsetForLeaderEpoch (a follower's API) and Java's default say no.
pub(crate) fn client_waits(api: ApiKey, version: i16) -> bool {
    let from = match api {
        ApiKey::Produce => 6,
        ApiKey::Fetch => 8,
        ApiKey::ListOffsets | ApiKey::JoinGroup | ApiKey::CreateTopics => 3,
        ApiKey::Metadata => 6,
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 4,
        ApiKey::FindCoordinator
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::ApiVersions
        | ApiKey::DeleteTopics
        | ApiKey::DescribeConfigs => 2,
        ApiKey::DeleteRecords
        | ApiKey::InitProducerId
        | ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::DescribeAcls
        | ApiKey::CreateAcls
        | ApiKey::DeleteAcls
        | ApiKey::AlterConfigs
        | ApiKey::AlterReplicaLogDirs
        | ApiKey::DescribeLogDirs
        | ApiKey::CreatePartitions
        | ApiKey::CreateDelegationToken
        | ApiKey::RenewDelegationToken
        | ApiKey::ExpireDelegationToken
        | ApiKey::DescribeDelegationToken
        | ApiKey::DeleteGroups => 1,
        ApiKey::OffsetForLeaderEpoch => return false,
        _ => 0,
    };
    version >= from
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kip_219_versions_follow_the_java_client() {
        assert!(!client_waits(ApiKey::Produce, 5));
        assert!(client_waits(ApiKey::Produce, 6));
        assert!(!client_waits(ApiKey::Fetch, 7));
        assert!(client_waits(ApiKey::Fetch, 8));
        assert!(!client_waits(ApiKey::Metadata, 5));
        assert!(client_waits(ApiKey::Metadata, 12));
        assert!(!client_waits(ApiKey::OffsetCommit, 3));
        assert!(client_waits(ApiKey::OffsetCommit, 4));
        assert!(
            client_waits(ApiKey::DescribeCluster, 0),
            "newer than KIP-219"
        );
        assert!(!client_waits(ApiKey::OffsetForLeaderEpoch, 4));
    }

    #[test]
    fn stats_count_sum_and_keep_the_latest_end() {
        let t0 = Instant::now();
        let mut s = BrokerThrottle::default();
        s.record(200, Some(t0 + Duration::from_millis(200)));
        s.record(50, None);
        s.record(100, Some(t0 + Duration::from_millis(100)));
        assert_eq!(s.throttled_responses, 3);
        assert_eq!(s.total_ms, 350);
        assert_eq!(s.max_ms, 200);
        assert_eq!(s.last_ms, 100);
        assert_eq!(s.until, Some(t0 + Duration::from_millis(200)));
    }
}
