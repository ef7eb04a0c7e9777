//! Fastpath tables: conntrack, NAT, longest-prefix-match routes and generation-swapped table sets.
