//! Reading `-f FILE|DIR|-`: the manifest texts and the names errors will use for them.

use std::io::Read;
use std::path::{Path, PathBuf};

/// One manifest text and the name to show in messages (the path, or `stdin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// File path as given (or `stdin`).
    pub source: String,
    /// The whole text.
    pub text: String,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A directory without any `.yaml`, `.yml` or `.json` file.
    #[error("{0}: no .yaml, .yml or .json files in directory")]
    EmptyDirectory(String),
}

/// Reads `-f` input: `-` is standard input, a directory yields its `.yaml`, `.yml` and `.json`
/// files in name order (recursing when `recursive`), anything else is one file.
pub fn read_manifests(path: &str, recursive: bool) -> Result<Vec<Manifest>, InputError> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| InputError::Io {
                path: "stdin".into(),
                source,
            })?;
        return Ok(vec![Manifest {
            source: "stdin".into(),
            text,
        }]);
    }
    let root = Path::new(path);
    if root.is_dir() {
        let mut files = Vec::new();
        collect_dir(root, recursive, &mut files)?;
        if files.is_empty() {
            return Err(InputError::EmptyDirectory(path.to_string()));
        }
        files.into_iter().map(|f| read_file(&f)).collect()
    } else {
        Ok(vec![read_file(root)?])
    }
}

fn read_file(path: &Path) -> Result<Manifest, InputError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Io {
        path: shown.clone(),
        source,
    })?;
    Ok(Manifest {
        source: shown,
        text,
    })
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let io_err = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                collect_dir(&entry, recursive, out)?;
            }
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_yields_manifests_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "b").unwrap();
        std::fs::write(dir.path().join("a.json"), "a").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c.yml"), "c").unwrap();
        let flat = read_manifests(dir.path().to_str().unwrap(), false).unwrap();
        assert_eq!(
            flat.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let deep = read_manifests(dir.path().to_str().unwrap(), true).unwrap();
        assert_eq!(deep.len(), 3);
        assert!(deep[2].source.ends_with("c.yml"));
    }

    #[test]
    fn missing_file_and_empty_dir_are_errors() {
        let err = read_manifests("/nonexistent/x.yaml", false).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/x.yaml"));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_manifests(dir.path().to_str().unwrap(), false),
            Err(InputError::EmptyDirectory(_))
        ));
    }
}
