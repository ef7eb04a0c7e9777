//! The status file's own writer thread.
//!
//! The status document holds every route in force (a thousand or more on a node with many
//! workloads), so building it, writing it and renaming it into place takes milliseconds, and
//! longer on a busy disk. Done on the config thread, once a second, it delayed any ring
//! message that arrived meanwhile by that much: a policy change landing in that window was
//! enforced late. This thread writes it instead, from the shared view the config thread
//! keeps up to date, every [`STATUS_EVERY`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::view::Shared;

/// How often the status file is written.
pub const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often the thread looks at the stop flag between writes.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Writes `shared`'s status document to `path` at once, then every [`STATUS_EVERY`] until
/// `stop` is set (it does not write after that: the caller writes the final document once
/// this thread has been joined, so that two writers never share the temporary file).
pub fn spawn(
    shared: Arc<Shared>,
    path: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("fp-status".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = shared.write_status(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "writing the status file failed");
                }
                let next = Instant::now() + STATUS_EVERY;
                while !stop.load(Ordering::Relaxed) && Instant::now() < next {
                    std::thread::sleep(STOP_CHECK.min(next.saturating_duration_since(Instant::now())));
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::View;
    use std::sync::Mutex;

    #[test]
    fn writes_at_once_and_again_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let shared = Arc::new(Shared {
            workers: Vec::new(),
            view: Mutex::new(View {
                generation: 7,
                ..View::default()
            }),
            pid: 1,
            started_unix: 0,
            mode: "adaptive",
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = spawn(shared.clone(), path.clone(), stop.clone()).unwrap();
        let read = |min_generation: u64| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(text) = std::fs::read_to_string(&path)
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                    && v["generation"].as_u64() >= Some(min_generation)
                {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        };
        assert!(read(7), "first document");
        // The thread follows the view.
        shared.update(|v| v.generation = 8);
        assert!(read(8), "a later document");
        let stopped = Instant::now();
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        assert!(stopped.elapsed() < Duration::from_secs(2));
    }
}
