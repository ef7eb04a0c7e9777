// SPDX-License-Identifier: Apache-2.0
/*
 * tortie_steer: the XDP program in front of every interface the fastpath owns a socket on.
 *
 * It decides, per frame, between the fastpath's AF_XDP socket (bpf_redirect_map into `xsks`)
 * and the kernel stack (XDP_PASS). On an interface in mode ALL every frame goes to the socket;
 * in mode OWNED only the traffic the fastpath owns does (docs/design/xsk.md, "Steering"):
 *
 *   - IPv4/IPv6 destination inside a prefix of `owned_v4` / `owned_v6` (local workloads, DNAT
 *     external addresses), fragments included (the destination is in every fragment);
 *   - IPv4 protocol 4 (IP-in-IP, RFC 2003) whose outer source is in `tunnel_srcs`;
 *   - TCP/UDP to the node address with destination port in [port_lo, port_hi] (SNAT return
 *     traffic), and ICMP / ICMPv6 echo replies to the node address with an identifier in that
 *     range (RFC 792 / RFC 4443 section 4.2).
 *
 * Everything else, and anything the parser does not understand, goes to the kernel.
 *
 * Self-contained on purpose: the few kernel ABI structs, constants and helper ids are declared
 * here (values from include/uapi/linux/bpf.h, which are stable ABI), so the build needs only
 * clang, not kernel or libbpf headers. The Rust side (src/steer/owned.rs) writes the map keys
 * and values byte by byte in the layouts below; change both together.
 */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

/* ---- kernel ABI (include/uapi/linux/bpf.h) ---- */

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LPM_TRIE 11
#define BPF_MAP_TYPE_XSKMAP 17
#define BPF_F_NO_PREALLOC 1

#define XDP_PASS 2
#define XDP_REDIRECT 4

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

/* Helper ids (enum bpf_func_id). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

/* libbpf's BTF-defined map conventions (bpf_helpers.h). */
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name
#define __always_inline inline __attribute__((always_inline))

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define bpf_htons(x) __builtin_bswap16(x)
#else
#define bpf_htons(x) (x)
#endif
#define bpf_ntohs(x) bpf_htons(x)

/* ---- sizes shared with src/steer/mod.rs ---- */

#define MAX_IFACES 1024
#define QUEUES_PER_IF 64
#define XSK_SLOTS (MAX_IFACES * QUEUES_PER_IF)
#define MAX_V4_PREFIXES 65536
#define MAX_V6_PREFIXES 65536
#define MAX_TUNNEL_SOURCES 4096

/* ---- map layouts shared with src/steer/owned.rs ---- */

#define MODE_ALL 0
#define MODE_OWNED 1

/* `ifaces` value: the interface's first XSKMAP slot and its mode. 8 bytes, host order. */
struct iface_cfg {
	__u32 slot_base;
	__u32 mode;
};

/* `config[0]`: the node's addresses and the SNAT range. 28 bytes:
 * node_v4 (network order) @0, node_v6 @4, port_lo @20, port_hi @22 (host order),
 * has_v4 @24, has_v6 @25, 2 bytes padding. */
struct steer_cfg {
	__u32 node_v4;
	__u8 node_v6[16];
	__u16 port_lo;
	__u16 port_hi;
	__u8 has_v4;
	__u8 has_v6;
	__u8 pad[2];
};

/* LPM trie keys: prefix length (host order) then the address (network order). */
struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Indices of `stats`. */
#define STAT_REDIRECTED 0
#define STAT_PASSED 1
#define STAT_REDIRECT_FAILED 2
#define STAT_COUNT 3

/* ---- maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSK_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, struct iface_cfg);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_V4_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u8);
} owned_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_V6_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, __u8);
} owned_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TUNNEL_SOURCES);
	__type(key, __u32);
	__type(value, __u8);
} tunnel_srcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_cfg);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* ---- packet headers (only the fields used) ---- */

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100

#define IPPROTO_ICMP 1
#define IPPROTO_IPIP 4
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58

#define ICMP_ECHOREPLY 0     /* RFC 792 */
#define ICMPV6_ECHO_REPLY 129 /* RFC 4443 section 4.2 */

#define IP_OFFSET_MASK 0x1FFF /* RFC 791: fragment offset, in 8-byte units */

struct ethhdr {
	__u8 dst[6];
	__u8 src[6];
	__u16 proto;
} __attribute__((packed));

struct vlan_hdr { /* IEEE 802.1Q: TCI then the encapsulated EtherType */
	__u16 tci;
	__u16 proto;
};

