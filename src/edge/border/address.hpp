#pragma once
// An IP address as a fixed 16-byte key (IPv4 as ::ffff:a.b.c.d), for the per-packet checks of
// the border: hashing and comparing it costs no allocation, unlike the text form.

#include <arpa/inet.h>

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace esg::edge {

struct IpKey {
  std::array<uint8_t, 16> bytes{};

  static IpKey of(const boost::asio::ip::address& a) {
    IpKey k;
    if (a.is_v4()) {
      const auto v4 = a.to_v4().to_bytes();
      k.bytes[10] = k.bytes[11] = 0xFF;
      std::memcpy(k.bytes.data() + 12, v4.data(), 4);
    } else {
      auto v6 = a.to_v6();
      if (v6.is_v4_mapped())
        return of(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
      k.bytes = v6.to_bytes();
    }
    return k;
  }
  static std::optional<IpKey> parse(std::string_view text) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(std::string(text), ec);
    if (ec) return std::nullopt;
    return of(a);
  }
  bool v4() const {
    static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    return std::memcmp(bytes.data(), kPrefix, 12) == 0;
  }
  // The first `bits` bits of the 128-bit form kept, the rest zero.
  IpKey masked(int bits) const {
    IpKey k;
    const int whole = bits / 8;
    std::memcpy(k.bytes.data(), bytes.data(), size_t(whole));
    if (bits % 8) k.bytes[size_t(whole)] = uint8_t(bytes[size_t(whole)] & (0xFF << (8 - bits % 8)));
    return k;
  }
  std::string to_string() const {
    if (v4()) {
      boost::asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), bytes.data() + 12, 4);
      return boost::asio::ip::address_v4(b).to_string();
    }
    return boost::asio::ip::address_v6(bytes).to_string();
  }
  // The text form into `buf` without allocating (INET6_ADDRSTRLEN is 46).
  std::string_view format(char (&buf)[64]) const {
    const bool four = v4();
    if (!inet_ntop(four ? AF_INET : AF_INET6, bytes.data() + (four ? 12 : 0), buf, sizeof buf))
      return {};
    return std::string_view(buf);
  }
  bool operator==(const IpKey&) const = default;
};

struct IpKeyHash {
  size_t operator()(const IpKey& k) const noexcept {
    uint64_t hi, lo;
    std::memcpy(&hi, k.bytes.data(), 8);
    std::memcpy(&lo, k.bytes.data() + 8, 8);
    // splitmix-style mixing: addresses of one subnet differ only in a few low bits.
    uint64_t x = hi * 0x9E3779B97F4A7C15ull ^ lo;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return size_t(x);
  }
};

}  // namespace esg::edge
