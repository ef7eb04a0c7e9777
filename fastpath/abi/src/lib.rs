//! The versioned table format that tortie-control writes and tortie-fastpath reads.
