//! Running work inside another network namespace.

use std::fs::File;

use nix::sched::{CloneFlags, setns};

use super::NetlinkError;

/// Runs `work` on a fresh thread that has joined the network namespace at `path`. The calling
/// thread's namespace is untouched; the helper thread ends with the work.
pub fn in_netns<T: Send + 'static>(
    path: &str,
    work: impl FnOnce() -> Result<T, NetlinkError> + Send + 'static,
) -> Result<T, NetlinkError> {
    let file =
        File::open(path).map_err(|err| NetlinkError::new(format!("open netns {path}"), err))?;
    let path = path.to_string();
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET)
            .map_err(|err| NetlinkError::new(format!("enter netns {path}"), err))?;
        work()
    })
    .join()
    .map_err(|_| NetlinkError::new("netns worker", "panicked"))?
}

/// Runs one asynchronous netlink operation to completion on a private runtime.
pub fn block_on<T>(
    work: impl AsyncFnOnce(rtnetlink::Handle) -> Result<T, NetlinkError>,
) -> Result<T, NetlinkError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|err| NetlinkError::new("start netlink runtime", err))?;
    runtime.block_on(async move {
        let (connection, handle, _) = rtnetlink::new_connection()
            .map_err(|err| NetlinkError::new("open netlink socket", err))?;
        let driver = tokio::spawn(connection);
        let result = work(handle).await;
        driver.abort();
        result
    })
}
