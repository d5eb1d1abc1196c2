/* udpflood: the benchmark's 64-byte UDP flood, both ends (bench/run.sh builds it with cc).
 *
 *   udpflood send ADDR PORT SECS SIZE   one send() per datagram on a connected socket, as
 *                                       fast as it can, for SECS seconds (iperf3 -u -b 0 -l
 *                                       SIZE does the same, plus its own bookkeeping)
 *   udpflood sink PORT SECS             receives with non-blocking recvmmsg in a busy loop
 *                                       (no sleeping reader: the sender's CPU never pays for
 *                                       wakeups) until SECS after the first datagram or 1 s
 *                                       without any
 *
 * Why not iperf3's receiver: it reads one datagram per select()+read(), is slower than the
 * sender and drops 15-20 % at the socket on this machine, so the received rate is capped by
 * the receiver and a tracer's cost on the sender's CPU stays invisible until it exceeds the
 * loss. With this sink the received rate is the rate of the kernel path on the sender's CPU
 * (send, veth, backlog, NET_RX softirq, UDP receive), where every traced hook fires.
 *
 * Both print one line of JSON: send {"sent":N,"ns":T}, sink {"received":N,"ns":T} with T the
 * time from the first to the last datagram.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int do_send(const char *addr, int port, double secs, int size)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port) };
	char buf[65536] = { 0 };
	long long start, end, sent = 0;
	int fd;

	if (inet_pton(AF_INET, addr, &dst.sin_addr) != 1 || size < 1 || size > 65507) {
		fprintf(stderr, "udpflood: bad address or size\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		perror("udpflood: socket");
		return 1;
	}
	start = now_ns();
	end = start + (long long)(secs * 1e9);
	for (;;) {
		if ((sent & 255) == 0 && now_ns() >= end)
			break;
		memcpy(buf, &sent, sizeof(sent));
		if (send(fd, buf, size, 0) < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
				continue;
			perror("udpflood: send");
			return 1;
		}
		sent++;
	}
	printf("{\"sent\":%lld,\"ns\":%lld}\n", sent, now_ns() - start);
	return 0;
}

#define BATCH 64

static int do_sink(int port, double secs, int spin)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(port) };
	static char bufs[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	long long first = 0, last = 0, idle_since, received = 0, limit = (long long)(secs * 1e9);
	int fd, rcvbuf = 8 << 20, i;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		perror("udpflood: bind");
		return 1;
	}
	/* Root may exceed rmem_max; otherwise the plain request is capped by it. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* A blocking read wakes up at least every 100 ms to check the time limits. */
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("{\"listening\":%d}\n", port);
	fflush(stdout);
	idle_since = now_ns();
	for (;;) {
		int n = recvmmsg(fd, msgs, BATCH, spin ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
		long long t = now_ns();

		if (n > 0) {
			if (!first)
				first = t;
			last = t;
			received += n;
			idle_since = t;
			if (t - first >= limit)
				break;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			perror("udpflood: recvmmsg");
			return 1;
		}
		/* Nothing yet: give up after 30 s; after traffic: 1 s of silence ends it. */
		if (t - idle_since > (first ? 1000000000LL : 30000000000LL))
			break;
	}
	printf("{\"received\":%lld,\"ns\":%lld}\n", received, last - first);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "send"))
		return do_send(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]));
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "sink"))
		return do_sink(atoi(argv[2]), atof(argv[3]), argc == 5 && !strcmp(argv[4], "spin"));
	fprintf(stderr, "usage: udpflood send ADDR PORT SECS SIZE | udpflood sink PORT SECS\n");
	return 2;
}
