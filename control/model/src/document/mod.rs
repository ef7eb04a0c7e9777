//! Reading manifests: multi-document YAML or JSON (an object, an array, or a `kind: XList`).
//!
//! Every error names the source, the document's index in the stream, the line and column of the
//! offending node, and the field path, e.g.
//! `policy.yaml: document 2 (line 14, column 19): spec.ingress[0].protocol: unknown protocol "TPC"`.

pub(crate) mod de;
pub(crate) mod emit;
pub(crate) mod tree;

use crate::error::{FieldPath, Location, ModelError, Segment};
use crate::resource::{Resource, resource_from_tree};
use std::collections::HashMap;
use tree::{Document, Mark, Tree, TreeValue};

/// A resource read from an input, with where it came from (for messages at apply time).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    /// The resource as written (no defaults applied).
    pub resource: Resource,
    /// Source, document index and the line where the resource starts.
    pub origin: Location,
    /// Path of the resource inside its document: empty for a plain document, `items[i]` inside
    /// a `kind: XList`, `[i]` inside a top-level array.
    pub path: FieldPath,
}

impl ParsedDocument {
    /// Places an error about this resource (e.g. from [`crate::check_pool_overlap`] at apply
    /// time) at its source, document and line.
    pub fn locate(&self, error: ModelError) -> ModelError {
        match error {
            ModelError::Invalid { path, message } => ModelError::InDocument {
                location: self.origin.clone(),
                path: path.prefixed(&self.path),
                message,
            },
            other => other,
        }
    }
}

/// Parses every resource in `text` (YAML documents separated by `---`, or JSON), checks each
/// with [`Resource::validate`], and rejects duplicates (same kind, namespace and name).
///
/// `source_name` is used only in messages (a file name, or `-` for standard input). Empty
/// documents are skipped. Defaults are not applied: callers that store resources call
/// [`Resource::apply_defaults`] themselves, so `get` can show what the user wrote.
pub fn parse_documents(text: &str, source_name: &str) -> Result<Vec<Resource>, ModelError> {
    Ok(parse_documents_with_origin(text, source_name)?
        .into_iter()
        .map(|d| d.resource)
        .collect())
}

/// Like [`parse_documents`], keeping each resource's origin.
pub fn parse_documents_with_origin(
    text: &str,
    source_name: &str,
) -> Result<Vec<ParsedDocument>, ModelError> {
    read(text, source_name, true)
}

/// Reads every resource in `text` strictly (unknown fields, kinds and malformed values are
/// errors) but without [`Resource::validate`] or the duplicate check: for values that were
/// validated when they were stored, and for tools that report every problem themselves.
pub fn read_documents(text: &str, source_name: &str) -> Result<Vec<ParsedDocument>, ModelError> {
    read(text, source_name, false)
}

fn read(text: &str, source_name: &str, check: bool) -> Result<Vec<ParsedDocument>, ModelError> {
    let documents = tree::parse_stream(text).map_err(|e| ModelError::Syntax {
        location: Location {
            source: source_name.to_string(),
            document: e.document,
            line: e.mark.line,
            column: Some(e.mark.column),
        },
        message: e.message,
    })?;
    let mut parsed: Vec<ParsedDocument> = Vec::new();
    let mut seen: HashMap<crate::ResourceKey, usize> = HashMap::new();
    for document in &documents {
        let Some(root) = &document.root else {
            continue;
        };
        if root.is_null() {
            continue;
        }
        for (item, path, defaults) in items_of(root, document, source_name)? {
            let reader = DocumentReader {
                source: source_name,
                document,
                root,
            };
            let resource = resource_from_tree(
                item,
                &path,
                defaults.as_ref().map(|(a, k)| (a.as_str(), k.as_str())),
            )
            .map_err(|e| reader.de_error(e))?;
            let origin = reader.location_of(item.mark);
            if !check {
                parsed.push(ParsedDocument {
                    resource,
                    origin,
                    path,
                });
                continue;
            }
            resource
                .validate()
                .map_err(|e| reader.validation_error(e, &path))?;
            let key = resource.key();
            if let Some(&first) = seen.get(&key) {
                let first_origin: &Location = &parsed[first].origin;
                let message = format!(
                    "duplicate {key}: already defined in document {} (line {})",
                    first_origin.document, first_origin.line
                );
                return Err(reader.validation_error(
                    ModelError::invalid(
                        &FieldPath::root().field("metadata").field("name"),
                        message,
                    ),
                    &path,
                ));
            }
            seen.insert(key, parsed.len());
            parsed.push(ParsedDocument {
                resource,
                origin,
                path,
            });
        }
    }
    Ok(parsed)
}

