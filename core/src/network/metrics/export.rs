//! Rendering snapshots for monitoring systems: every snapshot lists its measurements as
//! [`MetricSample`]s (Java's group and metric name plus labels), which render as Prometheus
//! text ([`to_prometheus`]) or, with the `metrics` feature, go to the `metrics` crate's
//! global recorder ([`publish`]).

use std::fmt::Write as _;

/// Whether a measurement only grows (a Prometheus counter, a `metrics` counter) or moves
/// both ways (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A running total since the client started (Java's `*-total` metrics).
    Counter,
    /// A value at the time of the snapshot: a rate, an average, a maximum, a level.
    Gauge,
}

/// One measurement of a snapshot, named as the Java client names it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// Java's metric group, e.g. `consumer-fetch-manager-metrics`.
    pub group: &'static str,
    /// Java's metric name, e.g. `records-lag-max`.
    pub name: &'static str,
    /// What it measures.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Labels (Java's tags): `client_id` always; `topic`, `partition`, `node_id` or `api`
    /// where the measurement is about one of them.
    pub labels: Vec<(&'static str, String)>,
    /// The value; NaN for an average or maximum with nothing measured in the window, as
    /// Java reports it.
    pub value: f64,
}

impl MetricSample {
    /// The flat name used by both exporters: `kafka_`, the group without its `-metrics`
    /// suffix, then the metric name, dashes turned into underscores
    /// (`kafka_consumer_fetch_manager_records_lag_max`).
    pub fn flat_name(&self) -> String {
        let group = self.group.strip_suffix("-metrics").unwrap_or(self.group);
        format!("kafka_{group}_{}", self.name).replace(['-', '.'], "_")
    }
}

/// Collects samples; the snapshot types fill one each.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    pub(crate) out: Vec<MetricSample>,
    client_id: String,
}

impl Samples {
    pub(crate) fn new(client_id: &str) -> Self {
        Samples {
            out: Vec::new(),
            client_id: client_id.to_owned(),
        }
    }

    fn push(
        &mut self,
        kind: MetricKind,
        group: &'static str,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, String)],
        value: f64,
    ) {
        let mut all = Vec::with_capacity(labels.len() + 1);
        all.push(("client_id", self.client_id.clone()));
        all.extend(labels.iter().cloned());
        self.out.push(MetricSample {
            group,
            name,
            help,
            kind,
            labels: all,
            value,
        });
    }

    pub(crate) fn gauge(
        &mut self,
        group: &'static str,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, String)],
        value: f64,
    ) {
        self.push(MetricKind::Gauge, group, name, help, labels, value);
    }

    pub(crate) fn counter(
        &mut self,
        group: &'static str,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, String)],
        value: f64,
    ) {
        self.push(MetricKind::Counter, group, name, help, labels, value);
    }
}

/// Prometheus' text exposition format (version 0.0.4) of `samples`: one `# HELP` and
/// `# TYPE` line per metric family, its samples together, label values escaped.
pub fn to_prometheus(samples: &[MetricSample]) -> String {
    // Families in order of first appearance, each with its samples (a family's samples must
    // be contiguous in the format).
    let mut families: Vec<(String, &MetricSample, Vec<&MetricSample>)> = Vec::new();
    for s in samples {
        let name = s.flat_name();
        match families.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, list)) => list.push(s),
            None => families.push((name, s, vec![s])),
        }
    }
    let mut text = String::new();
    for (name, first, list) in families {
        let kind = match first.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        let _ = writeln!(text, "# HELP {name} {}", first.help);
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for s in list {
            text.push_str(&name);
            if !s.labels.is_empty() {
                text.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    let _ = write!(text, "{k}=\"{}\"", escape(v));
                }
                text.push('}');
            }
            let _ = writeln!(text, " {}", number(s.value));
        }
    }
    text
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Hands `samples` to the `metrics` crate's global recorder under their
/// [flat names](MetricSample::flat_name) and labels: counters with `absolute` (the snapshot
/// holds running totals), gauges with `set`. Call it whenever the measurements should be
/// exported, e.g. every few seconds beside the exporter's scrape interval.
#[cfg(feature = "metrics")]
pub fn publish(samples: &[MetricSample]) {
    for s in samples {
        let labels: Vec<metrics::Label> = s
            .labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, v.clone()))
            .collect();
        let name = s.flat_name();
        match s.kind {
            MetricKind::Counter => {
                // Totals are whole numbers kept as f64 in the snapshots; NaN never occurs.
                metrics::counter!(name, labels).absolute(s.value.max(0.0) as u64);
            }
            MetricKind::Gauge => metrics::gauge!(name, labels).set(s.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_groups_families_and_escapes_labels() {
        let mut s = Samples::new("app \"1\"");
        s.gauge(
            "consumer-fetch-manager-metrics",
            "records-lag",
            "lag",
            &[("topic", "t".into()), ("partition", "0".into())],
            3.0,
        );
        s.counter(
            "consumer-metrics",
            "connection-creation-total",
            "c",
            &[],
            2.0,
        );
        s.gauge(
            "consumer-fetch-manager-metrics",
            "records-lag",
            "lag",
            &[("topic", "t".into()), ("partition", "1".into())],
            f64::NAN,
        );
        let text = to_prometheus(&s.out);
        assert_eq!(
            text,
            "# HELP kafka_consumer_fetch_manager_records_lag lag\n\
             # TYPE kafka_consumer_fetch_manager_records_lag gauge\n\
             kafka_consumer_fetch_manager_records_lag{client_id=\"app \\\"1\\\"\",topic=\"t\",partition=\"0\"} 3\n\
             kafka_consumer_fetch_manager_records_lag{client_id=\"app \\\"1\\\"\",topic=\"t\",partition=\"1\"} NaN\n\
             # HELP kafka_consumer_connection_creation_total c\n\
             # TYPE kafka_consumer_connection_creation_total counter\n\
             kafka_consumer_connection_creation_total{client_id=\"app \\\"1\\\"\"} 2\n"
        );
    }
}
