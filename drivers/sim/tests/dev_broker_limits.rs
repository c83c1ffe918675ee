//! The development broker's resource limits on real sockets: request buffers that grow with
//! the bytes received (not with the size a prefix announces), the shared memory budget of
//! requests in flight, the request-read timeout, and a thread count that does not grow with
//! connections.
//!
//! The tests measure this process (its address space, its threads), so they run one at a
//! time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafkit_core::protocol::{self, ApiKey, ApiVersionsRequest, RequestHeader};
use kafkit_sim::dev_broker::{ConnectionEvent, DevBroker, DevBrokerConfig};

/// One test at a time: they measure the whole process.
static SERIAL: Mutex<()> = Mutex::new(());

/// Generous bound for waiting on the broker (not a timed assertion: tests wait for a state).
const PATIENCE: Duration = Duration::from_secs(60);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A field of /proc/self/status in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn connect(broker: &DevBroker) -> TcpStream {
    let s = TcpStream::connect(broker.addresses()[0]).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// An ApiVersions v3 request frame (with its size prefix).
fn api_versions_frame(correlation_id: i32) -> BytesMut {
    let header = RequestHeader {
        request_api_key: ApiKey::ApiVersions.as_i16(),
        request_api_version: 3,
        correlation_id,
        client_id: Some("limits-test".into()),
        ..Default::default()
    };
    let body = ApiVersionsRequest {
        client_software_name: "limits-test".into(),
        client_software_version: "1".into(),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    protocol::encode_request(&header, &body, 3, &mut buf).expect("encode");
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf
}

/// Reads one response frame and returns its correlation id.
fn read_correlation(s: &mut TcpStream) -> i32 {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("a response");
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut frame).expect("the response's bytes");
    i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]])
}

/// Whether the broker closed `s` (EOF or reset), waiting up to `PATIENCE`.
fn closed_by_broker(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// The prefix of a frame announcing `size` bytes, then `sent` bytes of it.
fn partial_frame(size: usize, sent: usize) -> Vec<u8> {
    let mut v = (size as i32).to_be_bytes().to_vec();
    v.extend(std::iter::repeat_n(7u8, sent));
    v
}

#[test]
fn connections_announcing_huge_requests_do_not_reserve_them() {
    let _serial = serial();
    const CONNS: usize = 200;
    const ANNOUNCED: usize = 100 << 20;
    // A budget large enough to admit every request, so that each connection's buffer is
    // really started: only what was received may be allocated.
    let broker =
        DevBroker::start(DevBrokerConfig::new(1).max_in_flight_request_bytes(usize::MAX / 2))
            .expect("dev broker");
    let before_vm = status_kb("VmSize:");
    let before_rss = status_kb("VmRSS:");
    let mut conns = Vec::new();
    for _ in 0..CONNS {
        let mut s = connect(&broker);
        s.write_all(&partial_frame(ANNOUNCED, 120)).unwrap();
        conns.push(s);
    }
    wait_until("every announced request to be admitted", || {
        broker.in_flight_request_bytes() == CONNS * ANNOUNCED
    });
    // Every connection's 120 bytes are in before measuring.
    std::thread::sleep(Duration::from_millis(100));
    let grew_vm_mb = status_kb("VmSize:").saturating_sub(before_vm) / 1024;
    let grew_rss_mb = status_kb("VmRSS:").saturating_sub(before_rss) / 1024;
    // Reserving what the prefixes announce takes 200 x 100 MiB = 20 GB of address space.
    assert!(
        grew_vm_mb < 1024,
        "address space grew by {grew_vm_mb} MB for {CONNS} connections of 124 bytes each"
    );
    assert!(grew_rss_mb < 256, "RSS grew by {grew_rss_mb} MB");
    drop(conns);
    wait_until("the connections to close", || {
        broker.open_connections() == 0
    });
    assert_eq!(broker.in_flight_request_bytes(), 0, "every charge released");
    assert!(broker.model_failures().is_empty());
}

#[test]
fn a_spent_budget_stops_reading_until_requests_are_handled() {
    let _serial = serial();
    const BIG: usize = 1 << 20;
    let broker =
        DevBroker::start(DevBrokerConfig::new(1).max_in_flight_request_bytes(BIG)).expect("broker");
    // A announces a request as large as the whole budget and sends a little of it.
    let mut a = connect(&broker);
    a.write_all(&partial_frame(BIG, 10)).unwrap();
    wait_until("A's request to be charged", || {
        broker.in_flight_request_bytes() == BIG
    });
    // B's small request must wait: the budget is spent.
    let mut b = connect(&broker);
    b.write_all(&api_versions_frame(42)).unwrap();
    wait_until("B to be told to wait", || broker.memory_waits() > 0);
    assert_eq!(
        broker.in_flight_request_bytes(),
        BIG,
        "B's request was not read"
    );
    b.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let unanswered =
        matches!(b.read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(unanswered, "B was answered while the budget was spent");
    b.set_nonblocking(false).unwrap();
    // A finishes its (nonsense) request: the cluster handles it, the charge is released and
    // B is read and answered.
    a.write_all(&vec![0u8; BIG - 10]).unwrap();
    assert_eq!(read_correlation(&mut b), 42);
    wait_until("A's charge to be released", || {
        broker.in_flight_request_bytes() == 0
    });
    assert!(broker.model_failures().is_empty());
}

#[test]
fn a_half_sent_request_is_closed_after_the_read_timeout_and_idle_connections_stay() {
    let _serial = serial();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let broker = DevBroker::start(
        DevBrokerConfig::new(1)
            .request_read_timeout(Duration::from_millis(300))
            .on_connection(move |e| {
                if let ConnectionEvent::Closed { reason, .. } = e {
                    seen.lock().unwrap().push(reason.clone());
                }
            }),
    )
    .expect("broker");
    let mut idle = connect(&broker);
    let mut half = connect(&broker);
    half.write_all(&partial_frame(1000, 6)).unwrap();
    assert!(
        closed_by_broker(&mut half),
        "the half-sent request was not cut"
    );
    wait_until("the close to be reported", || {
        !reasons.lock().unwrap().is_empty()
    });
    let reason = reasons.lock().unwrap()[0].clone();
    assert!(reason.contains("request read timeout"), "{reason}");
    // A connection with nothing half-sent is not timed out: it is still served.
    idle.write_all(&api_versions_frame(7)).unwrap();
    assert_eq!(read_correlation(&mut idle), 7);
    assert_eq!(broker.open_connections(), 1);
}

#[test]
fn five_hundred_idle_connections_do_not_start_a_thread_each() {
    let _serial = serial();
    let before = threads();
    let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("broker");
    let conns: Vec<TcpStream> = (0..500).map(|_| connect(&broker)).collect();
    wait_until("500 open connections", || broker.open_connections() == 500);
    let grew = threads() - before;
    // An acceptor, the cluster thread and two I/O threads.
    assert!(grew <= 8, "{grew} threads for 500 connections");
    // And they are all served.
    let mut last = conns.into_iter().last().unwrap();
    last.write_all(&api_versions_frame(9)).unwrap();
    assert_eq!(read_correlation(&mut last), 9);
}
