// Package epollset is an epoll instance whose own fd is registered with
// Go's netpoller (Linux only). An epoll fd is readable while it has events,
// so Wait polls it without blocking and parks the goroutine in the
// netpoller when it is empty: no thread sits in a blocking epoll_wait, and
// the runtime's monitor does not take that thread's P away and hand it
// back at every wake-up (measured in docs/benchmarks.md, "Where the tail
// came from"). The WebSocket transport (internal/wsnet) and the load tool
// (internal/bots) read their raw sockets through it.
package epollset
