//! Work inside a network namespace from this process: a dedicated thread enters the namespace
//! (`setns(2)` changes only the calling thread) and runs a closure there. Sockets it creates
//! belong to that namespace for their whole life, so a listener bound there keeps serving the
//! namespace after the closure returns it.

use std::fs::File;
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns};

use crate::error::{Result, XtaskError};
use crate::exec::netns_path;

/// Runs `work` on a new thread inside `namespace` and waits for its result.
pub fn run_in<T, F>(namespace: &str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn_in(namespace, work)?.join()
}

/// A thread working inside a network namespace.
pub struct NsThread<T> {
    namespace: String,
    handle: JoinHandle<Option<T>>,
}

impl<T> NsThread<T> {
    /// Waits for the thread's result.
    pub fn join(self) -> Result<T> {
        match self.handle.join() {
            Ok(Some(value)) => Ok(value),
            Ok(None) | Err(_) => Err(XtaskError::Netns {
                namespace: self.namespace,
                message: "the thread working there panicked".into(),
            }),
        }
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Starts `work` on a new thread inside `namespace`; the namespace is entered before this
/// returns, so a failure to enter it is reported here rather than inside the thread.
pub fn spawn_in<T, F>(namespace: &str, work: F) -> Result<NsThread<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = netns_path(namespace);
    let netns_error = |message: String| XtaskError::Netns {
        namespace: namespace.to_string(),
        message,
    };
    let file = File::open(&path).map_err(|err| netns_error(format!("{path}: {err}")))?;
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("in-{namespace}"))
        .spawn(move || {
            let entered = setns(&file, CloneFlags::CLONE_NEWNET).map_err(|err| err.to_string());
            drop(file);
            let ok = entered.is_ok();
            let _ = entered_tx.send(entered);
            // Work that could not enter its namespace would test the wrong thing: skip it.
            ok.then(work)
        })
        .map_err(|err| netns_error(format!("cannot start a thread: {err}")))?;
    match entered_rx.recv() {
        Ok(Ok(())) => Ok(NsThread {
            namespace: namespace.to_string(),
            handle,
        }),
        Ok(Err(message)) => {
            let _ = handle.join();
            Err(netns_error(message))
        }
        Err(_) => Err(netns_error("the thread ended before entering".into())),
    }
}
