//! Issue 24 item 4 through the `kafkit` binary: a refused bootstrap address fails promptly
//! with the fail-fast error naming the address and its cause, with the default
//! `request_timeout_ms` (30 s) left as it is.
//!
//! The clock is not asserted: the message says which path failed the call (the waiting path
//! would report a timeout after 30 s instead of "no bootstrap broker could be reached"). A
//! watchdog kills a run that hangs.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Only a hang trips it.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Runs `kafkit args` (no KAFKA_BOOTSTRAP from the environment); returns the exit code and
/// stderr, killing the process if it outlives the watchdog.
fn kafkit(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafkit"))
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kafkit");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
        let _ = tx.send(text);
    });
    let text = match rx.recv_timeout(WATCHDOG) {
        Ok(text) => text,
        Err(_) => {
            let _ = child.kill();
            panic!("kafkit {args:?} (pid {pid}) still running after {WATCHDOG:?}");
        }
    };
    let status = child.wait().expect("waiting for kafkit");
    (status.code(), text)
}

#[test]
fn metadata_against_port_1_exits_non_zero_with_the_fail_fast_message() {
    // Port 1 (tcpmux) is closed on any machine that runs these tests: the connection is
    // refused at once.
    for json in [false, true] {
        let mut args = vec!["metadata", "-b", "127.0.0.1:1"];
        if json {
            args.push("--json");
        }
        let (code, err) = kafkit(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("no bootstrap broker could be reached"),
            "{args:?}: the fail-fast error, not a timeout: {err}"
        );
        assert!(
            err.contains("127.0.0.1:1"),
            "{args:?}: names the address: {err}"
        );
        assert!(
            err.to_lowercase().contains("refused"),
            "{args:?}: says why: {err}"
        );
        assert!(!err.contains("timed out"), "{args:?}: {err}");
    }
}

#[test]
fn an_unresolvable_name_is_named_with_its_cause() {
    let (code, err) = kafkit(&["metadata", "-b", "kafkit-no-such-host.invalid:9092"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no bootstrap broker could be reached"),
        "{err}"
    );
    assert!(
        err.contains("cannot resolve kafkit-no-such-host.invalid"),
        "{err}"
    );
}
