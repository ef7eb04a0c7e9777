//! `tortie-fastpath`: see the library crate docs and `docs/design/fastpath-daemon.md`.

use clap::Parser;
use tortie_fastpath::cli::Args;
use tortie_fastpath::daemon;

fn main() -> std::process::ExitCode {
    let signals = match daemon::block_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tortie-fastpath: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let args = Args::parse();
    if let Err(e) = daemon::init_logging(&args) {
        eprintln!("tortie-fastpath: {e}");
        return std::process::ExitCode::from(2);
    }
    match daemon::run(args, signals) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tortie-fastpath failed");
            eprintln!("tortie-fastpath: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
