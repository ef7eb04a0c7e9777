//! `get -o` formats: `ps`, `wide`, `yaml`, `json` and `custom-columns=...`.
//!
//! Tables are rendered from each resource's JSON form (the same form that is stored and
//! re-applied); YAML uses the model's emitter. Both round-trip through `tortiectl apply -f`.

pub mod columns;

use columns::{Column, cell, columns_for};
use tortie_model::Resource;

/// A parsed `-o/--output` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// The default table.
    Ps,
    /// The table with extra columns.
    Wide,
    /// YAML documents separated by `---` (one document when a single resource was asked for).
    Yaml,
    /// One JSON object, or a `List` object holding `items`.
    Json,
    /// A table with chosen columns: each entry is a heading from the kind's `wide` set, or
    /// `HEADING:.json.path` for any field.
    CustomColumns(Vec<String>),
}

/// Why an output format or column was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutputError {
    /// `-o` value not recognised.
    #[error(
        "unrecognised output format {0:?} (expected ps, wide, yaml, json or custom-columns=COL1,COL2)"
    )]
    UnknownFormat(String),
    /// `custom-columns=` with nothing after it.
    #[error("custom-columns needs at least one column, e.g. custom-columns=NAME,CIDR")]
    NoColumns,
    /// A heading not known for the kind and not given as `HEADING:.path`.
    #[error(
        "unknown column {heading:?} for kind {kind} (known: {known}; or use HEADING:.json.path)"
    )]
    UnknownColumn {
        /// The heading asked for.
        heading: String,
        /// The kind being printed.
        kind: String,
        /// Headings available for this kind.
        known: String,
    },
}

impl OutputFormat {
    /// Parses an `-o` value.
    pub fn parse(text: &str) -> Result<OutputFormat, OutputError> {
        match text {
            "ps" => Ok(OutputFormat::Ps),
            "wide" => Ok(OutputFormat::Wide),
            "yaml" | "yml" => Ok(OutputFormat::Yaml),
            "json" => Ok(OutputFormat::Json),
            other => match other.strip_prefix("custom-columns=") {
                Some(list) => {
                    let cols: Vec<String> = list
                        .split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect();
                    if cols.is_empty() {
                        Err(OutputError::NoColumns)
                    } else {
                        Ok(OutputFormat::CustomColumns(cols))
                    }
                }
                None => Err(OutputError::UnknownFormat(other.to_string())),
            },
        }
    }
}

/// What is being printed: the resources of one kind.
pub struct Listing<'a> {
    /// Calico kind name (`IPPool`).
    pub kind: &'a str,
    /// Whether the kind is namespaced (adds NAMESPACE under `-A`).
    pub namespaced: bool,
    /// Whether `-A` was given.
    pub all_namespaces: bool,
    /// Whether exactly one named resource was asked for (YAML/JSON print it bare).
    pub single: bool,
    /// The resources.
    pub items: &'a [Resource],
}

/// Renders `listing` in `format`.
pub fn render(format: &OutputFormat, listing: &Listing<'_>) -> Result<String, OutputError> {
    match format {
        OutputFormat::Ps | OutputFormat::Wide => {
            let mut cols = columns_for(listing.kind, *format == OutputFormat::Wide);
            if listing.namespaced && listing.all_namespaces {
                cols.insert(0, columns::NAMESPACE);
            }
            Ok(table(&cols, listing.items))
        }
        OutputFormat::CustomColumns(wanted) => {
            let cols = custom_columns(listing.kind, wanted)?;
            Ok(table(&cols, listing.items))
        }
        OutputFormat::Yaml => Ok(yaml(listing)),
        OutputFormat::Json => Ok(json(listing)),
    }
}

/// Maps `f` over `items`, on all cores for large inputs (100,000-resource listings), keeping
/// the order.
fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    const PER_THREAD: usize = 2048;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < 2 * PER_THREAD || threads < 2 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<U>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn custom_columns(kind: &str, wanted: &[String]) -> Result<Vec<Column>, OutputError> {
    let known = {
        let mut cols = columns_for(kind, true);
        cols.push(columns::NAMESPACE);
        cols
    };
    wanted
        .iter()
        .map(|entry| {
            if let Some((heading, path)) = entry.split_once(':') {
                return Ok(Column {
                    heading: heading.to_uppercase().into(),
                    path: path.trim_start_matches('.').to_string().into(),
                    absent: "",
                });
            }
            known
                .iter()
                .find(|c| c.heading.eq_ignore_ascii_case(entry))
                .cloned()
                .ok_or_else(|| OutputError::UnknownColumn {
                    heading: entry.clone(),
                    kind: kind.to_string(),
                    known: known
                        .iter()
                        .map(|c| c.heading.as_ref())
                        .collect::<Vec<_>>()
                        .join(","),
                })
        })
        .collect()
}

