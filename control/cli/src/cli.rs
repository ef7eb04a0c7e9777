//! The command-line grammar (clap derive), mirroring calicoctl's commands and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// tortiectl: manage Tortie's projectcalico.org/v3 resources.
#[derive(Debug, Parser)]
#[command(name = "tortiectl", version, about, long_about = None)]
pub struct Cli {
    /// Client configuration file (calicoctl.cfg shape).
    #[arg(short = 'c', long = "config", global = true, env = "TORTIECTL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Datastore type: sqlite or etcdv3 (overrides DATASTORE_TYPE and the config file).
    #[arg(long, global = true)]
    pub datastore_type: Option<String>,
    /// SQLite database file (overrides SQLITE_PATH and the config file).
    #[arg(long, global = true)]
    pub sqlite_path: Option<PathBuf>,
    /// Comma-separated etcd endpoints (overrides ETCD_ENDPOINTS and the config file).
    #[arg(long, global = true)]
    pub etcd_endpoints: Option<String>,
    /// Refuse writes that do not fit in one datastore transaction (etcd: 128 operations)
    /// instead of writing them in chunks with rollback.
    #[arg(long, global = true)]
    pub single_txn: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create resources from a file; fails if any already exists (nothing is written then).
    Create(CreateArgs),
    /// Create or replace resources from a file, all or nothing.
    Apply(WriteArgs),
    /// Replace existing resources from a file; fails if any is missing.
    Replace(WriteArgs),
    /// Delete resources by kind and name, or those named in a file.
    Delete(DeleteArgs),
    /// Show resources.
    Get(GetArgs),
    /// Change fields of one resource with a JSON merge patch or a JSON patch.
    Patch(PatchArgs),
    /// Add, change or remove a label on one resource.
    Label(LabelArgs),
    /// Print the client version and the datastore in use.
    Version,
    /// Policy tools.
    Policy {
        /// The operation.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// IP address management: show, check and release allocations.
    Ipam {
        /// The operation.
        #[command(subcommand)]
        command: IpamCommand,
    },
    /// What a node's daemons report: status and routes.
    Node {
        /// The operation.
        #[command(subcommand)]
        command: crate::commands::node::NodeCommand,
    },
    /// Whole-datastore operations.
    Datastore {
        /// The operation.
        #[command(subcommand)]
        command: DatastoreCommand,
    },
}

/// `-f` and friends, shared by the writing commands.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// File, directory or `-` (stdin) with YAML or JSON documents.
    #[arg(short = 'f', long = "filename", required = true)]
    pub filename: String,
    /// Recurse into sub-directories of a directory given to -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Namespace for namespaced resources that do not name one (default "default").
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// `create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The input.
    #[command(flatten)]
    pub file: FileArgs,
    /// Leave resources that already exist untouched instead of failing.
    #[arg(long)]
    pub skip_exists: bool,
    /// Succeed when the input holds no resources.
    #[arg(long)]
    pub skip_empty: bool,
}

/// `apply` / `replace` options.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The input.
    #[command(flatten)]
    pub file: FileArgs,
    /// Succeed when the input holds no resources.
    #[arg(long)]
    pub skip_empty: bool,
}

/// `delete` options.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// KIND NAME... (when -f is not given).
    pub args: Vec<String>,
    /// File, directory or `-` naming the resources to delete.
    #[arg(short = 'f', long = "filename")]
    pub filename: Option<String>,
    /// Recurse into sub-directories of a directory given to -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Namespace of namespaced resources (default "default").
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Succeed for resources that do not exist.
    #[arg(short = 's', long)]
    pub skip_not_exists: bool,
}

