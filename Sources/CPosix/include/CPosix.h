#ifndef CPOSIX_H
#define CPOSIX_H
// Only what Glibc's Swift module lacks (epoll, eventfd, accept4) plus a few socket helpers whose
// sockaddr casts are error-prone in Swift. Every function returns -1 and leaves errno set on failure.
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

// epoll event bits and control operations (enum constants with macros Swift does not see).
extern const uint32_t CPosix_EPOLLIN;
extern const uint32_t CPosix_EPOLLOUT;
extern const uint32_t CPosix_EPOLLERR;
extern const uint32_t CPosix_EPOLLHUP;
extern const uint32_t CPosix_EPOLLRDHUP;
extern const int CPosix_EPOLL_CTL_ADD;
extern const int CPosix_EPOLL_CTL_MOD;
extern const int CPosix_EPOLL_CTL_DEL;

int CPosix_epoll_create(void);
int CPosix_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int CPosix_epoll_wait(int epfd, void *events, int maxevents, int timeout_ms);
/// epoll_wait into two parallel arrays: `struct epoll_event` is packed on x86-64, which Swift
/// cannot lay out. At most 256 events per call.
int CPosix_epoll_wait_split(int epfd, uint32_t *events, uint64_t *datas, int maxevents, int timeout_ms);
int CPosix_eventfd(unsigned int initval);
/// Adds one to the eventfd counter (wakes its epoll waiter).
int CPosix_eventfd_signal(int fd);
/// Resets the eventfd counter to zero; returns 0 when it was already zero.
int CPosix_eventfd_drain(int fd);
int CPosix_accept4(int fd, struct sockaddr *addr, socklen_t *len);

/// A non-blocking IPv4 TCP listener on `ipv4` (dotted quad) and `port` (0 = any), SO_REUSEADDR
/// always, SO_REUSEPORT when `reuseport` is non-zero. Returns the fd.
int CPosix_tcp_listen(const char *ipv4, uint16_t port, int reuseport, int backlog);
/// The local port a socket is bound to, or -1.
int CPosix_local_port(int fd);
/// Starts a non-blocking IPv4 connect; returns the fd (connection may still be in progress).
int CPosix_tcp_connect_start(const char *ipv4, uint16_t port);
/// The pending error of a socket (SO_ERROR), 0 when none.
int CPosix_socket_error(int fd);
/// TCP_NODELAY on.
int CPosix_set_nodelay(int fd);
/// Raises the soft limit on open files to the hard limit; returns the soft limit now in force
/// (or -1 if it cannot be read). RLIM_INFINITY is returned as INT64_MAX.
long long CPosix_raise_open_files_limit(void);
/// Writes the peer's dotted-quad address into `out` (at least 16 bytes); returns 0 or -1.
int CPosix_peer_ipv4(int fd, char *out, int outlen);
/// Polls one fd for `events` (POLLIN=1, POLLOUT=4) up to `timeout_ms`; returns poll()'s result
/// and the revents in `*revents`.
int CPosix_poll_one(int fd, short events, int timeout_ms, short *revents);
/// Resolves `host` to its first IPv4 address (dotted quad into `out`, at least 16 bytes) with
/// getaddrinfo; returns 0, or a getaddrinfo error code. Blocking: DNS is not bounded by callers' timeouts.
int CPosix_resolve_ipv4(const char *host, char *out, int outlen);
#endif
