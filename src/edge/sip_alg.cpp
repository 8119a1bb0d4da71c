#include "edge/sip_alg.hpp"

#include <algorithm>
#include <cctype>

namespace esg::edge {

namespace {

// What may surround an address without being part of it: an IPv4 address may be followed by
// ":port", an IPv6 one sits in brackets.
bool part_of_address(char c, bool v6) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (std::isalnum(u) || c == '.' || c == '-' || c == '_') return true;
  return v6 && c == ':';
}

struct Hit {
  size_t at, len;
  std::string_view to;
};

void find_hits(std::string_view text, size_t offset,
               const std::vector<std::pair<std::string_view, std::string_view>>& from_to,
               std::vector<Hit>& hits) {
  for (const auto& [from, to] : from_to) {
    if (from.empty()) continue;
    const bool v6 = from.find(':') != std::string_view::npos;
    for (size_t at = text.find(from); at != std::string_view::npos; at = text.find(from, at + 1)) {
      const size_t end = at + from.size();
      if (at > 0 && part_of_address(text[at - 1], v6)) continue;
      if (end < text.size() && part_of_address(text[end], v6)) continue;
      hits.push_back({offset + at, from.size(), to});
    }
  }
}

std::string replaced(std::string_view text, std::vector<Hit>& hits, size_t offset) {
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.at < b.at; });
  std::string out;
  out.reserve(text.size() + 64);
  size_t pos = offset;
  for (const auto& h : hits) {
    if (h.at < pos) continue;  // overlaps an earlier replacement
    out.append(text.substr(pos - offset, h.at - pos));
    out.append(h.to);
    pos = h.at + h.len;
  }
  out.append(text.substr(pos - offset));
  return out;
}

// The value of the Content-Length (or compact "l") header set to `length`.
std::string with_content_length(std::string head, size_t length) {
  size_t line = 0;
  while (line < head.size()) {
    size_t eol = head.find("\r\n", line);
    if (eol == std::string::npos) eol = head.size();
    const std::string_view l(head.data() + line, eol - line);
    const size_t colon = l.find(':');
    if (colon != std::string_view::npos) {
      std::string name(l.substr(0, colon));
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t'))
        name.pop_back();
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return char(std::tolower(c)); });
      if (name == "content-length" || name == "l") {
        // Built by appending: GCC 12 at -O3 takes `" " + std::string` for an overlapping
        // memcpy (-Werror=restrict in a Release build).
        std::string value(1, ' ');
        value += std::to_string(length);
        head.replace(line + colon + 1, eol - line - colon - 1, value);
        return head;
      }
    }
    line = eol + 2;
  }
  return head;
}

}  // namespace

bool swap_addresses(std::string& message,
                    const std::vector<std::pair<std::string_view, std::string_view>>& from_to) {
  const size_t split = message.find("\r\n\r\n");
  const size_t head_len = split == std::string::npos ? message.size() : split + 4;
  const std::string_view head(message.data(), head_len);
  const std::string_view body(message.data() + head_len, message.size() - head_len);
  std::vector<Hit> head_hits, body_hits;
  find_hits(head, 0, from_to, head_hits);
  find_hits(body, 0, from_to, body_hits);
  if (head_hits.empty() && body_hits.empty()) return false;
  std::string new_head = head_hits.empty() ? std::string(head) : replaced(head, head_hits, 0);
  std::string new_body = body_hits.empty() ? std::string(body) : replaced(body, body_hits, 0);
  if (new_body.size() != body.size())
    new_head = with_content_length(std::move(new_head), new_body.size());
  new_head += new_body;
  message = std::move(new_head);
  return true;
}

SipAlg::SipAlg(std::vector<Pair> pairs) : pairs_(std::move(pairs)) {
  for (const auto& p : pairs_) {
    in_.emplace_back(p.white, p.gray);
    out_.emplace_back(p.gray, p.white);
  }
}

bool SipAlg::inbound(std::string& message) const {
  return swap_addresses(message, in_);
}

bool SipAlg::outbound(std::string& message) const {
  return swap_addresses(message, out_);
}

}  // namespace esg::edge
