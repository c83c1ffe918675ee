use std::cell::Cell;
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
    /// Endpoints returning the same `Some(key)` share one timer: one state served at several
    /// addresses (the brokers of one [`Cluster`](crate::Cluster)), so that their
    /// [`Endpoint::poll_timeout`]s are the same and the `handle_timeout` of any of them
    /// handles what is due for all. The simulation then asks only the first of them (in
    /// address order). Default: `None`, a timer of its own.
    fn shared_timer(&self) -> Option<usize> {
        None
    }
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

/// Connections are named on the wire by the client's index and the client's own id, so
/// several clients (whose ids overlap) can share the network; endpoints see these wire ids.
const CLIENT_SHIFT: u32 = 40;

fn wire(client: usize, conn: ConnId) -> u64 {
    ((client as u64) << CLIENT_SHIFT) | conn.0
}

fn unwire(w: u64) -> (usize, ConnId) {
    (
        (w >> CLIENT_SHIFT) as usize,
        ConnId(w & ((1 << CLIENT_SHIFT) - 1)),
    )
}

#[derive(Debug)]
enum Delivery {
    ToServer(u64, Bytes),
    ToClient(u64, Bytes),
    Connected(u64),
    Refused(u64, String),
    ServerClosed(u64),
}

struct Link {
    server: String,
    /// The latest delivery time on this link, per direction, so deliveries keep their order.
    last_to_server: Instant,
    last_to_client: Instant,
    /// The server closed the connection; the close is on its way to the client.
    server_closed: bool,
}

/// Client cores, a set of servers and the links between them, on a virtual clock.
///
/// The first client is given to [`Simulation::new`]; more join with
/// [`Simulation::add_client`] (a group of consumers, a producer and a consumer, ...). Every
/// client shares the one network and clock.
pub struct Simulation<C: ClientCore> {
    cores: Vec<C>,
    /// Each core's `poll_timeout`, as last asked (`None`: to be asked again). A core's
    /// deadline changes only through its `&mut` methods, so the entry is cleared wherever the
    /// simulation hands a core an input or gets output from it, and whenever the application
    /// takes the core (`core`, `client`). Asking every core at every step was most of a
    /// simulated hour's cost (`examples/sim_hour.rs`, BENCHMARKS.md).
    deadlines: Vec<Cell<Option<Option<Instant>>>>,
    seed: u64,
    rng: Rng,
    now: Instant,
    start: Instant,
    link: LinkConfig,
    servers: BTreeMap<String, Box<dyn Endpoint>>,
    /// Per server, in address order: how many servers' timers it answers for. 1 for a timer
    /// of its own; for endpoints sharing one ([`Endpoint::shared_timer`]), their number for
    /// the first and 0 for the others. Asking each broker of a cluster for the one cluster's
    /// deadline was 14% of a simulated hour (BENCHMARKS.md).
    timer_shares: Vec<usize>,
    /// Servers cut off from the client: nothing crosses in either direction.
    partitioned: BTreeSet<String>,
    links: BTreeMap<u64, Link>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    deliveries: HashMap<u64, Delivery>,
    next_seq: u64,
    events: Vec<Vec<C::Event>>,
    max_steps: u64,
    steps: u64,
    /// With [`Simulation::with_spurious_timeouts`]: draws which steps also time every core out.
    spurious: Option<Rng>,
}

/// What a step handles next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    /// A delivery on a link.
    Delivery,
    /// A client core's deadline.
    ClientTimer,
    /// A server's deadline.
    ServerTimer,
}

impl<C: ClientCore> Simulation<C> {
    /// A simulation of `core` starting at `start` (any instant: only differences matter), with
    /// link randomness from `seed`.
    pub fn new(core: C, seed: u64, start: Instant) -> Self {
        Simulation {
            cores: vec![core],
            deadlines: vec![Cell::new(None)],
            seed,
            rng: Rng::new(seed ^ 0x5151_5151),
            now: start,
            start,
            link: LinkConfig::default(),
            servers: BTreeMap::new(),
            timer_shares: Vec::new(),
            partitioned: BTreeSet::new(),
            links: BTreeMap::new(),
            queue: BinaryHeap::new(),
            deliveries: HashMap::new(),
            next_seq: 0,
            events: vec![Vec::new()],
            max_steps: 1_000_000,
            steps: 0,
            spurious: None,
        }
    }

