#pragma once
// A Telegram line's calls (issue 9). The line's SIP side is a small user agent on loopback that
// esg's B2BUA sees as one more peer: a Telegram user calling the line becomes an INVITE from
// here (caller ID, caller name and X-TG-* headers as the line says), and an INVITE the B2BUA
// routes here (action `telegram`) becomes a Telegram call to the user the number names. So the
// B2BUA's legs, the media relay (Opus on this side, transcoded), hold, REFER and DTMF all work
// on Telegram calls unchanged. Telegram's answers become SIP answers with a Reason
// (answers.hpp); Telegram's limits are kept here: flood waits, the spam restriction, the daily
// calls to non-contacts (kept across restarts in the line's session folder).
// Everything runs on the line's worker; status() may be called from any thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "telegram/answers.hpp"
#include "telegram/callerid.hpp"
#include "telegram/chat.hpp"
#include "telegram/line_config.hpp"
#include "telegram/media.hpp"
#include "telegram/td/tdjson.hpp"
#include "telegram/tones.hpp"
#include "txn/asio_timers.hpp"
#include "txn/layer.hpp"

namespace esg::edge {
class CallBoard;
class CdrWriter;
}  // namespace esg::edge
namespace esg::media {
class PortPool;
}

namespace esg::telegram {

struct BridgeOptions {
  std::string sip_host = "127.0.0.1";  // esg's UDP SIP listener, where the INVITEs go
  uint16_t sip_port = 0;               // 0: esg has none, the line cannot take calls
  std::string dir;  // the line's session folder: the daily non-contact count lives there
  // A chat message of digits before a call names the number the user's next call (within this
  // long) goes to on the PBX.
  int digits_valid_s = 300;
  int flood_retry_up_to = 5;  // flood waits up to this long are waited out and retried
  int callback_gap_s = 60;    // a user's callback requests: at most one in this long
  // The calls API's board: each Telegram call's media (version, path, quality) is shown on
  // its call there. Null: not shown.
  edge::CallBoard* board = nullptr;
  // The CDRs: a chat message about a call that has already ended on the SIP side (the
  // missed-call message after the PBX's reject) is added to its record here. Null: not added.
  edge::CdrWriter* cdrs = nullptr;
  media::PortPool* ports = nullptr;  // media.ports for the Telegram side's sockets; null: any
  // media.address: where Telegram calls' media sockets bind. Unspecified (0.0.0.0, ::): every
  // interface's addresses but loopback, each a host candidate, as Telegram's apps gather.
  std::string media_address;
  // The call's diagram (issue 22): a Telegram lane of TDLib's call states and the media
  // engine's events, each filed under the call's Call-ID on the line's SIP side in the order
  // of the SIP packets (Transport::note). Null: none.
  std::function<void(const std::string& call_id, std::string text)> lane;
};

class CallBridge : public std::enable_shared_from_this<CallBridge> {
 public:
  using TdSend = std::function<void(nlohmann::json, td::Hub::Answer)>;

  // `config`: the line's settings, read on the worker (the line updates them there).
  CallBridge(boost::asio::io_context& io, const LineConfig& config, TdSend td,
             BridgeOptions options);
  ~CallBridge();
  CallBridge(const CallBridge&) = delete;
  CallBridge& operator=(const CallBridge&) = delete;

  // Binds the SIP side on 127.0.0.1; false with `error` when it cannot.
  bool open(std::string* error);
  uint16_t port() const { return port_; }
  // The account is logged in (its user id) or not (0): calls are refused while not.
  void set_account(int64_t self_id) { self_id_ = self_id; }
  // TDLib updates the line does not handle itself: updateCall, updateNewMessage.
  void on_update(const nlohmann::json& u);
  // Ends every call (the line is closing) and stops the SIP side.
  void shutdown(const std::string& why);
  // Calls in progress, the non-contact count, flood and restriction: for monitoring.
  nlohmann::json status() const;

