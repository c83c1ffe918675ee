use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::network::{ClientCore, CloseReason, ConnId, Output, Rng};

/// A simulated server: gets the bytes clients write and answers with bytes of its own.
pub trait Endpoint {
    /// A client connected; return false to refuse the connection.
    fn accept(&mut self, conn: u64, now: Instant) -> bool;
    /// Bytes arrived on `conn`; return the bytes to send back (possibly empty).
    fn receive(&mut self, conn: u64, data: &[u8], now: Instant) -> Vec<u8>;
    /// The client closed `conn`.
    fn closed(&mut self, conn: u64);
}

/// How links behave.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// One-way delay of every delivery.
    pub latency: Duration,
    /// Up to this much extra delay, drawn from the seed, per delivery (order per connection is
    /// kept: a delivery never overtakes an earlier one on the same link).
    pub jitter: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_micros(200),
            jitter: Duration::ZERO,
        }
    }
}

/// The simulation ran past its step bound: something is livelocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulation (seed {seed}) exceeded {steps} steps without reaching its goal")]
pub struct SimError {
    /// The seed that replays this run.
    pub seed: u64,
    /// The bound that was hit.
    pub steps: u64,
}

#[derive(Debug)]
enum Delivery {
    ToServer(u64, Bytes),
    ToClient(ConnId, Bytes),
    Connected(ConnId),
    Refused(ConnId, String),
}

struct Link {
    server: String,
    /// The latest delivery time on this link, per direction, so deliveries keep their order.
    last_to_server: Instant,
    last_to_client: Instant,
}

/// One client core, a set of servers and the links between them, on a virtual clock.
pub struct Simulation<C: ClientCore> {
    core: C,
    seed: u64,
    rng: Rng,
    now: Instant,
    start: Instant,
    link: LinkConfig,
    servers: BTreeMap<String, Box<dyn Endpoint>>,
    links: HashMap<ConnId, Link>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    deliveries: HashMap<u64, Delivery>,
    next_seq: u64,
    events: Vec<C::Event>,
    max_steps: u64,
    steps: u64,
}

impl<C: ClientCore> Simulation<C> {
    /// A simulation of `core` starting at `start` (any instant: only differences matter), with
    /// link randomness from `seed`.
    pub fn new(core: C, seed: u64, start: Instant) -> Self {
        Simulation {
            core,
            seed,
            rng: Rng::new(seed ^ 0x5151_5151),
            now: start,
            start,
            link: LinkConfig::default(),
            servers: BTreeMap::new(),
            links: HashMap::new(),
            queue: BinaryHeap::new(),
            deliveries: HashMap::new(),
            next_seq: 0,
            events: Vec::new(),
            max_steps: 1_000_000,
            steps: 0,
        }
    }

    /// Sets link latency and jitter.
    pub fn with_links(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }

    /// Bounds the steps of any one `run_*` call (default one million).
    pub fn with_max_steps(mut self, steps: u64) -> Self {
        self.max_steps = steps;
        self
    }

    /// Serves `endpoint` at `host:port`.
    pub fn add_server(&mut self, addr: &str, endpoint: impl Endpoint + 'static) {
        self.servers.insert(addr.to_owned(), Box::new(endpoint));
    }

