//! What both Tortie daemons need to be operated: structured logs with levels (to stderr, a
//! file and/or syslog), Prometheus metrics, and readiness/liveness endpoints.
//!
//! - [`init_logging`] installs a `tracing` subscriber from [`LogOptions`].
//! - [`Health`] holds readiness (one flag with a reason) and liveness (components that must
//!   [`Liveness::beat`] within a deadline: a wedged worker turns `/livez` red).
//! - [`serve`] answers `GET /metrics` (OpenMetrics text of a `prometheus-client` registry),
//!   `/readyz`, `/livez` and `/status` (JSON from a callback) on a plain std thread: the
//!   daemons' hot paths never see it, and no async runtime is needed.

mod error;
mod health;
mod http;
mod logging;

pub use error::TelemetryError;
pub use health::{Health, Liveness};
pub use http::{Server, StatusFn, serve};
pub use logging::{LogOptions, init_logging};
