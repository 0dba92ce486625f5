/* pool_sockets.h - what the pool's loops need of the listening socket
 * (pool_listen() and pool_check_listener() are in pool.h). */
#ifndef IG_POOL_SOCKETS_H
#define IG_POOL_SOCKETS_H

/* Makes fd non-blocking. 0, or -1 with errno set. */
int pool_sock_nonblock(int fd);

#endif