    /// Removes the server at `addr`: its open connections are closed and new ones refused.
    pub fn remove_server(&mut self, addr: &str) {
        self.servers.remove(addr);
        let dead: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.server == addr)
            .map(|(c, _)| *c)
            .collect();
        for conn in dead {
            self.links.remove(&conn);
            self.core
                .handle_closed(conn, CloseReason::PeerClosed, self.now);
        }
        self.drain();
    }

    /// The core, for application calls (send, subscribe, ...). Call [`Simulation::drain`]
    /// after changing it, or let the next step do so.
    pub fn core(&mut self) -> &mut C {
        &mut self.core
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The seed this run replays from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Events the core emitted since the last call.
    pub fn take_events(&mut self) -> Vec<C::Event> {
        std::mem::take(&mut self.events)
    }

    fn schedule(&mut self, at: Instant, d: Delivery) {
        self.next_seq += 1;
        self.queue.push(Reverse((at, self.next_seq)));
        self.deliveries.insert(self.next_seq, d);
    }

    fn delay(&mut self) -> Duration {
        let extra = if self.link.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.link.jitter.mul_f64(self.rng.next_f64())
        };
        self.link.latency + extra
    }

    /// Acts on everything the core has to say right now.
    pub fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Connect { conn, host, port } => {
                    let addr = format!("{host}:{port}");
                    let at = self.now + self.delay();
                    let accepted = match self.servers.get_mut(&addr) {
                        Some(s) => s.accept(conn.0, self.now),
                        None => false,
                    };
                    if accepted {
                        self.links.insert(
                            conn,
                            Link {
                                server: addr,
                                last_to_server: at,
                                last_to_client: at,
                            },
                        );
                        self.schedule(at, Delivery::Connected(conn));
                    } else {
                        self.schedule(
                            at,
                            Delivery::Refused(conn, format!("{addr}: connection refused")),
                        );
                    }
                }
                Output::Transmit { conn, data } => {
                    let d = self.delay();
                    if let Some(link) = self.links.get_mut(&conn) {
                        let at = (self.now + d).max(link.last_to_server);
                        link.last_to_server = at;
                        self.schedule(at, Delivery::ToServer(conn.0, data));
                    }
                }
                Output::Close { conn } => {
                    if let Some(link) = self.links.remove(&conn) {
                        if let Some(s) = self.servers.get_mut(&link.server) {
                            s.closed(conn.0);
                        }
                    }
                }
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    /// Advances to the next delivery or core deadline and handles it. Returns false when
    /// nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.drain();
        let next_delivery = self.queue.peek().map(|Reverse((at, _))| *at);
        let next_timer = self.core.poll_timeout();
        let (at, is_delivery) = match (next_delivery, next_timer) {
            (None, None) => return false,
            (Some(d), None) => (d, true),
            (None, Some(t)) => (t, false),
            (Some(d), Some(t)) if d <= t => (d, true),
            (Some(_), Some(t)) => (t, false),
        };
        // Time never goes backwards, even for a deadline that is already due.
        self.now = self.now.max(at);
        self.steps += 1;
        if is_delivery {
            let Reverse((_, seq)) = self.queue.pop().expect("peeked");
            let delivery = self.deliveries.remove(&seq).expect("scheduled");
            self.deliver(delivery);
        } else {
            self.core.handle_timeout(self.now);
        }
        self.drain();
        true
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::Connected(conn) => {
                if self.links.contains_key(&conn) {
                    self.core.handle_connected(conn, now);
                }
            }
            Delivery::Refused(conn, why) => {
                self.core
                    .handle_closed(conn, CloseReason::ConnectFailed(why), now)
            }
            Delivery::ToServer(conn, data) => {
                let Some(link) = self.links.get(&ConnId(conn)) else {
                    return;
                };
                let server = link.server.clone();
                let reply = match self.servers.get_mut(&server) {
                    Some(s) => s.receive(conn, &data, now),
                    None => return,
                };
                if !reply.is_empty() {
                    let d = self.delay();
                    let link = self.links.get_mut(&ConnId(conn)).expect("checked");
                    let at = (now + d).max(link.last_to_client);
                    link.last_to_client = at;
                    self.schedule(at, Delivery::ToClient(ConnId(conn), reply.into()));
                }
            }
            Delivery::ToClient(conn, data) => {
                if self.links.contains_key(&conn) {
                    self.core.handle_data(conn, &data, now);
                }
            }
        }
    }

    /// Steps until `done` holds. Errors (naming the seed) if the step bound is reached first;
    /// returns false if nothing is left to happen before `done` holds.
    pub fn run_until(&mut self, mut done: impl FnMut(&mut Self) -> bool) -> Result<bool, SimError> {
        let start = self.steps;
        loop {
            // Application calls since the last step may have queued output.
            self.drain();
            if done(self) {
                return Ok(true);
            }
            if self.steps - start >= self.max_steps {
                return Err(SimError {
                    seed: self.seed,
                    steps: self.max_steps,
                });
            }
            if !self.step() {
                return Ok(done(self));
            }
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        let until = self.now + duration;
        self.run_until(|s| {
            let next = [
                s.queue.peek().map(|Reverse((at, _))| *at),
                s.core.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            next.is_none_or(|t| t > until)
        })?;
        self.now = self.now.max(until);
        Ok(())
    }
}
