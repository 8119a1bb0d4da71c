#pragma once
// A SIP message (RFC 3261 §7) that owns its bytes and hands out views into them.
//
// The fields transactions and dialogs need on every message (Request-URI, top Via, From, To,
// Call-ID, CSeq, Max-Forwards, Content-Length) are parsed and validated eagerly; everything else
// (Contact, the other Vias, Route...) is parsed on first use by accessors that return a Result,
// and whoever reads a malformed one answers 400 (RFC 4475 §3.1.2.13 for Contact). Header values are
// views into the buffer; a value that was folded over several lines is unfolded once into a side
// store.

#include <cstdint>
#include <forward_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "sip/error.hpp"
#include "sip/headers.hpp"
#include "sip/name_addr.hpp"
#include "sip/uri.hpp"
#include "sip/via.hpp"

namespace esg::sip {

enum class Method : uint8_t {
  Unknown,
  Invite,
  Ack,
  Bye,
  Cancel,
  Options,
  Register,
  Info,
  Prack,
  Update,
  Subscribe,
  Notify,
  Refer,
  Message,
  Publish,
};

Method method_from(std::string_view token);  // case-sensitive (RFC 3261 §7.1)
std::string_view method_name(Method m);

struct HeaderField {
  HeaderId id = HeaderId::Other;
  std::string_view name;   // as written
  std::string_view value;  // trimmed; folded lines joined with single spaces
  std::string_view raw;    // the whole field as received, with its folding and CRLF
};

enum class Framing : uint8_t {
  Datagram,  // UDP: one datagram is one message; octets after Content-Length are ignored
  Stream,    // TCP/TLS: the input is one message as cut by StreamFramer
};

struct ParseOptions {
  Framing framing = Framing::Datagram;
  size_t max_size = 65535;  // larger requests get 513
};

class Message {
 public:
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  bool is_request() const { return is_request_; }
  bool is_response() const { return !is_request_; }

  // Requests
  Method method() const { return method_; }
  std::string_view method_text() const { return method_text_; }
  const Uri& request_uri() const { return request_uri_; }
  // Responses
  uint16_t status() const { return status_; }
  std::string_view reason() const { return reason_; }

  std::string_view start_line() const { return start_line_; }
  std::string_view version() const { return version_; }

  // Headers in the order received.
  const std::vector<HeaderField>& headers() const { return headers_; }
  const HeaderField* header(HeaderId id) const;
  const HeaderField* header(std::string_view name) const;  // any name, case-insensitive
  size_t count(HeaderId id) const;
  template <typename F>
  void for_each(HeaderId id, F&& f) const {
    for (const auto& h : headers_) {
      if (h.id == id) f(h);
    }
  }

  // Eager fields (validated by the parser, always present on a parsed message).
  const Via& top_via() const { return top_via_; }
  const NameAddr& from() const { return from_; }
  const NameAddr& to() const { return to_; }
  std::string_view from_tag() const { return from_.tag(); }
  std::string_view to_tag() const { return to_.tag(); }
  std::string_view call_id() const { return call_id_; }
  const CSeq& cseq() const { return cseq_; }
  // Absent (RFC 2543 peers) or out of range (treated as absent, RFC 4475 §3.1.2.4).
  std::optional<uint8_t> max_forwards() const { return max_forwards_; }
  bool has_content_length() const { return has_content_length_; }
  std::string_view body() const { return body_; }

  // The message as framed: start line to the end of the body, without trailing octets.
  std::string_view bytes() const { return {buf_.get(), size_}; }

  // Where the transport received it (RFC 3261 §18.2.1, RFC 3581): responses built for this
  // request stamp `received` and `rport` into the top Via from it. Empty for our own messages.
  struct Source {
    std::string addr;  // IP address, without brackets
    uint16_t port = 0;
  };
  const Source& source() const { return source_; }
  void set_source(std::string addr, uint16_t port) { source_ = {std::move(addr), port}; }

  // Lazily parsed values. Multi-line headers are combined in order.
  Result<std::vector<Via>, ValueError> vias() const;
  Result<ContactList, ValueError> contacts() const;
  Result<std::vector<NameAddr>, ValueError> routes() const;
  Result<std::vector<NameAddr>, ValueError> record_routes() const;
  std::optional<Result<uint32_t, ValueError>> expires() const;
  std::optional<Result<RetryAfter, ValueError>> retry_after() const;
  std::optional<Result<Reason, ValueError>> reason_header() const;
  std::optional<Result<MediaType, ValueError>> content_type() const;
  Result<std::vector<std::string_view>, ValueError> tokens(HeaderId id) const;  // Supported...

 private:
  friend Result<Message, ParseError> parse_message(std::unique_ptr<char[]> buf, size_t size,
                                                   const ParseOptions& options);
  friend class Parser;
  Message() = default;

  std::unique_ptr<char[]> buf_;
  size_t size_ = 0;
  std::forward_list<std::string> unfolded_;  // values of folded headers
  std::vector<HeaderField> headers_;

  bool is_request_ = true;
  Method method_ = Method::Unknown;
  std::string_view method_text_;
  Uri request_uri_;
  uint16_t status_ = 0;
  std::string_view reason_;
  std::string_view start_line_;
  std::string_view version_;

  Via top_via_;
  NameAddr from_;
  NameAddr to_;
  std::string_view call_id_;
  CSeq cseq_;
  std::optional<uint8_t> max_forwards_;
  bool has_content_length_ = false;
  std::string_view body_;
  Source source_;
};

// Parses one message. The first form copies `bytes`; the second takes the receive buffer.
Result<Message, ParseError> parse_message(std::string_view bytes, const ParseOptions& options = {});
Result<Message, ParseError> parse_message(std::unique_ptr<char[]> buf, size_t size,
                                          const ParseOptions& options = {});

}  // namespace esg::sip
