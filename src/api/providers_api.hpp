#pragma once
// REST provisioning of provider accounts (/rest/v1/uc/providers) and the registration status
// (/api/monitor/v1/esg/active), over the account manager.

#include "accounts/manager.hpp"
#include "api/http_server.hpp"

namespace esg::api {

struct InstanceInfo {
  int srvidx = 1;
  std::string node;
  std::string addr;
};

void add_provider_routes(HttpServer& server, accounts::AccountManager& accounts,
                         InstanceInfo instance);

}  // namespace esg::api
