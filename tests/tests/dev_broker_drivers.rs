//! kafkit's four runtime drivers against the development broker over real sockets: SASL
//! (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), TLS with a CA of the test's own (rcgen), both
//! together, and the failures: a wrong password is an authentication error naming the broker,
//! an unknown CA a TLS error.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkit_blocking::LowLevelClient;
use kafkit_core::config::CommonConfig;
use kafkit_core::driver::LowLevelHandle;
use kafkit_core::network::{ClusterView, NetError, Response, SetupError, Target};
use kafkit_core::protocol::RequestBody;
use kafkit_sim::dev_broker::{tls_server_config, DevBroker, DevBrokerConfig, TlsServerConfig};
use kafkit_tests::drivers::{AsyncDriver, AsyncRuntime, Driver, VersionCheck};
use kafkit_tests::scenarios::{api_versions_request, config};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";
const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

// ---- the drivers ----

struct Tokio(tokio::runtime::Runtime);

impl AsyncRuntime for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }
    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
        let _guard = self.0.enter();
        kafkit_tokio::low_level_client(config)
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
}

fn tokio_driver() -> AsyncDriver<Tokio> {
    AsyncDriver(Tokio(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime"),
    ))
}

struct Smol;

impl AsyncRuntime for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }
    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
        kafkit_smol::low_level_client(config)
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        smol::block_on(fut)
    }
}

struct AsyncStd;

impl AsyncRuntime for AsyncStd {
    fn name(&self) -> &'static str {
        "async-std"
    }
    fn start(&self, config: &CommonConfig) -> Result<LowLevelHandle, SetupError> {
        kafkit_async_std::low_level_client(config)
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        futures_executor::block_on(fut)
    }
}

struct Blocking;

impl Driver for Blocking {
    type Client = LowLevelClient;
    fn name(&self) -> &'static str {
        "blocking"
    }
    fn start(&self, config: &CommonConfig) -> Result<LowLevelClient, SetupError> {
        LowLevelClient::start(config)
    }
    fn check_version(&self, client: &LowLevelClient) -> Result<VersionCheck, NetError> {
        client.check_version()
    }
    fn metadata(
        &self,
        client: &LowLevelClient,
        topics: Option<Vec<String>>,
    ) -> Result<Arc<ClusterView>, NetError> {
        client.metadata(topics)
    }
    fn send(
        &self,
        client: &LowLevelClient,
        target: Target,
        body: RequestBody,
        max_version: Option<i16>,
    ) -> Result<Response, NetError> {
        client.send(target, body, max_version)
    }
}

// ---- certificates ----

/// A CA, a server certificate it issued for 127.0.0.1 and localhost, and the CA's PEM in a
/// file (for `ssl_cafile`).
struct Pki {
    server: Arc<TlsServerConfig>,
    ca_file: TempFile,
}

/// A file deleted on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "kafkit-dev-broker-{}-{name}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, contents).expect("writing a temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn make_pki(tag: &str) -> Pki {
    let (ca_cert, ca_key) = ca(&format!("kafkit dev broker test CA {tag}"));
    let leaf_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    // The broker loads PEM, as `kafkit dev-broker --tls-cert --tls-key` does.
    let chain = format!("{}{}", leaf.pem(), ca_cert.pem());
    let server = tls_server_config(chain.as_bytes(), leaf_key.serialize_pem().as_bytes())
        .expect("server TLS config from PEM");
    Pki {
        server,
        ca_file: TempFile::new(&format!("{tag}-ca.pem"), &ca_cert.pem()),
    }
}

// ---- the scenarios ----

fn client_config(broker: &DevBroker, protocol: &str) -> CommonConfig {
    let mut c = config(&broker.bootstrap());
    c.request_timeout_ms = 5_000;
    c.set("security_protocol", protocol).unwrap();
    c
}

fn with_sasl(mut c: CommonConfig, mechanism: &str, password: &str) -> CommonConfig {
    c.set("sasl_mechanism", mechanism).unwrap();
    c.set("sasl_plain_username", USER).unwrap();
    c.set("sasl_plain_password", password).unwrap();
    c
}

