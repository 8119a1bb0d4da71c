#include "telegram/line_config.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "accounts/json_reader.hpp"
#include "telegram/tones.hpp"

namespace esg::telegram {

using nlohmann::json;

namespace {

Unexpected<accounts::FieldError> bad(std::string field, std::string message) {
  return unexpected(accounts::FieldError{std::move(field), std::move(message)});
}

constexpr size_t kMaxMenu = 20;
constexpr size_t kMaxChatText = 4096;  // Telegram's length of a text message

bool is_phone(const std::string& p) {
  if (p.size() < 8 || p.size() > 16 || p[0] != '+') return false;
  return std::all_of(p.begin() + 1, p.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool plain_number(const std::string& n) {
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return accounts::detail::is_token_char(c) && c != '@'; });
}

void read_menu(accounts::detail::Reader& r, std::vector<MenuEntry>& out) {
  const json* v = r.get("menu");
  if (!v) return;
  if (!v->is_array()) {
    r.fail("menu", "must be a list of {key, label, pbx, number}");
    return;
  }
  if (v->size() > kMaxMenu) {
    r.fail("menu", "must have at most " + std::to_string(kMaxMenu) + " entries");
    return;
  }
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string at = "menu[" + std::to_string(i) + "]";
    const json& e = (*v)[i];
    if (!e.is_object()) {
      r.fail(at, "must be an object {key, label, pbx, number}");
      return;
    }
    MenuEntry m;
    for (auto it = e.begin(); it != e.end(); ++it) {
      std::string* field = it.key() == "key"      ? &m.key
                           : it.key() == "label"  ? &m.label
                           : it.key() == "pbx"    ? &m.pbx
                           : it.key() == "number" ? &m.number
                                                  : nullptr;
      if (!field) {
        r.fail(at + "." + it.key(), "unknown field");
        return;
      }
      if (it->is_null()) continue;
      if (!it->is_string()) {
        r.fail(at + "." + it.key(), "must be a string");
        return;
      }
      *field = it->get<std::string>();
    }
    out.push_back(std::move(m));
  }
}

std::optional<accounts::FieldError> check_chat(const LineConfig& l) {
  auto err = [](std::string f, std::string m) {
    return accounts::FieldError{std::move(f), std::move(m)};
  };
  for (size_t i = 0; i < l.menu.size(); ++i) {
    const auto& m = l.menu[i];
    const std::string at = "menu[" + std::to_string(i) + "]";
    // A key is what a user types as a chat message and what a keypad sends as DTMF.
    if (m.key.empty() || m.key.size() > 4 || !is_keypad_text(m.key))
      return err(at + ".key", "must be 1 to 4 of the keys 0-9, *, #");
    for (size_t j = 0; j < i; ++j) {
      if (l.menu[j].key == m.key)
        return err(at + ".key", "is used by menu[" + std::to_string(j) + "]");
    }
    if (m.label.empty() || m.label.size() > 64)
      return err(at + ".label", "must be 1 to 64 characters");
    if (!m.pbx.empty() && !accounts::detail::valid_code(m.pbx))
      return err(at + ".pbx", "must be the code of a PBX connection");
    if (m.number.size() > 32 || !plain_number(m.number))
      return err(at + ".number", "must be a plain number or user part");
  }
  if (l.menu_text.size() > kMaxChatText)
    return err("menu_text", "must be at most 4096 characters (Telegram's limit)");
  if (!l.menu.empty() && l.menu_text.empty())
    return err("menu_text", "must not be empty when the line has a menu");
  if (l.missed_message.size() > kMaxChatText)
    return err("missed_message", "must be at most 4096 characters (Telegram's limit)");
  const std::string& kw = l.callback_keyword;
  if (!kw.empty()) {
    if (kw.size() > 32 || std::any_of(kw.begin(), kw.end(), [](char c) {
          return std::isspace(static_cast<unsigned char>(c)) ||
                 std::iscntrl(static_cast<unsigned char>(c));
        }))
      return err("callback_keyword", "must be one word of at most 32 characters");
    // Digits already mean a number (the next call's, or keys in a call).
    if (is_keypad_text(kw))
      return err("callback_keyword", "must not be digits (they name a number)");
  }
  return std::nullopt;
}

}  // namespace

