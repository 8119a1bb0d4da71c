#include "telegram/answers.hpp"

namespace esg::telegram {

namespace {
bool has(const std::string& s, std::string_view what) {
  return s.find(what) != std::string::npos;
}
}  // namespace

SipAnswer answer_for_error(const td::TdError& e) {
  const std::string& m = e.message;
  const std::string said = "Telegram: " + m;
  if (e.flood()) {
    return {503, said, e.retry_after, false};
  }
  if (has(m, "PEER_FLOOD")) {
    return {503, "Telegram: PEER_FLOOD (the account is restricted for calls to non-contacts)",
            kPeerFloodRetryAfter, true};
  }
  if (has(m, "USER_PRIVACY_RESTRICTED") || has(m, "USER_IS_BLOCKED") || has(m, "USER_BLOCKED"))
    return {403, said, 0, false};
  if (has(m, "PARTICIPANT_VERSION_OUTDATED") || has(m, "CALL_PROTOCOL_LAYER_INVALID") ||
      has(m, "CALL_PROTOCOL_FLAGS_INVALID"))
    return {480, said, 0, false};
  if (has(m, "USER_BUSY")) return {486, said, 0, false};
  if (e.code == 4005000) return {480, "Telegram: the call was missed (no answer)", 0, false};
  if (has(m, "USER_ID_INVALID") || has(m, "INPUT_USER_DEACTIVATED") || has(m, "User not found") ||
      has(m, "USERNAME_NOT_OCCUPIED") || has(m, "USERNAME_INVALID") ||
      has(m, "PHONE_NOT_OCCUPIED") || e.code == 404)
    return {404, said, 0, false};
  if (e.code == 401) return {503, "Telegram: the line is not logged in", 0, false};
  return {502, said, 0, false};
}

SipAnswer answer_for_discard(std::string_view reason) {
  if (reason == "callDiscardReasonDeclined")
    return {603, "Telegram: declined (or busy: Telegram reports both alike)", 0, false};
  if (reason == "callDiscardReasonMissed") return {480, "Telegram: no answer", 0, false};
  if (reason == "callDiscardReasonDisconnected")
    return {480, "Telegram: disconnected before the answer", 0, false};
  if (reason == "callDiscardReasonHungUp")
    return {487, "Telegram: ended before the answer", 0, false};
  return {480, "Telegram: discarded (" + std::string(reason) + ")", 0, false};
}

}  // namespace esg::telegram
