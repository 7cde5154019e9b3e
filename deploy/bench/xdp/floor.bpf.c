// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The floor's answer, given in XDP: every IPv4 UDP query to PORT gets the same 250-byte DNS
// answer as deploy/bench/floor.rs sends (NOERROR, one TXT record padded with 'x'), with the
// query's ID copied in, sent back out of the interface it came in on (XDP_TX) before the
// kernel's network stack sees the packet. No lookup, no parsing beyond the ID.
//
// It is not part of Herald. It exists to measure what bypassing the kernel's UDP path would
// save per query on a given machine (deploy/bench/xdp-floor, README "Round two"). Built with
// clang -O2 -target bpf; loaded with `ip link set dev IF xdp obj floor.bpf.o sec xdp`. The
// section "xdp_pass" passes everything: a veth peer needs an XDP program of its own to take
// frames sent with XDP_TX.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define PORT 5300
#define ANSWER_LEN 250
#define PREFIX_LEN 50
#define HEADERS (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

// Header (ID 0, QR AA, one question, one answer), the question n1.nodes.xnode.test. TXT IN, the
// answer's owner (a pointer to the question), TXT IN, TTL 60, RDLENGTH 201, and the length of
// the one character-string (200) whose 'x's fill the rest: the floor's answer byte for byte.
static const unsigned char prefix[PREFIX_LEN] = {
    0, 0, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0,
    2, 'n', '1', 5, 'n', 'o', 'd', 'e', 's', 5, 'x', 'n', 'o', 'd', 'e', 4, 't', 'e', 's', 't', 0,
    0, 16, 0, 1,
    0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60,
    0, 201,
    200,
};

static __always_inline __u16 ip_checksum(const __u16 *words)
{
    __u32 sum = 0;
#pragma unroll
    for (int i = 0; i < 10; i++)
        sum += words[i];
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return ~sum;
}

SEC("xdp")
int floor_answer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct udphdr *udp = (void *)(ip + 1);
    unsigned char *dns = (void *)(udp + 1);

    if ((void *)(dns + 12) > end)
        return XDP_PASS;
    if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
        udp->dest != bpf_htons(PORT))
        return XDP_PASS;

    // What the answer keeps from the query, read before the packet is moved.
    __u16 id;
    unsigned char client_mac[ETH_ALEN], server_mac[ETH_ALEN];
    __builtin_memcpy(&id, dns, 2);
    __builtin_memcpy(client_mac, eth->h_source, ETH_ALEN);
    __builtin_memcpy(server_mac, eth->h_dest, ETH_ALEN);
    __be32 client = ip->saddr, server = ip->daddr;
    __be16 client_port = udp->source;

    // The answer is longer than the query. There is no room to grow the frame's tail on veth
    // (bpf_xdp_adjust_tail fails with EINVAL), but there always is at its head
    // (XDP_PACKET_HEADROOM, 256 bytes): the answer starts earlier instead.
    int delta = (int)(HEADERS + ANSWER_LEN) - (int)(end - data);
    if (delta > 0 ? bpf_xdp_adjust_head(ctx, -delta) : bpf_xdp_adjust_tail(ctx, delta))
        return XDP_DROP;

    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
    if (data + HEADERS + ANSWER_LEN > end)
        return XDP_DROP;
    eth = data;
    ip = (void *)(eth + 1);
    udp = (void *)(ip + 1);
    dns = (void *)(udp + 1);

    __builtin_memcpy(eth->h_dest, client_mac, ETH_ALEN);
    __builtin_memcpy(eth->h_source, server_mac, ETH_ALEN);
    eth->h_proto = bpf_htons(ETH_P_IP);

    ip->version = 4;
    ip->ihl = 5;
    ip->tos = 0;
    ip->tot_len = bpf_htons(sizeof(struct iphdr) + sizeof(struct udphdr) + ANSWER_LEN);
    ip->id = 0;
    ip->frag_off = 0;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->saddr = server;
    ip->daddr = client;
    ip->check = 0;
    ip->check = ip_checksum((const __u16 *)ip);

    udp->source = bpf_htons(PORT);
    udp->dest = client_port;
    udp->len = bpf_htons(sizeof(struct udphdr) + ANSWER_LEN);
    udp->check = 0; // optional over IPv4 (RFC 768)

    __builtin_memcpy(dns, prefix, PREFIX_LEN);
    __builtin_memcpy(dns, &id, 2);
    __builtin_memset(dns + PREFIX_LEN, 'x', ANSWER_LEN - PREFIX_LEN);
    return XDP_TX;
}

SEC("xdp_pass")
int pass(struct xdp_md *ctx)
{
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
