#include "dialog/reliable.hpp"

#include "base/random.hpp"
#include "base/text.hpp"

namespace esg::dialog {

namespace {

constexpr uint32_t kMaxRSeq = 2147483647u;  // 2^31 - 1

Result<uint32_t, sip::ValueError> parse_number(std::string_view s, uint32_t max) {
  auto v = text::parse_uint(s, max);
  if (!v) return unexpected(sip::ValueError{"not a number in range"});
  return uint32_t(*v);
}

// The next whitespace-separated word of `s`, consumed.
std::string_view word(std::string_view& s) {
  s = text::trim(s);
  size_t n = 0;
  while (n < s.size() && s[n] != ' ' && s[n] != '\t')
    ++n;
  std::string_view w = s.substr(0, n);
  s.remove_prefix(n);
  return w;
}

}  // namespace

Result<uint32_t, sip::ValueError> parse_rseq(std::string_view value) {
  auto n = parse_number(text::trim(value), kMaxRSeq);
  if (n && *n == 0) return unexpected(sip::ValueError{"RSeq must be at least 1"});
  return n;
}

Result<RAck, sip::ValueError> parse_rack(std::string_view value) {
  std::string_view rest = value;
  auto rseq = parse_rseq(word(rest));
  if (!rseq) return unexpected(rseq.error());
  auto cseq = parse_number(word(rest), 0xffffffffu);
  if (!cseq) return unexpected(cseq.error());
  std::string_view method = word(rest);
  if (method.empty() || !text::trim(rest).empty())
    return unexpected(sip::ValueError{"malformed RAck"});
  return RAck{*rseq, *cseq, std::string(method)};
}

bool has_option(const sip::Message& m, sip::HeaderId id, std::string_view tag) {
  auto tokens = m.tokens(id);
  if (!tokens) return false;
  for (auto t : *tokens) {
    if (text::iequals(t, tag)) return true;
  }
  return false;
}

ReliableProvisionals::ReliableProvisionals(txn::Timers& timers, const txn::TimerConfig& config,
                                           bool reliable,
                                           std::function<bool(std::string_view)> send,
                                           std::function<void()> on_timeout)
    : on_timeout_(std::move(on_timeout)),
      // §3: retransmitted "with an interval that starts at T1 seconds and doubles for each
      // retransmission" (no T2 cap), and abandoned after 64*T1.
      retransmitter_(
          timers, config, reliable, std::move(send),
          [this] {
            in_flight_.reset();
            queue_.clear();
            if (on_timeout_) on_timeout_();
          },
          Retransmitter::Backoff::Uncapped) {
  // §3: "The value of the RSeq in each response MUST be ... between 1 and 2**31 - 1", the first
  // chosen at random; room is left so that the numbers never wrap within a call.
  last_rseq_ = uint32_t(random::between(0, 1u << 30));
}

std::string ReliableProvisionals::headers(uint32_t rseq) {
  return "Require: 100rel\r\nRSeq: " + std::to_string(rseq) + "\r\n";
}

void ReliableProvisionals::send(uint32_t rseq, uint32_t cseq, std::string response) {
  queue_.push_back({rseq, cseq, std::move(response)});
  if (!in_flight_) transmit_next();
}

void ReliableProvisionals::transmit_next() {
  if (queue_.empty()) return;
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  retransmitter_.start(in_flight_->bytes);
}

bool ReliableProvisionals::on_prack(const sip::Message& prack) {
  if (!in_flight_) return false;
  const sip::HeaderField* h = prack.header("RAck");
  if (!h) return false;
  auto rack = parse_rack(h->value);
  if (!rack) return false;
  if (rack->rseq != in_flight_->rseq || rack->cseq != in_flight_->cseq ||
      rack->method != "INVITE") {
    return false;
  }
  retransmitter_.stop();
  in_flight_.reset();
  transmit_next();
  return true;
}

void ReliableProvisionals::stop() {
  retransmitter_.stop();
  in_flight_.reset();
  queue_.clear();
}

std::optional<RAck> PrackTracker::on_provisional(const sip::Message& response) {
  if (response.status() <= 100 || response.status() >= 200) return std::nullopt;
  if (!has_option(response, sip::HeaderId::Require, "100rel")) return std::nullopt;
  const sip::HeaderField* h = response.header("RSeq");
  if (!h) return std::nullopt;
  auto rseq = parse_rseq(h->value);
  if (!rseq) return std::nullopt;
  auto [it, first] = last_rseq_.try_emplace(std::string(response.to_tag()), *rseq);
  // §4: the first reliable provisional sets the expected sequence; each next one must be one
  // higher. Retransmissions and ones out of order are dropped.
  if (!first) {
    if (*rseq != it->second + 1) return std::nullopt;
    it->second = *rseq;
  }
  return RAck{*rseq, response.cseq().number, std::string(response.cseq().method)};
}

}  // namespace esg::dialog
