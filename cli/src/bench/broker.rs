//! The broker a benchmark runs against: kafkit's development broker or librdkafka's mock
//! cluster, both inside the `kafkit bench` process (so its CPU time is the parent's), or an
//! external cluster. Also topic creation and deletion, and filling a topic for `consume`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafkit_blocking::{Admin, Consumer, Producer};
use kafkit_core::admin::NewTopic;
use kafkit_core::config::{AdminConfig, ConsumerConfig};
use kafkit_core::consumer::{ConsumerError, TopicPartition};
use kafkit_core::producer::ProducerRecord;
use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};

use super::args::{BenchOpts, BrokerChoice};
use super::{kafkit_client, payloads};
use crate::args::GlobalArgs;
use crate::error::CliError;

enum Kind {
    /// Held so that the broker runs until the benchmark ends.
    Dev(#[allow(dead_code)] DevBroker),
    #[cfg(feature = "rdkafka")]
    Mock(rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
    External,
}

/// A broker and an admin client for it (none for the mock cluster, which has no admin API).
pub struct Broker {
    kind: Kind,
    bootstrap: String,
    admin: Option<Admin>,
    /// -b, -F and -X with the broker's bootstrap servers.
    global: GlobalArgs,
    topics: Cell<u32>,
}

fn admin(global: &GlobalArgs) -> Result<Admin, CliError> {
    let mut c = AdminConfig::default();
    kafkit_client::apply_global(global, |k, v| c.set(k, v))?;
    c.validate()?;
    Ok(Admin::start(&c)?.with_timeout(Duration::from_secs(30)))
}

impl Broker {
    /// The cluster -b/KAFKA_BOOTSTRAP named.
    pub fn external(global: &GlobalArgs) -> Result<Broker, CliError> {
        Ok(Broker {
            kind: Kind::External,
            bootstrap: global.bootstrap.clone(),
            admin: Some(admin(global)?),
            global: clone_global(global, &global.bootstrap),
            topics: Cell::new(0),
        })
    }

    /// Starts a broker in this process.
    pub fn start(choice: BrokerChoice, partitions: i32) -> Result<Broker, CliError> {
        match choice {
            BrokerChoice::Dev => {
                let mut config = DevBrokerConfig::new(1)
                    .host("127.0.0.1")
                    .port(0)
                    .partitions(partitions);
                // The benchmark reads back all it wrote: no retention limit (the model's
                // default, 64 MiB a partition, would drop the start of a run of more than
                // some 380 MB and leave `consume` waiting for records that are gone).
                config.cluster.retention_bytes = i64::MAX as u64;
                // Transaction protocol v2 (KIP-890), as a new Kafka 4.0 cluster finalizes it:
                // kafkit's transactional producer speaks it, librdkafka 2.12 keeps v1.
                config.cluster.transaction_version = 2;
                let dev = DevBroker::start(config).map_err(|e| {
                    CliError::Failed(format!("starting the development broker: {e}"))
                })?;
                let bootstrap = dev.bootstrap();
                Broker::local(Kind::Dev(dev), bootstrap, true)
            }
            #[cfg(feature = "rdkafka")]
            BrokerChoice::Mock => {
                let mock = rdkafka::mocking::MockCluster::new(1).map_err(|e| {
                    CliError::Failed(format!("starting librdkafka's mock cluster: {e}"))
                })?;
                let bootstrap = mock.bootstrap_servers();
                Broker::local(Kind::Mock(mock), bootstrap, false)
            }
            #[cfg(not(feature = "rdkafka"))]
            BrokerChoice::Mock => Err(super::no_rdkafka("--broker mock")),
        }
    }

    /// A broker in this process at `bootstrap`, used with no -F or -X options; with an admin
    /// client or not (the mock cluster has no admin API).
    fn local(kind: Kind, bootstrap: String, with_admin: bool) -> Result<Broker, CliError> {
        let global = GlobalArgs {
            bootstrap: bootstrap.clone(),
            options: Vec::new(),
            config_file: None,
        };
        Ok(Broker {
            kind,
            admin: if with_admin {
                Some(admin(&global)?)
            } else {
                None
            },
            bootstrap,
            global,
            topics: Cell::new(0),
        })
    }

    /// `dev`, `mock` or `external`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Dev(_) => "dev",
            #[cfg(feature = "rdkafka")]
            Kind::Mock(_) => "mock",
            Kind::External => "external",
        }
    }

