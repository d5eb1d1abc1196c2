/* tc ingress program of the QEMU guests' Cilium-style scenario (qemu/init.sh):
 * on the host end of pod A's veth, send every packet straight into pod B with
 * bpf_redirect_peer, as Cilium's eBPF host routing does. Pod B's host-side veth
 * is created with ifindex PEER_IFINDEX in the host namespace, so the target is a
 * compile-time constant (tc cannot set read-only data).
 * Built on the host: clang -O2 -target bpf -c redirect_peer.bpf.c */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#ifndef PEER_IFINDEX
#define PEER_IFINDEX 4242
#endif

static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)BPF_FUNC_redirect_peer;

__attribute__((section("tc"), used)) int redirect_peer(struct __sk_buff *skb)
{
	return bpf_redirect_peer(PEER_IFINDEX, 0);
}

char _license[] __attribute__((section("license"), used)) = "GPL";
