#include "api/telegram_api.hpp"

#include <charconv>

#include "api/edge_api.hpp"

namespace esg::api {

using nlohmann::json;

namespace {

// The running line for a login step, or the reason there is none.
Result<std::shared_ptr<telegram::Line>, Response> running_line(accounts::Collection& collection,
                                                               telegram::Lines& lines,
                                                               const std::string& arg) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), id);
  if (ec != std::errc() || end != arg.data() + arg.size() || id <= 0)
    return unexpected(Response::error(400, "the line id must be a positive integer", "id"));
  auto stored = collection.get(id);
  if (!stored) return unexpected(Response::error(404, "no Telegram line with this id", "id"));
  auto line = lines.find(id);
  if (!line) {
    if (!stored->value("enabled", true))
      return unexpected(Response::error(409, "the line is disabled", "enabled"));
    const json lib = lines.library();
    return unexpected(Response::error(
        409, "TDLib is not loaded: " + lib.value("error", std::string("unknown reason")),
        "tdjson"));
  }
  return line;
}

Result<json, Response> json_body(const Request& r) {
  if (r.body.empty()) return json::object();
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return unexpected(Response::error(400, "the body is not JSON"));
  return j;
}

}  // namespace

void add_telegram_routes(HttpServer& server, accounts::Collection& collection,
                         telegram::Lines& lines) {
  add_collection_routes(server, "/rest/v1/telegram/lines", collection);
  server.route("POST", "/rest/v1/telegram/lines/{}/login",
               [&collection, &lines](const Request& r, const auto& args) {
                 auto line = running_line(collection, lines, args[0]);
                 if (!line) return line.error();
                 auto body = json_body(r);
                 if (!body) return body.error();
                 auto step = (*line)->login(*body);
                 return Response::json(step.status, step.body);
               });
  server.route("POST", "/rest/v1/telegram/lines/{}/logout",
               [&collection, &lines](const Request&, const auto& args) {
                 auto line = running_line(collection, lines, args[0]);
                 if (!line) return line.error();
                 auto step = (*line)->logout();
                 return Response::json(step.status, step.body);
               });
  server.route("GET", "/api/monitor/v1/telegram/lines", [&lines](const Request&, const auto&) {
    return Response::json(200, {{"resultcode", 0},
                                {"resultmsg", "OK"},
                                {"data", {{"lines", lines.status()}, {"tdlib", lines.library()}}}});
  });
}

}  // namespace esg::api