/// `get` options.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// KIND [NAME...] (when -f is not given).
    pub args: Vec<String>,
    /// File, directory or `-` naming the resources to show.
    #[arg(short = 'f', long = "filename")]
    pub filename: Option<String>,
    /// Recurse into sub-directories of a directory given to -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Output format: ps, wide, yaml, json or custom-columns=COL1,COL2.
    #[arg(short = 'o', long, default_value = "ps")]
    pub output: String,
    /// Namespace of namespaced resources (default "default").
    #[arg(short = 'n', long, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// List namespaced resources in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Leave out cluster-specific metadata (resourceVersion, uid, creationTimestamp).
    #[arg(long)]
    pub export: bool,
}

/// Patch flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch (calicoctl's "strategic" behaves like this for v3 resources).
    Strategic,
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch (a list of operations).
    Json,
}

/// `patch` options.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Kind of the resource.
    pub kind: String,
    /// Name of the resource.
    pub name: String,
    /// The patch, as JSON (or YAML).
    #[arg(short = 'p', long)]
    pub patch: String,
    /// Patch type.
    #[arg(short = 't', long = "type", value_enum, default_value = "strategic")]
    pub patch_type: PatchType,
    /// Namespace of a namespaced resource (default "default").
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// `label` options.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// Kind of the resource.
    pub kind: String,
    /// Name of the resource.
    pub name: String,
    /// `key=value` to set, or `key` with --remove.
    pub label: String,
    /// Replace the value of a label that is already set.
    #[arg(long)]
    pub overwrite: bool,
    /// Remove the label instead of setting it.
    #[arg(long)]
    pub remove: bool,
    /// Namespace of a namespaced resource (default "default").
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// `datastore` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Move a whole datastore to another backend.
    Migrate {
        /// The step.
        #[command(subcommand)]
        command: MigrateCommand,
    },
}

/// `datastore migrate` steps.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Write every v3 resource and the IPAM records to a file (or stdout).
    Export {
        /// Output file; stdout when absent.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Load an export into an empty datastore.
    Import {
        /// The export file, or `-` for stdin.
        #[arg(short = 'f', long = "filename")]
        filename: String,
    },
}

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Explain whether a connection is allowed, and which tier, policy and rule decide it:
    /// egress of the source, then ingress of the destination.
    Explain(ExplainArgs),
}

/// `policy explain` options.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Source endpoint: NAMESPACE/NAME (a WorkloadEndpoint's name or workload) or a
    /// HostEndpoint's NAME.
    #[arg(long, required_unless_present = "from_ip", conflicts_with = "from_ip")]
    pub from: Option<String>,
    /// Source address outside the cluster.
    #[arg(long)]
    pub from_ip: Option<std::net::IpAddr>,
    /// Destination endpoint (as --from).
    #[arg(long, required_unless_present = "to_ip", conflicts_with = "to_ip")]
    pub to: Option<String>,
    /// Destination address outside the cluster.
    #[arg(long)]
    pub to_ip: Option<std::net::IpAddr>,
    /// TCP, UDP, SCTP, ICMP, ICMPv6, UDPLite or a protocol number.
    #[arg(long)]
    pub protocol: String,
    /// Destination port (TCP, UDP, SCTP).
    #[arg(long)]
    pub port: Option<u16>,
    /// Output: a sentence (default) or json.
    #[arg(short = 'o', long, default_value = "text")]
    pub output: String,
}

/// `ipam` subcommands.
#[derive(Debug, Subcommand)]
pub enum IpamCommand {
    /// Show pool usage, and optionally each block or who holds one address.
    Show {
        /// List every block with its node and usage.
        #[arg(long)]
        show_blocks: bool,
        /// Show who holds this address.
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
    },
    /// Check IPAM consistency: broken blocks, handle mismatches, orphaned affinities and leaked
    /// addresses (allocated to containers that have no WorkloadEndpoint). Exits 1 when it finds
    /// a problem.
    Check {
        /// Release the leaked addresses it finds.
        #[arg(long)]
        release_leaks: bool,
    },
    /// Release one allocated address.
    Release {
        /// The address.
        #[arg(long)]
        ip: std::net::IpAddr,
    },
}
