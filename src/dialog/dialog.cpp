#include "dialog/dialog.hpp"

#include <algorithm>

#include "base/random.hpp"
#include "sip/name_addr.hpp"

namespace esg::dialog {

namespace {

// name-addr text without its header parameters (the tag is added separately).
std::string bare(const sip::NameAddr& na) {
  std::string out;
  if (!na.display_name.empty()) out.append(na.display_name).append(" ");
  out.append("<").append(na.uri.text).append(">");
  return out;
}

Result<std::vector<std::string>, DialogErrc> record_route(const sip::Message& m, bool reverse) {
  auto rr = m.record_routes();
  if (!rr) return unexpected(DialogErrc::BadRecordRoute);
  std::vector<std::string> out;
  for (const auto& r : *rr)
    out.push_back(std::string(r.text));
  if (reverse) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::string, DialogErrc> contact_uri(const sip::Message& m) {
  auto contacts = m.contacts();
  if (!contacts || contacts->star || contacts->items.empty()) {
    return unexpected(DialogErrc::NoContact);
  }
  return std::string(contacts->items.front().uri.text);
}

bool is_target_refresh(sip::Method m) {
  return m == sip::Method::Invite || m == sip::Method::Update;
}

}  // namespace

Result<Dialog, DialogErrc> Dialog::as_uas(const sip::Message& request, std::string local_tag,
                                          std::string local_contact) {
  // §12.1.1: a From without a tag (RFC 2543) makes a null remote tag, not an error.
  if (local_tag.empty()) return unexpected(DialogErrc::MissingTag);
  Dialog d;
  // "The route set MUST be set to the list of URIs in the Record-Route header field from the
  // request, taken in order"; the remote target is the Contact of the request.
  auto routes = record_route(request, /*reverse=*/false);
  if (!routes) return unexpected(routes.error());
  auto target = contact_uri(request);
  if (!target) return unexpected(target.error());
  d.route_set_ = std::move(*routes);
  d.remote_target_ = std::move(*target);
  d.id_ = {std::string(request.call_id()), std::move(local_tag), std::string(request.from_tag())};
  d.remote_cseq_ = request.cseq().number;
  // "The local sequence number MUST be empty": we start our own from a random value.
  d.local_cseq_ = uint32_t(random::between(1, 1u << 30));
  d.remote_uri_ = bare(request.from());
  d.local_uri_ = bare(request.to());
  d.local_contact_ = std::move(local_contact);
  return d;
}

Result<Dialog, DialogErrc> Dialog::as_uac(const sip::Message& request, const sip::Message& response,
                                          std::string local_contact) {
  if (response.to_tag().empty() || request.from_tag().empty()) {
    return unexpected(DialogErrc::MissingTag);
  }
  Dialog d;
  // "The route set MUST be set to the list of URIs in the Record-Route header field from the
  // response, taken in reverse order".
  auto routes = record_route(response, /*reverse=*/true);
  if (!routes) return unexpected(routes.error());
  auto target = contact_uri(response);
  if (!target) return unexpected(target.error());
  d.route_set_ = std::move(*routes);
  d.remote_target_ = std::move(*target);
  d.id_ = {std::string(request.call_id()), std::string(request.from_tag()),
           std::string(response.to_tag())};
  d.local_cseq_ = request.cseq().number;
  d.local_uri_ = bare(request.from());
  d.remote_uri_ = bare(request.to());
  d.local_contact_ = std::move(local_contact);
  if (response.status() >= 200) d.state_ = DialogState::Confirmed;
  return d;
}

std::string Dialog::build_request(std::string_view method, std::string_view via, uint32_t cseq,
                                  std::string_view extra, std::string_view body,
                                  std::string_view content_type) {
  if (cseq == 0) cseq = ++local_cseq_;
  // §12.2.1.1 with loose routing (every route we keep has `lr`; strict routers are RFC 2543
  // history): the Request-URI is the remote target and the route set goes in Route.
  std::string out(method);
  out.append(" ").append(remote_target_).append(" SIP/2.0\r\n");
  out.append("Via: ").append(via).append("\r\n");
  for (const auto& r : route_set_)
    out.append("Route: ").append(r).append("\r\n");
  out.append("Max-Forwards: 70\r\n");
  out.append("From: ").append(local_uri_).append(";tag=").append(id_.local_tag).append("\r\n");
  out.append("To: ").append(remote_uri_);
  if (!id_.remote_tag.empty()) out.append(";tag=").append(id_.remote_tag);
  out.append("\r\n");
  out.append("Call-ID: ").append(id_.call_id).append("\r\n");
  out.append("CSeq: ").append(std::to_string(cseq)).append(" ").append(method).append("\r\n");
  if (!local_contact_.empty()) out.append("Contact: ").append(local_contact_).append("\r\n");
  out.append(extra);
  if (!body.empty()) out.append("Content-Type: ").append(content_type).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  out.append(body);
  return out;
}

Result<void, DialogErrc> Dialog::on_request(const sip::Message& request) {
  if (!matches(id_, request)) return unexpected(DialogErrc::WrongDialog);
  const uint32_t cseq = request.cseq().number;
  const bool ack_or_cancel =
      request.method() == sip::Method::Ack || request.method() == sip::Method::Cancel;
  if (!ack_or_cancel) {
    // "If the remote sequence number was not empty, but the sequence number of the request is
    // lower than the remote sequence number, the request is out of order and MUST be rejected
    // with a 500".
    if (remote_cseq_ && cseq <= *remote_cseq_) return unexpected(DialogErrc::CSeqTooLow);
    remote_cseq_ = cseq;
  }
  if (is_target_refresh(request.method()) && request.header(sip::HeaderId::Contact)) {
    if (auto target = contact_uri(request)) remote_target_ = std::move(*target);
  }
  if (request.method() == sip::Method::Bye) state_ = DialogState::Terminated;
  return {};
}

void Dialog::on_refresh_response(const sip::Message& response) {
  if (response.status() < 200 || response.status() >= 300) return;
  if (auto target = contact_uri(response)) remote_target_ = std::move(*target);
}

bool matches(const DialogId& id, const sip::Message& m) {
  if (m.call_id() != id.call_id) return false;
  if (m.is_request()) return m.to_tag() == id.local_tag && m.from_tag() == id.remote_tag;
  return m.from_tag() == id.local_tag && m.to_tag() == id.remote_tag;
}

}  // namespace esg::dialog
