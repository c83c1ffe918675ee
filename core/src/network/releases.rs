//! The public table of Kafka releases and the API version ranges their brokers have: the one
//! source for the client's fixed tables (brokers before 0.10 cannot be asked; pins cap a newer
//! broker's answer to a release) and for the simulated cluster's release profiles.
//!
//! Each entry lists what that release's brokers advertise (from 0.10.0, their own ApiVersions
//! answer; before that, the APIs they answered at all), for the APIs kafkit's clients and its
//! simulated cluster use: inter-broker APIs (LeaderAndIsr, ...) and ones neither side uses are
//! left out, so an API missing from an entry newer than 0.10.0 is "not used here", not
//! "absent from the release" (see [`ApiVersionTable::capped_to_release`]). Kafka 4.0, the
//! newest release, has no entry: the generated protocol definitions are its table.
//!
//! [`ApiVersionTable::capped_to_release`]: super::ApiVersionTable::capped_to_release

use super::BrokerVersion;

/// One release's `(api key, min version, max version)` ranges, by key.
pub type ApiRanges = &'static [(i16, i16, i16)];

/// A Kafka release and the API version ranges its brokers have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseApis {
    /// The release (0.8.0 ... 3.0.0).
    pub version: BrokerVersion,
    /// Its API version ranges, by key.
    pub apis: ApiRanges,
}