    /// Whether the broker runs in this process (so its CPU time is this process's).
    pub fn in_process(&self) -> bool {
        !matches!(self.kind, Kind::External)
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a fresh topic and returns its name.
    pub fn new_topic(&self, partitions: i32) -> Result<String, CliError> {
        let n = self.topics.get() + 1;
        self.topics.set(n);
        let name = format!("kafkit-bench-{}-{n}", std::process::id());
        match &self.kind {
            #[cfg(feature = "rdkafka")]
            Kind::Mock(mock) => mock
                .create_topic(&name, partitions, 1)
                .map_err(|e| CliError::Failed(format!("creating topic {name}: {e}")))?,
            _ => {
                let admin = self.admin.as_ref().expect("an admin client");
                let mut topic = NewTopic::with_defaults(name.clone());
                topic.num_partitions = Some(partitions);
                let results = admin
                    .create_topics(vec![topic], false)
                    .map_err(|e| CliError::Failed(format!("creating topic {name}: {e}")))?;
                if let Some(Err(e)) = results.get(&name) {
                    return Err(CliError::Failed(format!("creating topic {name}: {e}")));
                }
            }
        }
        Ok(name)
    }

    /// Deletes a benchmark topic (so a long run does not fill the broker's memory); failures
    /// are only reported.
    pub fn delete_topic(&self, name: &str) {
        if let Some(admin) = &self.admin {
            let failed = match admin.delete_topics(vec![name.to_owned()]) {
                Ok(r) => r
                    .get(name)
                    .and_then(|r| r.as_ref().err())
                    .map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = failed {
                eprintln!("kafkit bench: warning: deleting topic {name}: {e}");
            }
        }
    }

    /// Writes `records` records of the benchmark's size into `topic` with kafkit (untimed).
    pub fn fill(&self, topic: &str, records: u64, opts: &BenchOpts) -> Result<(), CliError> {
        let config = kafkit_client::producer_config(&self.global, opts)?;
        let producer =
            Producer::start(&config).map_err(|e| CliError::Failed(format!("filling: {e}")))?;
        let failed = Arc::new(AtomicU64::new(0));
        let pool = payloads(opts.size as usize);
        let topic: Arc<str> = Arc::from(topic);
        for i in 0..records {
            let record =
                ProducerRecord::new(topic.clone()).value(pool[(i as usize) % pool.len()].clone());
            let failed = failed.clone();
            producer
                .send_with_callback(record, move |r| {
                    if r.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .map_err(|e| CliError::Failed(format!("filling: {e}")))?;
        }
        producer
            .flush(None)
            .map_err(|e| CliError::Failed(format!("filling: {e}")))?;
        let _ = producer.close(Some(Duration::from_secs(10)));
        if let n @ 1.. = failed.load(Ordering::Relaxed) {
            return Err(CliError::Failed(format!(
                "filling {topic}: {n} records failed"
            )));
        }
        let available = self.available(&topic)?;
        if available < records {
            return Err(CliError::Failed(format!(
                "{topic} keeps only {available} of the {records} records written (the broker \
                 dropped the oldest: librdkafka's mock cluster keeps about 30 MB per topic); \
                 consume fewer --records"
            )));
        }
        Ok(())
    }

    /// Records between the beginning and the end of every partition of `topic`.
    fn available(&self, topic: &str) -> Result<u64, CliError> {
        let mut c = ConsumerConfig::default();
        kafkit_client::apply_global(&self.global, |k, v| c.set(k, v))?;
        let fail = |e: ConsumerError| CliError::Failed(format!("offsets of {topic}: {e}"));
        let consumer = Consumer::start(&c).map_err(|e| CliError::Failed(e.to_string()))?;
        let tps: Vec<TopicPartition> = consumer
            .partitions_for_topic(topic)
            .map_err(fail)?
            .unwrap_or_default()
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect();
        let start = consumer.beginning_offsets(&tps).map_err(fail)?;
        let end = consumer.end_offsets(&tps).map_err(fail)?;
        Ok(tps
            .iter()
            .map(|tp| {
                let s = start.get(tp).copied().unwrap_or(0);
                let e = end.get(tp).copied().unwrap_or(0);
                (e - s).max(0) as u64
            })
            .sum())
    }
}

fn clone_global(global: &GlobalArgs, bootstrap: &str) -> GlobalArgs {
    GlobalArgs {
        bootstrap: bootstrap.to_owned(),
        options: global.options.clone(),
        config_file: global.config_file.clone(),
    }
}