/// Metadata from the cluster, then a request to every broker (a connection, and for SASL an
/// authentication, each): all must work.
fn works<D: Driver>(driver: &D, config: &CommonConfig, broker: &DevBroker, what: &str) {
    let name = driver.name();
    let started = Instant::now();
    let client = driver
        .start(config)
        .unwrap_or_else(|e| panic!("{name} {what}: start: {e}"));
    let view = driver
        .metadata(&client, None)
        .unwrap_or_else(|e| panic!("{name} {what}: metadata: {e}"));
    let mut ports: Vec<u16> = view.brokers.values().map(|b| b.port).collect();
    ports.sort_unstable();
    let mut want: Vec<u16> = broker.addresses().iter().map(|a| a.port()).collect();
    want.sort_unstable();
    assert_eq!(ports, want, "{name} {what}: brokers at the real ports");
    for node in view.brokers.keys() {
        let resp = driver
            .send(&client, Target::Node(*node), api_versions_request(), None)
            .unwrap_or_else(|e| panic!("{name} {what}: ApiVersions to node {node}: {e}"));
        assert!(
            matches!(
                resp.body,
                kafkit_core::protocol::ResponseBody::ApiVersions(_)
            ),
            "{name} {what}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{name} {what}: took {:?}",
        started.elapsed()
    );
}

/// The first request fails quickly with an error `check` accepts, naming a broker address.
fn fails<D: Driver>(
    driver: &D,
    config: &CommonConfig,
    broker: &DevBroker,
    what: &str,
    check: impl Fn(&NetError) -> bool,
) {
    let name = driver.name();
    let client = driver
        .start(config)
        .unwrap_or_else(|e| panic!("{name} {what}: start: {e}"));
    let started = Instant::now();
    let err = match driver.metadata(&client, None) {
        Ok(v) => panic!("{name} {what}: succeeded: {v:?}"),
        Err(e) => e,
    };
    let elapsed = started.elapsed();
    let shown = err.to_string();
    eprintln!("{name} {what}: failed after {elapsed:?}: {shown}");
    assert!(check(&err), "{name} {what}: unexpected error {err:?}");
    assert!(
        broker
            .addresses()
            .iter()
            .any(|a| shown.contains(&format!("127.0.0.1:{}", a.port()))),
        "{name} {what}: the error names no broker: {shown}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "{name} {what}: took {elapsed:?} to fail"
    );
}

fn run<D: Driver>(driver: &D) {
    let name = driver.name();
    // SASL over plaintext, two brokers, the user known to every mechanism.
    let mut sasl = DevBrokerConfig::new(2);
    for m in MECHANISMS {
        sasl = sasl.sasl_user(m, USER, PASSWORD);
    }
    let sasl_broker = DevBroker::start(sasl.clone()).expect("SASL dev broker");
    for m in MECHANISMS {
        let c = with_sasl(client_config(&sasl_broker, "SASL_PLAINTEXT"), m, PASSWORD);
        works(driver, &c, &sasl_broker, &format!("SASL {m}"));
    }
    for m in MECHANISMS {
        let c = with_sasl(client_config(&sasl_broker, "SASL_PLAINTEXT"), m, "wrong");
        fails(
            driver,
            &c,
            &sasl_broker,
            &format!("SASL {m} with a wrong password"),
            |e| matches!(e, NetError::Authentication { .. }),
        );
    }
    // A mechanism the user was not created for.
    let plain_only = DevBroker::start(DevBrokerConfig::new(1).sasl_user("PLAIN", USER, PASSWORD))
        .expect("PLAIN-only dev broker");
    let c = with_sasl(
        client_config(&plain_only, "SASL_PLAINTEXT"),
        "SCRAM-SHA-256",
        PASSWORD,
    );
    fails(
        driver,
        &c,
        &plain_only,
        "SCRAM against a PLAIN-only broker",
        |e| matches!(e, NetError::Authentication { .. }),
    );

    // TLS, then TLS and SASL together.
    let pki = make_pki(name);
    let tls_broker =
        DevBroker::start(DevBrokerConfig::new(2).tls(pki.server.clone())).expect("TLS broker");
    let mut c = client_config(&tls_broker, "SSL");
    c.set("ssl_cafile", pki.ca_file.0.to_str().unwrap())
        .unwrap();
    works(driver, &c, &tls_broker, "TLS");

    let other = make_pki(&format!("{name}-other"));
    let mut c = client_config(&tls_broker, "SSL");
    c.set("ssl_cafile", other.ca_file.0.to_str().unwrap())
        .unwrap();
    fails(driver, &c, &tls_broker, "TLS with an unknown CA", |e| {
        matches!(e, NetError::Tls { .. })
    });

    let sasl_ssl = DevBroker::start(sasl.tls(pki.server.clone())).expect("SASL_SSL broker");
    for m in MECHANISMS {
        let mut c = with_sasl(client_config(&sasl_ssl, "SASL_SSL"), m, PASSWORD);
        c.set("ssl_cafile", pki.ca_file.0.to_str().unwrap())
            .unwrap();
        works(driver, &c, &sasl_ssl, &format!("SASL_SSL {m}"));
    }
    let mut c = with_sasl(
        client_config(&sasl_ssl, "SASL_SSL"),
        "SCRAM-SHA-512",
        "wrong",
    );
    c.set("ssl_cafile", pki.ca_file.0.to_str().unwrap())
        .unwrap();
    fails(
        driver,
        &c,
        &sasl_ssl,
        "SASL_SSL with a wrong password",
        |e| matches!(e, NetError::Authentication { .. }),
    );
    for b in [&sasl_broker, &plain_only, &tls_broker, &sasl_ssl] {
        assert_eq!(b.model_failures(), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn tokio_sasl_and_tls_against_the_dev_broker() {
    run(&tokio_driver());
}

#[test]
fn smol_sasl_and_tls_against_the_dev_broker() {
    run(&AsyncDriver(Smol));
}

#[test]
fn async_std_sasl_and_tls_against_the_dev_broker() {
    run(&AsyncDriver(AsyncStd));
}

#[test]
fn blocking_sasl_and_tls_against_the_dev_broker() {
    run(&Blocking);
}

// ---- close waits for the writers ----

/// acks=0 records count as delivered when the core hands them to the driver, so `close` must
/// not return before the driver has written them: a program that exits right after would
/// lose them. A current-thread tokio runtime shows it: once `block_on(close)` returns and the
/// runtime is dropped, no connection task runs again, so whatever they had not written then
/// is gone. (Before `close` waited for the writers, the last requests were lost this way.)
#[test]
fn acks0_records_are_written_before_close_returns() {
    use kafkit_core::config::ProducerConfig;
    use kafkit_core::producer::ProducerRecord;

    const RECORDS: i64 = 2_000;
    let broker = DevBroker::start(DevBrokerConfig::new(1).partitions(1)).expect("dev broker");
    let config = ProducerConfig::builder()
        .set("bootstrap_servers", &broker.bootstrap())
        .set("acks", "0")
        .set("enable_idempotence", "false")
        .set("linger_ms", "0")
        .set("batch_size", "16384")
        .build()
        .expect("a valid producer config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let producer = kafkit_tokio::producer(&config).expect("tokio producer");
        let value = vec![b'x'; 1000];
        let mut deliveries = Vec::new();
        for i in 0..RECORDS {
            let record = ProducerRecord::new("acks0")
                .partition(0)
                .key(format!("k{i}"))
                .value(value.clone());
            deliveries.push(producer.enqueue(record).await.expect("send"));
        }
        producer.close(None).await.expect("close");
        for d in deliveries {
            d.await.expect("an acks=0 record is delivered once written");
        }
    });
    drop(rt);

    // The bytes are in the kernel now; the broker appends them as it reads.
    let deadline = Instant::now() + Duration::from_secs(30);
    let end = loop {
        let end = broker
            .with_cluster(|c| c.partition("acks0", 0).map_or(0, |p| p.log_end_offset()))
            .expect("cluster thread");
        if end == RECORDS || Instant::now() >= deadline {
            break end;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(end, RECORDS, "every acks=0 record reached the broker");
}
