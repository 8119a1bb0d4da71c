#pragma once
// Dialogs (RFC 3261 §12): the state two user agents share after a 2xx or a tagged 1xx to an
// INVITE, and the requests sent inside it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "sip/message.hpp"

namespace esg::dialog {

struct DialogId {
  std::string call_id;
  std::string local_tag;
  std::string remote_tag;
  bool operator==(const DialogId&) const = default;
};

enum class DialogState : uint8_t { Early, Confirmed, Terminated };

enum class DialogErrc : uint8_t {
  MissingTag,  // a dialog needs tags on both sides
  NoContact,   // the remote target is the Contact of the dialog-creating message
  BadRecordRoute,
  CSeqTooLow,  // §12.2.2: answered 500 Server Internal Error
  WrongDialog,
};

class Dialog {
 public:
  // UAS side, §12.1.1: from the INVITE we received and the tag we put in To.
  static Result<Dialog, DialogErrc> as_uas(const sip::Message& request, std::string local_tag,
                                           std::string local_contact);
  // UAC side, §12.1.2: from the INVITE we sent and a 2xx or tagged 1xx response to it.
  static Result<Dialog, DialogErrc> as_uac(const sip::Message& request,
                                           const sip::Message& response, std::string local_contact);

  const DialogId& id() const { return id_; }
  DialogState state() const { return state_; }
  void confirm() { state_ = DialogState::Confirmed; }  // on the 2xx
  void terminate() { state_ = DialogState::Terminated; }

  const std::string& remote_target() const { return remote_target_; }
  const std::vector<std::string>& route_set() const { return route_set_; }
  uint32_t local_cseq() const { return local_cseq_; }
  std::optional<uint32_t> remote_cseq() const { return remote_cseq_; }

  // §12.2.1.1: a request inside the dialog. `cseq` 0 takes the next local sequence number
  // (ACK and CANCEL reuse the INVITE's: pass it). `via` is the Via value (with a new branch),
  // `extra` more header lines ending in CRLF, `body` with its `content_type`.
  std::string build_request(std::string_view method, std::string_view via, uint32_t cseq = 0,
                            std::string_view extra = {}, std::string_view body = {},
                            std::string_view content_type = {});

  // §12.2.2: a request the remote side sent in this dialog. CSeqTooLow for an out-of-order or
  // repeated request (answer 500), else the remote sequence number moves on; a target refresh
  // (re-INVITE, UPDATE) with a Contact replaces the remote target.
  Result<void, DialogErrc> on_request(const sip::Message& request);
  // The remote target from a 2xx to our re-INVITE or UPDATE (a target refresh), §12.2.1.2.
  void on_refresh_response(const sip::Message& response);

 private:
  Dialog() = default;

  DialogId id_;
  DialogState state_ = DialogState::Early;
  std::string local_uri_;   // name-addr of our side (From when we are the UAC)
  std::string remote_uri_;  // name-addr of the other side
  std::string local_contact_;
  std::string remote_target_;
  std::vector<std::string> route_set_;  // each a name-addr, in the order to put in Route
  uint32_t local_cseq_ = 0;
  std::optional<uint32_t> remote_cseq_;
};

// Does `m` belong to `id`, seen from our side? (Requests carry our tag in To; responses in From.)
bool matches(const DialogId& id, const sip::Message& m);

}  // namespace esg::dialog
