#include "telegram/line_config.hpp"

#include <algorithm>

#include "accounts/json_reader.hpp"
#include "telegram/tones.hpp"

namespace esg::telegram {

using nlohmann::json;

namespace {

Unexpected<accounts::FieldError> bad(std::string field, std::string message) {
  return unexpected(accounts::FieldError{std::move(field), std::move(message)});
}

bool is_phone(const std::string& p) {
  if (p.size() < 8 || p.size() > 16 || p[0] != '+') return false;
  return std::all_of(p.begin() + 1, p.end(), [](char c) { return c >= '0' && c <= '9'; });
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
  for (const auto* wav : {&l.ringback, &l.busy}) {
    if (wav->empty()) continue;
    auto pcm = load_wav(*wav);
    if (!pcm) return bad(wav == &l.ringback ? "ringback" : "busy", pcm.error());
  }
  return l;
}

json to_stored_json(const LineConfig& l) {
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
            {"serveridxs", l.serveridxs}};
  if (l.id) j["id"] = l.id;
  return j;
}

json public_view(const json& stored) {
  json out = stored;
  out.erase("api_hash");
  return out;
}

}  // namespace esg::telegram
