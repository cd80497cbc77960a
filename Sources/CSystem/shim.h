// Linux calls that Swift's Glibc import does not give cleanly: variadic ones, and ones behind _GNU_SOURCE.
#ifndef PUSHGW_CSYSTEM_SHIM_H
#define PUSHGW_CSYSTEM_SHIM_H

#include <sys/prctl.h>
#include <sys/socket.h>

// prctl is variadic, which Swift cannot call: PR_SET_PDEATHSIG for worker and bench child processes.
static inline int csystem_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal); }

// accept4 and pipe2 are hidden behind _GNU_SOURCE in Swift's Glibc import.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
extern int pipe2(int pipefd[2], int flags);

#endif
