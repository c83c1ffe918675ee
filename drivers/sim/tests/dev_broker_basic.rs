//! The development broker on real sockets, spoken to with raw frames: start and stop,
//! ApiVersions, Metadata naming the real listening ports, timers (a long-polling Fetch),
//! connection closes, SASL gating, control through `with_cluster`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_core::protocol::fetch::request::{FetchPartition, FetchTopic};
use kafkit_core::protocol::metadata::request::MetadataRequestTopic;
use kafkit_core::protocol::{
    self, ApiKey, ApiVersionsRequest, FetchRequest, MetadataRequest, Request, RequestHeader,
};
use kafkit_sim::dev_broker::{
    tls_server_config, ConnectionEvent, DevBroker, DevBrokerConfig, DevBrokerError,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A raw Kafka connection.
struct Raw {
    stream: TcpStream,
    correlation: i32,
}

impl Raw {
    fn connect(addr: std::net::SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Raw {
            stream,
            correlation: 0,
        }
    }

    fn send<R: Request>(&mut self, body: &R, version: i16) -> i32 {
        self.correlation += 1;
        let header = RequestHeader {
            request_api_key: R::API_KEY.as_i16(),
            request_api_version: version,
            correlation_id: self.correlation,
            client_id: Some("dev-broker-test".into()),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        protocol::encode_request(&header, body, version, &mut buf).expect("encode");
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).expect("write");
        self.correlation
    }

    /// The next frame, `None` at EOF.
    fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        match self.stream.read_exact(&mut size) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("read: {e}"),
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).expect("read frame");
        Some(frame.into())
    }

    fn call<R: Request>(&mut self, body: &R, version: i16) -> R::Response {
        let id = self.send(body, version);
        let frame = self.read_frame().expect("a response, not EOF");
        let (header, body) =
            protocol::decode_response_frame(R::API_KEY, version, frame).expect("decode");
        assert_eq!(header.correlation_id, id);
        body.into_response::<R>().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether the broker closed the connection (EOF within the timeout).
    fn closed_by_broker(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn metadata(raw: &mut Raw, topics: Option<Vec<&str>>) -> protocol::MetadataResponse {
    let req = MetadataRequest {
        topics: topics.map(|t| {
            t.into_iter()
                .map(|n| MetadataRequestTopic {
                    name: Some(n.to_owned()),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: true,
        ..Default::default()
    };
    raw.call(&req, 12)
}

#[test]
fn starts_and_shuts_down_closing_listeners_and_connections() {
    let broker = DevBroker::start(DevBrokerConfig::new(3)).expect("start");
    let addrs = broker.addresses().to_vec();
    assert_eq!(addrs.len(), 3);
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() != 0));
    assert_eq!(
        broker.bootstrap(),
        addrs
            .iter()
            .map(|a| format!("127.0.0.1:{}", a.port()))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut clients: Vec<Raw> = addrs.iter().map(|a| Raw::connect(*a)).collect();
    // Each connection is known once the broker's side has accepted it.
    let deadline = Instant::now() + TIMEOUT;
    while broker.open_connections() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(broker.open_connections(), 3);

    let started = Instant::now();
    broker.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown is quick"
    );
    for c in &mut clients {
        assert!(c.closed_by_broker(), "shutdown closes client connections");
    }
    for a in &addrs {
        assert!(
            TcpStream::connect_timeout(a, Duration::from_secs(1)).is_err(),
            "{a} still listens after shutdown"
        );
    }
}

#[test]
fn drop_shuts_down_too() {
    let addr = {
        let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("start");
        broker.addresses()[0]
    };
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn api_versions_round_trip_on_raw_tcp() {
    let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("start");
    let mut raw = Raw::connect(broker.addresses()[0]);
    for version in [0, 3] {
        let req = ApiVersionsRequest {
            client_software_name: "kafkit-test".into(),
            client_software_version: "1".into(),
            ..Default::default()
        };
        let resp = raw.call(&req, version);
        assert_eq!(resp.error_code, 0, "v{version}");
        let keys: Vec<i16> = resp.api_keys.iter().map(|k| k.api_key).collect();
        for api in [
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::Metadata,
            ApiKey::ApiVersions,
            ApiKey::JoinGroup,
        ] {
            assert!(keys.contains(&api.as_i16()), "v{version} lists {api:?}");
        }
    }
}

#[test]
fn metadata_names_every_broker_at_its_real_port() {
    let broker = DevBroker::start(DevBrokerConfig::new(3).partitions(6)).expect("start");
    let ports: Vec<i32> = broker
        .addresses()
        .iter()
        .map(|a| i32::from(a.port()))
        .collect();
    // Ask any broker: all three are listed, each at its own listener.
    for addr in broker.addresses() {
        let mut raw = Raw::connect(*addr);
        let m = metadata(&mut raw, None);
        let mut listed: Vec<(i32, String, i32)> = m
            .brokers
            .iter()
            .map(|b| (b.node_id, b.host.clone(), b.port))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            ports
                .iter()
                .enumerate()
                .map(|(i, p)| (i as i32, "127.0.0.1".to_owned(), *p))
                .collect::<Vec<_>>()
        );
    }
    // Auto-creation with the configured partition count; leaders are among the brokers.
    let mut raw = Raw::connect(broker.addresses()[1]);
    let m = metadata(&mut raw, Some(vec!["auto"]));
    assert_eq!(m.topics.len(), 1);
    let t = &m.topics[0];
    assert!(t.error_code == 0 || t.error_code == 5, "{t:?}"); // created, or leader pending
    let m = metadata(&mut raw, Some(vec!["auto"]));
    let t = &m.topics[0];
    assert_eq!(t.error_code, 0, "{t:?}");
    assert_eq!(t.partitions.len(), 6);
    assert!(t.partitions.iter().all(|p| (0..3).contains(&p.leader_id)));
    // The cluster thread sees the same topic.
    let partitions = broker
        .with_cluster(|c| c.topic("auto").map(|t| t.partitions.len()))
        .expect("cluster thread alive");
    assert_eq!(partitions, Some(6));
}

#[test]
fn consecutive_ports_from_a_given_first_port() {
    // Find a free run of ports; another process may take one in between, so retry.
    for _ in 0..20 {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let first = probe.local_addr().unwrap().port();
        drop(probe);
        if first > 65_000 {
            continue;
        }
        match DevBroker::start(DevBrokerConfig::new(3).port(first)) {
            Ok(broker) => {
                let ports: Vec<u16> = broker.addresses().iter().map(|a| a.port()).collect();
                assert_eq!(ports, vec![first, first + 1, first + 2]);
                assert_eq!(
                    broker.bootstrap(),
                    format!(
                        "127.0.0.1:{first},127.0.0.1:{},127.0.0.1:{}",
                        first + 1,
                        first + 2
                    )
                );
                return;
            }
            Err(DevBrokerError::Bind { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free run of three ports found");
}

#[test]
fn a_taken_port_is_a_bind_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = DevBroker::start(DevBrokerConfig::new(1).port(port)).unwrap_err();
    assert!(matches!(err, DevBrokerError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[test]
fn long_polling_fetch_answers_at_max_wait() {
    let broker = DevBroker::start(DevBrokerConfig::new(1).partitions(1)).expect("start");
    let mut raw = Raw::connect(broker.addresses()[0]);
    metadata(&mut raw, Some(vec!["empty"]));
    let m = metadata(&mut raw, Some(vec!["empty"]));
    assert_eq!(m.topics[0].error_code, 0);
    let fetch = FetchRequest {
        replica_id: -1,
        max_wait_ms: 300,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: "empty".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let started = Instant::now();
    let resp = raw.call(&fetch, 11);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 0);
    // The connection still works after the parked request.
    let m = metadata(&mut raw, None);
    assert_eq!(m.brokers.len(), 1);
}

#[test]
fn a_bad_frame_closes_the_connection_and_others_go_on() {
    let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("start");
    let mut bad = Raw::connect(broker.addresses()[0]);
    let mut good = Raw::connect(broker.addresses()[0]);
    bad.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(bad.closed_by_broker());
    // Undecodable request body: also closed.
    let mut junk = Raw::connect(broker.addresses()[0]);
    junk.stream
        .write_all(&[0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0, 0])
        .unwrap();
    assert!(junk.closed_by_broker());
    assert_eq!(metadata(&mut good, None).brokers.len(), 1);
}

#[test]
fn client_going_away_is_noticed() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let broker = DevBroker::start(
        DevBrokerConfig::new(1).on_connection(move |e| seen.lock().unwrap().push(e.clone())),
    )
    .expect("start");
    let mut raw = Raw::connect(broker.addresses()[0]);
    metadata(&mut raw, None);
    raw.stream.shutdown(Shutdown::Both).unwrap();
    drop(raw);
    let deadline = Instant::now() + TIMEOUT;
    while broker.open_connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(broker.open_connections(), 0);
    // The reader reports the close after the writer is done; wait for the event.
    while events.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let events = events.lock().unwrap().clone();
    assert!(
        matches!(events[0], ConnectionEvent::Opened { broker: 0, .. }),
        "{events:?}"
    );
    match &events[1] {
        ConnectionEvent::Closed { reason, .. } => {
            assert!(reason.contains("client"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sasl_listener_closes_requests_before_authentication() {
    let broker = DevBroker::start(DevBrokerConfig::new(1).sasl_user("PLAIN", "alice", "secret"))
        .expect("start");
    let mut raw = Raw::connect(broker.addresses()[0]);
    // ApiVersions is allowed before authentication...
    let v = raw.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(v.error_code, 0);
    // ... Metadata is not.
    raw.send(&MetadataRequest::default(), 12);
    assert!(raw.closed_by_broker());
}

#[test]
fn a_crashed_broker_refuses_and_closes() {
    let broker = DevBroker::start(DevBrokerConfig::new(2)).expect("start");
    let mut raw = Raw::connect(broker.addresses()[1]);
    metadata(&mut raw, None);
    broker
        .with_cluster(|c| c.crash_broker(1, Instant::now()))
        .expect("cluster thread alive");
    assert!(
        raw.closed_by_broker(),
        "crash closes the broker's connections"
    );
    // A new connection is accepted by the socket but closed at once.
    let mut again = Raw::connect(broker.addresses()[1]);
    assert!(again.closed_by_broker());
    // Broker 0 still answers, and lists only itself (as Kafka lists live brokers).
    let mut zero = Raw::connect(broker.addresses()[0]);
    let m = metadata(&mut zero, None);
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(m.brokers[0].node_id, 0);
}

#[test]
fn tls_identity_errors_are_reported() {
    let err = tls_server_config(b"not a certificate", b"not a key").unwrap_err();
    assert!(matches!(err, DevBrokerError::Tls(_)), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[test]
fn a_panic_on_the_cluster_thread_is_caught_and_recorded() {
    let broker = DevBroker::start(DevBrokerConfig::new(1)).expect("start");
    assert!(broker.model_failures().is_empty());
    let r: Option<()> = broker.with_cluster(|_| panic!("boom"));
    assert_eq!(r, None);
    let failures = broker.model_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("boom"), "{failures:?}");
    // The broker goes on.
    let mut raw = Raw::connect(broker.addresses()[0]);
    assert_eq!(metadata(&mut raw, None).brokers.len(), 1);
}
