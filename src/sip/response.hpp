#pragma once
// Building a response to a request (RFC 3261 §8.2.6): the Vias, From, To, Call-ID and CSeq of
// the request, a To tag when given, and no body.

#include <cstdint>
#include <string>
#include <string_view>

#include "sip/message.hpp"

namespace esg::sip {

// The standard reason phrase of a status code ("" when unknown).
std::string_view reason_phrase(uint16_t status);

// `to_tag` is added to To unless To already has a tag or `to_tag` is empty. `extra` is inserted
// before Content-Length as is (each header ending in CRLF).
// The top Via value `value` (parsed as `top`) with `received`/`rport` for a request from `source`.
std::string stamp_via(std::string_view value, const Via& top, const Message::Source& source);

// Built from a request that carries a source (see Message::source), the top Via is stamped.
std::string build_response(const Message& request, uint16_t status, std::string_view reason = {},
                           std::string_view to_tag = {}, std::string_view extra = {});

// The answer to a request that did not parse (`error.status` with `error.reason`), built from
// the header lines that can still be read: every Via, From, To, Call-ID and CSeq line, copied as
// they are. Empty when there is nothing to answer (a discard, a response, or no Via to send it
// along). `source` stamps the top Via as in build_response.
std::string build_error_response(std::string_view bytes, const ParseError& error,
                                 const Message::Source& source = {});

}  // namespace esg::sip
