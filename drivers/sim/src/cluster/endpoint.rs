//! [`ClusterEndpoint`]: one broker of a shared [`Cluster`] as a simulation [`Endpoint`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use kafkit_core::network::{ClientCore, FrameDecoder};

use super::{Cluster, ConnOutput};
use crate::simulation::{Endpoint, EndpointOutput, Simulation};

/// One broker of a cluster, served at its address in a [`Simulation`]. Every broker's
/// endpoint shares the cluster through `Rc<RefCell<_>>`, so tests can reach in (crash a
/// broker, install a hook, inspect a log) between steps.
pub struct ClusterEndpoint {
    cluster: Rc<RefCell<Cluster>>,
    broker: i32,
    frames: HashMap<u64, FrameDecoder>,
    closing: Vec<u64>,
}

impl ClusterEndpoint {
    /// The endpoint of node `broker`.
    pub fn new(cluster: Rc<RefCell<Cluster>>, broker: i32) -> Self {
        ClusterEndpoint {
            cluster,
            broker,
            frames: HashMap::new(),
            closing: Vec::new(),
        }
    }
}

impl Endpoint for ClusterEndpoint {
    fn accept(&mut self, conn: u64, _now: Instant) -> bool {
        let host = format!("/sim-client-{conn}");
        if !self
            .cluster
            .borrow_mut()
            .connection_opened(self.broker, conn, &host)
        {
            return false;
        }
        let max = self.cluster.borrow().config().max_request_size;
        self.frames.insert(conn, FrameDecoder::new(max));
        true
    }

    fn receive(&mut self, conn: u64, data: &[u8], now: Instant) -> Vec<u8> {
        let Some(dec) = self.frames.get_mut(&conn) else {
            return Vec::new();
        };
        dec.push(data);
        let mut out = Vec::new();
        loop {
            let frame = match dec.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(broker = self.broker, conn, error = %e, "cluster endpoint: bad frame");
                    self.cluster
                        .borrow_mut()
                        .connection_closed(self.broker, conn);
                    self.frames.remove(&conn);
                    self.closing.push(conn);
                    break;
                }
            };
            let reply = self
                .cluster
                .borrow_mut()
                .handle_frame(self.broker, conn, frame, now);
            for f in reply.frames {
                out.extend_from_slice(&f);
            }
            if reply.close {
                self.frames.remove(&conn);
                self.closing.push(conn);
                break;
            }
        }
        out
    }

    fn closed(&mut self, conn: u64) {
        self.frames.remove(&conn);
        self.cluster
            .borrow_mut()
            .connection_closed(self.broker, conn);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.cluster.borrow().poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.cluster.borrow_mut().handle_timeout(now);
    }

    /// Every broker of a cluster has the cluster's deadline, and handles all of it.
    fn shared_timer(&self) -> Option<usize> {
        Some(Rc::as_ptr(&self.cluster) as usize)
    }

    fn take_outgoing(&mut self) -> Vec<(u64, EndpointOutput)> {
        let mut out: Vec<(u64, EndpointOutput)> = self
            .closing
            .drain(..)
            .map(|c| (c, EndpointOutput::Close))
            .collect();
        for (conn, o) in self.cluster.borrow_mut().take_ready_for(self.broker) {
            match o {
                ConnOutput::Send(b) => out.push((conn, EndpointOutput::Send(b))),
                ConnOutput::Close => {
                    self.frames.remove(&conn);
                    out.push((conn, EndpointOutput::Close));
                }
            }
        }
        out
    }
}

/// Serves every broker of `cluster` in `sim` at its advertised `host:port`.
pub fn serve_cluster<C: ClientCore>(sim: &mut Simulation<C>, cluster: &Rc<RefCell<Cluster>>) {
    let brokers = cluster.borrow().brokers().to_vec();
    for b in brokers {
        sim.add_server(
            &format!("{}:{}", b.host, b.port),
            ClusterEndpoint::new(cluster.clone(), b.id),
        );
    }
}
