#pragma once
// The firewall list for PBX administrators (issue 23): GET /fw.txt (text/plain, anonymous when
// http.public_fw is on, else the token or a signed-in session) and its JSON form in the
// monitoring API, GET /api/monitor/v1/esg/fw (the field manual's envelope).

#include <functional>
#include <vector>

#include "api/http_server.hpp"
#include "cluster/firewall.hpp"

namespace esg::api {

// `instances`: every instance of the cluster with its addresses (this one alone without one).
void add_fw_routes(HttpServer& server,
                   const std::function<std::vector<cluster::FwInstance>()>& instances);

}  // namespace esg::api