type Item<'a> = (&'a Tree, FieldPath, Option<(String, String)>);

/// The resources a document holds: itself, the elements of a top-level array, or the items of
/// a `kind: XList` (whose items may leave out `apiVersion`/`kind`).
fn items_of<'a>(
    root: &'a Tree,
    document: &Document,
    source: &str,
) -> Result<Vec<Item<'a>>, ModelError> {
    match &root.value {
        TreeValue::Seq(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, item)| (item, FieldPath::root().index(i), None))
            .collect()),
        TreeValue::Map(_) => {
            let kind = root.get("kind").and_then(Tree::as_text).unwrap_or_default();
            let Some(item_kind) = kind.strip_suffix("List") else {
                return Ok(vec![(root, FieldPath::root(), None)]);
            };
            let reader = DocumentReader {
                source,
                document,
                root,
            };
            if let Some((key, _)) = match &root.value {
                TreeValue::Map(entries) => entries.iter().find(|(k, _)| {
                    !matches!(
                        k.as_text(),
                        Some("apiVersion" | "kind" | "metadata" | "items")
                    )
                }),
                _ => None,
            } {
                let name = key.as_text().unwrap_or_default();
                let message = format!(
                    "unknown field {name:?} in a {kind} (expected apiVersion, kind, metadata or items)"
                );
                return Err(reader.error_at(key.mark, FieldPath::root().field(name), message));
            }
            let api_version = root
                .get("apiVersion")
                .and_then(Tree::as_text)
                .unwrap_or_default();
            let defaults =
                (!item_kind.is_empty()).then(|| (api_version.to_string(), item_kind.to_string()));
            let items_path = FieldPath::root().field("items");
            match root.get("items") {
                Some(Tree {
                    value: TreeValue::Seq(items),
                    ..
                }) => Ok(items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (item, items_path.index(i), defaults.clone()))
                    .collect()),
                Some(node) if node.is_null() => Ok(Vec::new()),
                Some(node) => Err(reader.error_at(
                    node.mark,
                    items_path,
                    format!("items must be a list, not {}", node.describe()),
                )),
                None => Err(reader.error_at(
                    root.mark,
                    items_path,
                    format!("a {kind} needs an items list"),
                )),
            }
        }
        _ => {
            let reader = DocumentReader {
                source,
                document,
                root,
            };
            let message = format!(
                "expected a resource (a mapping) or a list of resources, found {}",
                root.describe()
            );
            Err(reader.error_at(root.mark, FieldPath::root(), message))
        }
    }
}

struct DocumentReader<'a> {
    source: &'a str,
    document: &'a Document,
    root: &'a Tree,
}

impl DocumentReader<'_> {
    fn location_of(&self, mark: Option<Mark>) -> Location {
        let (line, column) = match mark {
            Some(m) => (m.line, Some(m.column)),
            None => (self.document.line, None),
        };
        Location {
            source: self.source.to_string(),
            document: self.document.index,
            line,
            column,
        }
    }

    fn error_at(&self, mark: Option<Mark>, path: FieldPath, message: String) -> ModelError {
        ModelError::InDocument {
            location: self.location_of(mark),
            path,
            message,
        }
    }

    fn de_error(&self, e: de::DeError) -> ModelError {
        let path = e.path.unwrap_or_default();
        let mark = e.mark.or_else(|| locate(self.root, &path));
        self.error_at(mark, path, e.message)
    }

    /// Places a validation error (whose path is relative to the resource at `prefix`) on the
    /// line of the node it names, or of its nearest existing ancestor.
    fn validation_error(&self, e: ModelError, prefix: &FieldPath) -> ModelError {
        match e {
            ModelError::Invalid { path, message } => {
                let full = path.prefixed(prefix);
                let mark = locate(self.root, &full);
                self.error_at(mark, full, message)
            }
            other => other,
        }
    }
}

/// The position of the node at `path`, or of the deepest ancestor present in the document.
fn locate(root: &Tree, path: &FieldPath) -> Option<Mark> {
    let mut node = root;
    let mut mark = root.mark;
    for segment in path.segments() {
        let next = match (segment, &node.value) {
            (Segment::Field(name) | Segment::Key(name), TreeValue::Map(_)) => node.get(name),
            (Segment::Index(i), TreeValue::Seq(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(child) => {
                node = child;
                mark = child.mark.or(mark);
            }
            None => break,
        }
    }
    mark
}
