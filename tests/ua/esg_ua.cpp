// esg-ua: a small user agent built from esg's transport, transaction and dialog libraries, so
// that tests can drive the stack against real peers before the B2BUA exists.
//
//   esg-ua [--udp ADDR:PORT] [--tcp ADDR:PORT] [--workers N]
//          [--answer | --reject STATUS] [--ring-ms N] [--100rel]
//          [--call SIP-URI --via udp|tcp|tls --calls N --hold-ms N --rate N] [--trn DIR]
//          [--tls-ca FILE] [--t1-ms N] [--linger-ms N]
//
// As a UAS it answers INVITE with 180 then 200 (with an SDP answer) after --ring-ms, or rejects
// with --reject; CANCEL gets 200 and the INVITE 487; BYE ends the call; OPTIONS get 200. With
// --100rel the 180 is sent reliably (RFC 3262) to callers that support it, and the call is
// answered after its PRACK. As a UAC it places --calls calls to --call (offering 100rel and
// PRACKing reliable provisionals), holds each --hold-ms, hangs up, and prints a summary.
// Prints "listening on PROTO ADDR:PORT" lines, then "ready"; stops on SIGTERM/SIGINT.

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dialog/dialog.hpp"
#include "dialog/reliable.hpp"
#include "dialog/retransmitter.hpp"
#include "sip/response.hpp"
#include "transport/transport.hpp"
#include "txn/asio_timers.hpp"
#include "txn/layer.hpp"

using namespace esg;

namespace {

struct Options {
  std::vector<std::pair<transport::Proto, std::string>> listen;
  size_t workers = 1;
  int reject = 0;
  int ring_ms = 0;
  bool rel100 = false;
  std::string call;
  transport::Proto via = transport::Proto::Udp;
  int calls = 1;
  int hold_ms = 0;
  int rate = 10;
  std::string trn;     // transaction log folder
  std::string tls_ca;  // the CA that signs TLS peers (verification is always on)
  int t1_ms = 500;     // RFC 3261 T1; Timer B and F are 64*T1
  // After the last call, stay up (connections open) this long: a TCP peer still finishing its
  // calls (SIPp's UAS pauses 4 s after each) must not see the connection close under it.
  int linger_ms = 0;
};

const char* kSdp =
    "v=0\r\no=esg-ua 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop = true;
}

std::string random_token() {
  static std::atomic<uint64_t> n{0};
  thread_local uint64_t seed = uint64_t(std::hash<std::thread::id>()(std::this_thread::get_id()));
  return std::to_string(seed % 100000) + "x" + std::to_string(++n);
}

// One worker's share of the calls: its transaction layer, timers and dialogs.
struct Worker {
  std::unique_ptr<txn::AsioTimers> timers;
  std::unique_ptr<txn::Layer> layer;
  struct Call {
    std::unique_ptr<dialog::Dialog> dialog;
    std::unique_ptr<dialog::Retransmitter> ok;
    std::unique_ptr<dialog::ReliableProvisionals> reliable;  // UAS: the reliable 180
    dialog::PrackTracker prack;                              // UAC: which 1xx to PRACK
    txn::TxnId invite = 0;
    txn::Timers::Id ring = 0;
    transport::Peer peer;
    bool uac = false;
  };
  std::unordered_map<std::string, Call> calls;  // by Call-ID
  transport::Peer from;
};

class Ua {
 public:
  Ua(Options o) : o_(std::move(o)), workers_(o_.workers) {
    config_.t1 = txn::Millis(o_.t1_ms);
    if (!o_.trn.empty())
      trn_ = std::make_unique<transport::TrnLog>(transport::TrnLog::Options{o_.trn});
    transport::TransportOptions options;
    options.tls_ca = o_.tls_ca;
    transport_ = std::make_unique<transport::Transport>(
        workers_, options, trn_.get(),
        [this](size_t w, sip::Message&& m, const transport::Peer& from) {
          per_[w].from = from;  // the peer of the request being handled, for its call
          per_[w].layer->receive(std::move(m), channel(from));
        });
    per_.resize(workers_.size());
    for (size_t w = 0; w < workers_.size(); ++w) {
      per_[w].timers = std::make_unique<txn::AsioTimers>(workers_.context(w));
      txn::Layer::User u;
      u.on_request = [this, w](txn::TxnId id, const sip::Message& m, const txn::Channel&) {
        on_request(w, id, m);
      };
      u.on_cancel = [this, w](txn::TxnId invite, const sip::Message&) { on_cancel(w, invite); };
      u.on_stray_response = [this, w](const sip::Message& r) { on_stray(w, r); };
      per_[w].layer = std::make_unique<txn::Layer>(*per_[w].timers, config_, std::move(u));
    }
  }

