//! `ipam show | check | release`, over the same IPAM code the CNI plugins use.

use std::collections::HashSet;
use std::fmt::Write;

use tortie_ipam::{CheckReport, Ipam};
use tortie_model::{Kind, Resource};
use tortie_store::Scope;

use super::Context;
use crate::cli::IpamCommand;
use crate::error::CliError;

/// Runs an `ipam` subcommand and returns what to print.
pub fn run(ctx: &Context, command: &IpamCommand) -> Result<String, CliError> {
    match command {
        IpamCommand::Show { show_blocks, ip } => show(ctx, *show_blocks, *ip),
        IpamCommand::Check { release_leaks } => check(ctx, *release_leaks),
        IpamCommand::Release { ip } => release(ctx, *ip),
    }
}

fn pools(ctx: &Context) -> Result<Vec<(String, ipnet::IpNet)>, CliError> {
    let ds = ctx.open()?;
    let listing = ctx
        .store(ds.as_ref())
        .list(Kind::IpPool, Scope::AllNamespaces)?;
    Ok(listing
        .items
        .iter()
        .filter_map(|r| match r {
            Resource::IpPool(pool) => Some((pool.metadata.name.clone(), pool.spec.cidr.network())),
            _ => None,
        })
        .collect())
}

fn pool_size(cidr: &ipnet::IpNet) -> u128 {
    let bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

fn show(
    ctx: &Context,
    show_blocks: bool,
    ip: Option<std::net::IpAddr>,
) -> Result<String, CliError> {
    let ds = ctx.open()?;
    let ipam = Ipam::new(ds.as_ref());
    let mut out = String::new();
    if let Some(ip) = ip {
        match ipam.ip_info(ip)? {
            Some((block, owner)) => {
                let _ = writeln!(out, "IP {ip} is in use (block {block})");
                let _ = writeln!(
                    out,
                    "  handle: {}",
                    owner.handle_id.as_deref().unwrap_or("-")
                );
                for (key, value) in &owner.secondary {
                    let _ = writeln!(out, "  {key}: {value}");
                }
            }
            None => {
                let _ = writeln!(out, "IP {ip} is not assigned");
            }
        }
        return Ok(out);
    }
    let mut blocks = ipam.blocks(false)?;
    blocks.extend(ipam.blocks(true)?);
    let _ = writeln!(
        out,
        "{:<24} {:<20} {:>14} {:>14} {:>14}",
        "POOL", "CIDR", "ADDRESSES", "IN USE", "FREE"
    );
    for (name, cidr) in pools(ctx)? {
        let in_use: usize = blocks
            .iter()
            .filter(|(b, _)| cidr.contains(b))
            .map(|(_, block)| block.value.in_use_count())
            .sum();
        let size = pool_size(&cidr);
        let _ = writeln!(
            out,
            "{name:<24} {:<20} {size:>14} {in_use:>14} {:>14}",
            cidr.to_string(),
            size.saturating_sub(in_use as u128)
        );
    }
    if show_blocks {
        let _ = writeln!(
            out,
            "\n{:<24} {:<20} {:>8} {:>8}",
            "BLOCK", "NODE", "IN USE", "SIZE"
        );
        for (cidr, block) in &blocks {
            let _ = writeln!(
                out,
                "{:<24} {:<20} {:>8} {:>8}",
                cidr.to_string(),
                block.value.affine_node().unwrap_or("-"),
                block.value.in_use_count(),
                block.value.len()
            );
        }
    }
    Ok(out)
}

/// The handles that have a live owner: every handle of a container that has a
/// WorkloadEndpoint (`<network>.<container id>[.<ifname>]`), and every handle that is not a
/// container's (node tunnel addresses, `ipip-tunnel-addr-<node>`).
fn live_handles(ctx: &Context, report_handles: &[String]) -> Result<HashSet<String>, CliError> {
    let ds = ctx.open()?;
    let listing = ctx
        .store(ds.as_ref())
        .list(Kind::WorkloadEndpoint, Scope::AllNamespaces)?;
    let containers: HashSet<String> = listing
        .items
        .iter()
        .filter_map(|r| match r {
            Resource::WorkloadEndpoint(wep) => Some(wep.spec.container_id.clone()),
            _ => None,
        })
        .filter(|id| !id.is_empty())
        .collect();
    Ok(report_handles
        .iter()
        .filter(|handle| match handle.split('.').nth(1) {
            Some(container) => containers.contains(container),
            None => true,
        })
        .cloned()
        .collect())
}

fn check(ctx: &Context, release_leaks: bool) -> Result<String, CliError> {
    let ds = ctx.open()?;
    let ipam = Ipam::new(ds.as_ref());
    let mut handles: Vec<String> = Vec::new();
    let mut blocks = ipam.blocks(false)?;
    blocks.extend(ipam.blocks(true)?);
    for (_, block) in &blocks {
        handles.extend(
            block
                .value
                .allocated()
                .filter_map(|(_, owner)| owner.handle_id.clone()),
        );
    }
    let live = live_handles(ctx, &handles)?;
    let report: CheckReport = ipam.check(Some(&live))?;
    let mut out = report.to_string();
    if release_leaks && !report.leaks.is_empty() {
        let released = ipam.release_leaks(&report)?;
        let _ = writeln!(out, "Released {} leaked address(es).", released.len());
        let after = ipam.check(Some(&live))?;
        return if after.is_clean() {
            Ok(out)
        } else {
            Err(CliError::CheckFailed(format!("{out}{after}")))
        };
    }
    if report.is_clean() {
        Ok(out)
    } else {
        print!("{out}");
        Err(CliError::CheckFailed(
            "IPAM has problems (report above)".into(),
        ))
    }
}

fn release(ctx: &Context, ip: std::net::IpAddr) -> Result<String, CliError> {
    let ds = ctx.open()?;
    let released = Ipam::new(ds.as_ref()).release_ips(&[ip])?;
    if released.is_empty() {
        Err(CliError::Usage(format!("{ip} is not assigned")))
    } else {
        Ok(format!("Successfully released {ip}\n"))
    }
}