struct iphdr { /* RFC 791 section 3.1 */
	__u8 ver_ihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u32 saddr;
	__u32 daddr;
};

struct ipv6hdr { /* RFC 8200 section 3 */
	__u32 ver_tc_flow;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* ---- classification ---- */

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/* SNAT return traffic at L4 `l4` (protocol `proto`) to the node address: TCP/UDP destination
 * port, or echo-reply identifier, inside [port_lo, port_hi]. */
static __always_inline int snat_return(void *l4, void *end, __u8 proto, __u8 echo_proto,
				       __u8 echo_reply, const struct steer_cfg *cfg)
{
	__u16 v;

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		__u16 *ports = l4;

		if ((void *)(ports + 2) > end)
			return 0;
		v = bpf_ntohs(ports[1]); /* destination port */
	} else if (proto == echo_proto) {
		__u8 *icmp = l4;

		if ((void *)(icmp + 8) > end)
			return 0;
		if (icmp[0] != echo_reply)
			return 0;
		v = bpf_ntohs(*(__u16 *)(icmp + 4)); /* identifier */
	} else {
		return 0;
	}
	return v >= cfg->port_lo && v <= cfg->port_hi;
}

static __always_inline int owned_ipv4(struct iphdr *ip, void *end)
{
	struct lpm_v4_key key = { .prefixlen = 32 };
	struct steer_cfg *cfg;
	__u32 zero = 0;
	__u32 ihl;

	if ((void *)(ip + 1) > end)
		return 0;
	if ((ip->ver_ihl >> 4) != 4)
		return 0;
	ihl = (ip->ver_ihl & 0x0F) * 4;
	if (ihl < sizeof(*ip))
		return 0;

	__builtin_memcpy(key.addr, &ip->daddr, 4);
	if (bpf_map_lookup_elem(&owned_v4, &key))
		return 1; /* any fragment: the destination is in every one */

	if (ip->protocol == IPPROTO_IPIP && bpf_map_lookup_elem(&tunnel_srcs, &ip->saddr))
		return 1;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->has_v4 || ip->daddr != cfg->node_v4)
		return 0;
	/* A non-first fragment has no L4 header to match on: it stays with the kernel. */
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
		return 0;
	return snat_return((void *)ip + ihl, end, ip->protocol, IPPROTO_ICMP, ICMP_ECHOREPLY, cfg);
}

static __always_inline int same_v6(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int owned_ipv6(struct ipv6hdr *ip6, void *end)
{
	struct lpm_v6_key key = { .prefixlen = 128 };
	struct steer_cfg *cfg;
	__u32 zero = 0;

	if ((void *)(ip6 + 1) > end)
		return 0;
	if ((*(__u8 *)ip6 >> 4) != 6)
		return 0;

	__builtin_memcpy(key.addr, ip6->daddr, 16);
	if (bpf_map_lookup_elem(&owned_v6, &key))
		return 1;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->has_v6 || !same_v6(ip6->daddr, cfg->node_v6))
		return 0;
	/* Only an upper-layer header right after the fixed header is matched; extension headers
	 * (fragments included) leave the frame to the kernel. */
	return snat_return(ip6 + 1, end, ip6->nexthdr, IPPROTO_ICMPV6, ICMPV6_ECHO_REPLY, cfg);
}

static __always_inline int owned_frame(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return 0;
	proto = eth->proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q)) { /* one tag tolerated */
		struct vlan_hdr *vlan = l3;

		if ((void *)(vlan + 1) > end)
			return 0;
		proto = vlan->proto;
		l3 = vlan + 1;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return owned_ipv4(l3, end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return owned_ipv6(l3, end);
	return 0; /* ARP, LLDP, ...: the kernel's */
}

SEC("xdp")
int tortie_steer(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 queue = ctx->rx_queue_index;
	struct iface_cfg *ifc;
	long action;

	ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!ifc || (ifc->mode == MODE_OWNED && !owned_frame(ctx))) {
		count(STAT_PASSED);
		return XDP_PASS;
	}
	if (queue >= QUEUES_PER_IF) {
		count(STAT_REDIRECT_FAILED);
		return XDP_PASS;
	}
	/* No socket in the slot: the helper returns the fallback, XDP_PASS. */
	action = bpf_redirect_map(&xsks, ifc->slot_base + queue, XDP_PASS);
	count(action == XDP_REDIRECT ? STAT_REDIRECTED : STAT_REDIRECT_FAILED);
	return action;
}

char LICENSE[] SEC("license") = "Apache-2.0";
