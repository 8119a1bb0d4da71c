#pragma once
// SIP-ALG (issue 7): a 1-to-1 swap of addresses for an esg behind a static NAT. Incoming packets
// get each white (public) address replaced by its gray (private) one right after the border,
// before parsing, routing and normalization; outgoing packets get gray replaced by white just
// before they are sent. The swap covers headers and body (SDP) alike, only whole addresses
// (10.0.0.1 is not inside 10.0.0.12), and Content-Length follows a body whose length changed.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace esg::edge {

class SipAlg {
 public:
  struct Pair {
    std::string gray, white;
  };
  explicit SipAlg(std::vector<Pair> pairs);
  bool empty() const { return pairs_.empty(); }
  // White to gray; true when `message` changed.
  bool inbound(std::string& message) const;
  // Gray to white; true when `message` changed.
  bool outbound(std::string& message) const;

 private:
  std::vector<Pair> pairs_;
  // What to replace with what, each way (views into pairs_), made once.
  std::vector<std::pair<std::string_view, std::string_view>> in_, out_;
};

// Every whole occurrence of each `from` in `message` replaced by its `to`, in one pass, and
// Content-Length set to the new body's length when the body changed. False: nothing found.
bool swap_addresses(std::string& message,
                    const std::vector<std::pair<std::string_view, std::string_view>>& from_to);

}  // namespace esg::edge
