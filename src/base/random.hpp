#pragma once
// Non-cryptographic randomness for identifiers that must not repeat (tags, branches, Call-IDs,
// first sequence numbers) and for jitter: one generator per thread, seeded once.

#include <cstdint>
#include <random>
#include <string>

namespace esg::random {

inline std::mt19937_64& generator() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

// A uniformly drawn integer in [lo, hi].
inline uint64_t between(uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>(lo, hi)(generator());
}

inline double real_between(double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(generator());
}

// `n` lowercase hex digits.
inline std::string hex(size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n, '0');
  uint64_t bits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) bits = generator()();
    s[i] = kHex[bits & 15];
    bits >>= 4;
  }
  return s;
}

}  // namespace esg::random