  void start() {
    for (auto& [proto, where] : o_.listen) {
      const size_t colon = where.rfind(':');
      transport_->listen(proto, where.substr(0, colon),
                         uint16_t(std::stoi(where.substr(colon + 1))));
      std::printf("listening on %s %s:%u\n", std::string(transport::proto_name(proto)).c_str(),
                  where.substr(0, colon).c_str(), transport_->local_port(ports_++));
    }
    workers_.start();
    std::printf("ready\n");
    std::fflush(stdout);
  }

  void stop() {
    transport_->close();
    workers_.stop();
    per_.clear();
    transport_.reset();
    trn_.reset();
  }

  // UAC: place the calls, pacing them at --rate per second, and wait for all to end.
  int run_calls() {
    const auto gap = std::chrono::microseconds(1000000 / std::max(1, o_.rate));
    for (int i = 0; i < o_.calls && !g_stop; ++i) {
      const std::string call_id = "ua-" + random_token() + "@127.0.0.1";
      const size_t w = workers_.worker_for(call_id);
      workers_.post(w, [this, w, call_id] { place(w, call_id); });
      std::this_thread::sleep_for(gap);
    }
    while (!g_stop && done_ < o_.calls)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::printf("calls %d ok %d failed %d\n", o_.calls, int(ok_), int(failed_));
    std::fflush(stdout);
    for (int waited = 0; waited < o_.linger_ms && !g_stop; waited += 10)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return failed_ == 0 && ok_ == o_.calls ? 0 : 1;
  }

 private:
  txn::Channel channel(const transport::Peer& peer) {
    return txn::Channel{peer.proto != transport::Proto::Udp, [this, peer](std::string_view b) {
                          return transport_->send(peer, std::string(b));
                        }};
  }

  std::string local_contact(const transport::Peer& peer) const {
    const size_t i = peer.proto == transport::Proto::Udp ? 0 : (o_.listen.size() > 1 ? 1 : 0);
    return "<sip:ua@127.0.0.1:" + std::to_string(transport_->local_port(i)) +
           (peer.proto == transport::Proto::Tcp   ? ";transport=tcp>"
            : peer.proto == transport::Proto::Tls ? ";transport=tls>"
                                                  : ">");
  }

  std::string via(const transport::Peer& peer) const {
    const size_t i = peer.proto == transport::Proto::Udp ? 0 : (o_.listen.size() > 1 ? 1 : 0);
    return std::string("SIP/2.0/") +
           (peer.proto == transport::Proto::Udp   ? "UDP"
            : peer.proto == transport::Proto::Tcp ? "TCP"
                                                  : "TLS") +
           " 127.0.0.1:" + std::to_string(transport_->local_port(i)) + ";rport;branch=z9hG4bK" +
           random_token();
  }

