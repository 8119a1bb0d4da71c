#include "telegram/calls/signaling.hpp"

#include <algorithm>
#include <utility>

namespace esg::telegram::calls {
namespace {

constexpr uint32_t kSingleMessage = 0x80000000u;
constexpr uint32_t kRequiresAck = 0x40000000u;
constexpr uint32_t kCounterMask = 0x3FFFFFFFu;
constexpr uint8_t kTypeMessage = 0x7F;
constexpr uint8_t kTypeAck = 0xFF;
constexpr uint8_t kTypeEmpty = 0xFE;
constexpr size_t kHeaderSize = 5;  // seq, type
// Room for records after msg_key and the empty record that starts a service packet.
constexpr size_t kServiceRoom = SignalingChannel::kMaxPacketSize - kMsgKeySize - kHeaderSize;

void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t get_u32(std::string_view in, size_t pos) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(in[pos + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

SignalingChannel::SignalingChannel(std::string_view key, bool is_outgoing)
    : cipher_(key, is_outgoing) {}

bool SignalingChannel::send_message(std::string_view json, TimePoint now) {
  if (!cipher_.valid() || json.size() > kMaxMessageSize) return false;
  if (unacked_.size() >= kMaxUnacknowledged) return false;
  // The message takes a counter, and so does the service packet that carries it when earlier
  // ones are still unacknowledged.
  const uint32_t needed = unacked_.empty() ? 1 : 2;
  if (counter_ > kMaxCounter - needed) return false;

  Outgoing out;
  out.counter = ++counter_;
  out.record.reserve(9 + json.size());
  put_u32(out.record, out.counter | kRequiresAck);
  out.record.push_back(static_cast<char>(kTypeMessage));
  put_u32(out.record, static_cast<uint32_t>(json.size()));
  out.record.append(json);

  if (unacked_.empty()) {
    // §2.2 step 3: a packet of its own, the pending acks right after it.
    std::string plaintext = out.record;
    append_acks(plaintext, kMaxPacketSize - kMsgKeySize - plaintext.size());
    out.last_sent = now;
    out.epoch = send_epoch_;
    out.transmitted = true;
    unacked_.push_back(std::move(out));
    resend_due_ = now + kResendInterval;
    emit(plaintext);
    if (!pending_acks_.empty()) send_service_packet(now);
    return true;
  }
  // Step 4: behind unacknowledged messages, it goes in a service packet with all of them, in
  // order, so that the receiver can deliver them in order.
  unacked_.push_back(std::move(out));
  ++send_epoch_;
  send_service_packet(now);
  return true;
}

void SignalingChannel::on_blob(std::string_view blob, TimePoint now) {
  if (blob.size() < kMinIncomingPacketSize || blob.size() > kMaxIncomingPacketSize) {
    ++counters_.oversized;
    return;
  }
  std::optional<std::string> plaintext = cipher_.decrypt(blob);
  if (!plaintext) {
    ++counters_.undecryptable;
    return;
  }
  std::vector<Record> records;
  if (!parse_records(*plaintext, records)) {
    ++counters_.malformed;
    return;
  }
  // §2.3: the first record's counter is the packet's; a packet seen before or too old is dropped
  // whole, acks included.
  if (!register_incoming_counter(records.front().seq & kCounterMask)) {
    ++counters_.replayed;
    return;
  }

  std::vector<std::string> deliver;
  bool fresh = false;  // a new ack-requiring record: the acks go out at once
  bool first_ack_requiring = true;
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    const uint32_t counter = r.seq & kCounterMask;
    if (r.type == kTypeAck) {
      remove_acknowledged(counter);
    } else if (r.type == kTypeMessage) {
      if (r.seq & kRequiresAck) {
        // Acked again even when it is a repeat: our earlier ack may have been lost.
        queue_ack(r.seq);
        const bool repeat = is_delivered(counter);
        // Senders resend oldest first, so everything below the first ack-requiring record of a
        // packet was acknowledged by us, hence delivered.
        if (first_ack_requiring) forget_delivered_below(counter);
        first_ack_requiring = false;
        if (repeat) {
          ++counters_.repeated;
        } else {
          mark_delivered(counter);
          deliver.emplace_back(r.body);
          fresh = true;
        }
      } else if (i == 0 || register_incoming_counter(counter)) {
        deliver.emplace_back(r.body);
      } else {
        ++counters_.repeated;
      }
    }
  }
  if (unacked_.empty()) resend_due_.reset();

  // State is settled before the messages go out: a handler that answers at once finds the acks
  // pending and they ride on its packet.
  for (std::string& message : deliver) {
    ++counters_.received;
    if (on_message) on_message(std::move(message));
  }
  if (pending_acks_.empty()) return;
  if (fresh) {
    send_service_packet(now);
  } else if (!ack_due_) {
    // Only repeats: the peer resent because our ack was lost; no hurry.
    ack_due_ = now + kMaxAckDelay;
  }
}

void SignalingChannel::tick(TimePoint now) {
  const bool resend = resend_due_ && !unacked_.empty() && now >= *resend_due_;
  const bool acks = ack_due_ && !pending_acks_.empty() && now >= *ack_due_;
  if (!resend && !acks) return;
  send_service_packet(now);
  // Re-armed even when nothing was eligible, so the timer never spins.
  if (resend && !unacked_.empty()) resend_due_ = now + kResendInterval;
}

std::optional<TimePoint> SignalingChannel::next_tick() const {
  if (counter_ >= kMaxCounter) return std::nullopt;  // nothing can be sent any more
  std::optional<TimePoint> next;
  if (resend_due_ && !unacked_.empty()) next = resend_due_;
  if (ack_due_ && !pending_acks_.empty() && (!next || *ack_due_ < *next)) next = ack_due_;
  return next;
}

bool SignalingChannel::parse_records(std::string_view p, std::vector<Record>& out) {
  size_t pos = 0;
  while (pos < p.size()) {
    // Fewer than 5 bytes left, an unknown type or a truncated body drop the whole packet.
    if (p.size() - pos < kHeaderSize) return false;
    Record r;
    r.seq = get_u32(p, pos);
    r.type = static_cast<uint8_t>(p[pos + 4]);
    pos += kHeaderSize;
    const bool first = out.empty();
    switch (r.type) {
      case kTypeMessage: {
        if (p.size() - pos < 4) return false;
        const uint32_t len = get_u32(p, pos);
        pos += 4;
        if (p.size() - pos < len) return false;
        r.body = p.substr(pos, len);
        pos += len;
        break;
      }
      case kTypeAck:  // acks something, so never the packet's own counter
        if (first) return false;
        break;
      case kTypeEmpty:  // only a service packet's first record
        if (!first) return false;
        break;
      default:
        return false;
    }
    // A single-message record is the whole packet.
    if ((r.seq & kSingleMessage) && (!first || pos != p.size())) return false;
    out.push_back(r);
  }
  return !out.empty();
}

bool SignalingChannel::register_incoming_counter(uint32_t counter) {
  const uint64_t c = counter;
  if (!recent_counters_.empty() && c + kPacketWindow <= recent_counters_.back()) return false;
  auto it = std::lower_bound(recent_counters_.begin(), recent_counters_.end(), counter);
  if (it != recent_counters_.end() && *it == counter) return false;
  recent_counters_.insert(it, counter);
  const uint64_t largest = recent_counters_.back();
  auto keep = std::find_if(recent_counters_.begin(), recent_counters_.end(),
                           [&](uint32_t x) { return x + uint64_t{kPacketWindow} > largest; });
  recent_counters_.erase(recent_counters_.begin(), keep);
  return true;
}

bool SignalingChannel::may_resend(const Outgoing& o, TimePoint now) const {
  // Never sent (or marked so by step 4), or last sent at least 3 s ago.
  return !o.last_sent || o.epoch != send_epoch_ || now - *o.last_sent >= kMinResendDelay;
}

bool SignalingChannel::is_delivered(uint32_t counter) const {
  return counter < delivered_floor_ ||
         std::binary_search(delivered_.begin(), delivered_.end(), counter);
}

void SignalingChannel::mark_delivered(uint32_t counter) {
  auto it = std::lower_bound(delivered_.begin(), delivered_.end(), counter);
  if (it != delivered_.end() && *it == counter) return;
  delivered_.insert(it, counter);
  if (delivered_.size() > kMaxDelivered) {
    // A peer with more unacknowledged messages than tgcalls allows: the oldest count as
    // delivered.
    delivered_floor_ = delivered_.front() + 1;
    delivered_.erase(delivered_.begin());
  }
}

void SignalingChannel::forget_delivered_below(uint32_t counter) {
  if (counter <= delivered_floor_) return;
  delivered_floor_ = counter;
  delivered_.erase(delivered_.begin(),
                   std::lower_bound(delivered_.begin(), delivered_.end(), counter));
}

void SignalingChannel::queue_ack(uint32_t seq) {
  if (std::find(pending_acks_.begin(), pending_acks_.end(), seq) != pending_acks_.end()) return;
  if (pending_acks_.size() >= kMaxPendingAcks) return;
  pending_acks_.push_back(seq);
}

void SignalingChannel::remove_acknowledged(uint32_t counter) {
  auto it = std::lower_bound(unacked_.begin(), unacked_.end(), counter,
                             [](const Outgoing& o, uint32_t c) { return o.counter < c; });
  if (it != unacked_.end() && it->counter == counter) unacked_.erase(it);
}

size_t SignalingChannel::append_acks(std::string& plaintext, size_t room) {
  const size_t n = std::min(pending_acks_.size(), room / kHeaderSize);
  for (size_t i = 0; i < n; ++i) {
    put_u32(plaintext, pending_acks_[i]);
    plaintext.push_back(static_cast<char>(kTypeAck));
  }
  pending_acks_.erase(pending_acks_.begin(), pending_acks_.begin() + static_cast<ptrdiff_t>(n));
  if (pending_acks_.empty()) ack_due_.reset();
  return n * kHeaderSize;
}

void SignalingChannel::send_service_packet(TimePoint now) {
  do {
    if (counter_ >= kMaxCounter) {
      ack_due_.reset();
      resend_due_.reset();
      return;
    }
    // Records go in order from the oldest unacknowledged; the first one sent less than 3 s ago,
    // or that does not fit, ends the list (the receiver relies on the first one being the oldest).
    size_t n = 0;
    size_t bytes = 0;
    for (const Outgoing& o : unacked_) {
      if (!may_resend(o, now)) break;
      if (bytes + o.record.size() > kServiceRoom) break;
      bytes += o.record.size();
      ++n;
    }
    if (n == 0 && pending_acks_.empty()) return;  // an empty packet would tell nothing

    std::string plaintext;
    plaintext.reserve(kHeaderSize + bytes + pending_acks_.size() * kHeaderSize);
    put_u32(plaintext, ++counter_);
    plaintext.push_back(static_cast<char>(kTypeEmpty));
    // Acks first on the wire; what does not fit beside the records goes in the next packet.
    append_acks(plaintext, kServiceRoom - bytes);
    for (size_t i = 0; i < n; ++i) {
      Outgoing& o = unacked_[i];
      plaintext.append(o.record);
      if (o.transmitted) ++counters_.resent;
      o.transmitted = true;
      o.last_sent = now;
      o.epoch = send_epoch_;
    }
    if (n > 0) resend_due_ = now + kResendInterval;
    emit(plaintext);
  } while (!pending_acks_.empty());
}

void SignalingChannel::emit(const std::string& plaintext) {
  if (!cipher_.valid()) return;
  ++counters_.sent;
  if (!send) return;  // nobody to give it to: no need to encrypt
  std::string blob = cipher_.encrypt(plaintext);
  if (!blob.empty()) send(std::move(blob));
}

}  // namespace esg::telegram::calls
