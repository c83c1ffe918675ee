//! API version negotiation and broker version probing.
//!
//! Every connection learns the broker's supported range per API from ApiVersions (Kafka 0.10+)
//! and then sends each request at the highest version both sides support. Brokers older than
//! 0.10 have no ApiVersions: they close the connection on it, and the connection layer then
//! probes them the way kafka-python's `check_version` does (one characteristic request per
//! release, newest first) and uses the fixed table of the release found. A version pinned in
//! the configuration (`api_version`) skips all of that and uses that release's fixed table.

use super::releases::{ReleaseApis, RELEASE_APIS};
pub use crate::config::BrokerVersion;
use crate::protocol::{ApiKey, ApiVersionsResponse};

/// The version range a broker supports for each API, indexed by API key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionTable {
    ranges: Vec<Option<(i16, i16)>>,
    /// Finalized feature levels (ApiVersions v3+, KIP-584): `(name, max level)`.
    finalized: Vec<(String, i16)>,
    /// The epoch of `finalized`, -1 when the broker sent none.
    finalized_epoch: i64,
}

impl ApiVersionTable {
    /// A table from `(api_key, min, max)` triples.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        let mut t = ApiVersionTable::default();
        for (key, min, max) in ranges {
            t.set(key, min, max);
        }
        t
    }

    /// The table an ApiVersions response describes.
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        let mut t = Self::from_ranges(
            resp.api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version)),
        );
        t.finalized = resp
            .finalized_features
            .iter()
            .map(|f| (f.name.clone(), f.max_version_level))
            .collect();
        t.finalized_epoch = resp.finalized_features_epoch;
        t
    }

    /// The finalized level of feature `name` (as `transaction.version`), if the broker
    /// reported one (ApiVersions v3+ from Kafka 2.7 on; older brokers report none).
    pub fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.finalized
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, level)| level)
    }

    /// The epoch of the finalized features, -1 if the broker reported none: of two tables,
    /// the one with the higher epoch is the more recent view of the cluster's features.
    pub fn finalized_features_epoch(&self) -> i64 {
        if self.finalized.is_empty() {
            -1
        } else {
            self.finalized_epoch
        }
    }

    fn set(&mut self, key: i16, min: i16, max: i16) {
        if key < 0 || min > max {
            return;
        }
        let idx = key as usize;
        if self.ranges.len() <= idx {
            self.ranges.resize(idx + 1, None);
        }
        self.ranges[idx] = Some((min, max));
    }

    /// The broker's range for `api`, if it has the API at all.
    pub fn broker_range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.range_of(api.as_i16())
    }

    fn range_of(&self, key: i16) -> Option<(i16, i16)> {
        self.ranges
            .get(usize::try_from(key).ok()?)
            .copied()
            .flatten()
    }

    /// Every `(api_key, min, max)` in the table, by key.
    pub fn iter(&self) -> impl Iterator<Item = (i16, i16, i16)> + '_ {
        self.ranges
            .iter()
            .enumerate()
            .filter_map(|(k, r)| r.map(|(min, max)| (k as i16, min, max)))
    }

    /// The highest version of `api` that both this build and the broker support, optionally
    /// capped at `max_wanted`; `None` if the ranges do not meet.
    pub fn negotiate(&self, api: ApiKey, max_wanted: Option<i16>) -> Option<i16> {
        let (ours_min, mut ours_max) = api.request_versions();
        // ConsumerGroupHeartbeat v1 (KIP-1082 client member ids, regex subscriptions) is
        // still marked unstable in the message definitions this build was generated from,
        // but Kafka 4.0 released it as stable and brokers (librdkafka's mock: only v1) expect it.
        if api.latest_version_unstable() && api != ApiKey::ConsumerGroupHeartbeat {
            // Kafka marks a version still under development; Java never sends it by default.
            ours_max -= 1;
        }
        if max_wanted.is_some_and(|w| w > ours_max) {
            // A version past the definitions with their layout (KIP-890's Produce v12,
            // TxnOffsetCommit v5) changes the request's meaning: only on explicit demand.
            ours_max = ours_max.max(crate::protocol::max_known_version(api));
        }
        let (theirs_min, theirs_max) = self.broker_range(api)?;
        let hi = ours_max.min(theirs_max).min(max_wanted.unwrap_or(i16::MAX));
        let lo = ours_min.max(theirs_min);
        (hi >= lo).then_some(hi)
    }

    /// The broker release these ranges most likely come from: the newest release whose
    /// characteristic API version the broker supports (kafka-python's inference, extended to
    /// newer releases). Brokers that answer ApiVersions are at least 0.10.0.
    pub fn guess_broker_version(&self) -> BrokerVersion {
        // Fetch's lowest version rose to 4 when Kafka 4.0 removed the old protocol versions.
        if matches!(self.range_of(1), Some((min, _)) if min >= 4) {
            return BrokerVersion::new(4, 0, 0);
        }
        if self.range_of(ApiKey::ApiVersions.as_i16()).is_none() {
            // A table without ApiVersions comes from a probe of a pre-0.10 broker: the newest
            // API it has names the release.
            return [
                (ApiKey::ListGroups, BrokerVersion::new(0, 9, 0)),
                (ApiKey::FindCoordinator, BrokerVersion::new(0, 8, 2)),
                (ApiKey::OffsetFetch, BrokerVersion::new(0, 8, 1)),
            ]
            .into_iter()
            .find(|(api, _)| self.broker_range(*api).is_some())
            .map_or(BrokerVersion::new(0, 8, 0), |(_, v)| v);
        }
        for &(version, key, api_version) in RELEASE_MARKERS {
            if matches!(self.range_of(key), Some((min, max)) if min <= api_version && api_version <= max)
            {
                return version;
            }
        }
        BrokerVersion::new(0, 10, 0)
    }

    /// The fixed table for a pinned or probed release before 0.10.1: the newest release of
    /// [`RELEASE_APIS`] not newer than `version`, up to 0.10.0. `None` for releases older than
    /// 0.8.0.
    pub fn for_release(version: BrokerVersion) -> Option<Self> {
        RELEASE_APIS
            .iter()
            .rev()
            .filter(|r| r.version <= BrokerVersion::new(0, 10, 0))
            .find(|r| r.version <= version)
            .map(|r| Self::from_ranges(r.apis.iter().copied()))
    }
}

