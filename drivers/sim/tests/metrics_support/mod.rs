//! Shared by the metrics tests: a broker endpoint that counts the bytes going through it, so
//! a client's `incoming-byte-total` and `outgoing-byte-total` can be checked against what the
//! brokers saw.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use kafkit_core::network::ClientCore;
use kafkit_sim::{Cluster, ClusterEndpoint, Endpoint, EndpointOutput, Simulation};

/// The simulation's default one-way link latency (200 µs): a request's round trip is 0.4 ms.
pub const ROUND_TRIP_MS: f64 = 0.4;

/// Bytes the brokers received from and sent to the client, counted at the brokers.
#[derive(Default)]
pub struct Wire {
    pub received: Cell<u64>,
    pub sent: Cell<u64>,
}

/// A broker endpoint that counts the bytes going through it.
pub struct Counting {
    inner: ClusterEndpoint,
    wire: Rc<Wire>,
}

impl Endpoint for Counting {
    fn accept(&mut self, conn: u64, now: Instant) -> bool {
        self.inner.accept(conn, now)
    }
    fn receive(&mut self, conn: u64, data: &[u8], now: Instant) -> Vec<u8> {
        self.wire
            .received
            .set(self.wire.received.get() + data.len() as u64);
        let out = self.inner.receive(conn, data, now);
        self.wire.sent.set(self.wire.sent.get() + out.len() as u64);
        out
    }
    fn closed(&mut self, conn: u64) {
        self.inner.closed(conn)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now)
    }
    fn take_outgoing(&mut self) -> Vec<(u64, EndpointOutput)> {
        let out = self.inner.take_outgoing();
        for (_, o) in &out {
            if let EndpointOutput::Send(b) = o {
                self.wire.sent.set(self.wire.sent.get() + b.len() as u64);
            }
        }
        out
    }
}

/// Serves every broker of `cluster` to `sim` through a [`Counting`] endpoint; returns the
/// shared count.
pub fn serve_counting<C: ClientCore>(
    sim: &mut Simulation<C>,
    cluster: &Rc<RefCell<Cluster>>,
) -> Rc<Wire> {
    let wire = Rc::new(Wire::default());
    let brokers = cluster.borrow().brokers().to_vec();
    for b in brokers {
        sim.add_server(
            &format!("{}:{}", b.host, b.port),
            Counting {
                inner: ClusterEndpoint::new(cluster.clone(), b.id),
                wire: wire.clone(),
            },
        );
    }
    wire
}
