//! BGP speaker: I/O-free FSM, RIBs and best-path selection, with a thin tokio adapter.
