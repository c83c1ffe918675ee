//! Release profiles: the simulated cluster as a given Kafka release, from 0.8.0 to 4.0.
//!
//! A profile sets what a client can observe of a release:
//! - the API version table (APIs the release lacks are hidden, and a request for one closes
//!   the connection, as brokers of that time did; before 0.10 that includes ApiVersions);
//! - the message format served: magic 0 before 0.10, magic 1 on 0.10.x, record batches
//!   (magic 2) from 0.11. What is stored in a newer format is down-converted when read, and so
//!   is what an old Fetch version cannot carry (Fetch v0-1: magic 0, v2-3: magic 1), as a real
//!   broker does on the way out;
//! - ZooKeeper-backed offsets on 0.8.1 and 0.8.2: OffsetCommit and OffsetFetch v0 are
//!   answered by any broker (those releases kept v0 offsets in ZooKeeper, and 0.8.1 had no
//!   coordinator at all).
//!
//! The tables are the ranges each release's brokers advertise (for 0.10.0 and later, their
//! own ApiVersions answer; before that, what the release answered at all), limited to the APIs
//! the model implements. Release names: `0.8.0`, `0.8.1`, `0.8.2`, `0.9`, `0.10.0`, `0.10.1`,
//! `0.10.2`, `0.11`, `1`, `2`, `3`, `4` (trailing `.0` parts may be added, `0.9.0.1` reads as
//! `0.9.0`); profile `1` is 1.0, `2` is 2.0, `3` is 3.0 and `4` is 4.0 (the model's own ranges).

use kafkit_core::protocol::ApiKey;

use super::ClusterConfig;

/// `(api key, min, max)` ranges of one release.
type Ranges = &'static [(i16, i16, i16)];

/// A Kafka release the simulated cluster can imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The release's name as profiles spell it (`0.9`, `0.10.1`, `2`, ...).
    pub name: &'static str,
    /// Major, minor and patch of the release.
    pub version: (u16, u16, u16),
    /// The highest message magic its log holds (and its Fetch serves).
    pub message_format: i8,
    /// Whether OffsetCommit/OffsetFetch v0 are answered by any broker (ZooKeeper offsets).
    pub zookeeper_offsets: bool,
    /// The version table; `None` keeps the model's own (Kafka 4.0's).
    ranges: Option<Ranges>,
}