/// A table laid out like Go's tabwriter with calicoctl's settings (min width 5, padding 3).
fn table(cols: &[Column], items: &[Resource]) -> String {
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(items.len() + 1);
    rows.push(cols.iter().map(|c| c.heading.to_string()).collect());
    rows.extend(par_map(items, |item| {
        let value = serde_json::to_value(item).unwrap_or_default();
        cols.iter()
            .map(|c| cell(&value, c))
            .collect::<Vec<String>>()
    }));
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(5)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let last = row.len().saturating_sub(1);
        for (i, text) in row.iter().enumerate() {
            out.push_str(text);
            if i < last {
                let pad = widths[i] - text.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

fn yaml(listing: &Listing<'_>) -> String {
    let documents = par_map(listing.items, Resource::to_yaml);
    let mut out = String::with_capacity(documents.iter().map(|d| d.len() + 5).sum());
    for (i, document) in documents.iter().enumerate() {
        if i > 0 || !listing.single {
            out.push_str("---\n");
        }
        out.push_str(document);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The `get -o json` shape of several resources, serialized without an intermediate tree.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonList<'a> {
    api_version: &'static str,
    kind: String,
    items: &'a [Resource],
}

fn json(listing: &Listing<'_>) -> String {
    let mut text = match listing.items {
        [only] if listing.single => serde_json::to_string_pretty(only),
        items => serde_json::to_string_pretty(&JsonList {
            api_version: tortie_model::CALICO_API_VERSION,
            kind: format!("{}List", listing.kind),
            items,
        }),
    }
    .unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> Vec<Resource> {
        let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-a\nspec:\n  cidr: 10.0.0.0/16\n  nodeSelector: all()\n  natOutgoing: true\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: b\nspec:\n  cidr: 2001:db8::/48\n  nodeSelector: all()\n";
        tortie_model::parse_documents(text, "pools.yaml").unwrap()
    }

    fn listing(items: &[Resource]) -> Listing<'_> {
        Listing {
            kind: "IPPool",
            namespaced: false,
            all_namespaces: false,
            single: false,
            items,
        }
    }

    #[test]
    fn parses_every_format() {
        assert_eq!(OutputFormat::parse("ps"), Ok(OutputFormat::Ps));
        assert_eq!(OutputFormat::parse("wide"), Ok(OutputFormat::Wide));
        assert_eq!(
            OutputFormat::parse("custom-columns=NAME, CIDR"),
            Ok(OutputFormat::CustomColumns(vec![
                "NAME".into(),
                "CIDR".into()
            ]))
        );
        assert_eq!(
            OutputFormat::parse("custom-columns="),
            Err(OutputError::NoColumns)
        );
        assert!(matches!(
            OutputFormat::parse("xml"),
            Err(OutputError::UnknownFormat(_))
        ));
    }

    #[test]
    fn ps_table_is_aligned() {
        let items = pools();
        let text = render(&OutputFormat::Ps, &listing(&items)).unwrap();
        let expected = "NAME     CIDR            SELECTOR\n\
                        pool-a   10.0.0.0/16     all()\n\
                        b        2001:db8::/48   all()\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn tables_have_no_trailing_spaces() {
        let items = pools();
        let text = render(
            &OutputFormat::parse("custom-columns=NAME,L:.metadata.labels").unwrap(),
            &listing(&items),
        )
        .unwrap();
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
    }

    #[test]
    fn custom_columns_by_heading_and_path() {
        let items = pools();
        let format = OutputFormat::parse("custom-columns=name,NAT,OWNER:.spec.cidr").unwrap();
        let text = render(&format, &listing(&items)).unwrap();
        let mut rows = text.lines().skip(1);
        assert_eq!(
            rows.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["pool-a", "true", "10.0.0.0/16"]
        );
        assert_eq!(
            rows.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["b", "false", "2001:db8::/48"]
        );
        let err = render(
            &OutputFormat::parse("custom-columns=BOGUS").unwrap(),
            &listing(&items),
        );
        assert!(matches!(err, Err(OutputError::UnknownColumn { .. })));
    }

    #[test]
    fn yaml_and_json_are_reparseable() {
        let items = pools();
        let text = render(&OutputFormat::Yaml, &listing(&items)).unwrap();
        assert_eq!(
            tortie_model::parse_documents(&text, "out.yaml").unwrap(),
            items
        );
        let text = render(&OutputFormat::Json, &listing(&items)).unwrap();
        assert_eq!(
            tortie_model::parse_documents(&text, "out.json").unwrap(),
            items
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kind"], "IPPoolList");
    }
}
