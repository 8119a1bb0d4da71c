#include "app/cluster_members.hpp"

namespace esg::app {

namespace {

// "provider:12" -> ("provider", 12); a malformed key gives id 0.
std::pair<std::string, int64_t> split(const std::string& key) {
  const size_t colon = key.find(':');
  if (colon == std::string::npos) return {key, 0};
  try {
    return {key.substr(0, colon), std::stoll(key.substr(colon + 1))};
  } catch (const std::exception&) {
    return {key, 0};
  }
}

}  // namespace

std::set<int64_t> ClusterMembers::served_lines() {
  std::lock_guard lock(mu_);
  return lines_served_;
}

std::vector<cluster::Member> ClusterMembers::members() {
  std::vector<cluster::Member> out;
  for (auto& a : hooks_.accounts->leasable()) {
    // Register-out PBX connections run in the manager under their negated id.
    out.push_back({a.id < 0 ? "pbx:" + std::to_string(-a.id) : "provider:" + std::to_string(a.id),
                   std::move(a.serveridxs)});
  }
  std::lock_guard lock(mu_);
  for (const auto& [id, serveridxs] : lines_)
    out.push_back({"tg:" + std::to_string(id), serveridxs});
  return out;
}

void ClusterMembers::lines_stored(const std::vector<nlohmann::json>& stored) {
  std::lock_guard lock(mu_);
  lines_.clear();
  for (const auto& l : stored) {
    // Validated when stored (telegram::line_from_json): a list of integers.
    std::vector<int> serveridxs;
    if (const auto it = l.find("serveridxs"); it != l.end() && it->is_array()) {
      for (const auto& x : *it)
        if (x.is_number_integer()) serveridxs.push_back(x.get<int>());
    }
    lines_[l.value("id", int64_t(0))] = std::move(serveridxs);
  }
}

void ClusterMembers::serve(const std::string& key, bool clear_first) {
  const auto [kind, id] = split(key);
  if (kind == "provider") {
    hooks_.accounts->serve(id, clear_first);
  } else if (kind == "pbx") {
    hooks_.accounts->serve(-id, clear_first);
  } else if (kind == "tg") {
    {
      std::lock_guard lock(mu_);
      lines_served_.insert(id);
    }
    hooks_.run_lines();
  }
}

void ClusterMembers::unserve(const std::string& key, std::function<void()> done) {
  const auto [kind, id] = split(key);
  if (kind == "provider") {
    hooks_.accounts->unserve(id, std::move(done));
  } else if (kind == "pbx") {
    hooks_.accounts->unserve(-id, std::move(done));
  } else {
    if (kind == "tg") {
      {
        std::lock_guard lock(mu_);
        lines_served_.erase(id);
      }
      hooks_.run_lines();  // idle here, its session kept for the next owner
    }
    if (done) done();
  }
}

bool ClusterMembers::config_changed() {
  if (!hooks_.accounts->resync()) return false;
  hooks_.rebuild();
  hooks_.run_lines();
  return true;
}

nlohmann::json ClusterMembers::regs() {
  return hooks_.accounts->regs();
}

}  // namespace esg::app
