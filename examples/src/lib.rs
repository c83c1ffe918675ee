//! What the examples under `examples/` share: where the cluster comes from.
//!
//! Every example that talks to a cluster calls [`cluster`] (or [`cluster_with`]): the
//! cluster `KAFKA_BOOTSTRAP` names, or else kafkit's development broker started in this
//! process (three in-memory brokers on free localhost ports, serving the Kafka protocol over
//! TCP) for as long as the returned [`Cluster`] lives. So `cargo run -p kafkit-examples
//! --example NAME` needs nothing installed, and `KAFKA_BOOTSTRAP=host:9092 cargo run ...` runs
//! the same program against a real Kafka.

use kafkit::sim::{DevBroker, DevBrokerConfig};

/// The error type of the examples' `main`s.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The cluster an example runs against. Keep it alive as long as the clients: dropping it
/// stops the development broker, if one was started.
#[derive(Debug)]
pub struct Cluster {
    bootstrap: String,
    /// Whether the bootstrap came from `KAFKA_BOOTSTRAP`.
    external: bool,
    _broker: Option<DevBroker>,
}

impl Cluster {
    /// `host:port[,host:port...]`, for `bootstrap_servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Whether this is a cluster named by `KAFKA_BOOTSTRAP` rather than the development broker
    /// (an existing cluster may hold records of earlier runs).
    pub fn is_external(&self) -> bool {
        self.external
    }
}

/// The cluster in `KAFKA_BOOTSTRAP`, or a development broker of three brokers. Prints which.
pub fn cluster() -> Result<Cluster, Error> {
    cluster_with(|_| {})
}

/// [`cluster`], with `configure` applied to the development broker's settings first (it is
/// not called for a cluster from `KAFKA_BOOTSTRAP`).
pub fn cluster_with(configure: impl FnOnce(&mut DevBrokerConfig)) -> Result<Cluster, Error> {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => {
            println!("cluster: {b} (from KAFKA_BOOTSTRAP)");
            Ok(Cluster {
                bootstrap: b,
                external: true,
                _broker: None,
            })
        }
        _ => {
            let mut config = DevBrokerConfig::new(3).port(0);
            configure(&mut config);
            let broker = DevBroker::start(config)
                .map_err(|e| format!("cannot start the development broker: {e}"))?;
            let bootstrap = broker.bootstrap();
            println!("cluster: kafkit's development broker, 3 brokers at {bootstrap}");
            Ok(Cluster {
                bootstrap,
                external: false,
                _broker: Some(broker),
            })
        }
    }
}

/// A name unique to this run (`prefix-<millis since the epoch>-<pid>`), for topics and groups
/// that must not meet an earlier run's on an existing cluster.
pub fn unique(prefix: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{prefix}-{millis}-{}", std::process::id())
}
