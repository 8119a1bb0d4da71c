#include "media/negotiate.hpp"

#include <strings.h>
#include <algorithm>

namespace esg::media {

namespace {

bool same_name(const std::string& a, const std::string& b) {
  return a.size() == b.size() && strcasecmp(a.c_str(), b.c_str()) == 0;
}

bool preferred(const std::vector<std::string>& prefer, const std::string& name) {
  return prefer.empty() || std::any_of(prefer.begin(), prefer.end(),
                                       [&](const std::string& p) { return same_name(p, name); });
}

}  // namespace

bool Format::dtmf() const {
  return same_name(name, "telephone-event");
}

std::optional<CodecInfo> Format::codec() const {
  auto c = codec_named(name);
  if (c && c->clock_rate == clock) return c;
  return std::nullopt;
}

std::vector<Format> formats_of(const sdp::Media& m) {
  std::vector<Format> out;
  for (const auto& token : m.formats) {
    if (token.empty() || token.size() > 3 ||
        token.find_first_not_of("0123456789") != std::string::npos)
      continue;
    Format f;
    f.pt = std::stoi(token);
    if (auto map = m.rtpmap(f.pt)) {
      f.name = map->encoding;
      f.clock = map->clock_rate;
      f.channels = map->channels;
    } else if (auto c = codec_of_static(f.pt)) {
      f.name = c->name;
      f.clock = c->clock_rate;
    } else {
      f.name = "pt" + token;  // unknown static type: kept as it is
    }
    f.fmtp = m.fmtp(f.pt);
    out.push_back(std::move(f));
  }
  return out;
}

void set_formats(sdp::Media& m, const std::vector<Format>& formats) {
  m.formats.clear();
  std::vector<sdp::Attribute> kept;
  for (auto& a : m.attributes) {
    if (a.name != "rtpmap" && a.name != "fmtp") kept.push_back(std::move(a));
  }
  std::vector<sdp::Attribute> maps;
  for (const auto& f : formats) {
    m.formats.push_back(std::to_string(f.pt));
    if (f.name.rfind("pt", 0) == 0 && f.name.size() > 2 && isdigit(f.name[2])) continue;
    std::string map = std::to_string(f.pt) + " " + f.name + "/" + std::to_string(f.clock);
    if (f.channels > 1) map += "/" + std::to_string(f.channels);
    maps.push_back({"rtpmap", map});
    if (f.fmtp) maps.push_back({"fmtp", std::to_string(f.pt) + " " + *f.fmtp});
  }
  // rtpmap and fmtp first among the media attributes, as they are usually written.
  maps.insert(maps.end(), kept.begin(), kept.end());
  m.attributes = std::move(maps);
}

std::vector<Format> offer_for(const std::vector<Format>& offered,
                              const std::vector<std::string>& prefer) {
  if (prefer.empty()) return offered;
  std::vector<Format> common, dtmf;
  bool transcodable = false;
  for (const auto& f : offered) {
    if (f.dtmf()) {
      dtmf.push_back(f);
    } else if (preferred(prefer, f.name)) {
      common.push_back(f);
    }
    transcodable = transcodable || (!f.dtmf() && f.codec());
  }
  if (!common.empty() || !transcodable) {
    if (common.empty()) return offered;  // nothing esg can do: the leg decides
    common.insert(common.end(), dtmf.begin(), dtmf.end());
    return common;
  }
  // No codec in common: the leg's own, which esg transcodes to and from.
  std::vector<Format> out;
  int next_dynamic = 96;
  auto taken = [&](int pt) {
    return std::any_of(out.begin(), out.end(), [&](const Format& f) { return f.pt == pt; }) ||
           std::any_of(dtmf.begin(), dtmf.end(), [&](const Format& f) { return f.pt == pt; });
  };
  for (const auto& name : prefer) {
    auto c = codec_named(name);
    if (!c) continue;
    Format f;
    f.name = c->name;
    f.clock = c->clock_rate;
    f.channels = c->channels;
    if (c->id == CodecId::Opus) f.fmtp = "useinbandfec=1";
    f.pt = c->static_pt;
    if (f.pt < 0) {
      while (taken(next_dynamic))
        ++next_dynamic;
      f.pt = next_dynamic++;
    }
    out.push_back(std::move(f));
  }
  out.insert(out.end(), dtmf.begin(), dtmf.end());
  return out;
}

bool needs_transcoding(std::string_view offer, const std::vector<std::string>& prefer) {
  if (prefer.empty()) return false;
  auto parsed = sdp::parse(offer);
  if (!parsed) return false;
  for (const auto& m : parsed->media) {
    if (m.media != "audio" || m.port == 0) continue;
    bool shared = false, transcodable = false;
    for (const auto& f : formats_of(m)) {
      if (f.dtmf()) continue;
      shared = shared || preferred(prefer, f.name);
      transcodable = transcodable || f.codec().has_value();
    }
    if (!shared && transcodable) return true;
  }
  return false;
}

AnswerPlan answer_for(const std::vector<Format>& offered, const std::vector<Format>& answered,
                      const std::vector<std::string>& offerer_prefers) {
  AnswerPlan plan;
  const Format* chosen = nullptr;
  for (const auto& f : answered) {
    if (f.dtmf()) {
      if (plan.answerer_dtmf < 0) plan.answerer_dtmf = f.pt;
    } else if (!chosen) {
      chosen = &f;
    }
  }
  for (const auto& f : offered) {
    if (f.dtmf() && plan.offerer_dtmf < 0) plan.offerer_dtmf = f.pt;
  }
  if (!chosen) {
    plan.formats = answered;  // a refused stream, or only events: as it is
    return plan;
  }
  plan.answerer = *chosen;
  const Format* same = nullptr;
  for (const auto& f : offered) {
    if (!f.dtmf() && same_name(f.name, chosen->name) && f.clock == chosen->clock) {
      same = &f;
      break;
    }
  }
  const Format* use = same;
  if (!use && chosen->codec()) {
    for (const auto& f : offered) {
      if (!f.dtmf() && f.codec() && preferred(offerer_prefers, f.name)) {
        use = &f;
        break;
      }
    }
    if (!use) {
      for (const auto& f : offered) {
        if (!f.dtmf() && f.codec()) {
          use = &f;
          break;
        }
      }
    }
    plan.transcode = use != nullptr;
  }
  if (!use) {
    plan.formats = answered;  // nothing better: the offerer sees what was answered
    return plan;
  }
  plan.offerer = *use;
  plan.formats.push_back(*use);
  if (plan.offerer_dtmf >= 0 && plan.answerer_dtmf >= 0) {
    for (const auto& f : offered) {
      if (f.pt == plan.offerer_dtmf) plan.formats.push_back(f);
    }
  } else {
    plan.offerer_dtmf = plan.answerer_dtmf = -1;  // events cross only when both sides have them
  }
  return plan;
}

}  // namespace esg::media
