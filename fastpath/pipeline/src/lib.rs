//! The I/O-free vector packet pipeline: graph nodes over batches of frames.