Result<LineConfig, accounts::FieldError> line_from_json(const json& j) {
  if (!j.is_object()) return bad("", "must be a JSON object");
  LineConfig l;
  accounts::detail::Reader r{j, {}, {}};
  r.integer("id", l.id, 0, INT64_MAX);
  r.str("code", l.code);
  r.integer("api_id", l.api_id, 1, INT32_MAX);
  r.str("api_hash", l.api_hash);
  r.str("phone", l.phone);
  r.boolean("enabled", l.enabled);
  r.str("pbx", l.pbx);
  r.str("number", l.number);
  r.one_of("callerid", l.callerid, {"userid", "username", "phone"});
  r.str("callerid_prefix", l.callerid_prefix);
  r.str("callerid_suffix", l.callerid_suffix);
  r.strings("callername", l.callername);
  r.boolean("callername_ascii", l.callername_ascii);
  r.integer("ring_timeout", l.ring_timeout, 5, 300);
  r.integer("noncontact_calls_per_day", l.noncontact_calls_per_day, 0, 10000);
  r.integer("trunks", l.trunks, 0, 100000);
  r.boolean("accept_elsewhere", l.accept_elsewhere);
  r.boolean("autoanswer", l.autoanswer);
  r.str("ringback", l.ringback);
  r.str("busy", l.busy);
  r.integer("answer_timeout", l.answer_timeout, 5, 600);
  if (const json* v = r.get("serveridxs")) {
    if (!v->is_array()) {
      r.fail("serveridxs", "must be an array of srvidx integers");
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        const json& x = (*v)[i];
        if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > 65535) {
          r.fail("serveridxs[" + std::to_string(i) + "]", "must be a srvidx (0 to 65535)");
          break;
        }
        l.serveridxs.push_back(x.get<int>());
      }
    }
  }
  read_menu(r, l.menu);
  r.str("menu_text", l.menu_text);
  r.integer("menu_interval", l.menu_interval, 1, 7 * 86400);
  r.str("callback_keyword", l.callback_keyword);
  r.str("missed_message", l.missed_message);
  r.integer("missed_interval", l.missed_interval, 1, 7 * 86400);
  r.boolean("menu_dtmf", l.menu_dtmf);
  r.str("menu_prompt", l.menu_prompt);
  r.integer("menu_timeout", l.menu_timeout, 3, 120);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!r.seen.count(it.key())) r.fail(it.key(), "unknown field");
  }
  if (r.error) return unexpected(*r.error);
  if (l.code.empty()) return bad("code", "is required");
  if (!accounts::detail::valid_code(l.code)) return bad("code", accounts::detail::kCodeRule);
  if (l.api_id == 0) return bad("api_id", "is required (the application's api_id)");
  if (l.api_hash.size() != 32 || !std::all_of(l.api_hash.begin(), l.api_hash.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      }))
    return bad("api_hash", "must be the application's 32 hexadecimal digits");
  if (!l.phone.empty() && !is_phone(l.phone)) return bad("phone", "must be '+' and 7 to 15 digits");
  if (l.pbx.empty()) return bad("pbx", "is required (the PBX connection for incoming calls)");
  if (!l.number.empty() && !std::all_of(l.number.begin(), l.number.end(), [](char c) {
        return accounts::detail::is_token_char(c) && c != '@';
      }))
    return bad("number", "must be a plain number or user part");
  for (const auto* affix : {&l.callerid_prefix, &l.callerid_suffix}) {
    const char* name = affix == &l.callerid_prefix ? "callerid_prefix" : "callerid_suffix";
    if (affix->size() > 8) return bad(name, "must be at most 8 characters");
    for (char c : *affix) {
      // Dialled back by the PBX: no digits (they would merge with the id) and nothing a URI
      // user part can't carry plainly.
      if (c != '*' && c != '#' && !std::isalpha(static_cast<unsigned char>(c)))
        return bad(name, "may contain only '*', '#' and letters");
    }
  }
  if (l.callername.empty())
    return bad("callername", "must name at least one of name, username, phone");
  for (size_t i = 0; i < l.callername.size(); ++i) {
    const auto& f = l.callername[i];
    if (f != "name" && f != "username" && f != "phone")
      return bad("callername[" + std::to_string(i) + "]", "must be one of name, username, phone");
    if (std::find(l.callername.begin(), l.callername.begin() + long(i), f) !=
        l.callername.begin() + long(i))
      return bad("callername[" + std::to_string(i) + "]", "is listed twice");
  }
  // The tones' files are read when a call needs them; a file that cannot be played is refused
  // here, when it is configured, rather than found out on a user's call.
  for (const auto* wav : {&l.ringback, &l.busy, &l.menu_prompt}) {
    if (wav->empty()) continue;
    auto pcm = load_wav(*wav);
    if (!pcm)
      return bad(wav == &l.ringback ? "ringback"
                 : wav == &l.busy   ? "busy"
                                    : "menu_prompt",
                 pcm.error());
  }
  if (l.menu_dtmf && (!l.autoanswer || l.menu.empty()))
    return bad("menu_dtmf", "needs autoanswer and a menu (the key is taken in the answered call)");
  if (auto e = check_chat(l)) return unexpected(*e);
  return l;
}

json to_stored_json(const LineConfig& l) {
  json menu = json::array();
  for (const auto& m : l.menu)
    menu.push_back({{"key", m.key}, {"label", m.label}, {"pbx", m.pbx}, {"number", m.number}});
  json j = {{"code", l.code},
            {"api_id", l.api_id},
            {"api_hash", l.api_hash},
            {"phone", l.phone},
            {"enabled", l.enabled},
            {"pbx", l.pbx},
            {"number", l.number},
            {"callerid", l.callerid},
            {"callerid_prefix", l.callerid_prefix},
            {"callerid_suffix", l.callerid_suffix},
            {"callername", l.callername},
            {"callername_ascii", l.callername_ascii},
            {"ring_timeout", l.ring_timeout},
            {"noncontact_calls_per_day", l.noncontact_calls_per_day},
            {"trunks", l.trunks},
            {"accept_elsewhere", l.accept_elsewhere},
            {"autoanswer", l.autoanswer},
            {"ringback", l.ringback},
            {"busy", l.busy},
            {"answer_timeout", l.answer_timeout},
            {"serveridxs", l.serveridxs},

            {"menu", menu},
            {"menu_text", l.menu_text},
            {"menu_interval", l.menu_interval},
            {"callback_keyword", l.callback_keyword},
            {"missed_message", l.missed_message},
            {"missed_interval", l.missed_interval},
            {"menu_dtmf", l.menu_dtmf},
            {"menu_prompt", l.menu_prompt},
            {"menu_timeout", l.menu_timeout}};
  if (l.id) j["id"] = l.id;
  return j;
}

json public_view(const json& stored) {
  json out = stored;
  out.erase("api_hash");
  return out;
}

}  // namespace esg::telegram
