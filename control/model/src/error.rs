//! The crate's one error type, and the field paths and source locations it carries.
//!
//! Every error names the field it is about as a path such as `spec.ingress[0].protocol`. Errors
//! found while reading a document also name the source, the document's index in the stream, and
//! the line (and column) of the offending node, e.g.
//! `policy.yaml: document 2 (line 14, column 19): spec.ingress[0].protocol: unknown protocol "TPC"`.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A struct field, printed as `.name`.
    Field(String),
    /// An entry of a free-form map (labels, annotations), printed as `.key` when the key is a
    /// plain word and as `["key"]` otherwise (label keys often hold `/` and `.`).
    Key(String),
    /// An element of a list, printed as `[i]` (0-based, as in Calico's own messages).
    Index(usize),
}

/// Where a value sits inside a resource, from the document root: `spec.ingress[0].protocol`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The document root (an empty path).
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// Parses a dotted path such as `spec.ingress[0].protocol` (test and caller convenience).
    pub fn parse(text: &str) -> Self {
        let mut path = FieldPath::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                if open > 0 {
                    path.0.push(Segment::Field(rest[..open].to_string()));
                }
                rest = &rest[open..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let close = stripped.find(']').unwrap_or(stripped.len());
                    if let Ok(i) = stripped[..close].parse() {
                        path.0.push(Segment::Index(i));
                    }
                    rest = stripped.get(close + 1..).unwrap_or("");
                }
            } else {
                path.0.push(Segment::Field(rest.to_string()));
            }
        }
        path
    }

    /// This path extended by a struct field.
    pub fn field(&self, name: &str) -> Self {
        self.with(Segment::Field(name.to_string()))
    }

    /// This path extended by a map key.
    pub fn key(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_string()))
    }

    /// This path extended by a list index.
    pub fn index(&self, i: usize) -> Self {
        self.with(Segment::Index(i))
    }

    /// This path with `prefix` in front of it (used for items of a `kind: XList` document).
    pub fn prefixed(&self, prefix: &FieldPath) -> Self {
        let mut segments = prefix.0.clone();
        segments.extend(self.0.iter().cloned());
        FieldPath(segments)
    }

    /// The path's steps.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn with(&self, segment: Segment) -> Self {
        let mut segments = Vec::with_capacity(self.0.len() + 1);
        segments.extend(self.0.iter().cloned());
        segments.push(segment);
        FieldPath(segments)
    }
}

fn is_plain_word(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                Segment::Key(key) if is_plain_word(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{key:?}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where in the user's input an error was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The name the caller gave the input (usually the file name, or `-` for stdin).
    pub source: String,
    /// 1-based index of the YAML document in the stream (a JSON input is document 1).
    pub document: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, where known.
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: document {} (line {}",
            self.source, self.document, self.line
        )?;
        if let Some(column) = self.column {
            write!(f, ", column {column}")?;
        }
        f.write_str(")")
    }
}

/// Everything that can go wrong reading, defaulting, validating or updating a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A field is missing, malformed or breaks one of Calico's rules. Returned by
    /// [`crate::Resource::validate`], [`crate::check_update`] and [`crate::check_pool_overlap`],
    /// which see a resource without its source text.
    #[error("{}", with_path(path, message))]
    Invalid {
        /// The offending field.
        path: FieldPath,
        /// What is wrong with it.
        message: String,
    },
    /// A field error found in a document, with its place in the input.
    #[error("{location}: {}", with_path(path, message))]
    InDocument {
        /// Source, document, line and column.
        location: Location,
        /// The offending field (the document root for whole-document problems).
        path: FieldPath,
        /// What is wrong with it.
        message: String,
    },
    /// The input is not well-formed YAML or JSON.
    #[error("{location}: syntax error: {message}")]
    Syntax {
        /// Where the parser stopped.
        location: Location,
        /// The parser's explanation.
        message: String,
    },
}

fn with_path(path: &FieldPath, message: &str) -> String {
    if path.is_root() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

impl ModelError {
    /// A field error at `path`.
    pub fn invalid(path: &FieldPath, message: impl Into<String>) -> Self {
        ModelError::Invalid {
            path: path.clone(),
            message: message.into(),
        }
    }

    /// The field path the error is about.
    pub fn path(&self) -> Option<&FieldPath> {
        match self {
            ModelError::Invalid { path, .. } | ModelError::InDocument { path, .. } => Some(path),
            ModelError::Syntax { .. } => None,
        }
    }

    /// The error's explanation, without path or location.
    pub fn message(&self) -> &str {
        match self {
            ModelError::Invalid { message, .. }
            | ModelError::InDocument { message, .. }
            | ModelError::Syntax { message, .. } => message,
        }
    }

    /// The place in the input, for errors found while reading a document.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ModelError::Invalid { .. } => None,
            ModelError::InDocument { location, .. } | ModelError::Syntax { location, .. } => {
                Some(location)
            }
        }
    }
}

/// Shorthand used by the validators.
pub(crate) type Result<T> = std::result::Result<T, ModelError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_display_uses_dots_brackets_and_quoted_keys() {
        let path = FieldPath::root()
            .field("spec")
            .field("ingress")
            .index(0)
            .field("protocol");
        assert_eq!(path.to_string(), "spec.ingress[0].protocol");
        let label = FieldPath::root()
            .field("metadata")
            .field("labels")
            .key("app.kubernetes.io/name");
        assert_eq!(
            label.to_string(),
            "metadata.labels[\"app.kubernetes.io/name\"]"
        );
        assert_eq!(
            FieldPath::root().field("metadata").key("app").to_string(),
            "metadata.app"
        );
    }

    #[test]
    fn parse_is_the_inverse_of_display_for_fields_and_indexes() {
        let text = "spec.egress[3].destination.ports[1]";
        assert_eq!(FieldPath::parse(text).to_string(), text);
        assert_eq!(FieldPath::parse("[2].spec").to_string(), "[2].spec");
    }

    #[test]
    fn errors_render_location_path_and_message() {
        let err = ModelError::InDocument {
            location: Location {
                source: "policy.yaml".into(),
                document: 2,
                line: 14,
                column: Some(19),
            },
            path: FieldPath::parse("spec.ingress[0].protocol"),
            message: "unknown protocol \"TPC\"".into(),
        };
        assert_eq!(
            err.to_string(),
            "policy.yaml: document 2 (line 14, column 19): spec.ingress[0].protocol: unknown protocol \"TPC\""
        );
        let root = ModelError::invalid(&FieldPath::root(), "empty input");
        assert_eq!(root.to_string(), "empty input");
    }
}