  void on_request(size_t w, txn::TxnId id, const sip::Message& m) {
    Worker& pw = per_[w];
    const std::string call_id(m.call_id());
    auto it = pw.calls.find(call_id);
    if (m.method() == sip::Method::Ack) {
      if (it != pw.calls.end() && it->second.ok) {
        it->second.ok->stop();
        it->second.dialog->confirm();
      }
      return;
    }
    const transport::Peer peer = pw.from;
    if (m.method() == sip::Method::Options) {
      pw.layer->respond(id, 200, sip::build_response(m, 200, {}, random_token()));
      return;
    }
    if (m.method() == sip::Method::Bye) {
      if (it == pw.calls.end()) {
        pw.layer->respond(id, 481, sip::build_response(m, 481));
        return;
      }
      pw.layer->respond(id, 200, sip::build_response(m, 200));
      pw.calls.erase(it);
      return;
    }
    if (m.method() == sip::Method::Prack) {
      // RFC 3262 §3: a PRACK that acknowledges our reliable 180 gets 200, then the call is
      // answered; one that matches nothing gets 481.
      const bool matched =
          it != pw.calls.end() && it->second.reliable && it->second.reliable->on_prack(m);
      pw.layer->respond(id, matched ? 200 : 481, sip::build_response(m, matched ? 200 : 481));
      if (matched) ring(w, call_id);
      return;
    }
    if (m.method() != sip::Method::Invite) {
      pw.layer->respond(id, it == pw.calls.end() ? 481 : 200,
                        sip::build_response(m, it == pw.calls.end() ? 481 : 200));
      return;
    }
    if (!m.to_tag().empty()) {  // re-INVITE: same answer again
      if (it == pw.calls.end()) {
        pw.layer->respond(id, 481, sip::build_response(m, 481));
        return;
      }
      pw.layer->respond(id, 200, answer(m, it->second.dialog->id().local_tag, peer));
      return;
    }
    if (o_.reject) {
      pw.layer->respond(id, uint16_t(o_.reject),
                        sip::build_response(m, uint16_t(o_.reject), {}, random_token()));
      return;
    }
    const std::string tag = random_token();
    auto d = dialog::Dialog::as_uas(m, tag, local_contact(peer));
    if (!d) {
      pw.layer->respond(id, 400, sip::build_response(m, 400, "Bad Dialog Request", tag));
      return;
    }
    Worker::Call& call = pw.calls[call_id];
    call.dialog = std::make_unique<dialog::Dialog>(std::move(*d));
    call.invite = id;
    call.peer = peer;
    const std::string contact = "Contact: " + local_contact(peer) + "\r\n";
    if (o_.rel100 && dialog::has_option(m, sip::HeaderId::Supported, "100rel")) {
      call.reliable = std::make_unique<dialog::ReliableProvisionals>(
          *pw.timers, config_, peer.proto != transport::Proto::Udp,
          [this, w, id](std::string_view b) {
            return per_[w].layer->respond(id, 180, std::string(b));
          },
          [this, w, call_id] { fail_call(w, call_id, 500); });
      const uint32_t rseq = call.reliable->next_rseq();
      call.reliable->send(
          rseq, m.cseq().number,
          sip::build_response(m, 180, {}, tag,
                              contact + dialog::ReliableProvisionals::headers(rseq)));
      return;  // answered once the PRACK arrives
    }
    pw.layer->respond(id, 180, sip::build_response(m, 180, {}, tag, contact));
    ring(w, call_id);
  }

  // Answers now, or after --ring-ms.
  void ring(size_t w, const std::string& call_id) {
    Worker& pw = per_[w];
    auto it = pw.calls.find(call_id);
    if (it == pw.calls.end()) return;
    auto answer_now = [this, w, call_id] { answer_call(w, call_id); };
    if (o_.ring_ms > 0) {
      it->second.ring = pw.timers->start(txn::Millis(o_.ring_ms), answer_now);
    } else {
      answer_now();
    }
  }

  void fail_call(size_t w, const std::string& call_id, uint16_t status) {
    Worker& pw = per_[w];
    auto it = pw.calls.find(call_id);
    if (it == pw.calls.end()) return;
    if (const sip::Message* invite = pw.layer->request(it->second.invite)) {
      pw.layer->respond(
          it->second.invite, status,
          sip::build_response(*invite, status, {}, it->second.dialog->id().local_tag));
    }
    pw.calls.erase(it);
  }

  std::string answer(const sip::Message& invite, const std::string& tag,
                     const transport::Peer& peer) {
    std::string r = sip::build_response(
        invite, 200, {}, tag,
        "Contact: " + local_contact(peer) + "\r\nContent-Type: application/sdp\r\n");
    // build_response ends with an empty Content-Length; put the SDP in.
    const std::string body = kSdp;
    r.replace(r.find("Content-Length: 0"), 17, "Content-Length: " + std::to_string(body.size()));
    return r + body;
  }

  void answer_call(size_t w, const std::string& call_id) {
    Worker& pw = per_[w];
    auto it = pw.calls.find(call_id);
    if (it == pw.calls.end()) return;
    Worker::Call& call = it->second;
    call.ring = 0;
    const sip::Message* invite = pw.layer->request(call.invite);
    if (!invite) return;
    const std::string ok = answer(*invite, call.dialog->id().local_tag, call.peer);
    if (call.reliable) call.reliable->stop();
    // The transaction sends the first 2xx and goes to Accepted; the core retransmits it.
    pw.layer->respond(call.invite, 200, ok);
    call.ok = std::make_unique<dialog::Retransmitter>(
        *pw.timers, config_, call.peer.proto != transport::Proto::Udp,
        [this, peer = call.peer](std::string_view b) {
          return transport_->send(peer, std::string(b));
        },
        [this, w, call_id] { per_[w].calls.erase(call_id); });
    call.ok->start(ok, /*send_now=*/false);  // the transaction sent the first copy
  }

