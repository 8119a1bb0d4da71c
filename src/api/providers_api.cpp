#include "api/providers_api.hpp"

#include "api/rest_body.hpp"

namespace esg::api {

using nlohmann::json;

namespace {

Result<int64_t, Response> id_of(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return unexpected(Response::error(404, "no provider with this id", "id"));
  }
  return std::stoll(s);
}

}  // namespace

void add_provider_routes(HttpServer& server, accounts::AccountManager& accounts,
                         InstanceInfo instance) {
  const std::string base = "/rest/v1/uc/providers";
  server.route("GET", base,
               [&accounts](const Request&, const auto&) { return from(accounts.list()); });
  server.route("POST", base, [&accounts](const Request& r, const auto&) {
    auto body = body_of(r);
    if (!body) return body.error();
    return from(accounts.create(*body), 201);
  });
  server.route("GET", base + "/{}", [&accounts](const Request&, const auto& args) {
    auto id = id_of(args[0]);
    if (!id) return id.error();
    return from(accounts.get(*id));
  });
  server.route("PUT", base + "/{}", [&accounts](const Request& r, const auto& args) {
    auto id = id_of(args[0]);
    if (!id) return id.error();
    auto body = body_of(r);
    if (!body) return body.error();
    return from(accounts.replace(*id, *body));
  });
  server.route("PATCH", base + "/{}", [&accounts](const Request& r, const auto& args) {
    auto id = id_of(args[0]);
    if (!id) return id.error();
    auto body = body_of(r);
    if (!body) return body.error();
    return from(accounts.patch(*id, *body));
  });
  server.route("DELETE", base + "/{}", [&accounts](const Request&, const auto& args) {
    auto id = id_of(args[0]);
    if (!id) return id.error();
    auto r = accounts.remove(*id);
    if (!r) return Response::error(r.error().status, r.error().message, r.error().field);
    return Response{204, "", "", {}};
  });
  server.route(
      "GET", "/api/monitor/v1/esg/active", [&accounts, instance](const Request& r, const auto&) {
        const std::string regs = r.query_param("regs");
        if (!regs.empty() && regs != "true" && regs != "false") {
          return Response::error(400, "regs must be true or false", "regs");
        }
        json servers = json::array();
        if (instance.servers) {
          // Other instances' `regs` are what they last published into the store.
          servers = instance.servers(regs == "true" ? accounts.regs() : json::array());
          for (auto& s : servers) {
            if (s.value("srvidx", 0) == instance.srvidx) {
              s["node"] = instance.node;
              s["addr"] = instance.addr;
            }
            if (regs != "true") s.erase("regs");
          }
        } else {
          json server = {{"srvidx", instance.srvidx},
                         {"node", instance.node},
                         {"addr", instance.addr},
                         {"online", true}};
          if (regs == "true") server["regs"] = accounts.regs();
          servers.push_back(std::move(server));
        }
        json data = {{"sites", json::array({{{"site", "main_site"}, {"servers", servers}}})}};
        return Response::json(200, {{"resultcode", 0}, {"resultmsg", "OK"}, {"data", data}});
      });
}

}  // namespace esg::api
