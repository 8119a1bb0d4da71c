#pragma once
// REST provisioning of provider accounts (/rest/v1/uc/providers) and the registration status
// (/api/monitor/v1/esg/active), over the account manager.

#include <functional>

#include "accounts/manager.hpp"
#include "api/http_server.hpp"

namespace esg::api {

struct InstanceInfo {
  int srvidx = 1;
  std::string node;
  std::string addr;
  // Several instances: every instance as a server (this one's `regs` given), from the store.
  std::function<nlohmann::json(const nlohmann::json& own_regs)> servers;
};

void add_provider_routes(HttpServer& server, accounts::AccountManager& accounts,
                         InstanceInfo instance);

}  // namespace esg::api
