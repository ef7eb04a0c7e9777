//! What the CNI specification fixes: the environment, the error object, the result object and
//! version negotiation (CNI spec 1.1.0, with results converted for 0.3.x and 0.4.0 callers).

pub mod env;
pub mod error;
pub mod result;
pub mod version;

pub use env::{CniEnv, Command};
pub use error::{CniError, Code};
pub use result::{CniResult, Interface, IpConfig, Route};
