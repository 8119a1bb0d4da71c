// A UDP flood for bench/border_flood.py: sends one SIP request again and again from SRC to
// DST:PORT with sendmmsg(2), in batches, for SECONDS, and prints how many it sent. Loopback
// only: the benchmark must not send anywhere else.
//   udp_flood SRC DST PORT SECONDS

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: udp_flood SRC DST PORT SECONDS\n");
    return 2;
  }
  sockaddr_in src{}, dst{};
  src.sin_family = dst.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 ||
      inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
    std::fprintf(stderr, "udp_flood: bad address\n");
    return 2;
  }
  if ((ntohl(dst.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "udp_flood: loopback destinations only\n");
    return 2;
  }
  dst.sin_port = htons(uint16_t(std::atoi(argv[3])));
  const double seconds = std::atof(argv[4]);
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
    std::perror("udp_flood: bind");
    return 1;
  }
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  const std::string packet =
      "OPTIONS sip:esg@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bKflood\r\n"
      "From: <sip:flood@127.0.0.2>;tag=f\r\nTo: <sip:esg@127.0.0.1>\r\nCall-ID: flood\r\n"
      "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
  constexpr unsigned kBatch = 64;
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  for (unsigned i = 0; i < kBatch; ++i) {
    iov[i] = {const_cast<char*>(packet.data()), packet.size()};
    msgs[i].msg_hdr.msg_name = &dst;
    msgs[i].msg_hdr.msg_namelen = sizeof dst;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  unsigned long long sent = 0;
  while (std::chrono::steady_clock::now() < end) {
    const int n = sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n > 0) sent += unsigned(n);
  }
  close(fd);
  std::printf("%llu\n", sent);
  return 0;
}
