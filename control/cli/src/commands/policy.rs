//! `policy explain`: evaluates one connection on the datastore's current contents with the
//! policy engine's own evaluator (the code the compiler uses), egress of the source then
//! ingress of the destination.

use tortie_calc::{ExplainRequest, Peer, explain_on_resources, parse_protocol};
use tortie_model::{Kind, Resource};
use tortie_store::Scope;

use super::Context;
use crate::cli::ExplainArgs;
use crate::error::CliError;

/// Every stored resource, the Kubernetes inputs (NetworkPolicy, Namespace) included.
pub fn all_resources(ctx: &Context) -> Result<Vec<Resource>, CliError> {
    let ds = ctx.open()?;
    let store = ctx.store(ds.as_ref());
    let mut resources = Vec::new();
    for kind in Kind::ALL {
        resources.extend(store.list(kind, Scope::AllNamespaces)?.items);
    }
    Ok(resources)
}

fn peer(endpoint: Option<&String>, ip: Option<std::net::IpAddr>) -> Result<Peer, CliError> {
    match (endpoint, ip) {
        (_, Some(ip)) => Ok(Peer::Ip(ip)),
        (Some(text), None) => Ok(Peer::parse_endpoint(text)?),
        (None, None) => Err(CliError::Usage("give an endpoint or an address".into())),
    }
}

/// Runs `policy explain` and returns what to print.
pub fn explain(ctx: &Context, args: &ExplainArgs) -> Result<String, CliError> {
    let request = ExplainRequest::new(
        peer(args.from.as_ref(), args.from_ip)?,
        peer(args.to.as_ref(), args.to_ip)?,
        parse_protocol(&args.protocol)?,
        args.port,
    );
    let resources = all_resources(ctx)?;
    let explanation = explain_on_resources(&resources, &request)?;
    match args.output.as_str() {
        "json" => serde_json::to_string_pretty(&explanation)
            .map(|text| format!("{text}\n"))
            .map_err(|err| CliError::Usage(format!("cannot render JSON: {err}"))),
        "text" | "" => {
            let mut text = explanation.to_text();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            Ok(text)
        }
        other => Err(CliError::Usage(format!(
            "-o {other}: expected text or json"
        ))),
    }
}
