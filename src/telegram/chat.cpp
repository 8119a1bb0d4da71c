#include "telegram/chat.hpp"

#include <algorithm>
#include <cctype>

namespace esg::telegram {

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
    ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
    --e;
  return s.substr(b, e - b);
}

}  // namespace

std::string render_menu(const std::string& tmpl, const std::vector<MenuEntry>& menu) {
  std::string list;
  for (const auto& e : menu) {
    if (!list.empty()) list += ", ";
    list += e.key + " \u2014 " + e.label;
  }
  std::string out;
  size_t at = 0;
  while (true) {
    const size_t p = tmpl.find("{menu}", at);
    if (p == std::string::npos) break;
    out += tmpl.substr(at, p - at) + list;
    at = p + 6;
  }
  return out + tmpl.substr(at);
}

bool is_keypad_text(const std::string& s) {
  return !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
  });
}

ChatCommand parse_chat(const std::string& raw, const std::vector<MenuEntry>& menu,
                       const std::string& callback_keyword) {
  ChatCommand cmd;
  const std::string text = trimmed(raw);
  if (!callback_keyword.empty()) {
    const std::string kw = lower(callback_keyword);
    const std::string head = lower(text.substr(0, kw.size()));
    if (head == kw) {
      const std::string rest = trimmed(text.substr(kw.size()));
      // "callback" alone, or "callback 205"; "callbacks" or "callback me" are other words.
      const bool separated =
          text.size() == kw.size() || std::isspace(static_cast<unsigned char>(text[kw.size()]));
      if (separated && (rest.empty() || is_keypad_text(rest))) {
        cmd.kind = ChatCommand::Kind::Callback;
        cmd.number = rest;
        return cmd;
      }
    }
  }
  for (size_t i = 0; i < menu.size(); ++i) {
    if (text == menu[i].key) {
      cmd.kind = ChatCommand::Kind::MenuKey;
      cmd.entry = i;
      return cmd;
    }
  }
  if (is_keypad_text(text)) {
    cmd.kind = ChatCommand::Kind::Digits;
    cmd.number = text;
  }
  return cmd;
}

bool PerUserInterval::allow(int64_t user, int64_t now_ms, int64_t interval_ms) {
  auto it = last_.find(user);
  if (it != last_.end()) {
    if (now_ms - it->second < interval_ms) return false;
    it->second = now_ms;
    return true;
  }
  if (last_.size() >= limit_) {
    std::erase_if(last_, [&](const auto& e) { return now_ms - e.second >= interval_ms; });
    if (last_.size() >= limit_) {
      auto oldest = std::min_element(last_.begin(), last_.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      });
      last_.erase(oldest);
    }
  }
  last_[user] = now_ms;
  return true;
}

}  // namespace esg::telegram
