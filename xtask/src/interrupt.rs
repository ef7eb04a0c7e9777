//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during `lab up` or the demo tear the lab down instead of
//! leaving namespaces and daemons behind.
//!
//! The signals are blocked in the main thread before any other thread exists (threads inherit
//! the mask), and one watcher thread takes them with `sigwait`. Children inherit the mask too:
//! short-lived tools do not care, and the daemons are started through `env --default-signal`
//! (see [`crate::exec::in_netns_with_sysfs`]), which clears it.

use std::path::PathBuf;

use nix::sys::signal::{SigSet, Signal};

/// Blocks the signals and starts the watcher, which removes the lab recorded in `run_dir` and
/// exits with 130 when one arrives. Call first thing in `main`.
pub fn tear_down_on_signal(run_dir: PathBuf) -> std::result::Result<(), String> {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
        .thread_block()
        .map_err(|err| format!("cannot block signals: {err}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(signal) = signals.wait() else {
                return;
            };
            eprintln!("\nxtask: {signal}: taking the lab down");
            match crate::lab::down(&run_dir) {
                Ok(Some(report)) => eprintln!(
                    "xtask: lab removed ({} namespaces)",
                    report.namespaces.len()
                ),
                Ok(None) => {}
                Err(err) => eprintln!("xtask: lab down: {err}"),
            }
            std::process::exit(130);
        })
        .map_err(|err| format!("cannot start the signal watcher: {err}"))?;
    Ok(())
}