 private:
  struct Call;
  void receive();
  void on_request(txn::TxnId server, const sip::Message& req);
  void on_cancel(txn::TxnId invite, const sip::Message& cancel);
  void on_stray(const sip::Message& r);

  // From Telegram to the PBX.
  void incoming_call(const nlohmann::json& call);
  void send_invite(const std::shared_ptr<Call>& c, const TgUser& user);
  void on_invite_response(const std::shared_ptr<Call>& c, const sip::Message& r);
  // Autoanswer (issue 23): accept the Telegram call before the PBX answers and play the
  // ringback; the PBX refused (or did not answer in time): the busy tone, then the end.
  void autoanswer(const std::shared_ptr<Call>& c);
  void accept_early(const std::shared_ptr<Call>& c, std::shared_ptr<const Pcm48> tone);
  // menu_dtmf: accept, play the prompt, and wait for the menu key (on_message) or the timeout.
  void ask_menu_key(const std::shared_ptr<Call>& c, const TgUser& u);
  bool take_menu_key(int64_t user, const std::string& text);
  void refuse(const std::shared_ptr<Call>& c, uint16_t status, const std::string& why);
  std::shared_ptr<const Pcm48> tone_pcm(const std::string& wav, bool busy);
  void send_cancel(const Call& c, const std::string& reason);
  // The engine's status with the autoanswer times, for the calls board and the CDR.
  nlohmann::json media_status(const Call& c) const;
  // From the PBX to Telegram.
  void outgoing_invite(txn::TxnId server, const sip::Message& req);
  void find_user(const std::shared_ptr<Call>& c, const DialTarget& t, int tries);
  void place_call(const std::shared_ptr<Call>& c, int64_t user_id, bool contact, int tries);
  // Telegram's state of a call.
  void on_call_state(const std::shared_ptr<Call>& c, const nlohmann::json& call);
  void on_message(const nlohmann::json& message);
  void send_key(const std::shared_ptr<Call>& c);

  // The chat (issue 23): replies, the callback, the missed-call message.
  // Writes `text` to `user` (createPrivateChat, sendMessage): a flood wait up to
  // flood_retry_up_to is waited out, a longer one drops the message; each is counted and kept
  // in the line's recent chat (with the SIP Call-ID it belongs to, if any).
  void say(int64_t user, const std::string& text, const std::string& kind,
           const std::string& call_id);
  struct ChatText {
    int64_t user = 0, chat = 0;
    std::string text, kind, call_id;
    int tries = 0;
  };
  void send_text(ChatText m);
  // TDLib's answer to sendMessage, or its later updateMessageSendSucceeded / Failed.
  void chat_result(ChatText m, const Result<nlohmann::json, td::TdError>& r);
  void on_message_sent(const nlohmann::json& u);
  void chat_done(const ChatText& m, const std::string& result);
  void request_callback(int64_t user, const std::string& number);
  void start_callback(int64_t user, bool contact, const TgUser& u, const std::string& number);
  void callback_answered(const std::shared_ptr<Call>& c);
  void callback_refused(const std::shared_ptr<Call>& c, const SipAnswer& a);
  void missed_call(const std::shared_ptr<Call>& c, const std::string& why);
  // What esg wrote to the user about call `c`, kept on its record (board, CDR).
  void note_chat(Call& c, const std::string& text);
  nlohmann::json board_note(const Call& c) const;

