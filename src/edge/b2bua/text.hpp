#pragma once
// The pieces of SIP text the B2BUA writes into the messages of its legs: branches, Reason
// headers, bodies added to built responses, display names and name-addrs. Plain functions,
// testable without a call.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sip/message.hpp"

namespace esg::edge::b2bua_text {

std::string new_branch();
// Reason (RFC 3326): the text is a quoted-string, quotes and backslashes left out.
std::string reason_line(int cause, std::string_view text);
// build_response() ends with an empty body; this gives it one.
std::string with_body(std::string response, std::string_view content_type, std::string_view body);
// The statuses routing fails over on before the answer.
bool is_failover_status(uint16_t s);
std::string lower(std::string_view s);
// A display name as a quoted-string (RFC 3261 §25.1).
std::string quoted(std::string_view s);
std::string name_addr(std::string_view display, std::string_view user, std::string_view host);
// A URI user part with what RFC 3261 does not allow there %-escaped ('#' -> "%23").
std::string escaped_user(std::string_view user);
int64_t now_ms();
// host:port, IPv6 in brackets.
std::string host_port(const std::string& host, uint16_t port);
// Does the message carry a session description (a body typed application/sdp, or untyped)?
bool has_sdp(const sip::Message& m);
std::string content_type_of(const sip::Message& m);
// The key press of an INFO (application/dtmf-relay "Signal=5\r\nDuration=160", or
// application/dtmf "5"); milliseconds 0 when the body names none.
struct DtmfKey {
  char key = 0;
  int ms = 0;
};
std::optional<DtmfKey> dtmf_of_info(const sip::Message& m);
// The header lines of `m` whose names one of the lists has (case-insensitive), as received.
std::string header_lines(const sip::Message& m, const std::vector<std::string>& names,
                         const std::vector<std::string>& more = {});

}  // namespace esg::edge::b2bua_text