/// The name kafka-python's `check_version` gives release `v`: three parts for the 0.8 and
/// 0.10 lines (`0.8.2`, `0.10.1`), whose patch releases changed the protocol, two for the
/// others (`0.9`, `0.11`, `2.8`, `4.0`).
pub fn release_name(v: BrokerVersion) -> String {
    if v.major == 0 && (v.minor == 8 || v.minor == 10) {
        format!("{}.{}.{}", v.major, v.minor, v.patch)
    } else {
        format!("{}.{}", v.major, v.minor)
    }
}

impl ApiVersionTable {
    /// This table (a broker's ApiVersions answer) as seen by a client pinned to release `pin`
    /// (`api_version` at or above 0.10): every API capped at the version `pin`'s brokers
    /// had ([`RELEASE_APIS`]), and APIs with keys past the release's newest removed, so the
    /// client speaks as to that release; an API the table leaves out below that key is kept
    /// as the broker has it.
    /// Pins at or above 4.0 (the newest table) leave the broker's ranges as they are.
    pub fn capped_to_release(&self, pin: BrokerVersion) -> Self {
        let Some(&ReleaseApis {
            version: release,
            apis: ceiling,
        }) = RELEASE_APIS.iter().rev().find(|r| r.version <= pin)
        else {
            return self.clone();
        };
        if pin >= BrokerVersion::new(4, 0, 0) || release < BrokerVersion::new(0, 10, 0) {
            return self.clone();
        }
        let newest_key = ceiling.iter().map(|&(k, _, _)| k).max().unwrap_or(0);
        Self::from_ranges(self.iter().filter_map(|(key, min, max)| {
            match ceiling.iter().find(|&&(k, _, _)| k == key) {
                Some(&(_, _, cap)) => (min <= cap.min(max)).then_some((key, min, cap.min(max))),
                None if key > newest_key => None,
                None => Some((key, min, max)),
            }
        }))
    }
}

