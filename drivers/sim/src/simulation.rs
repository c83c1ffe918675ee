use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
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
    /// The next instant at which the endpoint wants [`Endpoint::handle_timeout`] (a response
    /// completing on a timer). Default: none.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// Called once virtual time reaches [`Endpoint::poll_timeout`] (possibly later, and
    /// possibly when another endpoint's deadline is due).
    fn handle_timeout(&mut self, _now: Instant) {}
    /// Bytes to send and connections to close on the endpoint's own initiative (responses
    /// completed later, closes after a bad request or a crash). Polled after every call into
    /// the endpoint and after every step. Default: nothing.
    fn take_outgoing(&mut self) -> Vec<(u64, EndpointOutput)> {
        Vec::new()
    }
}

/// What an endpoint does on its own initiative (see [`Endpoint::take_outgoing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointOutput {
    /// Send these bytes to the client.
    Send(Bytes),
    /// Close the connection (after the bytes sent before).
    Close,
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
    ServerClosed(ConnId),
}

struct Link {
    server: String,
    /// The latest delivery time on this link, per direction, so deliveries keep their order.
    last_to_server: Instant,
    last_to_client: Instant,
    /// The server closed the connection; the close is on its way to the client.
    server_closed: bool,
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
    /// Servers cut off from the client: nothing crosses in either direction.
    partitioned: BTreeSet<String>,
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
            partitioned: BTreeSet::new(),
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

    /// Cuts the network between the client and the server at `addr`: bytes in flight and
    /// bytes sent later vanish in both directions, and new connections hang (neither accepted
    /// nor refused), as with a firewall dropping packets. Existing connections stay "open";
    /// the client finds out only through its own timeouts.
    pub fn partition(&mut self, addr: &str) {
        self.partitioned.insert(addr.to_owned());
    }

    /// Ends a [`Simulation::partition`]: new traffic flows again (what was lost stays lost).
    pub fn heal(&mut self, addr: &str) {
        self.partitioned.remove(addr);
    }

    /// Whether `addr` is cut off.
    pub fn is_partitioned(&self, addr: &str) -> bool {
        self.partitioned.contains(addr)
    }

    /// Resets every connection between the client and the server at `addr`: both sides see
    /// it close at once, as after a TCP reset.
    pub fn drop_connections(&mut self, addr: &str) {
        let dropped: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.server == addr)
            .map(|(c, _)| *c)
            .collect();
        let now = self.now;
        for conn in dropped {
            self.links.remove(&conn);
            if let Some(s) = self.servers.get_mut(addr) {
                s.closed(conn.0);
            }
            self.core.handle_closed(
                conn,
                CloseReason::Io("connection reset by peer".into()),
                now,
            );
        }
        self.drain();
    }

    /// Every server address.
    pub fn server_addrs(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    fn cut(&self, conn: ConnId) -> bool {
        self.links
            .get(&conn)
            .is_some_and(|l| self.partitioned.contains(&l.server))
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
                    if self.partitioned.contains(&addr) {
                        // The SYN vanishes: the client's own setup timeout ends the attempt.
                        continue;
                    }
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
                                server_closed: false,
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
                    if self.cut(conn) {
                        continue;
                    }
                    let d = self.delay();
                    if let Some(link) = self.links.get_mut(&conn).filter(|l| !l.server_closed) {
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
        self.collect_server_output();
    }

    /// Schedules what the servers send or close on their own initiative.
    fn collect_server_output(&mut self) {
        let mut outputs = Vec::new();
        for s in self.servers.values_mut() {
            outputs.extend(s.take_outgoing());
        }
        for (conn, out) in outputs {
            self.server_output(ConnId(conn), out);
        }
    }

    fn server_output(&mut self, conn: ConnId, out: EndpointOutput) {
        if self.cut(conn) {
            return;
        }
        let d = self.delay();
        let now = self.now;
        let Some(link) = self.links.get_mut(&conn).filter(|l| !l.server_closed) else {
            return;
        };
        let at = (now + d).max(link.last_to_client);
        link.last_to_client = at;
        match out {
            EndpointOutput::Send(data) => {
                if !data.is_empty() {
                    self.schedule(at, Delivery::ToClient(conn, data));
                }
            }
            EndpointOutput::Close => {
                link.server_closed = true;
                self.schedule(at, Delivery::ServerClosed(conn));
            }
        }
    }

    /// The earliest server deadline.
    fn server_timeout(&self) -> Option<Instant> {
        self.servers.values().filter_map(|s| s.poll_timeout()).min()
    }

    /// Advances to the next delivery or core deadline and handles it. Returns false when
    /// nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.drain();
        let next_delivery = self.queue.peek().map(|Reverse((at, _))| *at);
        let next_timer = self.core.poll_timeout();
        let next_server = self.server_timeout();
        // Ties go to deliveries, then the core, then servers.
        let mut next: Option<(Instant, u8)> = None;
        for (t, kind) in [(next_delivery, 0u8), (next_timer, 1), (next_server, 2)] {
            if let Some(t) = t {
                if next.is_none_or(|(n, _)| t < n) {
                    next = Some((t, kind));
                }
            }
        }
        let Some((at, kind)) = next else {
            return false;
        };
        // Time never goes backwards, even for a deadline that is already due.
        self.now = self.now.max(at);
        self.steps += 1;
        match kind {
            0 => {
                let Reverse((_, seq)) = self.queue.pop().expect("peeked");
                let delivery = self.deliveries.remove(&seq).expect("scheduled");
                self.deliver(delivery);
            }
            1 => self.core.handle_timeout(self.now),
            _ => {
                let now = self.now;
                for s in self.servers.values_mut() {
                    if s.poll_timeout().is_some_and(|t| t <= now) {
                        s.handle_timeout(now);
                    }
                }
            }
        }
        self.drain();
        true
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        let conn = match &d {
            Delivery::ToServer(c, _) => Some(ConnId(*c)),
            Delivery::ToClient(c, _) | Delivery::Connected(c) | Delivery::ServerClosed(c) => {
                Some(*c)
            }
            Delivery::Refused(..) => None,
        };
        if conn.is_some_and(|c| self.cut(c)) {
            return;
        }
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
                let Some(link) = self.links.get(&ConnId(conn)).filter(|l| !l.server_closed) else {
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
            Delivery::ServerClosed(conn) => {
                if self.links.remove(&conn).is_some() {
                    self.core.handle_closed(conn, CloseReason::PeerClosed, now);
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
                s.server_timeout(),
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
