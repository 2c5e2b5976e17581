// Small socket helpers shared by the API side and the poller.

#pragma once
#include <sys/socket.h>

#include <cstdint>

namespace squall {

// Parses a numeric IPv4 or IPv6 address (no name lookup: the TS wrapper resolves names). False if bad.
bool parseAddress(const char* host, int port, sockaddr_storage* out, socklen_t* len);

// Non-blocking, close-on-exec TCP socket of the address's family; -1 with errno on failure.
int openTcpSocket(const sockaddr_storage& addr);

// A non-blocking TCP socket bound to *addr and listening (SO_REUSEADDR; tuned with tuneSocket when `tune`,
// which accepted sockets inherit). *addr gets the bound address (the port chosen for port 0). -1 with errno.
int listenTcp(sockaddr_storage* addr, socklen_t len, bool tune);

// The port of an IPv4 or IPv6 address.
int portOf(const sockaddr_storage& addr);

// TCP_NODELAY (every write is a latency-sensitive push) and large socket buffers (bulk transfers).
void tuneSocket(int fd);

}  // namespace squall
