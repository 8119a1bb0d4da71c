#include "app/server.hpp"
#include "sip/response.hpp"

namespace esg::app {

namespace {

constexpr const char* kAllow =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY";

transport::Proto proto_of(const std::string& p) {
  if (p == "tcp") return transport::Proto::Tcp;
  if (p == "tls") return transport::Proto::Tls;
  return transport::Proto::Udp;
}

}  // namespace

Server::Server(const Config& config) : config_(config) {
  workers_ = std::make_unique<transport::Workers>(size_t(config.instance.workers));
  if (config.log.log_trn) {
    trn_ = std::make_unique<transport::TrnLog>(transport::TrnLog::Options{config.log.dir});
  }
  transport::TransportOptions options;
  options.max_message = size_t(config.transport.max_message);
  options.idle_timeout = std::chrono::milliseconds(int64_t(config.transport.idle_timeout * 1000));
  options.message_timeout =
      std::chrono::milliseconds(int64_t(config.transport.message_timeout * 1000));
  options.max_connections = size_t(config.transport.max_connections);
  options.max_connections_per_address = size_t(config.transport.max_connections_per_address);
  transport_ = std::make_unique<transport::Transport>(
      *workers_, options, trn_.get(),
      [this](size_t w, sip::Message&& m, const transport::Peer& from) {
        on_message(w, std::move(m), from);
      });
  transport_->set_packet_index(&packets_);
  tag_prefix_ = "esg" + std::to_string(config.instance.srvidx) + "-";
  for (size_t w = 0; w < workers_->size(); ++w) {
    PerWorker pw;
    pw.timers = std::make_unique<txn::AsioTimers>(workers_->context(w));
    txn::Layer::User user;
    user.on_request = [this, w](txn::TxnId id, const sip::Message& m, const txn::Channel&) {
      on_request(w, id, m);
    };
    user.on_cancel = [this, w](txn::TxnId invite) {
      auto& layer = *per_worker_[w].layer;
      if (const sip::Message* req = layer.request(invite)) {
        layer.respond(invite, 487, sip::build_response(*req, 487, {}, tag_prefix_ + "c"));
      }
    };
    pw.layer = std::make_unique<txn::Layer>(*pw.timers, txn::TimerConfig{}, std::move(user));
    per_worker_.push_back(std::move(pw));
  }
}

Server::~Server() {
  stop();
}

void Server::start() {
  for (const auto& l : config_.listen) {
    transport_->listen(proto_of(l.proto), l.addr, l.port, {l.cert, l.key, l.ca});
  }
  workers_->start();
}

void Server::stop() {
  if (!workers_) return;
  transport_->close();
  workers_->stop();
  // With every thread stopped, tear down in dependency order: what holds timers and sockets on
  // the io_contexts goes before the io_contexts themselves.
  per_worker_.clear();
  transport_.reset();
  trn_.reset();  // writes what is still queued
  workers_.reset();
}

txn::Channel Server::channel_to(const transport::Peer& peer) {
  return txn::Channel{peer.proto != transport::Proto::Udp, [this, peer](std::string_view bytes) {
                        return transport_->send(peer, std::string(bytes));
                      }};
}

void Server::on_message(size_t worker, sip::Message&& message, const transport::Peer& from) {
  per_worker_[worker].layer->receive(std::move(message), channel_to(from));
}

void Server::on_request(size_t worker, txn::TxnId id, const sip::Message& request) {
  if (id == 0) return;  // an ACK for a 2xx we never sent: nothing to do
  auto& layer = *per_worker_[worker].layer;
  const std::string tag = tag_prefix_ + std::to_string(++next_tag_);
  // RFC 3261 §8.2.2.3: an extension we do not support in Require is answered 420 with the
  // offending option tags in Unsupported (RFC 4475 §3.3.5). esg supports none yet.
  if (request.method() != sip::Method::Cancel) {
    auto required = request.tokens(sip::HeaderId::Require);
    if (!required) {
      layer.respond(id, 400, sip::build_response(request, 400, "Malformed Require", tag));
      return;
    }
    if (!required->empty()) {
      std::string unsupported;
      for (auto t : *required)
        unsupported += (unsupported.empty() ? "" : ", ") + std::string(t);
      layer.respond(
          id, 420,
          sip::build_response(request, 420, {}, tag, "Unsupported: " + unsupported + "\r\n"));
      return;
    }
  }
  switch (request.method()) {
    case sip::Method::Options:
      // Out-of-dialog OPTIONS are answered by esg itself (CONTRACTS.md "Who is calling").
      layer.respond(
          id, 200,
          sip::build_response(request, 200, {}, tag,
                              std::string("Allow: ") + kAllow + "\r\nAccept: application/sdp\r\n"));
      return;
    case sip::Method::Bye:
    case sip::Method::Prack:
    case sip::Method::Update:
    case sip::Method::Info:
    case sip::Method::Notify:
      layer.respond(id, 481, sip::build_response(request, 481, {}, tag));
      return;
    case sip::Method::Unknown:
      layer.respond(
          id, 501,
          sip::build_response(request, 501, {}, tag, std::string("Allow: ") + kAllow + "\r\n"));
      return;
    default:
      // Accounts, routing and the B2BUA come with later issues: say so plainly.
      layer.respond(id, 480, sip::build_response(request, 480, "No Route", tag));
      return;
  }
}

}  // namespace esg::app
