/* udpsend: send exactly COUNT UDP datagrams of SIZE payload bytes to ADDR:PORT.
 * usage: udpsend ADDR PORT COUNT SIZE [GAP_US]
 * Built statically (gcc -static -O2) for the QEMU test guests. A datagram that
 * the kernel refuses with ENOBUFS/EAGAIN is retried, so COUNT datagrams leave
 * the socket; any other error is fatal. Prints "udpsend: sent N" on success. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s ADDR PORT COUNT SIZE [GAP_US]\n", argv[0]);
		return 2;
	}
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "udpsend: bad address %s\n", argv[1]);
		return 2;
	}
	long count = atol(argv[3]), size = atol(argv[4]);
	long gap = argc > 5 ? atol(argv[5]) : 0;
	if (count < 0 || size < 0 || size > 65507) {
		fprintf(stderr, "udpsend: bad count/size\n");
		return 2;
	}
	char *buf = calloc(1, size ? size : 1);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (!buf || fd < 0) {
		perror("udpsend: socket");
		return 1;
	}
	long sent = 0;
	while (sent < count) {
		memcpy(buf, &sent, size < (long)sizeof(sent) ? size : (long)sizeof(sent));
		if (sendto(fd, buf, size, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				usleep(1000);
				continue;
			}
			fprintf(stderr, "udpsend: sendto after %ld: %s\n", sent, strerror(errno));
			return 1;
		}
		sent++;
		if (gap)
			usleep(gap);
	}
	printf("udpsend: sent %ld\n", sent);
	return 0;
}
