//! Admin metrics: calls completed and failed items per call kind, beside the network
//! layer's per-API request counts, errors and latencies.
//!
//! The Java admin client reports only its network metrics (`admin-client-metrics`,
//! `admin-client-node-metrics`); kafkit adds the per-call counts in `admin-client-metrics`
//! tagged `call`: `call-total` (calls completed) and `call-error-total` (items of those calls
//! that failed: a `create_topics` of three topics, one of which exists, counts one).

use std::collections::BTreeMap;
use std::time::Instant;

use super::AdminOutcome;
use crate::network::metrics::{Client, MetricSample, NetworkMetrics, Samples};

/// Per call kind, as recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct CallMetrics {
    /// `call-total`: calls of this kind completed (successfully or not).
    pub call_total: f64,
    /// `call-error-total`: items of those calls that failed.
    pub call_error_total: f64,
}

/// A snapshot of the admin client's metrics (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AdminMetrics {
    /// Per call kind: `create_topics`, `describe_configs`, ... (the outcome's kind: the three
    /// topic calls count as `topics`, see [`AdminOutcome`]).
    pub calls: BTreeMap<&'static str, CallMetrics>,
    /// Calls completed in all.
    pub call_total: f64,
    /// Failed items in all.
    pub call_error_total: f64,
    /// The network layer's metrics: requests, responses, network errors and latency per
    /// API in [`NetworkMetrics::apis`].
    pub network: NetworkMetrics,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct AdminRecorder {
    calls: BTreeMap<&'static str, CallMetrics>,
}

impl AdminRecorder {
    pub(crate) fn completed(&mut self, outcome: &AdminOutcome) {
        let (kind, errors) = tally(outcome);
        let c = self.calls.entry(kind).or_default();
        c.call_total += 1.0;
        c.call_error_total += errors as f64;
    }

    pub(crate) fn snapshot(&self, network: NetworkMetrics, _now: Instant) -> AdminMetrics {
        AdminMetrics {
            call_total: self.calls.values().map(|c| c.call_total).sum(),
            call_error_total: self.calls.values().map(|c| c.call_error_total).sum(),
            calls: self.calls.clone(),
            network,
        }
    }
}

/// The call kind of an outcome and how many of its items failed.
fn tally(outcome: &AdminOutcome) -> (&'static str, usize) {
    fn many<K, V, E>(m: &BTreeMap<K, Result<V, E>>) -> usize {
        m.values().filter(|r| r.is_err()).count()
    }
    fn one<V, E>(r: &Result<V, E>) -> usize {
        usize::from(r.is_err())
    }
    match outcome {
        AdminOutcome::Topics(m) => ("topics", many(m)),
        AdminOutcome::Configs(m) => ("describe_configs", many(m)),
        AdminOutcome::Altered(m) => ("alter_configs", many(m)),
        AdminOutcome::TopicListing(r) => ("list_topics", one(r)),
        AdminOutcome::TopicDescriptions(m) => ("describe_topics", many(m)),
        AdminOutcome::Cluster(r) => ("describe_cluster", one(r)),
        AdminOutcome::GroupListing(r) => ("list_consumer_groups", one(r)),
        AdminOutcome::GroupDescriptions(m) => ("describe_consumer_groups", many(m)),
        AdminOutcome::Groups(m) => ("delete_consumer_groups", many(m)),
        AdminOutcome::GroupOffsets(r) => ("list_consumer_group_offsets", one(r)),
        AdminOutcome::Partitions(m) => ("consumer_group_offsets", many(m)),
        AdminOutcome::DeletedRecords(m) => ("delete_records", many(m)),
        AdminOutcome::LogDirs(m) => ("describe_log_dirs", many(m)),
        AdminOutcome::Acls(r) => ("describe_acls", one(r)),
        AdminOutcome::CreatedAcls(m) => ("create_acls", many(m)),
        AdminOutcome::DeletedAcls(m) => ("delete_acls", many(m)),
        AdminOutcome::TransactionDescriptions(m) => ("describe_transactions", many(m)),
        AdminOutcome::TransactionListing(r) => ("list_transactions", one(r)),
    }
}

impl AdminMetrics {
    /// Every measurement as a [`MetricSample`] (`admin-client-metrics` and the network
    /// layer's `admin-client-*` groups).
    pub fn samples(&self) -> Vec<MetricSample> {
        const A: &str = "admin-client-metrics";
        let mut s = Samples::new(&self.network.client_id);
        for (kind, c) in &self.calls {
            let l = [("call", (*kind).to_owned())];
            s.counter(A, "call-total", "Admin calls completed.", &l, c.call_total);
            s.counter(
                A,
                "call-error-total",
                "Items of admin calls that failed.",
                &l,
                c.call_error_total,
            );
        }
        self.network.add_samples(Client::Admin, &[], &mut s);
        s.out
    }

    /// The snapshot in Prometheus' text format (`kafka_admin_client_call_total`, ...).
    pub fn to_prometheus(&self) -> String {
        crate::network::metrics::to_prometheus(&self.samples())
    }

    /// Publishes the snapshot through the `metrics` crate's recorder (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub fn publish(&self) {
        crate::network::metrics::publish(&self.samples());
    }
}
