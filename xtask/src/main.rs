//! `cargo xtask <command>`: the project's automation.
//!
//! - `test`: installs missing Debian packages, then runs the whole test suite.
//! - `demo`: installs missing packages, builds, and runs the demo (the README's main command).
//! - `lab`: `up|status|down|add|del`, the three-node lab of network namespaces.
//! - `bench`: runs the criterion benchmarks; `bench policy-latency` measures how fast a policy
//!   change is enforced on a lab node (see `xtask::policy_latency`).

use std::process::{Command, ExitCode};

use xtask::{cargo, demo, lab_command, packages, workspace_root};

const USAGE: &str = "usage: cargo xtask <test|demo|lab|bench> [args...]

  test    install missing Debian packages, then run every test in the workspace
  demo    install missing Debian packages, build, and run the Tortie demo on a three-node lab
          (--no-daemons: kernel forwarding instead of tortie-fastpath)
  lab     up|status|down|add|del: the lab of network namespaces (`cargo xtask lab help`)
  bench   run the criterion benchmarks (extra args go to cargo bench)
  bench policy-latency [--endpoints N] [--changes N] [--debug]
          commit -> enforced latency of policy changes on a lab node (release build, root)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "test" => test(rest),
        "demo" => demo::run(rest).map_err(|err| err.to_string()),
        "lab" => lab_command::run(rest).map_err(|err| err.to_string()),
        "bench" => bench(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    packages::ensure(packages::BUILD)?;
    packages::ensure(packages::TEST_PEERS)?;
    let mut totals = TestTotals::default();
    // --no-fail-fast: one failing test binary must not hide the results of the others.
    let all_targets = cargo_counting(
        &["test", "--workspace", "--all-targets", "--no-fail-fast"],
        extra,
        &mut totals,
    );
    let doc = cargo_counting(
        &["test", "--workspace", "--doc", "--no-fail-fast"],
        &[],
        &mut totals,
    );
    println!(
        "summary: {} passed, {} failed",
        totals.passed, totals.failed
    );
    all_targets.and(doc)
}

/// Passed and failed test counts summed over every `test result:` line cargo prints.
#[derive(Debug, Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
}

impl TestTotals {
    /// Adds the counts of one `test result: ok. 12 passed; 0 failed; ...` line.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim_start().strip_prefix("test result:") else {
            return;
        };
        let count = |word: &str| {
            rest.split(';')
                .find_map(|part| {
                    part.trim()
                        .strip_suffix(word)?
                        .trim()
                        .rsplit(' ')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0)
        };
        self.passed += count("passed");
        self.failed += count("failed");
    }
}

/// Runs cargo like [`cargo`], echoing its standard output while counting test results.
fn cargo_counting(args: &[&str], extra: &[String], totals: &mut TestTotals) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(workspace_root())
        .args(args)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            totals.add_line(&line);
        }
    }
    let status = child
        .wait()
        .map_err(|err| format!("cargo did not finish: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed with {status}", args.join(" ")))
    }
}

fn bench(extra: &[String]) -> Result<(), String> {
    if extra.first().map(String::as_str) == Some("policy-latency") {
        return xtask::policy_latency::run(&extra[1..]).map_err(|err| err.to_string());
    }
    packages::ensure(packages::BUILD)?;
    cargo(&["bench", "--workspace"], extra)
}

#[cfg(test)]
mod tests {
    use super::TestTotals;

    #[test]
    fn counts_test_result_lines() {
        let mut totals = TestTotals::default();
        totals.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        totals.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        totals.add_line("running 5 tests");
        assert_eq!((totals.passed, totals.failed), (15, 2));
    }
}
