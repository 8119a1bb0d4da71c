// RTP load for bench/media_relay.py: for each call read from stdin ("A_IP A_PORT B_IP B_PORT"),
// a socket on A_IP sends G.711 packets (20 ms, 172 bytes) to the relay's A_PORT and a socket on
// B_IP to its B_PORT, both at 50 packets a second, for SECONDS; what each socket receives
// (relayed from the other one) is counted. Prints "sent received" when done. Loopback only.
//   rtp_load RELAY_IP SECONDS < calls

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

int bound_socket(const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) return -1;
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: rtp_load RELAY_IP SECONDS < calls\n");
    return 2;
  }
  sockaddr_in relay{};
  relay.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &relay.sin_addr) != 1 ||
      (ntohl(relay.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "rtp_load: a loopback relay address only\n");
    return 2;
  }
  const double seconds = std::atof(argv[2]);
  struct Leg {
    int fd;
    sockaddr_in to;
    uint16_t seq = 0;
    uint32_t ts = 0, ssrc;
  };
  std::vector<Leg> legs;
  char a_ip[64], b_ip[64];
  unsigned a_port, b_port;
  while (std::scanf("%63s %u %63s %u", a_ip, &a_port, b_ip, &b_port) == 4) {
    for (auto [ip, port] : {std::pair{a_ip, a_port}, std::pair{b_ip, b_port}}) {
      Leg l;
      l.fd = bound_socket(ip);
      if (l.fd < 0) {
        std::perror("rtp_load: socket");
        return 1;
      }
      l.to = relay;
      l.to.sin_port = htons(uint16_t(port));
      l.ssrc = uint32_t(legs.size() * 7919 + 1);
      legs.push_back(l);
    }
  }
  const int ep = epoll_create1(0);
  for (size_t i = 0; i < legs.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, legs[i].fd, &ev);
  }
  unsigned char pkt[172] = {0x80, 8};
  std::memset(pkt + 12, 0xD5, 160);
  unsigned long long sent = 0, received = 0;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  auto next_tick = start;
  std::vector<epoll_event> events(1024);
  char buf[2048];
  auto drain = [&](int timeout_ms) {
    const int n = epoll_wait(ep, events.data(), int(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      const int fd = legs[events[size_t(i)].data.u64].fd;
      while (recv(fd, buf, sizeof buf, 0) > 0)
        ++received;
    }
  };
  while (clock::now() < end) {
    if (clock::now() >= next_tick) {
      for (auto& l : legs) {
        pkt[2] = uint8_t(l.seq >> 8);
        pkt[3] = uint8_t(l.seq);
        for (int i = 0; i < 4; ++i) {
          pkt[4 + i] = uint8_t(l.ts >> (24 - 8 * i));
          pkt[8 + i] = uint8_t(l.ssrc >> (24 - 8 * i));
        }
        ++l.seq;
        l.ts += 160;
        if (sendto(l.fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&l.to), sizeof l.to) > 0)
          ++sent;
      }
      next_tick += std::chrono::milliseconds(20);
    }
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - clock::now());
    drain(int(std::max<long long>(0, wait.count())));
  }
  const auto linger = clock::now() + std::chrono::milliseconds(300);
  while (clock::now() < linger)
    drain(20);
  std::printf("%llu %llu\n", sent, received);
  return 0;
}
