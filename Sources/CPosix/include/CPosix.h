#ifndef CPOSIX_H
#define CPOSIX_H
// Only what Glibc's Swift module lacks: epoll, eventfd, accept4.
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

int CPosix_epoll_create(void);
int CPosix_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int CPosix_epoll_wait(int epfd, void *events, int maxevents, int timeout_ms);
int CPosix_eventfd(unsigned int initval);
int CPosix_accept4(int fd, struct sockaddr *addr, socklen_t *len);
#endif
