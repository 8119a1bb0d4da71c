#pragma once
// What the cluster hands out between instances (cluster/): provider accounts and register-out
// PBX connections (the account manager runs both), and Telegram lines (the lines run only
// those this instance serves). Keys: "provider:<id>", "pbx:<id>", "tg:<id>".

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/manager.hpp"
#include "cluster/cluster.hpp"

namespace esg::app {

class ClusterMembers final : public cluster::Owned {
 public:
  struct Hooks {
    accounts::AccountManager* accounts = nullptr;
    // The set of lines to run changed (served_lines()).
    std::function<void()> run_lines;
    // Another instance changed the store: rebuild what is built from it.
    std::function<void()> rebuild;
  };
  explicit ClusterMembers(Hooks hooks) : hooks_(std::move(hooks)) {}

  // The ids of the Telegram lines this instance serves.
  std::set<int64_t> served_lines();
  // The lines in the store now (the server reads them whenever they change): the heartbeat
  // does not read the store for them.
  void lines_stored(const std::vector<nlohmann::json>& stored);

  std::vector<cluster::Member> members() override;
  void serve(const std::string& key, bool clear_first) override;
  void unserve(const std::string& key, std::function<void()> done) override;
  bool config_changed() override;
  nlohmann::json regs() override;

 private:
  Hooks hooks_;
  std::mutex mu_;
  std::map<int64_t, std::vector<int>> lines_;  // every stored line, with its serveridxs
  std::set<int64_t> lines_served_;  // of those, the ones this instance holds the lease of
};

}  // namespace esg::app
