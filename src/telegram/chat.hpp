#pragma once
// What a Telegram line says and understands in its chat (issue 23), the parts without TDLib:
// the menu text from its template, what a user's message asks for (a key of the menu, a
// callback, digits for the next call or the call in progress, anything else), and the "at most
// once per interval per user" bookkeeping of the menu and missed-call replies.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace esg::telegram {

// One line of the menu: a key the user sends, the label the menu shows, and where a call that
// follows the key goes (empty: the line's own PBX connection or number).
struct MenuEntry {
  std::string key, label, pbx, number;
};

// `{menu}` in the template becomes the entries as "key — label" joined by ", "; `{key:label}`
// forms are not needed: the operator writes the rest of the text around it.
std::string render_menu(const std::string& tmpl, const std::vector<MenuEntry>& menu);

struct ChatCommand {
  enum class Kind { Other, MenuKey, Callback, Digits };
  Kind kind = Kind::Other;
  size_t entry = 0;    // MenuKey: the index in the menu
  std::string number;  // Callback: the number given after the keyword (may be empty); Digits
};

// A message's text (trimmed): the callback keyword (any case), alone or followed by a number;
// a key of the menu, exactly; digits (`0-9*#A-D`, up to 32); else Other.
ChatCommand parse_chat(const std::string& text, const std::vector<MenuEntry>& menu,
                       const std::string& callback_keyword);

// Digits and `*#A-D` only, 1 to 32 of them: what a keypad can send.
bool is_keypad_text(const std::string& s);

// "At most once per interval per user": the last time each user was answered. Bounded: at
// `limit` users the expired ones go first, then the oldest (who may then get a reply early).
class PerUserInterval {
 public:
  explicit PerUserInterval(size_t limit = 10000) : limit_(limit) {}
  // True (and the time kept) when `user` had none within `interval_ms` before `now_ms`.
  bool allow(int64_t user, int64_t now_ms, int64_t interval_ms);
  size_t size() const { return last_.size(); }

 private:
  size_t limit_;
  std::unordered_map<int64_t, int64_t> last_;
};

}  // namespace esg::telegram