/// Every release with a table, oldest first: the 0.8, 0.9 and 0.10 lines release by release
/// (their patch releases changed the protocol), then the first release of 0.11, 1, 2 and 3.
pub const RELEASE_APIS: &[ReleaseApis] = &[
    ReleaseApis {
        version: BrokerVersion::new(0, 8, 0),
        apis: &[
            (0, 0, 0), // Produce
            (1, 0, 0), // Fetch
            (2, 0, 0), // ListOffsets
            (3, 0, 0), // Metadata
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(0, 8, 1),
        apis: &[
            (0, 0, 0), // Produce
            (1, 0, 0), // Fetch
            (2, 0, 0), // ListOffsets
            (3, 0, 0), // Metadata
            (8, 0, 0), // OffsetCommit
            (9, 0, 0), // OffsetFetch
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(0, 8, 2),
        apis: &[
            (0, 0, 0),  // Produce
            (1, 0, 0),  // Fetch
            (2, 0, 0),  // ListOffsets
            (3, 0, 0),  // Metadata
            (8, 0, 1),  // OffsetCommit
            (9, 0, 1),  // OffsetFetch
            (10, 0, 0), // FindCoordinator
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(0, 9, 0),
        apis: &[
            (0, 0, 1),  // Produce
            (1, 0, 1),  // Fetch
            (2, 0, 0),  // ListOffsets
            (3, 0, 0),  // Metadata
            (8, 0, 2),  // OffsetCommit
            (9, 0, 1),  // OffsetFetch
            (10, 0, 0), // FindCoordinator
            (11, 0, 0), // JoinGroup
            (12, 0, 0), // Heartbeat
            (13, 0, 0), // LeaveGroup
            (14, 0, 0), // SyncGroup
            (15, 0, 0), // DescribeGroups
            (16, 0, 0), // ListGroups
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(0, 10, 0),
        apis: &[
            (0, 0, 2),  // Produce
            (1, 0, 2),  // Fetch
            (2, 0, 0),  // ListOffsets
            (3, 0, 1),  // Metadata
            (8, 0, 2),  // OffsetCommit
            (9, 0, 1),  // OffsetFetch
            (10, 0, 0), // FindCoordinator
            (11, 0, 0), // JoinGroup
            (12, 0, 0), // Heartbeat
            (13, 0, 0), // LeaveGroup
            (14, 0, 0), // SyncGroup
            (15, 0, 0), // DescribeGroups
            (16, 0, 0), // ListGroups
            (17, 0, 0), // SaslHandshake
            (18, 0, 0), // ApiVersions
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(0, 10, 1),
        apis: &[
            (0, 0, 2),  // Produce
            (1, 0, 3),  // Fetch
            (2, 0, 1),  // ListOffsets
            (3, 0, 2),  // Metadata
            (8, 0, 2),  // OffsetCommit
            (9, 0, 1),  // OffsetFetch
            (10, 0, 0), // FindCoordinator
            (11, 0, 1), // JoinGroup
            (12, 0, 0), // Heartbeat
            (13, 0, 0), // LeaveGroup
            (14, 0, 0), // SyncGroup
            (15, 0, 0), // DescribeGroups
            (16, 0, 0), // ListGroups
            (17, 0, 0), // SaslHandshake
            (18, 0, 0), // ApiVersions
            (19, 0, 0), // CreateTopics
            (20, 0, 0), // DeleteTopics
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(0, 10, 2),
        apis: &[
            (0, 0, 2),  // Produce
            (1, 0, 3),  // Fetch
            (2, 0, 1),  // ListOffsets
            (3, 0, 2),  // Metadata
            (8, 0, 2),  // OffsetCommit
            (9, 0, 2),  // OffsetFetch
            (10, 0, 0), // FindCoordinator
            (11, 0, 1), // JoinGroup
            (12, 0, 0), // Heartbeat
            (13, 0, 0), // LeaveGroup
            (14, 0, 0), // SyncGroup
            (15, 0, 0), // DescribeGroups
            (16, 0, 0), // ListGroups
            (17, 0, 0), // SaslHandshake
            (18, 0, 0), // ApiVersions
            (19, 0, 1), // CreateTopics
            (20, 0, 0), // DeleteTopics
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(0, 11, 0),
        apis: &[
            (0, 0, 3),  // Produce
            (1, 0, 5),  // Fetch
            (2, 0, 2),  // ListOffsets
            (3, 0, 4),  // Metadata
            (8, 0, 3),  // OffsetCommit
            (9, 0, 3),  // OffsetFetch
            (10, 0, 1), // FindCoordinator
            (11, 0, 2), // JoinGroup
            (12, 0, 1), // Heartbeat
            (13, 0, 1), // LeaveGroup
            (14, 0, 1), // SyncGroup
            (15, 0, 1), // DescribeGroups
            (16, 0, 1), // ListGroups
            (17, 0, 0), // SaslHandshake
            (18, 0, 1), // ApiVersions
            (19, 0, 2), // CreateTopics
            (20, 0, 1), // DeleteTopics
            (21, 0, 0), // DeleteRecords
            (22, 0, 0), // InitProducerId
            (23, 0, 0), // OffsetForLeaderEpoch
            (24, 0, 0), // AddPartitionsToTxn
            (25, 0, 0), // AddOffsetsToTxn
            (26, 0, 0), // EndTxn
            (28, 0, 0), // TxnOffsetCommit
            (32, 0, 0), // DescribeConfigs
            (33, 0, 0), // AlterConfigs
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(1, 0, 0),
        apis: &[
            (0, 0, 5),  // Produce
            (1, 0, 6),  // Fetch
            (2, 0, 2),  // ListOffsets
            (3, 0, 5),  // Metadata
            (8, 0, 3),  // OffsetCommit
            (9, 0, 3),  // OffsetFetch
            (10, 0, 1), // FindCoordinator
            (11, 0, 2), // JoinGroup
            (12, 0, 1), // Heartbeat
            (13, 0, 1), // LeaveGroup
            (14, 0, 1), // SyncGroup
            (15, 0, 1), // DescribeGroups
            (16, 0, 1), // ListGroups
            (17, 0, 1), // SaslHandshake
            (18, 0, 1), // ApiVersions
            (19, 0, 2), // CreateTopics
            (20, 0, 1), // DeleteTopics
            (21, 0, 0), // DeleteRecords
            (22, 0, 0), // InitProducerId
            (23, 0, 0), // OffsetForLeaderEpoch
            (24, 0, 0), // AddPartitionsToTxn
            (25, 0, 0), // AddOffsetsToTxn
            (26, 0, 0), // EndTxn
            (28, 0, 0), // TxnOffsetCommit
            (32, 0, 0), // DescribeConfigs
            (33, 0, 0), // AlterConfigs
            (36, 0, 0), // SaslAuthenticate
            (37, 0, 0), // CreatePartitions
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(2, 0, 0),
        apis: &[
            (0, 0, 6),  // Produce
            (1, 0, 8),  // Fetch
            (2, 0, 3),  // ListOffsets
            (3, 0, 6),  // Metadata
            (8, 0, 4),  // OffsetCommit
            (9, 0, 4),  // OffsetFetch
            (10, 0, 2), // FindCoordinator
            (11, 0, 3), // JoinGroup
            (12, 0, 2), // Heartbeat
            (13, 0, 2), // LeaveGroup
            (14, 0, 2), // SyncGroup
            (15, 0, 2), // DescribeGroups
            (16, 0, 2), // ListGroups
            (17, 0, 1), // SaslHandshake
            (18, 0, 2), // ApiVersions
            (19, 0, 3), // CreateTopics
            (20, 0, 2), // DeleteTopics
            (21, 0, 1), // DeleteRecords
            (22, 0, 1), // InitProducerId
            (23, 0, 1), // OffsetForLeaderEpoch
            (24, 0, 1), // AddPartitionsToTxn
            (25, 0, 1), // AddOffsetsToTxn
            (26, 0, 1), // EndTxn
            (28, 0, 1), // TxnOffsetCommit
            (32, 0, 2), // DescribeConfigs
            (33, 0, 1), // AlterConfigs
            (36, 0, 0), // SaslAuthenticate
            (37, 0, 1), // CreatePartitions
            (42, 0, 1), // DeleteGroups
        ],
    },
    ReleaseApis {
        version: BrokerVersion::new(3, 0, 0),
        apis: &[
            (0, 0, 9),  // Produce
            (1, 0, 12), // Fetch
            (2, 0, 7),  // ListOffsets
            (3, 0, 11), // Metadata
            (8, 0, 8),  // OffsetCommit
            (9, 0, 8),  // OffsetFetch
            (10, 0, 4), // FindCoordinator
            (11, 0, 7), // JoinGroup
            (12, 0, 4), // Heartbeat
            (13, 0, 4), // LeaveGroup
            (14, 0, 5), // SyncGroup
            (15, 0, 5), // DescribeGroups
            (16, 0, 4), // ListGroups
            (17, 0, 1), // SaslHandshake
            (18, 0, 3), // ApiVersions
            (19, 0, 7), // CreateTopics
            (20, 0, 6), // DeleteTopics
            (21, 0, 2), // DeleteRecords
            (22, 0, 4), // InitProducerId
            (23, 0, 4), // OffsetForLeaderEpoch
            (24, 0, 3), // AddPartitionsToTxn
            (25, 0, 3), // AddOffsetsToTxn
            (26, 0, 3), // EndTxn
            (28, 0, 3), // TxnOffsetCommit
            (32, 0, 4), // DescribeConfigs
            (33, 0, 2), // AlterConfigs
            (36, 0, 2), // SaslAuthenticate
            (37, 0, 3), // CreatePartitions
            (42, 0, 2), // DeleteGroups
            (44, 0, 1), // IncrementalAlterConfigs
            (47, 0, 0), // OffsetDelete
            (60, 0, 0), // DescribeCluster
            (65, 0, 0), // DescribeTransactions
            (66, 0, 0), // ListTransactions
            (67, 0, 0), // AllocateProducerIds
        ],
    },
];

/// The API ranges of exactly release `version`, if the table has it.
pub fn release_apis(version: BrokerVersion) -> Option<ApiRanges> {
    RELEASE_APIS
        .iter()
        .find(|r| r.version == version)
        .map(|r| r.apis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_ordered_and_well_formed() {
        for pair in RELEASE_APIS.windows(2) {
            assert!(pair[0].version < pair[1].version, "{pair:?}");
        }
        for r in RELEASE_APIS {
            assert!(
                r.apis.windows(2).all(|w| w[0].0 < w[1].0),
                "{:?}",
                r.version
            );
            assert!(r.apis.iter().all(|&(_, min, max)| 0 <= min && min <= max));
            // Every release answers Produce, Fetch, ListOffsets and Metadata.
            for key in 0..=3 {
                assert!(r.apis.iter().any(|&(k, ..)| k == key), "{:?}", r.version);
            }
        }
        // A release never takes away what the one before it had (kafkit's APIs only grew
        // until 4.0 removed the old versions).
        for pair in RELEASE_APIS.windows(2) {
            for &(key, _, max) in pair[0].apis {
                let newer = pair[1].apis.iter().find(|&&(k, ..)| k == key);
                assert!(
                    newer.is_some_and(|&(_, _, m)| m >= max),
                    "{key} in {:?} and {:?}",
                    pair[0].version,
                    pair[1].version
                );
            }
        }
        assert_eq!(
            release_apis(BrokerVersion::new(0, 9, 0)).map(<[_]>::len),
            Some(13)
        );
        assert!(release_apis(BrokerVersion::new(0, 9, 1)).is_none());
    }
}
