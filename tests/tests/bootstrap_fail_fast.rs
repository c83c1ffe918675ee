//! Issue 24 item 4 on real drivers and sockets: a refused or unresolvable bootstrap address
//! fails fast (`bootstrap_fail_fast`, on by default) with an error naming each address and
//! its cause, instead of waiting the 30 s `request_timeout_ms`.
//!
//! No clock is asserted: the error kind says which path failed the request. The fail-fast
//! path answers `NetError::NoBroker` ("no bootstrap broker could be reached"); the waiting
//! path would answer `NetError::Timeout` after the request timeout. A watchdog bounds each
//! call generously so that a regression fails instead of hanging.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use kafkit_core::admin::AdminError;
use kafkit_core::config::{AdminConfig, CommonConfig};
use kafkit_core::network::NetError;

/// Far above the fail-fast path's time (a connection attempt per address), below nothing the
/// test relies on: only a hang trips it.
const WATCHDOG: Duration = Duration::from_secs(120);

/// A localhost port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

/// A name no resolver knows (`.invalid` is reserved for that, RFC 6761).
const UNRESOLVABLE: &str = "kafkit-no-such-host.invalid";

/// Runs `f` on its own thread; panics if it has not returned within the watchdog.
fn within_watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("{what}: no answer within {WATCHDOG:?}"))
}

fn config(bootstrap: &[String]) -> CommonConfig {
    let mut config = CommonConfig::default();
    config.bootstrap_servers = bootstrap.to_vec();
    // The default request timeout (30 s) on purpose: the failure must not wait for it.
    assert_eq!(config.request_timeout_ms, 30_000);
    assert!(config.bootstrap_fail_fast, "on by default");
    config
}

/// Checks the fail-fast error: `NoBroker` with one cause per address, each naming the address
/// and what went wrong with it.
fn check(err: &NetError, expected: &[(&str, &[&str])]) {
    let NetError::NoBroker { causes } = err else {
        panic!("expected the fail-fast error (NoBroker), got {err:?}: {err}")
    };
    assert_eq!(causes.len(), expected.len(), "{causes:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("no bootstrap broker could be reached"),
        "{text}"
    );
    for (address, words) in expected {
        let cause = causes
            .iter()
            .find(|c| c.contains(address))
            .unwrap_or_else(|| panic!("no cause names {address}: {causes:?}"));
        let lower = cause.to_lowercase();
        assert!(
            words.iter().any(|w| lower.contains(w)),
            "{address}: the cause {cause:?} says none of {words:?}"
        );
    }
}

fn addresses() -> (Vec<String>, Vec<(String, &'static [&'static str])>) {
    let refused = format!("127.0.0.1:{}", closed_port());
    let unresolvable = format!("{UNRESOLVABLE}:9092");
    let expected: Vec<(String, &'static [&'static str])> = vec![
        (refused.clone(), &["refused"]),
        (unresolvable.clone(), &["cannot resolve"]),
    ];
    (vec![refused, unresolvable], expected)
}

fn expected_ref<'a>(
    expected: &'a [(String, &'static [&'static str])],
) -> Vec<(&'a str, &'a [&'a str])> {
    expected.iter().map(|(a, w)| (a.as_str(), *w)).collect()
}

#[test]
fn tokio_refused_and_unresolvable_bootstrap_fail_fast_naming_each() {
    let (bootstrap, expected) = addresses();
    let config = config(&bootstrap);
    let err = within_watchdog("tokio metadata", move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let client = kafkit_tokio::low_level_client(&config).expect("client");
            client
                .metadata(None)
                .await
                .expect_err("no broker to answer")
        })
    });
    check(&err, &expected_ref(&expected));
}

#[test]
fn blocking_refused_and_unresolvable_bootstrap_fail_fast_naming_each() {
    let (bootstrap, expected) = addresses();
    let config = config(&bootstrap);
    let err = within_watchdog("blocking metadata", move || {
        let client = kafkit_blocking::LowLevelClient::start(&config).expect("client");
        client.metadata(None).expect_err("no broker to answer")
    });
    check(&err, &expected_ref(&expected));
}

#[test]
fn blocking_admin_call_against_a_refused_port_fails_fast() {
    let refused = format!("127.0.0.1:{}", closed_port());
    let mut config = AdminConfig::default();
    config.common = self::config(std::slice::from_ref(&refused));
    let err = within_watchdog("blocking describe_cluster", move || {
        let admin = kafkit_blocking::Admin::start(&config).expect("admin");
        admin.describe_cluster().expect_err("no broker to answer")
    });
    let AdminError::Net(net) = &err else {
        panic!("expected a network error, got {err:?}")
    };
    check(net, &[(refused.as_str(), &["refused"])]);
}
