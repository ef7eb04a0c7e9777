//! The `ps` and `wide` table columns per kind, as calicoctl prints them.
//!
//! Each column is a heading and a path into the resource's JSON form, so the table code needs no
//! knowledge of the typed model and `custom-columns` can pick any heading by name.

use std::borrow::Cow;

/// One table column: heading and the dotted JSON path of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Upper-case heading.
    pub heading: Cow<'static, str>,
    /// Dotted path (`spec.cidr`); list values are joined with commas.
    pub path: Cow<'static, str>,
    /// What to show when the field is absent (the model leaves `false` out when writing).
    pub absent: &'static str,
}

const fn col(heading: &'static str, path: &'static str) -> Column {
    Column {
        heading: Cow::Borrowed(heading),
        path: Cow::Borrowed(path),
        absent: "",
    }
}

/// A boolean column: absent means `false`, as calicoctl prints it.
const fn flag(heading: &'static str, path: &'static str) -> Column {
    Column {
        heading: Cow::Borrowed(heading),
        path: Cow::Borrowed(path),
        absent: "false",
    }
}

const NAME: Column = col("NAME", "metadata.name");

/// The columns for `kind` (a Calico kind name such as `IPPool`); `wide` selects the long form.
///
/// Unknown kinds get a single NAME column. The NAMESPACE column for `-A` is added by the caller.
pub fn columns_for(kind: &str, wide: bool) -> Vec<Column> {
    let (ps, extra): (&[Column], &[Column]) = match kind {
        "IPPool" => (
            &[
                NAME,
                col("CIDR", "spec.cidr"),
                col("SELECTOR", "spec.nodeSelector"),
            ],
            &[
                flag("NAT", "spec.natOutgoing"),
                col("IPIPMODE", "spec.ipipMode"),
                col("VXLANMODE", "spec.vxlanMode"),
                flag("DISABLED", "spec.disabled"),
                flag("DISABLEBGPEXPORT", "spec.disableBGPExport"),
                col("ASSIGNMENTMODE", "spec.assignmentMode"),
            ],
        ),
        "Node" => (
            &[NAME],
            &[
                col("ASN", "spec.bgp.asNumber"),
                col("IPV4", "spec.bgp.ipv4Address"),
                col("IPV6", "spec.bgp.ipv6Address"),
            ],
        ),
        "NetworkPolicy"
        | "GlobalNetworkPolicy"
        | "StagedNetworkPolicy"
        | "StagedGlobalNetworkPolicy" => (
            &[NAME, col("TIER", "spec.tier")],
            &[col("ORDER", "spec.order"), col("SELECTOR", "spec.selector")],
        ),
        "WorkloadEndpoint" => (
            &[
                col("WORKLOAD", "spec.workload"),
                col("NODE", "spec.node"),
                col("NETWORKS", "spec.ipNetworks"),
                col("INTERFACE", "spec.interfaceName"),
            ],
            &[
                NAME,
                col("PROFILES", "spec.profiles"),
                col("NATS", "spec.ipNATs"),
            ],
        ),
        "BGPPeer" => (
            &[
                NAME,
                col("PEERIP", "spec.peerIP"),
                col("NODE", "spec.node"),
                col("ASN", "spec.asNumber"),
            ],
            &[
                col("NODESELECTOR", "spec.nodeSelector"),
                col("PEERSELECTOR", "spec.peerSelector"),
            ],
        ),
        "HostEndpoint" => (
            &[NAME, col("NODE", "spec.node")],
            &[
                col("INTERFACE", "spec.interfaceName"),
                col("IPS", "spec.expectedIPs"),
                col("PROFILES", "spec.profiles"),
            ],
        ),
        "Tier" => (
            &[NAME, col("ORDER", "spec.order")],
            &[col("DEFAULTACTION", "spec.defaultAction")],
        ),
        "Profile" => (&[NAME], &[col("LABELS", "spec.labelsToApply")]),
        "BGPConfiguration" => (
            &[
                NAME,
                col("LOGSEVERITY", "spec.logSeverityScreen"),
                col("MESHENABLED", "spec.nodeToNodeMeshEnabled"),
                col("ASNUMBER", "spec.asNumber"),
            ],
            &[col("LISTENPORT", "spec.listenPort")],
        ),
        "NetworkSet" | "GlobalNetworkSet" => (&[NAME], &[col("NETS", "spec.nets")]),
        "IPReservation" => (&[NAME, col("CIDRS", "spec.reservedCIDRs")], &[]),
        "BGPFilter" => (&[NAME], &[]),
        _ => (&[NAME], &[]),
    };
    let mut columns = ps.to_vec();
    if wide {
        for column in extra {
            if !columns.contains(column) {
                columns.push(column.clone());
            }
        }
    }
    columns
}

/// The NAMESPACE column added in front for namespaced kinds under `-A`.
pub const NAMESPACE: Column = col("NAMESPACE", "metadata.namespace");

/// Renders the value of `column` as a table cell: strings bare, lists joined with commas, maps
/// as `k=v` pairs, anything else as compact JSON; absent values as the column's `absent` text.
pub fn cell(value: &serde_json::Value, column: &Column) -> String {
    let mut current = value;
    for part in column.path.split('.').filter(|p| !p.is_empty()) {
        match current.get(part) {
            Some(next) => current = next,
            None => return column.absent.to_string(),
        }
    }
    render(current)
}

fn render(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(","),
        Value::Object(map) if map.values().all(|v| !v.is_object() && !v.is_array()) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", render(v)))
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ippool_columns_follow_calicoctl() {
        let headings: Vec<_> = columns_for("IPPool", false)
            .iter()
            .map(|c| c.heading.to_string())
            .collect();
        assert_eq!(headings, ["NAME", "CIDR", "SELECTOR"]);
        let wide: Vec<_> = columns_for("IPPool", true)
            .iter()
            .map(|c| c.heading.to_string())
            .collect();
        assert_eq!(wide[..4], ["NAME", "CIDR", "SELECTOR", "NAT"]);
    }

    #[test]
    fn cells_render_each_json_shape() {
        let value = json!({
            "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}},
            "spec": {"nets": ["10.0.0.0/8", "192.0.2.0/24"], "order": 10.5, "x": true}
        });
        assert_eq!(cell(&value, &col("A", "metadata.name")), "p");
        assert_eq!(cell(&value, &col("A", "metadata.labels")), "a=1,b=2");
        assert_eq!(
            cell(&value, &col("A", "spec.nets")),
            "10.0.0.0/8,192.0.2.0/24"
        );
        assert_eq!(cell(&value, &col("A", "spec.order")), "10.5");
        assert_eq!(cell(&value, &flag("A", "spec.x")), "true");
        assert_eq!(cell(&value, &col("A", "spec.missing.deeper")), "");
        assert_eq!(cell(&value, &flag("A", "spec.missing")), "false");
    }
}
