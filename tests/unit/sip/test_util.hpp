#pragma once
// Helpers for SIP unit tests: read golden files, turn readable text into CRLF messages.

#include <fstream>
#include <sstream>
#include <string>

namespace esg::sip::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string torture(const std::string& name) {
  return read_file(std::string(ESG_TEST_DATA) + "/rfc4475/" + name + ".dat");
}

// Lines written with '\n' in a test become CRLF on the wire.
inline std::string crlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// The provider INVITE of the foundation issue (addresses from the field: never sent to).
inline std::string provider_invite() {
  return crlf(
      "INVITE sip:1234567890@172.27.103.90:5080;transport=UDP;user=phone SIP/2.0\n"
      "Via: SIP/2.0/UDP 44.55.66.77:5060;maddr=89.232.125.56;branch=z9hG4bK-14c4dd7e-210137c8-"
      "fc50302\n"
      "From: <sip:8430000000@44.55.66.77:5060;user=phone>;tag=5026-14c4dd7e-1087cebd-14c4dd7e\n"
      "To: <sip:1234567890@172.27.103.90:5080;user=phone>\n"
      "Call-ID: 40bb12f838738e5913c414c4dd7e210137c8da2fa8102e98aa28-0048-5988\n"
      "CSeq: 1 INVITE\n"
      "User-agent: CS2000_NGSS/9.0\n"
      "Max-Forwards: 63\n"
      "Allow: ACK,BYE,CANCEL,INVITE,OPTIONS,INFO,SUBSCRIBE,REFER,NOTIFY,PRACK\n"
      "Contact: <sip:44.55.66.77:5060;transport=UDP>\n"
      "Supported: 100rel\n"
      "Content-Type: application/sdp\n"
      "Content-Length: 200\n"
      "\n"
      "v=0\n"
      "o=PVG 1357911604 1357911604 IN IP4 44.55.66.88\n"
      "s=-\n"
      "p=+1 6135555555\n"
      "c=IN IP4 44.55.66.88\n"
      "t=0 0\n"
      "m=audio 48970 RTP/AVP 8 13 101\n"
      "a=rtpmap:101 telephone-event/8000\n"
      "a=fmtp:101 0-15\n"
      "a=ptime:20\n");
}

}  // namespace esg::sip::test
