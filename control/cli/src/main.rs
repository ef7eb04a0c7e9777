//! tortiectl: the calicoctl-style command line for Tortie.
//!
//! Every command prints one success line (or the requested output) on stdout and exits 0, or
//! prints one `Failed to ...: <file>: document N (line L): <field path>: <reason>` line on
//! stderr and exits 1. Writes from files are all or nothing.

mod cli;
mod commands;
mod config;
mod error;
mod input;
mod output;

use std::process::ExitCode;

use clap::Parser;
use tortie_store::WriteMode;

use cli::{Cli, Command, DatastoreCommand, IpamCommand, MigrateCommand, PolicyCommand};
use commands::Context;
use commands::write::WriteRequest;
use config::{FlagOverrides, load};
use error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verb = verb_of(&cli.command);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let note = match &error {
                e if e.may_have_written() => "",
                CliError::Usage(_) | CliError::Config(_) | CliError::Output(_) => "",
                _ if writes(verb) => " (nothing was written)",
                _ => "",
            };
            eprintln!("Failed to {verb}: {error}{note}");
            ExitCode::FAILURE
        }
    }
}

/// The phrase after "Failed to" for each command, as calicoctl words it.
fn verb_of(command: &Command) -> &'static str {
    match command {
        Command::Create(_) => "create resources",
        Command::Apply(_) => "apply resources",
        Command::Replace(_) => "replace resources",
        Command::Delete(_) => "delete resources",
        Command::Get(_) => "get resources",
        Command::Patch(_) => "patch resource",
        Command::Label(_) => "label resource",
        Command::Version => "get the datastore version",
        Command::Policy {
            command: PolicyCommand::Explain(_),
        } => "explain the connection",
        Command::Ipam { command } => match command {
            IpamCommand::Show { .. } => "get IPAM information",
            IpamCommand::Check { .. } => "check IPAM",
            IpamCommand::Release { .. } => "release the address",
        },
        Command::Node { .. } => "get the node status",
        Command::Datastore {
            command: DatastoreCommand::Migrate { command },
        } => match command {
            MigrateCommand::Export { .. } => "export the datastore",
            MigrateCommand::Import { .. } => "import the datastore",
        },
    }
}

fn writes(verb: &str) -> bool {
    !verb.starts_with("get") && !verb.starts_with("export") && !verb.starts_with("explain")
}

fn run(cli: Cli) -> Result<(), CliError> {
    let flags = FlagOverrides {
        config_file: cli.config.clone(),
        datastore_type: cli.datastore_type.clone(),
        sqlite_path: cli.sqlite_path.clone(),
        etcd_endpoints: cli.etcd_endpoints.clone(),
    };
    let config = load(&flags, &|name| std::env::var(name).ok())?;
    let ctx = Context {
        config,
        single_txn: cli.single_txn,
    };
    let write = |file: &cli::FileArgs, skip_empty: bool, mode: WriteMode| {
        commands::write::run(
            &ctx,
            &WriteRequest {
                filename: &file.filename,
                recursive: file.recursive,
                namespace: file.namespace.as_deref(),
                skip_empty,
                mode,
            },
        )
    };
    let output = match &cli.command {
        Command::Create(args) => {
            let mode = if args.skip_exists {
                WriteMode::CreateSkipExisting
            } else {
                WriteMode::Create
            };
            line(write(&args.file, args.skip_empty, mode)?)
        }
        Command::Apply(args) => line(write(&args.file, args.skip_empty, WriteMode::Apply)?),
        Command::Replace(args) => line(write(&args.file, args.skip_empty, WriteMode::Replace)?),
        Command::Delete(args) => line(commands::delete::run(&ctx, args)?),
        Command::Get(args) => commands::get::run(&ctx, args)?,
        Command::Patch(args) => line(commands::modify::patch(&ctx, args)?),
        Command::Label(args) => line(commands::modify::label(&ctx, args)?),
        Command::Version => version(&ctx)?,
        Command::Policy {
            command: PolicyCommand::Explain(args),
        } => commands::policy::explain(&ctx, args)?,
        Command::Ipam { command } => commands::ipam::run(&ctx, command)?,
        Command::Node { command } => commands::node::run(&ctx, command)?,
        Command::Datastore {
            command: DatastoreCommand::Migrate { command },
        } => match command {
            MigrateCommand::Export { output } => {
                let (text, summary) = commands::migrate::export(&ctx, output.as_deref())?;
                if let Some(summary) = summary {
                    eprintln!("{summary}");
                }
                text
            }
            MigrateCommand::Import { filename } => line(commands::migrate::import(&ctx, filename)?),
        },
    };
    print!("{output}");
    Ok(())
}

fn line(text: String) -> String {
    format!("{text}\n")
}

/// `version`: the client version, the datastore type, and (if it answers) its revision.
fn version(ctx: &Context) -> Result<String, CliError> {
    let mut out = format!(
        "Client Version:    v{}\nDatastore Type:    {}\n",
        env!("CARGO_PKG_VERSION"),
        ctx.config.datastore_type.as_str()
    );
    let ds = ctx.open();
    match ds.and_then(|ds| Ok((ds.describe(), ds.current_revision()?))) {
        Ok((describe, revision)) => {
            out.push_str(&format!(
                "Datastore:         {describe}\nRevision:          {revision}\n"
            ));
            Ok(out)
        }
        Err(e) => {
            print!("{out}");
            Err(e)
        }
    }
}
