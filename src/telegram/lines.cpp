#include "telegram/lines.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>

#include "log/log.hpp"

namespace esg::telegram {

using nlohmann::json;

namespace {
// What makes TDLib a different client: these need a new one.
bool same_account(const LineConfig& a, const LineConfig& b) {
  return a.api_id == b.api_id && a.api_hash == b.api_hash && a.phone == b.phone;
}
}  // namespace

Lines::Lines(LinesOptions options) : options_(std::move(options)) {}

Lines::~Lines() {
  stop();
}

std::shared_ptr<td::Hub> Lines::hub() {
  if (hub_) return hub_;
  if (!load_error_.empty()) return nullptr;
  auto td = td::TdJson::load(options_.tdjson);
  if (!td) {
    load_error_ = td.error();
    return nullptr;
  }
  // TDLib logs to stderr at verbosity 5 by default: errors only (never requests: api_hash).
  (*td)->execute({{"@type", "setLogVerbosityLevel"}, {"new_verbosity_level", 1}});
  const json v = (*td)->execute({{"@type", "getOption"}, {"name", "version"}});
  version_ = v.value("value", "");
  hub_ = std::make_shared<td::Hub>(**td);
  return hub_;
}

void Lines::sync(const std::vector<json>& stored, const std::set<int64_t>* run_only) {
  // Lines another instance serves stay idle here, their sessions kept (cluster/).
  auto runs = [run_only](int64_t id) { return !run_only || run_only->count(id) > 0; };
  std::map<int64_t, std::shared_ptr<Line>> to_close;
  std::lock_guard lock(mu_);
  std::map<int64_t, LineConfig> wanted;
  for (const auto& j : stored) {
    auto l = line_from_json(j);
    if (l) wanted[l->id] = *l;
  }
  for (auto it = lines_.begin(); it != lines_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || !w->second.enabled || !runs(it->first) ||
        !same_account(w->second, it->second->config())) {
      to_close[it->first] = it->second;
      it = lines_.erase(it);
    } else {
      it->second->set_config(w->second);
      ++it;
    }
  }
  idle_.clear();
  standby_.clear();
  for (const auto& [id, cfg] : wanted) {
    if (lines_.count(id)) continue;
    if (!cfg.enabled || !runs(id)) {
      if (cfg.enabled) standby_.insert(id);
      idle_[id] = cfg;
      continue;
    }
    auto h = hub();
    if (!h) {
      idle_[id] = cfg;
      continue;
    }
    if (auto& ss = options_.session_store; ss && !to_close.count(id)) {
      // Before TDLib opens the folder (a line restarting here keeps its own, still open).
      const std::string said = ss->restore(id, folder(id));
      if (!said.empty()) log::get("telegram").info("line {}: session: {}", cfg.code, said);
    }
    auto line = std::make_shared<Line>(h, options_.worker(id), cfg, folder(id), options_.bridge,
                                       options_.publish);
    if (auto ss = options_.session_store) {
      line->set_session_save(
          [ss, id, dir = folder(id), code = cfg.code](const char* why) {
            const std::string said = ss->snapshot(id, dir);
            if (!said.empty())
              log::get("telegram").info("line {}: session ({}): {}", code, why, said);
          },
          options_.session_snapshot);
    }
    lines_[id] = line;
    // A restarted line's new client waits for the old one to close: TDLib locks its database.
    if (!to_close.count(id)) line->start();
  }
  for (auto& [id, old] : to_close) {
    std::weak_ptr<Line> fresh;
    if (auto it = lines_.find(id); it != lines_.end()) fresh = it->second;
    // A deleted line's session (its authorization keys) goes with it.
    const std::string gone = wanted.count(id) ? std::string() : folder(id);
    // Not `old` itself in its own callback (a cycle that leaks when esg stops before the close
    // completes): its pending close keeps it alive.
    old->close([fresh, gone, id, ss = options_.session_store] {
      if (auto f = fresh.lock()) f->start();
      if (!gone.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(gone, ec);
        if (ss) ss->forget(id);
      }
    });
  }
}

std::string Lines::folder(int64_t id) const {
  return options_.sessions + "/line-" + std::to_string(id);
}

void Lines::stop(int timeout_ms) {
  std::vector<std::shared_ptr<Line>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, l] : lines_)
      all.push_back(l);
    lines_.clear();
  }
  std::vector<std::future<void>> closed;
  for (auto& l : all) {
    auto p = std::make_shared<std::promise<void>>();
    closed.push_back(p->get_future());
    l->close([p] { p->set_value(); }, timeout_ms);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms + 500);
  for (auto& f : closed)
    f.wait_until(deadline);
  // Whatever TDLib still says goes nowhere: the workers stop next. Lines still closing (a
  // line handed to another instance just before) hold the hub: its loop ends here anyway.
  std::lock_guard lock(mu_);
  if (hub_) hub_->shutdown();
}

std::shared_ptr<Line> Lines::find(int64_t id) const {
  std::lock_guard lock(mu_);
  auto it = lines_.find(id);
  return it == lines_.end() ? nullptr : it->second;
}

json Lines::status() const {
  json items = json::array();
  std::vector<size_t> standby;  // items another instance runs
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, l] : lines_) {
      items.push_back(l->status());
      items.back()["srvidx"] = options_.srvidx;
      items.back()["serveridxs"] = l->config().serveridxs;
    }
    for (const auto& [id, cfg] : idle_) {
      json j = {{"id", id}, {"code", cfg.code}, {"enabled", cfg.enabled}};
      if (standby_.count(id)) {
        j["state"] = "standby";  // another instance runs it (cluster/)
        standby.push_back(items.size());
      } else {
        j["state"] = cfg.enabled ? "error" : "disabled";
        j["last_error"] = cfg.enabled ? json(load_error_) : json();
      }
      j["srvidx"] = 0;
      j["serveridxs"] = cfg.serveridxs;
      items.push_back(j);
    }
  }
  // Not under mu_: the cluster's lock is taken there, and the cluster starts and stops lines.
  for (size_t i : standby) {
    if (options_.runner) items[i]["srvidx"] = options_.runner(items[i]["id"].get<int64_t>());
  }
  std::sort(items.begin(), items.end(), [](const json& a, const json& b) {
    return a["id"].get<int64_t>() < b["id"].get<int64_t>();
  });
  return items;
}

json Lines::library() const {
  std::lock_guard lock(mu_);
  return {{"path", options_.tdjson},
          {"loaded", hub_ != nullptr},
          {"version", version_.empty() ? json() : json(version_)},
          {"error", load_error_.empty() ? json() : json(load_error_)}};
}

}  // namespace esg::telegram