/// For each release, newest first, one API version that appeared in it: `(release, api key,
/// version)`.
const RELEASE_MARKERS: &[(BrokerVersion, i16, i16)] = &[
    (BrokerVersion::new(3, 9, 0), 1, 17), // Fetch v17
    (BrokerVersion::new(3, 8, 0), 0, 11), // Produce v11
    (BrokerVersion::new(3, 7, 0), 1, 16), // Fetch v16
    (BrokerVersion::new(3, 6, 0), 24, 4), // AddPartitionsToTxn v4
    (BrokerVersion::new(3, 5, 0), 1, 15), // Fetch v15
    (BrokerVersion::new(3, 3, 0), 29, 3), // DescribeAcls v3
    (BrokerVersion::new(3, 2, 0), 11, 9), // JoinGroup v9
    (BrokerVersion::new(3, 1, 0), 1, 13), // Fetch v13
    (BrokerVersion::new(3, 0, 0), 2, 7),  // ListOffsets v7
    (BrokerVersion::new(2, 8, 0), 0, 9),  // Produce v9
    (BrokerVersion::new(2, 7, 0), 1, 12), // Fetch v12
    (BrokerVersion::new(2, 6, 0), 48, 0), // DescribeClientQuotas v0
    (BrokerVersion::new(2, 5, 0), 29, 2), // DescribeAcls v2
    (BrokerVersion::new(2, 4, 0), 0, 8),  // Produce v8
    (BrokerVersion::new(2, 3, 0), 1, 11), // Fetch v11
    (BrokerVersion::new(2, 2, 0), 2, 5),  // ListOffsets v5
    (BrokerVersion::new(2, 1, 0), 1, 10), // Fetch v10
    (BrokerVersion::new(2, 0, 0), 1, 8),  // Fetch v8
    (BrokerVersion::new(1, 1, 0), 1, 7),  // Fetch v7
    (BrokerVersion::new(1, 0, 0), 3, 5),  // Metadata v5
    (BrokerVersion::new(0, 11, 0), 3, 4), // Metadata v4
    (BrokerVersion::new(0, 10, 2), 9, 2), // OffsetFetch v2
    (BrokerVersion::new(0, 10, 1), 3, 2), // Metadata v2
];

