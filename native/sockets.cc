#include "sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace squall {

namespace {

// Enough for a 1 MiB RDMC block and a few more in flight.
constexpr int kSocketBufferBytes = 4 * 1024 * 1024;

// Linux grows a TCP socket's buffers on its own up to tcp_rmem[2] / tcp_wmem[2], and setting SO_RCVBUF or
// SO_SNDBUF turns that off for the socket (and is capped by net.core.{r,w}mem_max). So a buffer is set
// only where autotuning would stop short of kSocketBufferBytes; where it goes further (loopback, most
// current kernels) we leave it alone — on loopback that measured faster than any fixed size.
int autotuneMaxBytes(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  long min = 0, def = 0, max = 0;
  int n = std::fscanf(f, "%ld %ld %ld", &min, &def, &max);
  std::fclose(f);
  return n == 3 && max > 0 && max < (1L << 30) ? int(max) : 0;
}

bool needsSetting(const char* path) {
  return autotuneMaxBytes(path) < kSocketBufferBytes;
}

}  // namespace

bool parseAddress(const char* host, int port, sockaddr_storage* out, socklen_t* len) {
  if (port < 0 || port > 65535) return false;
  std::memset(out, 0, sizeof *out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(uint16_t(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(uint16_t(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

int openTcpSocket(const sockaddr_storage& addr) {
  return socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
}

int listenTcp(sockaddr_storage* addr, socklen_t len, bool tune) {
  int fd = openTcpSocket(*addr);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (tune) tuneSocket(fd);
  if (bind(fd, reinterpret_cast<sockaddr*>(addr), len) != 0 || ::listen(fd, 1024) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int portOf(const sockaddr_storage& addr) {
  const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);  // the port sits at the same place in v6
  return ntohs(a->sin_port);
}

void tuneSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  static const bool set_send = needsSetting("/proc/sys/net/ipv4/tcp_wmem");
  static const bool set_receive = needsSetting("/proc/sys/net/ipv4/tcp_rmem");
  int bytes = kSocketBufferBytes;
  if (set_send) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  if (set_receive) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

}  // namespace squall
