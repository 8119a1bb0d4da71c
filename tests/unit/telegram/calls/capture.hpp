#pragma once
// Calls captured between two tgpeers (tgcalls eb120ec; data/*.json, made by data/make_vectors.py
// from relay_demo.py with data/relay_demo_dump.patch): the call key, every signaling blob with its
// sender, and the messages each side logged as sent.

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace esg::telegram::calls::test {

inline std::string from_base64(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

inline std::string from_hex(const std::string& in) {
  std::string out;
  for (size_t i = 0; i + 1 < in.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(in.substr(i, 2), nullptr, 16)));
  }
  return out;
}

struct CapturedBlob {
  char from = 'A';  // A: the outgoing side (caller), B: the incoming side
  std::chrono::milliseconds t{0};
  bool relayed = true;  // false: the harness dropped it (it never reached the other side)
  std::string blob;
};

struct Capture {
  std::string name;
  std::string key;  // 256 raw bytes
  std::vector<CapturedBlob> blobs;
  std::vector<std::string> sent_a, sent_b;  // signaling messages each side logged as sent
  std::vector<std::string> data_channel;    // MediaState texts both sides sent on the data channel

  const std::vector<std::string>& sent_by(char side) const { return side == 'A' ? sent_a : sent_b; }
  std::vector<CapturedBlob> blobs_of(char side) const {
    std::vector<CapturedBlob> out;
    for (const CapturedBlob& b : blobs) {
      if (b.from == side) out.push_back(b);
    }
    return out;
  }
};

inline Capture load_capture(const std::string& name) {
  std::ifstream in(std::string(ESG_TGCALLS_DATA_DIR) + "/" + name);
  if (!in) throw std::runtime_error("cannot open " + name);
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str());
  Capture c;
  c.name = name;
  c.key = from_hex(j.at("key_hex").get<std::string>());
  for (const auto& b : j.at("blobs")) {
    c.blobs.push_back({b.at("from").get<std::string>()[0], std::chrono::milliseconds(b.at("t_ms")),
                       b.at("relayed").get<bool>(), from_base64(b.at("blob").get<std::string>())});
  }
  c.sent_a = j.at("sent_messages").at("A").get<std::vector<std::string>>();
  c.sent_b = j.at("sent_messages").at("B").get<std::vector<std::string>>();
  for (const char* side : {"A", "B"}) {
    for (const auto& m : j.at("data_channel_messages").at(side))
      c.data_channel.push_back(m);
  }
  return c;
}

inline const std::vector<std::string>& capture_names() {
  static const std::vector<std::string> names = {"tgpeer_8.0.0.json", "tgpeer_9.0.0.json",
                                                 "tgpeer_9.0.0_drops.json"};
  return names;
}

}  // namespace esg::telegram::calls::test