/// Every profile, oldest first.
pub const RELEASES: &[Release] = &[
    Release {
        name: "0.8.0",
        version: (0, 8, 0),
        message_format: 0,
        zookeeper_offsets: false,
        ranges: Some(&[(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)]),
    },
    Release {
        name: "0.8.1",
        version: (0, 8, 1),
        message_format: 0,
        zookeeper_offsets: true,
        ranges: Some(&[
            (0, 0, 0),
            (1, 0, 0),
            (2, 0, 0),
            (3, 0, 0),
            (8, 0, 0),
            (9, 0, 0),
        ]),
    },
    Release {
        name: "0.8.2",
        version: (0, 8, 2),
        message_format: 0,
        zookeeper_offsets: true,
        ranges: Some(&[
            (0, 0, 0),
            (1, 0, 0),
            (2, 0, 0),
            (3, 0, 0),
            (8, 0, 1),
            (9, 0, 1),
            (10, 0, 0),
        ]),
    },
    Release {
        name: "0.9",
        version: (0, 9, 0),
        message_format: 0,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 1),
            (1, 0, 1),
            (2, 0, 0),
            (3, 0, 0),
            (8, 0, 2),
            (9, 0, 1),
            (10, 0, 0),
            (11, 0, 0),
            (12, 0, 0),
            (13, 0, 0),
            (14, 0, 0),
            (15, 0, 0),
            (16, 0, 0),
        ]),
    },
    Release {
        name: "0.10.0",
        version: (0, 10, 0),
        message_format: 1,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 2),
            (1, 0, 2),
            (2, 0, 0),
            (3, 0, 1),
            (8, 0, 2),
            (9, 0, 1),
            (10, 0, 0),
            (11, 0, 0),
            (12, 0, 0),
            (13, 0, 0),
            (14, 0, 0),
            (15, 0, 0),
            (16, 0, 0),
            (17, 0, 0),
            (18, 0, 0),
        ]),
    },
    Release {
        name: "0.10.1",
        version: (0, 10, 1),
        message_format: 1,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 2),
            (1, 0, 3),
            (2, 0, 1),
            (3, 0, 2),
            (8, 0, 2),
            (9, 0, 1),
            (10, 0, 0),
            (11, 0, 1),
            (12, 0, 0),
            (13, 0, 0),
            (14, 0, 0),
            (15, 0, 0),
            (16, 0, 0),
            (17, 0, 0),
            (18, 0, 0),
            (19, 0, 0),
            (20, 0, 0),
        ]),
    },
    Release {
        name: "0.10.2",
        version: (0, 10, 2),
        message_format: 1,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 2),
            (1, 0, 3),
            (2, 0, 1),
            (3, 0, 2),
            (8, 0, 2),
            (9, 0, 2),
            (10, 0, 0),
            (11, 0, 1),
            (12, 0, 0),
            (13, 0, 0),
            (14, 0, 0),
            (15, 0, 0),
            (16, 0, 0),
            (17, 0, 0),
            (18, 0, 0),
            (19, 0, 1),
            (20, 0, 0),
        ]),
    },
    Release {
        name: "0.11",
        version: (0, 11, 0),
        message_format: 2,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 3),
            (1, 0, 5),
            (2, 0, 2),
            (3, 0, 4),
            (8, 0, 3),
            (9, 0, 3),
            (10, 0, 1),
            (11, 0, 2),
            (12, 0, 1),
            (13, 0, 1),
            (14, 0, 1),
            (15, 0, 1),
            (16, 0, 1),
            (17, 0, 0),
            (18, 0, 1),
            (19, 0, 2),
            (20, 0, 1),
            (21, 0, 0),
            (22, 0, 0),
            (23, 0, 0),
            (24, 0, 0),
            (25, 0, 0),
            (26, 0, 0),
            (28, 0, 0),
            (32, 0, 0),
            (33, 0, 0),
        ]),
    },
    Release {
        name: "1",
        version: (1, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 5),
            (1, 0, 6),
            (2, 0, 2),
            (3, 0, 5),
            (8, 0, 3),
            (9, 0, 3),
            (10, 0, 1),
            (11, 0, 2),
            (12, 0, 1),
            (13, 0, 1),
            (14, 0, 1),
            (15, 0, 1),
            (16, 0, 1),
            (17, 0, 1),
            (18, 0, 1),
            (19, 0, 2),
            (20, 0, 1),
            (21, 0, 0),
            (22, 0, 0),
            (23, 0, 0),
            (24, 0, 0),
            (25, 0, 0),
            (26, 0, 0),
            (28, 0, 0),
            (32, 0, 0),
            (33, 0, 0),
            (36, 0, 0),
            (37, 0, 0),
        ]),
    },
    Release {
        name: "2",
        version: (2, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 6),
            (1, 0, 8),
            (2, 0, 3),
            (3, 0, 6),
            (8, 0, 4),
            (9, 0, 4),
            (10, 0, 2),
            (11, 0, 3),
            (12, 0, 2),
            (13, 0, 2),
            (14, 0, 2),
            (15, 0, 2),
            (16, 0, 2),
            (17, 0, 1),
            (18, 0, 2),
            (19, 0, 3),
            (20, 0, 2),
            (21, 0, 1),
            (22, 0, 1),
            (23, 0, 1),
            (24, 0, 1),
            (25, 0, 1),
            (26, 0, 1),
            (28, 0, 1),
            (32, 0, 2),
            (33, 0, 1),
            (36, 0, 0),
            (37, 0, 1),
            (42, 0, 1),
        ]),
    },
    Release {
        name: "3",
        version: (3, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
        ranges: Some(&[
            (0, 0, 9),
            (1, 0, 12),
            (2, 0, 7),
            (3, 0, 11),
            (8, 0, 8),
            (9, 0, 8),
            (10, 0, 4),
            (11, 0, 7),
            (12, 0, 4),
            (13, 0, 4),
            (14, 0, 5),
            (15, 0, 5),
            (16, 0, 4),
            (17, 0, 1),
            (18, 0, 3),
            (19, 0, 7),
            (20, 0, 6),
            (21, 0, 2),
            (22, 0, 4),
            (23, 0, 4),
            (24, 0, 3),
            (25, 0, 3),
            (26, 0, 3),
            (28, 0, 3),
            (32, 0, 4),
            (33, 0, 2),
            (36, 0, 2),
            (37, 0, 3),
            (42, 0, 2),
            (44, 0, 1),
            (47, 0, 0),
            (60, 0, 0),
            (65, 0, 0),
            (66, 0, 0),
        ]),
    },
    Release {
        name: "4",
        version: (4, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
        ranges: None,
    },
];

/// A release name no profile has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Kafka release `{0}`: the simulated cluster knows {known}", known = known_names())]
pub struct UnknownRelease(pub String);

fn known_names() -> String {
    RELEASES
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `major.minor.patch` of `name`: one to four dot-separated numbers, missing ones 0, a fourth
/// (`0.9.0.1`) ignored.
fn parse(name: &str) -> Option<(u16, u16, u16)> {
    let parts: Vec<u16> = name
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [a] => Some((a, 0, 0)),
        [a, b] => Some((a, b, 0)),
        [a, b, c] | [a, b, c, _] => Some((a, b, c)),
        _ => None,
    }
}

impl Release {
    /// The profile named `name` (see the module docs for the spelling).
    pub fn named(name: &str) -> Result<Release, UnknownRelease> {
        let version = parse(name).ok_or_else(|| UnknownRelease(name.to_owned()))?;
        RELEASES
            .iter()
            .find(|r| r.version == version)
            .copied()
            .ok_or_else(|| UnknownRelease(name.to_owned()))
    }

    /// Applies the profile to `config`: the version table, message format and offset
    /// storage of this release.
    pub fn apply(&self, config: &mut ClusterConfig) {
        config.api_versions.clear();
        if let Some(ranges) = self.ranges {
            // With the overrides cleared, the table lists every API the model answers.
            let model: Vec<ApiKey> = config.version_table().into_keys().collect();
            for api in model {
                let range = ranges
                    .iter()
                    .find(|(k, _, _)| *k == api.as_i16())
                    .map(|&(_, min, max)| (min, max));
                config.api_versions.insert(api, range);
            }
        }
        config.message_format = self.message_format;
        config.zookeeper_offsets = self.zookeeper_offsets;
    }
}

impl ClusterConfig {
    /// The default configuration as Kafka release `name` (`"0.8.0"`, `"0.8.1"`, `"0.8.2"`,
    /// `"0.9"`, `"0.10.0"`, `"0.10.1"`, `"0.10.2"`, `"0.11"`, `"1"`, `"2"`, `"3"`, `"4"`;
    /// see [`Release`]). Unknown names are an error that lists the known ones.
    pub fn release(name: &str) -> Result<ClusterConfig, UnknownRelease> {
        ClusterConfig::default().with_release(name)
    }

    /// This configuration as Kafka release `name` (builder style): replaces the version
    /// overrides, the message format and the offset storage.
    pub fn with_release(mut self, name: &str) -> Result<ClusterConfig, UnknownRelease> {
        Release::named(name)?.apply(&mut self);
        Ok(self)
    }
}

/// The API keys the model answers, for tests of the profiles.
#[cfg(test)]
fn model_keys() -> Vec<ApiKey> {
    ClusterConfig::default()
        .version_table()
        .into_keys()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_refused() {
        assert_eq!(Release::named("0.9").unwrap().version, (0, 9, 0));
        assert_eq!(Release::named("0.9.0").unwrap().name, "0.9");
        assert_eq!(Release::named("0.9.0.1").unwrap().name, "0.9");
        assert_eq!(Release::named("2.0").unwrap().name, "2");
        assert_eq!(Release::named("0.10").unwrap().name, "0.10.0");
        for bad in ["0.7", "2.8", "", "x", "1.2.3.4.5", "0.10.3"] {
            let err = Release::named(bad).unwrap_err().to_string();
            assert!(err.contains("unknown Kafka release"), "{err}");
            assert!(err.contains("0.8.0, 0.8.1"), "{err}");
        }
    }

    #[test]
    fn profiles_set_their_tables() {
        let v = |name: &str| ClusterConfig::release(name).unwrap().version_table();
        let t = v("0.8.0");
        assert_eq!(t.len(), 4);
        assert!(!t.contains_key(&ApiKey::ApiVersions));
        assert!(!t.contains_key(&ApiKey::OffsetCommit));
        let t = v("0.9");
        assert_eq!(t.get(&ApiKey::Fetch), Some(&(0, 1)));
        assert_eq!(t.get(&ApiKey::JoinGroup), Some(&(0, 0)));
        assert!(!t.contains_key(&ApiKey::ApiVersions));
        let t = v("0.10.0");
        assert_eq!(t.get(&ApiKey::ApiVersions), Some(&(0, 0)));
        assert_eq!(t.get(&ApiKey::Produce), Some(&(0, 2)));
        assert_eq!(v("4"), ClusterConfig::default().version_table());
        // No profile advertises an API the model cannot answer.
        let keys = model_keys();
        for r in RELEASES {
            let c = ClusterConfig::release(r.name).unwrap();
            assert!(c.version_table().keys().all(|k| keys.contains(k)));
        }
        let c = ClusterConfig::release("0.8.1").unwrap();
        assert!(c.zookeeper_offsets);
        assert_eq!(c.message_format, 0);
        assert_eq!(ClusterConfig::release("0.10.2").unwrap().message_format, 1);
    }
}
