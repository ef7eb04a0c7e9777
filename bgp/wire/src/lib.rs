//! BGP-4 message codec (RFC 4271, 4760, 6793, 7606, 7911) with no I/O.
