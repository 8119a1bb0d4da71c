#pragma once
// The ack-mode packet layer of Telegram's V2 call signaling (library versions 8.0.0 and 9.0.0;
// TELEGRAM-CALLS.md §2.2, §2.3) over TDLib's signaling blobs, sans-IO: the caller passes `now`,
// hands in every updateNewCallSignalingData blob and sends what `send` gives it with
// sendCallSignalingData; tick() at next_tick() does the resends and delayed acks.
//
// A packet (plaintext of one blob) is a list of records, integers big-endian:
//   seq u32 (bit 31 single-message packet, bit 30 requires ack, bits 0-29 counter), type u8:
//   0x7F message (then len u32 and the JSON), 0xFF ack (seq = the acknowledged record's seq),
//   0xFE empty (first record only: a fresh counter for a packet of acks and resends).
// Every message requires an ack; unacknowledged ones are resent, oldest first, until acked, and
// the receiver delivers each one once, in order.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "telegram/calls/cipher.hpp"

namespace esg::telegram::calls {

using TimePoint = std::chrono::steady_clock::time_point;

class SignalingChannel {
 public:
  // tgcalls' limits and delays (EncryptedConnection), §2.2.
  static constexpr size_t kMaxPacketSize = 16384;  // a whole blob, msg_key included
  static constexpr size_t kMaxUnacknowledged = 65536;
  static constexpr uint32_t kMaxCounter = (1u << 30) - 1;
  static constexpr std::chrono::milliseconds kResendInterval{5000};
  static constexpr std::chrono::milliseconds kMinResendDelay{3000};
  static constexpr std::chrono::milliseconds kMaxAckDelay{5000};
  // §2.3: a packet whose counter is 64 or more below the largest seen is dropped.
  static constexpr uint32_t kPacketWindow = 64;
  // The longest JSON send_message takes: its record alone must fit a service packet (msg_key,
  // the empty record, seq + type + len), so that it can always be resent.
  static constexpr size_t kMaxMessageSize = kMaxPacketSize - kMsgKeySize - 5 - 9;
  // Acks waiting to be sent (one per distinct seq): beyond this a record is delivered but not
  // acked; the peer resends it and it is acked then (each ack-requiring packet flushes them).
  static constexpr size_t kMaxPendingAcks = 1024;
  // Counters of delivered messages kept for repeat detection (a sender keeps at most
  // kMaxUnacknowledged unacked, so older ones cannot come again).
  static constexpr size_t kMaxDelivered = kMaxUnacknowledged;

  // `key`: the 256-byte callStateReady.encryption_key (raw bytes); `is_outgoing`: call.is_outgoing.
  SignalingChannel(std::string_view key, bool is_outgoing);

  // One sendCallSignalingData.data (raw bytes, at most kMaxPacketSize).
  std::function<void(std::string blob)> send;
  // Each JSON message text, once, in the peer's order. It may call send_message (its acks then
  // ride along); it must not destroy the channel.
  std::function<void(std::string message)> on_message;

  // Sends `json` as one message. False: longer than kMaxMessageSize, kMaxUnacknowledged messages
  // are waiting for their ack, the counter is used up (2^30-1) or the key was not 256 bytes.
  bool send_message(std::string_view json, TimePoint now);
  // One updateNewCallSignalingData.data (raw bytes). Malformed, undecryptable, replayed and
  // oversized blobs are dropped and counted.
  void on_blob(std::string_view blob, TimePoint now);
  // Resends and delayed acks that are due.
  void tick(TimePoint now);
  // When tick() next has work; none while nothing is waiting.
  std::optional<TimePoint> next_tick() const;

  struct Counters {
    uint64_t sent = 0;           // blobs given to `send`
    uint64_t received = 0;       // messages given to `on_message`
    uint64_t resent = 0;         // records sent again
    uint64_t undecryptable = 0;  // blobs whose msg_key does not match
    uint64_t malformed = 0;      // decrypted packets with a bad record layout
    uint64_t replayed = 0;       // packets seen before or too old (§2.3 window)
    uint64_t oversized = 0;      // blobs shorter than 21 bytes or longer than 128 KiB
    uint64_t repeated = 0;       // messages that came again: acked, not delivered
  };
  const Counters& counters() const { return counters_; }
  // Messages sent and not acknowledged yet.
  size_t unacknowledged() const { return unacked_.size(); }

 private:
  friend class SignalingChannelTest;  // sets the counter near its end

  struct Outgoing {
    uint32_t counter = 0;
    std::string record;                  // seq, 0x7F, len, JSON
    std::optional<TimePoint> last_sent;  // none: never sent
    uint64_t epoch = 0;        // last_sent counts only while this is the channel's send_epoch_
    bool transmitted = false;  // sent at least once (for Counters::resent)
  };
  struct Record {
    uint32_t seq = 0;
    uint8_t type = 0;
    std::string_view body;
  };

  static bool parse_records(std::string_view plaintext, std::vector<Record>& out);
  bool register_incoming_counter(uint32_t counter);
  bool may_resend(const Outgoing& o, TimePoint now) const;
  bool is_delivered(uint32_t counter) const;
  void mark_delivered(uint32_t counter);
  void forget_delivered_below(uint32_t counter);
  void queue_ack(uint32_t seq);
  void remove_acknowledged(uint32_t counter);
  size_t append_acks(std::string& plaintext, size_t room);
  void send_service_packet(TimePoint now);
  void emit(const std::string& plaintext);

  SignalingCipher cipher_;
  uint32_t counter_ = 0;  // the last counter used for a message or a service packet
  // §2.2 step 4 marks every queued record "never sent": bumping this does so in O(1).
  uint64_t send_epoch_ = 0;
  std::deque<Outgoing> unacked_;
  std::vector<uint32_t> pending_acks_;  // seqs as received, flags included, distinct
  std::optional<TimePoint> ack_due_;
  std::optional<TimePoint> resend_due_;
  std::vector<uint32_t> recent_counters_;  // sorted; the last kPacketWindow packet counters
  std::vector<uint32_t> delivered_;        // sorted; delivered counters at or above the floor
  uint32_t delivered_floor_ = 0;           // every message counter below this was delivered
  Counters counters_;
};

}  // namespace esg::telegram::calls
