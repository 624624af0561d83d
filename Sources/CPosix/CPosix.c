#define _GNU_SOURCE
#include "CPosix.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <netdb.h>

const uint32_t CPosix_EPOLLIN = EPOLLIN;
const uint32_t CPosix_EPOLLOUT = EPOLLOUT;
const uint32_t CPosix_EPOLLERR = EPOLLERR;
const uint32_t CPosix_EPOLLHUP = EPOLLHUP;
const uint32_t CPosix_EPOLLRDHUP = EPOLLRDHUP;
const int CPosix_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
const int CPosix_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
const int CPosix_EPOLL_CTL_DEL = EPOLL_CTL_DEL;

int CPosix_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
int CPosix_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev; ev.events = events; ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}
int CPosix_epoll_wait(int epfd, void *events, int maxevents, int timeout_ms) {
    return epoll_wait(epfd, (struct epoll_event *)events, maxevents, timeout_ms);
}
int CPosix_epoll_wait_split(int epfd, uint32_t *events, uint64_t *datas, int maxevents, int timeout_ms) {
    struct epoll_event evs[256];
    if (maxevents > 256) maxevents = 256;
    int n = epoll_wait(epfd, evs, maxevents, timeout_ms);
    for (int i = 0; i < n; i++) { events[i] = evs[i].events; datas[i] = evs[i].data.u64; }
    return n;
}
int CPosix_eventfd(unsigned int initval) { return eventfd(initval, EFD_NONBLOCK | EFD_CLOEXEC); }
int CPosix_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
    // EAGAIN means the counter is saturated: the waiter is already woken.
    return (n == sizeof one || (n < 0 && errno == EAGAIN)) ? 0 : -1;
}
int CPosix_eventfd_drain(int fd) {
    uint64_t value = 0;
    ssize_t n;
    do { n = read(fd, &value, sizeof value); } while (n < 0 && errno == EINTR);
    return n == sizeof value ? 1 : 0;
}
int CPosix_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static int fill_ipv4(const char *ipv4, uint16_t port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    if (inet_pton(AF_INET, ipv4, &sa->sin_addr) != 1) { errno = EINVAL; return -1; }
    return 0;
}

int CPosix_tcp_listen(const char *ipv4, uint16_t port, int reuseport, int backlog) {
    struct sockaddr_in sa;
    if (fill_ipv4(ipv4, port, &sa) != 0) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) goto fail;
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) goto fail;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) goto fail;
    if (listen(fd, backlog) != 0) goto fail;
    return fd;
fail: {
        int saved = errno; close(fd); errno = saved; return -1;
    }
}

int CPosix_local_port(int fd) {
    struct sockaddr_in sa; socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) return -1;
    return ntohs(sa.sin_port);
}

int CPosix_tcp_connect_start(const char *ipv4, uint16_t port) {
    struct sockaddr_in sa;
    if (fill_ipv4(ipv4, port, &sa) != 0) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc;
    do { rc = connect(fd, (struct sockaddr *)&sa, sizeof sa); } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) { int saved = errno; close(fd); errno = saved; return -1; }
    return fd;
}

int CPosix_socket_error(int fd) {
    int err = 0; socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

long long CPosix_raise_open_files_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    if (limit.rlim_cur < limit.rlim_max) {
        struct rlimit raised = { limit.rlim_max, limit.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit.rlim_cur = limit.rlim_max;
    }
    return limit.rlim_cur == RLIM_INFINITY ? INT64_MAX : (long long)limit.rlim_cur;
}

int CPosix_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int CPosix_peer_ipv4(int fd, char *out, int outlen) {
    struct sockaddr_in sa; socklen_t len = sizeof sa;
    if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sin_family != AF_INET) return -1;
    return inet_ntop(AF_INET, &sa.sin_addr, out, (socklen_t)outlen) ? 0 : -1;
}

int CPosix_poll_one(int fd, short events, int timeout_ms, short *revents) {
    struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
    int rc;
    do { rc = poll(&p, 1, timeout_ms); } while (rc < 0 && errno == EINTR);
    *revents = p.revents;
    return rc;
}

int CPosix_resolve_ipv4(const char *host, char *out, int outlen) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) return rc;
    struct sockaddr_in *sa = (struct sockaddr_in *)res->ai_addr;
    const char *ok = inet_ntop(AF_INET, &sa->sin_addr, out, (socklen_t)outlen);
    freeaddrinfo(res);
    return ok ? 0 : EAI_FAIL;
}
