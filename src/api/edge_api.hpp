#pragma once
// REST for what the calls path reads: PBX connections (/rest/v1/uc/pbx), normalization and
// routing rules (/rest/v1/routing/...), the substitution test, CDRs (/rest/v1/cdrs), and the
// monitoring of calls in progress and their packets (/api/monitor/v1/calls).

#include <functional>
#include <memory>

#include "accounts/collection.hpp"
#include "api/http_server.hpp"
#include "edge/border/border.hpp"
#include "edge/context.hpp"
#include "store/store.hpp"
#include "transport/trn_log.hpp"

namespace esg::api {

// CRUD routes for one collection under `base` (CONTRACTS.md conventions).
void add_collection_routes(HttpServer& server, const std::string& base,
                           accounts::Collection& collection);

struct EdgeApiDeps {
  std::function<std::shared_ptr<const edge::EdgeConfig>()> config;
  edge::CallBoard* board = nullptr;
  store::Store* store = nullptr;
  edge::CdrWriter* cdrs = nullptr;
  const transport::SharedPacketIndex* packets = nullptr;
  std::string trn_dir;  // the trn logs, for calls the packet index no longer has ("": off)
  edge::Border* border = nullptr;
  // Instance-level status: external addresses (STUN), media relay counters.
  std::function<nlohmann::json()> instance;
};

void add_edge_routes(HttpServer& server, EdgeApiDeps deps);

}  // namespace esg::api
