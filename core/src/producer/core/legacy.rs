//! Brokers before Kafka 0.11: which message format each broker takes, and the idempotent
//! producer's fallback where no broker can serve it.
//!
//! - Format: a broker's Produce version decides it (v3+: record batches, magic 2; v2,
//!   Kafka 0.10: magic 1 message sets with timestamps; v0-v1, Kafka 0.8-0.9: magic 0). New
//!   batches are opened in the oldest format among the brokers met so far (Java's
//!   `ApiVersions.maxUsableProduceMagic`), re-checked when metadata arrives, and each batch is
//!   rewritten for its broker when it is sent if that one takes another format.
//! - Idempotence (and transactions) need InitProducerId, which came with 0.11. Left at its
//!   default, idempotence turns itself off against a broker without it, with one warning
//!   naming the broker, as Java's producer does; asked for (`enable_idempotence=true` or a
//!   `transactional_id`), the producer fails at once (its records and calls fail with the
//!   reason) instead of waiting for an id that never comes.
//! - zstd needs Produce v7 (Kafka 2.1), lz4 Kafka 0.8.2: against an older broker the batches
//!   fail with the broker's version instead of being refused by it.

use std::time::Instant;

use super::ProducerCore;
use crate::compression::Compression;
use crate::network::{ApiVersionTable, BrokerVersion, NetError, NodeId};
use crate::producer::batch::magic_for_produce_version;
use crate::producer::error::ProduceError;
use crate::protocol::ApiKey;
use crate::records::MAGIC_V2;

/// The first Produce version that may carry zstd batches (Kafka 2.1, KIP-110).
const ZSTD_PRODUCE_VERSION: i16 = 7;
/// The first release that reads lz4 (KAFKA-1493).
const LZ4_RELEASE: BrokerVersion = BrokerVersion::new(0, 8, 2);

impl ProducerCore {
    /// The highest Produce version this producer would use with a broker of `table`.
    fn produce_version(&self, table: &ApiVersionTable) -> Option<i16> {
        let cap = self.txn.as_ref().map(|t| t.produce_max_version());
        table.negotiate(ApiKey::Produce, cap)
    }

    /// Opens new batches in the oldest format among the brokers met so far (record batches
    /// until one is known). Called when metadata arrives, before records waiting for it are
    /// placed.
    pub(super) fn refresh_format(&mut self) {
        let magic = self
            .net
            .known_version_tables()
            .filter_map(|t| self.produce_version(t))
            .map(magic_for_produce_version)
            .min()
            .unwrap_or(MAGIC_V2);
        if magic != self.acc.magic() {
            tracing::debug!(magic, "producer: batches written in this message format");
            self.acc.set_magic(magic);
        }
    }

    /// The broker's label and release guess, for errors.
    fn broker_named(&self, node: NodeId) -> String {
        let label = self
            .net
            .cluster()
            .brokers
            .get(&node)
            .map(|b| format!("{}:{} (node {node})", b.host, b.port))
            .unwrap_or_else(|| format!("node {node}"));
        match self.net.broker_versions(node) {
            Some((version, _)) => format!("{label}, Kafka {version}"),
            None => label,
        }
    }

    /// The message format `node` takes (its magic), or why it can take none of ours: no
    /// Produce version in common, zstd before Produce v7, or idempotence before 0.11.
    pub(super) fn produce_format(&mut self, node: NodeId) -> Result<i8, NetError> {
        let Some((release, table)) = self.net.broker_versions(node) else {
            // Versions are known once a connection is ready; until then, as opened.
            return Ok(self.acc.magic());
        };
        let unsupported = |this: &Self, detail: String| NetError::Unsupported {
            api: ApiKey::Produce,
            broker: this.broker_named(node),
            detail,
        };
        let Some(version) = self.produce_version(&table) else {
            let (lo, hi) = ApiKey::Produce.request_versions();
            let theirs = table
                .broker_range(ApiKey::Produce)
                .map_or("none".to_owned(), |(a, b)| format!("v{a}-v{b}"));
            return Err(unsupported(
                self,
                format!("kafkit speaks Produce v{lo}-v{hi}, the broker {theirs}"),
            ));
        };
        if self.acc.compression() == Compression::Zstd && version < ZSTD_PRODUCE_VERSION {
            return Err(unsupported(
                self,
                format!(
                    "zstd compression needs Produce v{ZSTD_PRODUCE_VERSION} (Kafka 2.1 or \
                     later); the broker speaks up to v{version}: choose gzip, snappy or lz4"
                ),
            ));
        }
        if self.acc.compression() == Compression::Lz4 && release < LZ4_RELEASE {
            // Produce v0 is the same from 0.8.0 to 0.8.2: only the release tells whether the
            // broker can read lz4 (kafka-python refuses it the same way).
            return Err(unsupported(
                self,
                format!(
                    "lz4 compression needs Kafka 0.8.2 or later; the broker is Kafka {}: choose \
                     gzip or snappy",
                    crate::network::release_name(release)
                ),
            ));
        }
        let magic = magic_for_produce_version(version);
        if magic < MAGIC_V2 && (self.idem.is_some() || self.txn.is_some()) {
            // Reached only in a cluster mixing releases (the check at start found every
            // broker met then able): sequences cannot be written into a legacy message.
            return Err(unsupported(self, IDEMPOTENCE_NEEDS.to_owned()));
        }
        if magic < self.acc.magic() {
            self.acc.set_magic(magic);
        }
        Ok(magic)
    }

    /// A broker met so far that cannot serve the idempotent producer, and its release.
    fn broker_without_producer_ids(&self) -> Option<String> {
        self.net
            .known_version_tables()
            .find(|t| t.broker_range(ApiKey::InitProducerId).is_none())
            .map(|t| format!("Kafka {}", t.guess_broker_version()))
    }

    /// Checks, while the producer still waits for its first producer id, that the brokers
    /// met so far can give one. Where one cannot: idempotence left at its default turns
    /// off (one warning, as Java's producer logs it); asked for, the producer fails with
    /// the reason. `seen` is an InitProducerId the network refused as unsupported, when
    /// that is what prompted the check.
    pub(super) fn check_producer_id_support(&mut self, seen: Option<&NetError>, now: Instant) {
        let Some(idem) = &self.idem else { return };
        if idem.is_bump() || self.fatal.is_some() {
            return;
        }
        let release = match (self.broker_without_producer_ids(), seen) {
            (Some(r), _) => r,
            (None, Some(NetError::Unsupported { broker, .. })) => broker.clone(),
            (None, _) => return,
        };
        let asked = self.config.enable_idempotence == Some(true) || self.txn.is_some();
        if asked {
            let what = if self.txn.is_some() {
                "transactions (transactional_id)"
            } else {
                "enable_idempotence=true"
            };
            let e = ProduceError::Fatal(format!(
                "{IDEMPOTENCE_NEEDS}: the broker is {release}, and {what} asks for it"
            ));
            self.go_fatal(e, now);
            return;
        }
        tracing::warn!(
            "kafkit producer: idempotence is off: {IDEMPOTENCE_NEEDS} (the broker is \
             {release}); set enable_idempotence=false to say so"
        );
        self.idem = None;
        self.init_request = None;
        // Without idempotence, order across retries holds only with one request in flight,
        // as the accumulator then arranges (see `ProducerCore::new`).
        self.acc.set_guarantee_order(self.max_in_flight == 1);
        self.refresh_format();
    }
}

/// What a broker before 0.11 lacks for the idempotent producer.
const IDEMPOTENCE_NEEDS: &str = "the broker does not support idempotent producing (no \
     InitProducerId; Kafka 0.11 or later needed)";