  void on_cancel(size_t w, txn::TxnId invite) {
    Worker& pw = per_[w];
    const sip::Message* req = pw.layer->request(invite);
    if (!req) return;
    auto it = pw.calls.find(std::string(req->call_id()));
    std::string tag = it != pw.calls.end() ? it->second.dialog->id().local_tag : random_token();
    if (it != pw.calls.end()) {
      if (it->second.ring) pw.timers->stop(it->second.ring);
    }
    pw.layer->respond(invite, 487, sip::build_response(*req, 487, {}, tag));
    if (it != pw.calls.end()) pw.calls.erase(it);
  }

  void on_stray(size_t w, const sip::Message& r) {
    // A retransmitted 2xx after our client transaction ended: acknowledge it again.
    Worker& pw = per_[w];
    auto it = pw.calls.find(std::string(r.call_id()));
    if (it == pw.calls.end() || !it->second.uac || r.cseq().method != "INVITE" ||
        r.status() / 100 != 2)
      return;
    transport_->send(it->second.peer, it->second.dialog->build_request("ACK", via(it->second.peer),
                                                                       r.cseq().number));
  }

  // UAC
  void place(size_t w, const std::string& call_id) {
    Worker& pw = per_[w];
    auto target = sip::parse_uri(o_.call);
    if (!target) {
      ++failed_;
      ++done_;
      return;
    }
    transport::Peer peer;
    peer.proto = o_.via;
    boost::system::error_code ec;
    peer.addr = boost::asio::ip::make_address(std::string(target->host), ec);
    peer.port = target->port ? target->port : 5060;
    const std::string tag = random_token();
    std::string invite =
        "INVITE " + o_.call + " SIP/2.0\r\nVia: " + via(peer) +
        "\r\nMax-Forwards: 70\r\nFrom: <sip:ua@127.0.0.1>;tag=" + tag + "\r\nTo: <" + o_.call +
        ">\r\nCall-ID: " + call_id + "\r\nCSeq: 1 INVITE\r\nContact: " + local_contact(peer) +
        "\r\nSupported: 100rel" + "\r\nContent-Type: application/sdp\r\nContent-Length: " +
        std::to_string(std::string(kSdp).size()) + "\r\n\r\n" + kSdp;
    auto parsed = sip::parse_message(invite);
    if (!parsed) {
      ++failed_;
      ++done_;
      return;
    }
    Worker::Call& call = pw.calls[call_id];
    call.uac = true;
    call.peer = peer;
    auto request = std::make_shared<std::string>(invite);
    txn::ClientUser user;
    user.on_response = [this, w, call_id, request](const sip::Message& r) {
      on_invite_response(w, call_id, *request, r);
    };
    user.on_failure = [this, w, call_id](uint16_t) { finish(w, call_id, false); };
    pw.layer->send_request(std::move(*parsed), channel(peer), std::move(user));
  }

  void on_invite_response(size_t w, const std::string& call_id, const std::string& invite_text,
                          const sip::Message& r) {
    Worker& pw = per_[w];
    auto it = pw.calls.find(call_id);
    if (it == pw.calls.end()) return;
    Worker::Call& call = it->second;
    if (r.status() < 200) {
      if (auto rack = call.prack.on_provisional(r))
        send_prack(w, call, call_id, invite_text, r, *rack);
      return;
    }
    if (r.status() >= 300) {
      finish(w, call_id, false);
      return;
    }
    auto invite = sip::parse_message(invite_text);
    if (!call.dialog) {
      auto d = dialog::Dialog::as_uac(*invite, r, local_contact(call.peer));
      if (!d) {
        finish(w, call_id, false);
        return;
      }
      call.dialog = std::make_unique<dialog::Dialog>(std::move(*d));
    } else {  // the early dialog of a reliable provisional
      call.dialog->confirm();
      call.dialog->on_refresh_response(r);
    }
    transport_->send(call.peer, call.dialog->build_request("ACK", via(call.peer), r.cseq().number));
    if (call.ring) return;  // the hang-up is already scheduled (a retransmitted 2xx)
    call.ring = pw.timers->start(txn::Millis(std::max(1, o_.hold_ms)),
                                 [this, w, call_id] { hang_up(w, call_id); });
  }