  // Ends the call: answers or cancels the SIP side, discards the Telegram side.
  void fail_sip(const std::shared_ptr<Call>& c, const SipAnswer& a);
  // The line's ring_timeout for a call esg places on Telegram: `expired` runs if the user has
  // not answered by then (and the call has not ended otherwise).
  void start_ring_timer(const std::shared_ptr<Call>& c,
                        std::function<void(const std::shared_ptr<Call>&)> expired);
  void end(const std::shared_ptr<Call>& c, uint16_t cause, const std::string& why,
           bool discard_telegram);
  void discard_telegram(const std::shared_ptr<Call>& c);
  void forget(const std::shared_ptr<Call>& c);
  void send(std::string_view bytes);
  std::string via() const;
  std::string sdp(const Call& c, const std::string& direction) const;
  bool read_peer_sdp(Call& c, std::string_view body, std::string* direction);
  void start_media(const std::shared_ptr<Call>& c);
  std::unique_ptr<TelegramMedia> make_media(const std::shared_ptr<Call>& c);
  void on_signaling(const nlohmann::json& u);
  void show_media();  // every second: each call's Telegram media on the calls board
  // The diagram's Telegram lane and /metrics (issue 22).
  void lane(Call& c, const std::string& text);
  void on_call_lane(Call& c, const nlohmann::json& call);
  void on_media_event(const std::shared_ptr<Call>& c, std::string_view event,
                      const nlohmann::json& detail);
  void count_ended_media(const nlohmann::json& status);
  nlohmann::json media_counters() const;

  // The daily calls to non-contacts.
  int noncontact_wait_s();  // 0: a slot is free; else seconds until one is
  void count_noncontact();
  void load_counts();
  void save_counts() const;
  void publish_status();

  boost::asio::io_context& io_;
  const LineConfig& config_;
  TdSend td_;
  BridgeOptions options_;
  boost::asio::ip::udp::socket sock_;
  boost::asio::ip::udp::endpoint esg_, from_;
  std::array<char, 65536> buf_{};
  uint16_t port_ = 0;
  txn::AsioTimers timers_;
  txn::TimerConfig timer_config_;
  std::unique_ptr<txn::Layer> layer_;
  txn::Channel channel_;
  int64_t self_id_ = 0;
  bool stopped_ = false;

  std::map<std::string, std::shared_ptr<Call>> by_call_id_;  // SIP Call-ID
  std::map<int64_t, std::shared_ptr<Call>> by_tg_;           // Telegram call id
  // Digits (or a menu key) a user sent before calling: where the next call goes.
  struct Dialled {
    std::string number, pbx;  // pbx: a menu entry's PBX connection (empty: the line's)
    int64_t at_ms = 0;        // steady ms when sent
  };
  std::map<int64_t, Dialled> dialled_;
  // The tones' audio: the cadences, and the line's WAV files by path (read once; a few).
  std::map<std::string, std::shared_ptr<const Pcm48>> tones_;
  PerUserInterval menu_sent_, missed_sent_, callback_asked_;
  struct ChatCounters {
    uint64_t sent = 0, dropped_flood = 0, failed = 0, dropped_busy = 0;
  };
  ChatCounters chat_counters_;
  // Messages TDLib has queued (sendMessage answered with a pending message): by its temporary
  // id, until updateMessageSendSucceeded or updateMessageSendFailed (or a minute passes).
  std::map<int64_t, ChatText> chat_queued_;
  int chat_pending_ = 0;                    // messages on their way (bounded: kMaxChatPending)
  std::deque<nlohmann::json> chat_recent_;  // the last messages and their results
  std::deque<int64_t> noncontact_;          // unix ms of calls to non-contacts in the last 24 h
  int64_t flood_until_ms_ = 0;              // unix ms: no calls to Telegram before
  int64_t restricted_ms_ = 0;               // unix ms the spam restriction was last reported
  uint64_t version_refused_ = 0;            // calls whose protocol version esg does not speak
  bool showing_media_ = false;              // the board's 1 s timer runs
  // For /metrics, counted once per call: at the event (connected, reconnecting, the 20 s rule)
  // or when the call ends (signaling the engine could not decrypt, skipped TCP reflectors).
  struct MediaCounters {
    std::map<std::pair<std::string, std::string>, uint64_t> connected;  // (path, version)
    std::array<uint64_t, 9> connect_buckets{};  // connect time, by kConnectBucketsS
    int64_t connect_ms_sum = 0;
    uint64_t reconnections = 0, no_path_20s = 0, undecryptable = 0, skipped_tcp_reflectors = 0;
  };
  MediaCounters media_counters_;

  mutable std::mutex status_mu_;
  nlohmann::json status_ = nlohmann::json::object();
};

}  // namespace esg::telegram
