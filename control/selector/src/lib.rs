//! Calico label selectors: parser, evaluator and errors with the column.
