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
std::string build_response(const Message& request, uint16_t status, std::string_view reason = {},
                           std::string_view to_tag = {}, std::string_view extra = {});

}  // namespace esg::sip
