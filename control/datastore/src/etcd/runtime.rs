//! The private tokio runtime the etcd backend drives its gRPC client on.
//!
//! The crate's API is blocking (the CNI plugin has no runtime). A current-thread runtime
//! runs on one dedicated thread that does nothing but `block_on` until shutdown; callers hand
//! it futures and wait on a std channel. Waiting on a std channel (rather than
//! `Handle::block_on`) keeps every socket on the runtime thread and works from any caller,
//! including one inside another runtime's `spawn_blocking`.

use std::future::Future;
use std::sync::mpsc::sync_channel;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Owns the runtime thread; dropping it stops the runtime and joins the thread.
#[derive(Debug)]
pub(super) struct RuntimeThread {
    handle: Handle,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Why a future handed to the runtime produced no value.
#[derive(Debug)]
pub(super) enum RunError {
    /// It did not finish within the deadline.
    TimedOut,
    /// The runtime is gone (only during shutdown).
    Stopped,
}

impl RuntimeThread {
    pub(super) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("tortie-etcd".into())
            .spawn(move || {
                runtime.block_on(async {
                    // Either a shutdown message or the sender being dropped ends the wait.
                    let _either = stopped.await;
                });
                // Dropping the runtime here cancels whatever tasks (watches) remain.
            })?;
        Ok(RuntimeThread {
            handle,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The runtime's handle, for spawning long-lived tasks (watches).
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on the runtime thread and blocks until it finishes or `deadline` passes
    /// (the future is then dropped, which cancels the request).
    pub(super) fn run<T, F>(&self, deadline: Duration, future: F) -> Result<T, RunError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = sync_channel(1);
        self.handle.spawn(async move {
            let result = tokio::time::timeout(deadline, future).await;
            let _receiver_gone = tx.send(result);
        });
        match rx.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_elapsed)) => Err(RunError::TimedOut),
            Err(_) => Err(RunError::Stopped),
        }
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _already_stopped = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _panicked = thread.join();
        }
    }
}
