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
//! The tables are the core's ([`kafkit_core::network::releases::RELEASE_APIS`], the one
//! source the client's fixed tables and pins also use): the ranges each release's brokers
//! advertise, limited here to the APIs the model implements; profile `4` keeps the model's
//! own table (Kafka 4.0's, which the core's table has no entry for). Release names: `0.8.0`, `0.8.1`, `0.8.2`, `0.9`, `0.10.0`, `0.10.1`,
//! `0.10.2`, `0.11`, `1`, `2`, `3`, `4` (trailing `.0` parts may be added, `0.9.0.1` reads as
//! `0.9.0`); profile `1` is 1.0, `2` is 2.0, `3` is 3.0 and `4` is 4.0 (the model's own ranges).

use kafkit_core::network::releases::{release_apis, ApiRanges};
use kafkit_core::network::BrokerVersion;
use kafkit_core::protocol::ApiKey;

use super::ClusterConfig;

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
}

/// Every profile, oldest first.
pub const RELEASES: &[Release] = &[
    Release {
        name: "0.8.0",
        version: (0, 8, 0),
        message_format: 0,
        zookeeper_offsets: false,
    },
    Release {
        name: "0.8.1",
        version: (0, 8, 1),
        message_format: 0,
        zookeeper_offsets: true,
    },
    Release {
        name: "0.8.2",
        version: (0, 8, 2),
        message_format: 0,
        zookeeper_offsets: true,
    },
    Release {
        name: "0.9",
        version: (0, 9, 0),
        message_format: 0,
        zookeeper_offsets: false,
    },
    Release {
        name: "0.10.0",
        version: (0, 10, 0),
        message_format: 1,
        zookeeper_offsets: false,
    },
    Release {
        name: "0.10.1",
        version: (0, 10, 1),
        message_format: 1,
        zookeeper_offsets: false,
    },
    Release {
        name: "0.10.2",
        version: (0, 10, 2),
        message_format: 1,
        zookeeper_offsets: false,
    },
    Release {
        name: "0.11",
        version: (0, 11, 0),
        message_format: 2,
        zookeeper_offsets: false,
    },
    Release {
        name: "1",
        version: (1, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
    },
    Release {
        name: "2",
        version: (2, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
    },
    Release {
        name: "3",
        version: (3, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
    },
    Release {
        name: "4",
        version: (4, 0, 0),
        message_format: 2,
        zookeeper_offsets: false,
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

    /// The release's API version ranges from the core's table; `None` for 4.0 (the model's
    /// own table).
    pub fn ranges(&self) -> Option<ApiRanges> {
        let (major, minor, patch) = self.version;
        release_apis(BrokerVersion::new(major, minor, patch))
    }

    /// Applies the profile to `config`: the version table, message format and offset
    /// storage of this release.
    pub fn apply(&self, config: &mut ClusterConfig) {
        config.api_versions.clear();
        if let Some(ranges) = self.ranges() {
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
        // Every profile but 4.0 has the core's table, and the core's table has no release
        // without a profile.
        for r in RELEASES {
            assert_eq!(r.ranges().is_none(), r.name == "4", "{}", r.name);
        }
        for entry in kafkit_core::network::releases::RELEASE_APIS {
            let v = entry.version;
            assert!(
                RELEASES
                    .iter()
                    .any(|r| r.version == (v.major, v.minor, v.patch)),
                "{v}"
            );
        }
        let c = ClusterConfig::release("0.8.1").unwrap();
        assert!(c.zookeeper_offsets);
        assert_eq!(c.message_format, 0);
        assert_eq!(ClusterConfig::release("0.10.2").unwrap().message_format, 1);
    }
}
