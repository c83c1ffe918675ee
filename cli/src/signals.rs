//! SIGINT and SIGTERM.
//!
//! A command that holds state worth saving (a group member's offsets, records not yet
//! delivered, a running broker) calls [`graceful`]: the first signal then only asks it to
//! stop ([`stop_requested`]), and it closes cleanly (commits, leaves the group, flushes) and
//! exits with 128 + the signal's number; a second signal exits at once. Every other command
//! exits at once on the first signal, as it has nothing to save.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The running command closes cleanly on the first signal.
static GRACEFUL: AtomicBool = AtomicBool::new(false);

/// Starts listening for SIGINT and SIGTERM (on a thread of signal-hook's).
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("kafkit-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let first = RECEIVED
                    .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if first && GRACEFUL.load(Ordering::SeqCst) {
                    eprintln!(
                        "kafkit: {}: closing cleanly (a second signal exits at once)",
                        name(signal)
                    );
                    continue;
                }
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// The running command closes cleanly on the first signal (see the module docs).
pub fn graceful() {
    GRACEFUL.store(true, Ordering::SeqCst);
}

/// The signal that asked the command to stop, if one did.
pub fn stop_requested() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `SIGINT`, `SIGTERM`.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
