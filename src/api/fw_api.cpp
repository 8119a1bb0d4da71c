#include "api/fw_api.hpp"

#include "base/time.hpp"

namespace esg::api {

void add_fw_routes(HttpServer& server,
                   const std::function<std::vector<cluster::FwInstance>()>& instances) {
  server.route("GET", "/fw.txt", [instances](const Request&, const auto&) {
    Response r;
    r.body = cluster::fw_text(instances(), timeutil::unix_ms());
    r.content_type = "text/plain; charset=utf-8";
    return r;
  });
  server.route("GET", "/api/monitor/v1/esg/fw", [instances](const Request&, const auto&) {
    return Response::json(200, {{"resultcode", 0},
                                {"resultmsg", "OK"},
                                {"data", cluster::fw_json(instances(), timeutil::unix_ms())}});
  });
}

}  // namespace esg::api
