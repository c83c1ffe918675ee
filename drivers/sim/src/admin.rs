//! The admin client in the simulation: the very [`AdminCore`] the drivers run, against the
//! simulated cluster on virtual time.
//!
//! [`admin_core`] builds a core for a simulated cluster (its brokers as bootstrap, a seed),
//! for simulations set up by hand. [`AdminSim`] is the whole set-up in one value: a cluster, a
//! simulation and an admin core whose calls run the simulation until they complete.
//!
//! ```
//! use kafkit_core::admin::{AdminCore, AdminOutcome, NewTopic};
//! use kafkit_core::config::AdminConfig;
//! use kafkit_sim::{AdminSim, ClusterConfig};
//!
//! let mut a = AdminSim::new(ClusterConfig::default(), &AdminConfig::default(), 7)?;
//! let outcome = a.call(|core: &mut AdminCore, op, now| {
//!     core.create_topics(op, vec![NewTopic::new("orders", 3, 1)], false, None, now)
//! })?;
//! let AdminOutcome::Topics(results) = outcome else { unreachable!() };
//! assert!(results["orders"].is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use kafkit_core::admin::{AdminCore, AdminEvent, AdminOutcome, OpId};
use kafkit_core::config::AdminConfig;
use kafkit_core::network::{NetOptions, SetupError};

use crate::{serve_cluster, Cluster, ClusterConfig, SimError, Simulation};

/// An [`AdminCore`] for the simulated `cluster`: `config` with the cluster's brokers as
/// bootstrap servers (whatever `bootstrap_servers` says) and every random choice from `seed`.
pub fn admin_core(
    config: &AdminConfig,
    cluster: &Cluster,
    seed: u64,
) -> Result<AdminCore, SetupError> {
    let env = crate::sim_env(seed);
    let mut opts = NetOptions::from_config(&config.common, &env)?;
    opts.bootstrap = cluster
        .brokers()
        .iter()
        .map(|b| (b.host.clone(), b.port as u16))
        .collect();
    opts.seed = seed;
    Ok(AdminCore::new(config, opts))
}

/// A simulated cluster with one admin client on it, on virtual time. Everything replays from
/// the seed.
pub struct AdminSim {
    sim: Simulation<AdminCore>,
    cluster: Rc<RefCell<Cluster>>,
    done: Vec<(OpId, AdminOutcome)>,
    closed: bool,
    last_op: u64,
}

impl std::fmt::Debug for AdminSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSim")
            .field("seed", &self.sim.seed())
            .field("elapsed", &self.sim.elapsed())
            .finish_non_exhaustive()
    }
}

impl AdminSim {
    /// A cluster as `cluster` describes (its own seed replaced by `seed`) and an admin client
    /// as `admin` describes (see [`admin_core`]), with default links.
    pub fn new(
        mut cluster: ClusterConfig,
        admin: &AdminConfig,
        seed: u64,
    ) -> Result<AdminSim, SetupError> {
        let start = Instant::now();
        cluster.seed = seed;
        let cluster = Rc::new(RefCell::new(Cluster::new(cluster, start)));
        let core = admin_core(admin, &cluster.borrow(), seed)?;
        let mut sim = Simulation::new(core, seed, start);
        serve_cluster(&mut sim, &cluster);
        Ok(AdminSim {
            sim,
            cluster,
            done: Vec::new(),
            closed: false,
            last_op: 0,
        })
    }

    /// The simulation, for faults (`drop_connections`, `partition`, ...) and virtual time.
    pub fn sim(&mut self) -> &mut Simulation<AdminCore> {
        &mut self.sim
    }

    /// The cluster, for faults (crashes, leader moves, hooks) and for checking its state.
    pub fn cluster(&self) -> &Rc<RefCell<Cluster>> {
        &self.cluster
    }

    /// Starts a call now (`start` gets the core, a fresh [`OpId`] and the virtual time) and
    /// returns its id; [`AdminSim::wait`] runs until it completes.
    pub fn start(&mut self, start: impl FnOnce(&mut AdminCore, OpId, Instant)) -> OpId {
        self.last_op += 1;
        let id = OpId(self.last_op);
        let now = self.sim.now();
        start(self.sim.core(), id, now);
        self.sim.drain();
        id
    }

    /// Runs the simulation until call `id` completes and returns its outcome.
    ///
    /// # Panics
    /// If the simulation goes idle first: every call completes by its deadline, so that is a
    /// bug in the core.
    pub fn wait(&mut self, id: OpId) -> Result<AdminOutcome, SimError> {
        let finished = self.run_until(|done, _| done.iter().any(|(d, _)| *d == id))?;
        let pos = self.done.iter().position(|(d, _)| *d == id);
        match pos {
            Some(i) => Ok(self.done.remove(i).1),
            None => panic!(
                "simulation (seed {}) went idle before admin call {id:?} completed (finished: {finished})",
                self.sim.seed()
            ),
        }
    }

    /// Starts a call and runs until it completes.
    pub fn call(
        &mut self,
        start: impl FnOnce(&mut AdminCore, OpId, Instant),
    ) -> Result<AdminOutcome, SimError> {
        let id = self.start(start);
        self.wait(id)
    }

    /// Closes the admin client gracefully ([`AdminCore::close`] with `timeout`) and runs
    /// until it reports [`AdminEvent::Closed`]; the calls completed meanwhile are kept for
    /// [`AdminSim::wait`]. Returns whether it closed before the simulation went idle.
    pub fn close(&mut self, timeout: std::time::Duration) -> Result<bool, SimError> {
        let now = self.sim.now();
        self.sim.core().close(timeout, now);
        self.sim.drain();
        self.run_until(|_, closed| closed)?;
        Ok(self.closed)
    }

    /// Whether the admin client reported [`AdminEvent::Closed`].
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The admin client's metrics at the current virtual time.
    pub fn metrics(&mut self) -> kafkit_core::admin::AdminMetrics {
        let now = self.sim.now();
        self.sim.core().metrics(now)
    }

    /// Runs until `stop` (over the completions so far and whether the client closed) holds
    /// or the simulation goes idle; returns whether `stop` held.
    fn run_until(
        &mut self,
        mut stop: impl FnMut(&[(OpId, AdminOutcome)], bool) -> bool,
    ) -> Result<bool, SimError> {
        let done = &mut self.done;
        let closed = &mut self.closed;
        self.sim.run_until(|s| {
            for event in s.take_events() {
                match event {
                    AdminEvent::Completed { id, outcome } => done.push((id, outcome)),
                    AdminEvent::Closed => *closed = true,
                }
            }
            stop(done, *closed)
        })
    }
}
