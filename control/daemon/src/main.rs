//! The `tortie-control` binary: parses the command line and runs the daemon until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use tortie_control::daemon;
use tortie_control::options::Options;

fn main() -> ExitCode {
    let opts = Options::parse();
    let result = daemon::stop_flag().and_then(|stop| daemon::run(opts, stop));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tortie-control: {err}");
            tracing::error!(%err, "tortie-control failed");
            ExitCode::FAILURE
        }
    }
}
