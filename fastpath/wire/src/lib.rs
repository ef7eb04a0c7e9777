//! Checked, zero-copy views over Ethernet, ARP, IPv4, IPv6, TCP, UDP, SCTP, ICMP and ICMPv6 frames.