/// The probes for a broker without ApiVersions, newest release first: the release, and the
/// API key whose v0 request only that release and newer answer. A broker that answers none of
/// them is taken for 0.8.0 (Metadata v0 always works).
pub const LEGACY_PROBES: &[(BrokerVersion, ApiKey)] = &[
    (BrokerVersion::new(0, 9, 0), ApiKey::ListGroups),
    (BrokerVersion::new(0, 8, 2), ApiKey::FindCoordinator),
    (BrokerVersion::new(0, 8, 1), ApiKey::OffsetFetch),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_highest_common_version() {
        let t = ApiVersionTable::from_ranges([(3, 0, 7), (18, 0, 2)]);
        assert_eq!(t.negotiate(ApiKey::Metadata, None), Some(7));
        assert_eq!(t.negotiate(ApiKey::Metadata, Some(4)), Some(4));
        assert_eq!(t.negotiate(ApiKey::Produce, None), None);
        let far = ApiVersionTable::from_ranges([(3, 100, 200)]);
        assert_eq!(far.negotiate(ApiKey::Metadata, None), None);
    }

    #[test]
    fn kip_890_versions_only_on_demand_and_finalized_features_are_read() {
        use crate::protocol::api_versions::response::{ApiVersion, FinalizedFeatureKey};
        let resp = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion {
                    api_key: 0,
                    min_version: 3,
                    max_version: 12,
                    ..Default::default()
                },
                ApiVersion {
                    api_key: 28,
                    min_version: 0,
                    max_version: 5,
                    ..Default::default()
                },
            ],
            finalized_features_epoch: 7,
            finalized_features: vec![FinalizedFeatureKey {
                name: "transaction.version".into(),
                max_version_level: 2,
                min_version_level: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = ApiVersionTable::from_response(&resp);
        assert_eq!(t.negotiate(ApiKey::Produce, None), Some(11));
        assert_eq!(t.negotiate(ApiKey::Produce, Some(11)), Some(11));
        assert_eq!(t.negotiate(ApiKey::Produce, Some(12)), Some(12));
        assert_eq!(t.negotiate(ApiKey::Produce, Some(13)), Some(12));
        assert_eq!(t.negotiate(ApiKey::TxnOffsetCommit, Some(5)), Some(5));
        assert_eq!(t.finalized_feature("transaction.version"), Some(2));
        assert_eq!(t.finalized_feature("group.version"), None);
        assert_eq!(t.finalized_features_epoch(), 7);
        let old = ApiVersionTable::from_ranges([(0, 3, 11)]);
        assert_eq!(old.negotiate(ApiKey::Produce, Some(12)), Some(11));
        assert_eq!(old.finalized_feature("transaction.version"), None);
        assert_eq!(old.finalized_features_epoch(), -1);
    }

    #[test]
    fn guesses_releases_from_markers() {
        for v in [(0, 8, 0), (0, 8, 1), (0, 8, 2), (0, 9, 0), (0, 10, 0)] {
            let v = BrokerVersion::new(v.0, v.1, v.2);
            let t = ApiVersionTable::for_release(v).unwrap();
            assert_eq!(t.guess_broker_version(), v);
        }
        // Real ApiVersions answers always list ApiVersions (18) itself.
        let t = ApiVersionTable::from_ranges([
            (0, 0, 9),
            (1, 0, 12),
            (3, 0, 11),
            (2, 0, 6),
            (18, 0, 3),
        ]);
        assert_eq!(t.guess_broker_version(), BrokerVersion::new(2, 8, 0));
        let t = ApiVersionTable::from_ranges([(0, 3, 12), (1, 4, 17), (18, 0, 4)]);
        assert_eq!(t.guess_broker_version(), BrokerVersion::new(4, 0, 0));
    }

    #[test]
    fn release_names_follow_check_version() {
        let n = |a, b, c| release_name(BrokerVersion::new(a, b, c));
        assert_eq!(n(0, 8, 2), "0.8.2");
        assert_eq!(n(0, 9, 0), "0.9");
        assert_eq!(n(0, 10, 1), "0.10.1");
        assert_eq!(n(0, 11, 0), "0.11");
        assert_eq!(n(2, 8, 0), "2.8");
        assert_eq!(n(4, 0, 0), "4.0");
    }

    #[test]
    fn a_pin_caps_a_newer_brokers_ranges() {
        // A 2.8 broker's answer for a few APIs, plus ApiVersions and DescribeClientQuotas.
        let broker = ApiVersionTable::from_ranges([
            (0, 0, 9),
            (1, 0, 12),
            (2, 0, 6),
            (3, 0, 11),
            (18, 0, 3),
            (48, 0, 1),
        ]);
        let t = broker.capped_to_release(BrokerVersion::new(0, 10, 1));
        assert_eq!(t.broker_range(ApiKey::Fetch), Some((0, 3)));
        assert_eq!(t.broker_range(ApiKey::ListOffsets), Some((0, 1)));
        assert_eq!(t.broker_range(ApiKey::DescribeClientQuotas), None);
        assert_eq!(t.guess_broker_version(), BrokerVersion::new(0, 10, 1));
        let t = broker.capped_to_release(BrokerVersion::new(2, 5, 0));
        assert_eq!(t.broker_range(ApiKey::Fetch), Some((0, 8)), "2.0's ceiling");
        assert_eq!(
            broker.capped_to_release(BrokerVersion::new(4, 0, 0)),
            broker
        );
    }

    #[test]
    fn fixed_tables_pick_the_newest_release_not_newer() {
        let t = ApiVersionTable::for_release(BrokerVersion::new(0, 8, 2)).unwrap();
        assert_eq!(t.broker_range(ApiKey::FindCoordinator), Some((0, 0)));
        assert_eq!(t.broker_range(ApiKey::ListGroups), None);
        let t = ApiVersionTable::for_release(BrokerVersion::new(0, 9, 5)).unwrap();
        assert_eq!(t.broker_range(ApiKey::ListGroups), Some((0, 0)));
        assert!(ApiVersionTable::for_release(BrokerVersion::new(0, 7, 0)).is_none());
    }
}