    /// After a quarter of the steps (drawn from the seed, apart from the link randomness so
    /// that a seed's links stay as they were), every client core also gets
    /// `handle_timeout(now)` whether or not a deadline is due. The driving contract says an
    /// early or spurious call is safe; runs with this on check it.
    pub fn with_spurious_timeouts(mut self) -> Self {
        self.spurious = Some(Rng::new(self.seed ^ 0x7157_7157));
        self
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
        self.share_timers();
    }

    /// Works out [`Simulation::timer_shares`] after the servers changed.
    fn share_timers(&mut self) {
        let keys: Vec<Option<usize>> = self.servers.values().map(|s| s.shared_timer()).collect();
        self.timer_shares = keys
            .iter()
            .enumerate()
            .map(|(i, key)| match key {
                None => 1,
                Some(_) if keys[..i].contains(key) => 0,
                Some(_) => keys.iter().filter(|k| *k == key).count(),
            })
            .collect();
    }

    /// Removes the server at `addr`: its open connections are closed and new ones refused.
    pub fn remove_server(&mut self, addr: &str) {
        self.servers.remove(addr);
        self.share_timers();
        let dead: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.server == addr)
            .map(|(c, _)| *c)
            .collect();
        for w in dead {
            self.links.remove(&w);
            let (client, conn) = unwire(w);
            self.touch(client);
            self.cores[client].handle_closed(conn, CloseReason::PeerClosed, self.now);
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
        let dropped: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.server == addr)
            .map(|(c, _)| *c)
            .collect();
        let now = self.now;
        for w in dropped {
            self.links.remove(&w);
            if let Some(s) = self.servers.get_mut(addr) {
                s.closed(w);
            }
            let (client, conn) = unwire(w);
            self.touch(client);
            self.cores[client].handle_closed(
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

    fn cut(&self, w: u64) -> bool {
        self.links
            .get(&w)
            .is_some_and(|l| self.partitioned.contains(&l.server))
    }

    /// The first client's core, for application calls (send, subscribe, ...). Call
    /// [`Simulation::drain`] after changing it, or let the next step do so.
    pub fn core(&mut self) -> &mut C {
        self.touch(0);
        &mut self.cores[0]
    }

    /// Adds a client to the simulation; returns its index for [`Simulation::client`].
    pub fn add_client(&mut self, core: C) -> usize {
        self.cores.push(core);
        self.deadlines.push(Cell::new(None));
        self.events.push(Vec::new());
        self.cores.len() - 1
    }

    /// Client `index`'s core (0 is the one given to [`Simulation::new`]).
    pub fn client(&mut self, index: usize) -> &mut C {
        self.touch(index);
        &mut self.cores[index]
    }

    /// Client `index`'s deadline may have changed: ask its core again when it is needed.
    fn touch(&mut self, index: usize) {
        self.deadlines[index].set(None);
    }

    /// Client `index`'s `poll_timeout`, asked of the core only if it may have changed.
    fn client_deadline(&self, index: usize) -> Option<Instant> {
        let cached = &self.deadlines[index];
        match cached.get() {
            Some(d) => d,
            None => {
                let d = self.cores[index].poll_timeout();
                cached.set(Some(d));
                d
            }
        }
    }

    /// How many clients take part.
    pub fn clients(&self) -> usize {
        self.cores.len()
    }

    /// Events client `index` emitted since the last call.
    pub fn take_client_events(&mut self, index: usize) -> Vec<C::Event> {
        std::mem::take(&mut self.events[index])
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

    /// Whether client `index` emitted events not taken yet (cheaper than taking them, for a
    /// `run_until` condition checked at every step).
    pub fn has_client_events(&self, index: usize) -> bool {
        !self.events[index].is_empty()
    }

    /// Steps taken so far, over every `run_*` call: deliveries, client deadlines and server
    /// deadlines handled.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Events the first client emitted since the last call.
    pub fn take_events(&mut self) -> Vec<C::Event> {
        self.take_client_events(0)
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

    /// Acts on everything the clients have to say right now.
    pub fn drain(&mut self) {
        self.drain_changed();
    }

    /// [`Simulation::drain`], saying whether any client or server had something to say.
    fn drain_changed(&mut self) -> bool {
        let mut changed = false;
        for client in 0..self.cores.len() {
            while let Some(out) = self.cores[client].poll_output() {
                self.touch(client);
                changed = true;
                self.client_output(client, out);
            }
        }
        self.collect_server_output() || changed
    }

    fn client_output(&mut self, client: usize, out: Output<C::Event>) {
        match out {
            Output::Connect { conn, host, port } => {
                let w = wire(client, conn);
                let addr = format!("{host}:{port}");
                if self.partitioned.contains(&addr) {
                    // The SYN vanishes: the client's own setup timeout ends the attempt.
                    return;
                }
                let at = self.now + self.delay();
                let accepted = match self.servers.get_mut(&addr) {
                    Some(s) => s.accept(w, self.now),
                    None => false,
                };
                if accepted {
                    self.links.insert(
                        w,
                        Link {
                            server: addr,
                            last_to_server: at,
                            last_to_client: at,
                            server_closed: false,
                        },
                    );
                    self.schedule(at, Delivery::Connected(w));
                } else {
                    self.schedule(
                        at,
                        Delivery::Refused(w, format!("{addr}: connection refused")),
                    );
                }
            }
            Output::Transmit { conn, data } => {
                let w = wire(client, conn);
                if self.cut(w) {
                    return;
                }
                let d = self.delay();
                if let Some(link) = self.links.get_mut(&w).filter(|l| !l.server_closed) {
                    let at = (self.now + d).max(link.last_to_server);
                    link.last_to_server = at;
                    self.schedule(at, Delivery::ToServer(w, data));
                }
            }
            Output::Close { conn } => {
                let w = wire(client, conn);
                if let Some(link) = self.links.remove(&w) {
                    if let Some(s) = self.servers.get_mut(&link.server) {
                        s.closed(w);
                    }
                }
            }
            Output::Event(e) => self.events[client].push(e),
        }
    }

    /// Schedules what the servers send or close on their own initiative; says whether there
    /// was any.
    fn collect_server_output(&mut self) -> bool {
        let mut outputs = Vec::new();
        for s in self.servers.values_mut() {
            outputs.extend(s.take_outgoing());
        }
        let any = !outputs.is_empty();
        for (w, out) in outputs {
            self.server_output(w, out);
        }
        any
    }

    fn server_output(&mut self, w: u64, out: EndpointOutput) {
        if self.cut(w) {
            return;
        }
        let d = self.delay();
        let now = self.now;
        let Some(link) = self.links.get_mut(&w).filter(|l| !l.server_closed) else {
            return;
        };
        let at = (now + d).max(link.last_to_client);
        link.last_to_client = at;
        match out {
            EndpointOutput::Send(data) => {
                if !data.is_empty() {
                    self.schedule(at, Delivery::ToClient(w, data));
                }
            }
            EndpointOutput::Close => {
                link.server_closed = true;
                self.schedule(at, Delivery::ServerClosed(w));
            }
        }
    }

    /// The earliest client deadline.
    fn client_timeout(&self) -> Option<Instant> {
        (0..self.cores.len())
            .filter_map(|i| self.client_deadline(i))
            .min()
    }

    /// The earliest server deadline.
    fn server_timeout(&self) -> Option<Instant> {
        self.servers
            .values()
            .zip(&self.timer_shares)
            .filter(|(_, shares)| **shares > 0)
            .filter_map(|(s, _)| s.poll_timeout())
            .min()
    }

    /// Advances to the next delivery or core deadline and handles it. Returns false when
    /// nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.drain();
        let next = self.next_event();
        self.step_to(next)
    }

    /// What to handle next, and when: the earliest delivery, client deadline or server
    /// deadline.
    fn next_event(&self) -> Option<(Instant, StepKind)> {
        let next_delivery = self.queue.peek().map(|Reverse((at, _))| *at);
        let next_timer = self.client_timeout();
        let next_server = self.server_timeout();
        // Ties go to deliveries, then the core, then servers.
        let mut next: Option<(Instant, StepKind)> = None;
        for (t, kind) in [
            (next_delivery, StepKind::Delivery),
            (next_timer, StepKind::ClientTimer),
            (next_server, StepKind::ServerTimer),
        ] {
            if let Some(t) = t {
                if next.is_none_or(|(n, _)| t < n) {
                    next = Some((t, kind));
                }
            }
        }
        next
    }

    /// Handles `next` (what [`Simulation::next_event`] said after the last drain). Returns
    /// false when nothing is left to happen.
    fn step_to(&mut self, next: Option<(Instant, StepKind)>) -> bool {
        let Some((at, kind)) = next else {
            return false;
        };
        // Time never goes backwards, even for a deadline that is already due.
        self.now = self.now.max(at);
        self.steps += 1;
        let now = self.now;
        match kind {
            StepKind::Delivery => {
                let Reverse((_, seq)) = self.queue.pop().expect("peeked");
                let delivery = self.deliveries.remove(&seq).expect("scheduled");
                self.deliver(delivery);
            }
            StepKind::ClientTimer => {
                for i in 0..self.cores.len() {
                    if self.client_deadline(i).is_some_and(|t| t <= now) {
                        self.touch(i);
                        self.cores[i].handle_timeout(now);
                    }
                }
            }
            StepKind::ServerTimer => {
                for (s, &shares) in self.servers.values_mut().zip(&self.timer_shares) {
                    // A shared timer gets as many calls, at most, as when each endpoint
                    // sharing it was asked in turn: while it is still due.
                    for _ in 0..shares {
                        if s.poll_timeout().is_none_or(|t| t > now) {
                            break;
                        }
                        s.handle_timeout(now);
                    }
                }
            }
        }
        if self.spurious.as_mut().is_some_and(|rng| rng.below(4) == 0) {
            self.drain();
            for (core, deadline) in self.cores.iter_mut().zip(&self.deadlines) {
                deadline.set(None);
                core.handle_timeout(now);
            }
        }
        self.drain();
        true
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        let w = match &d {
            Delivery::ToServer(w, _)
            | Delivery::ToClient(w, _)
            | Delivery::Connected(w)
            | Delivery::ServerClosed(w)
            | Delivery::Refused(w, _) => *w,
        };
        if self.cut(w) {
            return;
        }
        let (client, conn) = unwire(w);
        self.touch(client);
        match d {
            Delivery::Connected(_) => {
                if self.links.contains_key(&w) {
                    self.cores[client].handle_connected(conn, now);
                }
            }
            Delivery::Refused(_, why) => {
                self.cores[client].handle_closed(conn, CloseReason::ConnectFailed(why), now)
            }
            Delivery::ToServer(_, data) => {
                let Some(link) = self.links.get(&w).filter(|l| !l.server_closed) else {
                    return;
                };
                let server = link.server.clone();
                let reply = match self.servers.get_mut(&server) {
                    Some(s) => s.receive(w, &data, now),
                    None => return,
                };
                if !reply.is_empty() {
                    let d = self.delay();
                    let link = self.links.get_mut(&w).expect("checked");
                    let at = (now + d).max(link.last_to_client);
                    link.last_to_client = at;
                    self.schedule(at, Delivery::ToClient(w, reply.into()));
                }
            }
            Delivery::ToClient(_, data) => {
                // Owned bytes, as every socket driver hands them over: seeded runs take the
                // production read path.
                if self.links.contains_key(&w) {
                    self.cores[client].handle_bytes(conn, data, now);
                }
            }
            Delivery::ServerClosed(_) => {
                if self.links.remove(&w).is_some() {
                    self.cores[client].handle_closed(conn, CloseReason::PeerClosed, now);
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

    /// Steps until `done` holds (true) or nothing is left to happen by `deadline` (false),
    /// erring past the step bound. The same steps as `run_until` with `done` or "the next
    /// event is after `deadline`" as its condition, asking each core and server for its
    /// deadline once per step rather than twice.
    fn run_before(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Result<bool, SimError> {
        let start = self.steps;
        loop {
            self.drain();
            if done(self) {
                return Ok(true);
            }
            let mut next = self.next_event();
            if next.is_none_or(|(t, _)| t > deadline) {
                return Ok(false);
            }
            if self.steps - start >= self.max_steps {
                return Err(SimError {
                    seed: self.seed,
                    steps: self.max_steps,
                });
            }
            // `done` may have handed a core an input: then what is next is asked again, after
            // acting on its output, as `step` does.
            if self.drain_changed() {
                next = self.next_event();
            }
            self.step_to(next);
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        let until = self.now + duration;
        self.run_before(until, |_| false)?;
        self.now = self.now.max(until);
        Ok(())
    }

    /// Steps until `done` holds or nothing is left to happen by `deadline`, and then moves
    /// virtual time on to `deadline`: an application's wait with a timeout that the core
    /// does not keep (a poll). Returns whether `done` holds; errors past the step bound.
    pub fn run_until_deadline(
        &mut self,
        deadline: Instant,
        done: impl FnMut(&mut Self) -> bool,
    ) -> Result<bool, SimError> {
        let met = self.run_before(deadline, done)?;
        if !met {
            self.now = self.now.max(deadline);
        }
        Ok(met)
    }
}