  // RFC 3262 §4: a PRACK in the early dialog the reliable provisional created.
  void send_prack(size_t w, Worker::Call& call, const std::string& call_id,
                  const std::string& invite_text, const sip::Message& r, const dialog::RAck& rack) {
    if (!call.dialog) {
      auto invite = sip::parse_message(invite_text);
      auto d = dialog::Dialog::as_uac(*invite, r, local_contact(call.peer));
      if (!d) {
        finish(w, call_id, false);
        return;
      }
      call.dialog = std::make_unique<dialog::Dialog>(std::move(*d));
    }
    auto prack = sip::parse_message(
        call.dialog->build_request("PRACK", via(call.peer), 0,
                                   "RAck: " + std::to_string(rack.rseq) + " " +
                                       std::to_string(rack.cseq) + " " + rack.method + "\r\n"));
    if (!prack) return;
    per_[w].layer->send_request(std::move(*prack), channel(call.peer), txn::ClientUser{});
  }

  void hang_up(size_t w, const std::string& call_id) {
    Worker& pw = per_[w];
    auto it = pw.calls.find(call_id);
    if (it == pw.calls.end()) return;
    auto bye = sip::parse_message(it->second.dialog->build_request("BYE", via(it->second.peer)));
    txn::ClientUser user;
    user.on_response = [this, w, call_id](const sip::Message& r) {
      if (r.status() >= 200) finish(w, call_id, r.status() < 300);
    };
    user.on_failure = [this, w, call_id](uint16_t) { finish(w, call_id, false); };
    pw.layer->send_request(std::move(*bye), channel(it->second.peer), std::move(user));
  }

  void finish(size_t w, const std::string& call_id, bool ok) {
    if (per_[w].calls.erase(call_id) == 0) return;
    ++(ok ? ok_ : failed_);
    ++done_;
  }

  Options o_;
  txn::TimerConfig config_;
  transport::Workers workers_;
  std::unique_ptr<transport::TrnLog> trn_;
  std::unique_ptr<transport::Transport> transport_;
  std::vector<Worker> per_;
  size_t ports_ = 0;
  std::atomic<int> ok_{0}, failed_{0}, done_{0};
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> a(argv + 1, argv + argc);
  for (size_t i = 0; i < a.size(); ++i) {
    auto next = [&]() -> std::string {
      if (i + 1 >= a.size()) {
        std::cerr << "esg-ua: " << a[i] << " needs a value\n";
        std::exit(2);
      }
      return a[++i];
    };
    if (a[i] == "--udp")
      o.listen.emplace_back(transport::Proto::Udp, next());
    else if (a[i] == "--tcp")
      o.listen.emplace_back(transport::Proto::Tcp, next());
    else if (a[i] == "--workers")
      o.workers = size_t(std::stoi(next()));
    else if (a[i] == "--answer")
      o.reject = 0;
    else if (a[i] == "--reject")
      o.reject = std::stoi(next());
    else if (a[i] == "--ring-ms")
      o.ring_ms = std::stoi(next());
    else if (a[i] == "--100rel")
      o.rel100 = true;
    else if (a[i] == "--call")
      o.call = next();
    else if (a[i] == "--via") {
      const std::string v = next();
      o.via = v == "tcp"   ? transport::Proto::Tcp
              : v == "tls" ? transport::Proto::Tls
                           : transport::Proto::Udp;
    } else if (a[i] == "--linger-ms")
      o.linger_ms = std::stoi(next());
    else if (a[i] == "--t1-ms")
      o.t1_ms = std::stoi(next());
    else if (a[i] == "--tls-ca")
      o.tls_ca = next();
    else if (a[i] == "--calls")
      o.calls = std::stoi(next());
    else if (a[i] == "--hold-ms")
      o.hold_ms = std::stoi(next());
    else if (a[i] == "--rate")
      o.rate = std::stoi(next());
    else if (a[i] == "--trn")
      o.trn = next();
    else {
      std::cerr << "esg-ua: unknown argument " << a[i] << "\n";
      return 2;
    }
  }
  if (o.listen.empty()) o.listen.emplace_back(transport::Proto::Udp, "127.0.0.1:0");
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  try {
    Ua ua(o);
    ua.start();
    int rc = 0;
    if (!o.call.empty()) {
      rc = ua.run_calls();
    } else {
      while (!g_stop)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ua.stop();
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "esg-ua: " << e.what() << "\n";
    return 2;
  }
}
