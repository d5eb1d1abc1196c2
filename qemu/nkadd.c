/* nkadd: create a netkit pair over rtnetlink (iproute2 learned netkit only in 6.7;
 * the host's may be older). The primary NAME is created in the current network
 * namespace, its PEER in the namespace of PEER_NETNS (a path such as
 * /run/netns/X). Both in L3 mode with the default policy (forward), like Cilium.
 * usage: nkadd NAME PEER PEER_NETNS
 * Built statically (gcc -static -O2) for the QEMU test guests; constants from the
 * kernel's uapi <linux/if_link.h> (6.7+), spelled out for older host headers. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { NK_PEER_INFO = 1, NK_MODE = 5 }; /* IFLA_NETKIT_PEER_INFO, IFLA_NETKIT_MODE */
enum { NK_L3 = 1 };                     /* NETKIT_L3 */

static char buf[4096];

static struct rtattr *put(struct nlmsghdr *n, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

/* a nested attribute ends where the message ends now */
static void close_nest(struct nlmsghdr *n, struct rtattr *a)
{
	a->rta_len = (char *)n + n->nlmsg_len - (char *)a;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s NAME PEER PEER_NETNS\n", argv[0]);
		return 2;
	}
	int nsfd = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		fprintf(stderr, "nkadd: %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	struct nlmsghdr *n = (struct nlmsghdr *)buf;
	n->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	n->nlmsg_type = RTM_NEWLINK;
	n->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	n->nlmsg_seq = 1;
	put(n, IFLA_IFNAME, argv[1], strlen(argv[1]) + 1);
	struct rtattr *li = put(n, IFLA_LINKINFO, NULL, 0);
	put(n, IFLA_INFO_KIND, "netkit", strlen("netkit"));
	struct rtattr *data = put(n, IFLA_INFO_DATA, NULL, 0);
	__u32 mode = NK_L3;
	put(n, NK_MODE, &mode, sizeof(mode));
	/* the peer: an ifinfomsg followed by its own attributes, as for veth */
	struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC };
	struct rtattr *peer = put(n, NK_PEER_INFO, &peer_ifi, sizeof(peer_ifi));
	put(n, IFLA_IFNAME, argv[2], strlen(argv[2]) + 1);
	__u32 fd = nsfd;
	put(n, IFLA_NET_NS_FD, &fd, sizeof(fd));
	close_nest(n, peer);
	close_nest(n, data);
	close_nest(n, li);

	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (s < 0 || sendto(s, n, n->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		fprintf(stderr, "nkadd: netlink: %s\n", strerror(errno));
		return 1;
	}
	ssize_t got = recv(s, buf, sizeof(buf), 0);
	if (got < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
		fprintf(stderr, "nkadd: netlink: no answer\n");
		return 1;
	}
	struct nlmsgerr *e = NLMSG_DATA((struct nlmsghdr *)buf);
	if (((struct nlmsghdr *)buf)->nlmsg_type != NLMSG_ERROR || e->error) {
		fprintf(stderr, "nkadd: cannot create netkit %s/%s: %s\n", argv[1], argv[2],
			strerror(e->error ? -e->error : EPROTO));
		return 1;
	}
	return 0;
}
