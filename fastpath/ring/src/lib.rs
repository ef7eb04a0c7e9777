//! The shared-memory SPSC ring that carries compiled tables from tortie-control to tortie-fastpath.
