#include "api/edge_api.hpp"

#include <chrono>

#include "api/rest_body.hpp"

namespace esg::api {

using nlohmann::json;

namespace {

Result<int64_t, Response> id_of(const std::string& s, const std::string& noun) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return unexpected(Response::error(404, "no " + noun + " with this id", "id"));
  }
  return std::stoll(s);
}

json monitor(const json& data) {
  return {{"resultcode", 0}, {"resultmsg", "OK"}, {"data", data}};
}

// "2026-12-02T10:00:00Z", or milliseconds since the epoch.
std::optional<int64_t> time_of(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 16)
    return std::stoll(s);
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end || (*end != '\0' && *end != 'Z')) return std::nullopt;
  return int64_t(timegm(&tm)) * 1000;
}

}  // namespace

void add_collection_routes(HttpServer& server, const std::string& base, accounts::Collection& c) {
  const std::string noun = c.spec().noun;
  server.route("GET", base, [&c](const Request&, const auto&) { return from(c.list()); });
  server.route("POST", base, [&c](const Request& r, const auto&) {
    auto body = body_of(r);
    if (!body) return body.error();
    return from(c.create(*body), 201);
  });
  server.route("GET", base + "/{}", [&c, noun](const Request&, const auto& args) {
    auto id = id_of(args[0], noun);
    if (!id) return id.error();
    return from(c.get(*id));
  });
  server.route("PUT", base + "/{}", [&c, noun](const Request& r, const auto& args) {
    auto id = id_of(args[0], noun);
    if (!id) return id.error();
    auto body = body_of(r);
    if (!body) return body.error();
    return from(c.replace(*id, *body));
  });
  server.route("PATCH", base + "/{}", [&c, noun](const Request& r, const auto& args) {
    auto id = id_of(args[0], noun);
    if (!id) return id.error();
    auto body = body_of(r);
    if (!body) return body.error();
    return from(c.patch(*id, *body));
  });
  server.route("DELETE", base + "/{}", [&c, noun](const Request&, const auto& args) {
    auto id = id_of(args[0], noun);
    if (!id) return id.error();
    auto r = c.remove(*id);
    if (!r) return Response::error(r.error().status, r.error().message, r.error().field);
    return Response{204, "", "", {}};
  });
}

void add_edge_routes(HttpServer& server, EdgeApiDeps deps) {
  // The substitution test: what normalization does to a call, without placing one.
  server.route("POST", "/rest/v1/routing/test/substitution", [deps](const Request& r, const auto&) {
    auto body = body_of(r);
    if (!body) return body.error();
    auto res = edge::substitution_test(*deps.config(), *body);
    if (!res) {
      const int status = res.error().message == "no such account" ? 404 : 400;
      return Response::error(status, res.error().message, res.error().field);
    }
    return Response::json(200, *res);
  });

  server.route("GET", "/api/monitor/v1/calls", [deps](const Request&, const auto&) {
    return Response::json(200, monitor({{"calls", deps.board->list()}}));
  });
  server.route("GET", "/api/monitor/v1/calls/{}", [deps](const Request&, const auto& args) {
    auto c = deps.board->get(args[0]);
    if (!c) return Response::error(404, "no call in progress with this id", "id");
    return Response::json(200, monitor(*c));
  });
  server.route(
      "GET", "/api/monitor/v1/calls/{}/packets", [deps](const Request& r, const auto& args) {
        // Both legs: the A leg's Call-ID is the call's id; the B leg's comes from the board, or
        // from the query (`?b=`) for a call that has ended.
        std::vector<std::string> ids{args[0]};
        if (auto c = deps.board->get(args[0])) {
          const std::string b = (*c)["b"].value("call_id", std::string());
          if (!b.empty()) ids.push_back(b);
        }
        const std::string extra = r.query_param("b");
        if (!extra.empty()) ids.push_back(extra);
        json packets = json::array();
        auto add = [&](const transport::PacketRecord& p, const std::string& id, const char* from) {
          packets.push_back(
              {{"time",
                std::chrono::duration_cast<std::chrono::microseconds>(p.time.time_since_epoch())
                    .count()},
               {"seq", p.counter},
               {"direction", p.direction == transport::Direction::Recv ? "recv" : "send"},
               {"proto", p.proto},
               {"peer", p.peer},
               {"call_id", id},
               {"packet", p.packet},
               {"source", from}});
        };
        for (const auto& id : ids) {
          for (const auto& p : deps.packets->packets(id))
            add(p, id, "index");
        }
        if (packets.empty() && !deps.trn_dir.empty()) {
          // An older call: from the trn logs of the day it started (`started`, ms), where each
          // packet is one line (its line breaks written as spaces).
          auto around = std::chrono::system_clock::now();
          if (auto v = r.query_param("started"); !v.empty()) {
            auto t = time_of(v);
            if (!t) return Response::error(400, "must be ISO 8601 UTC or milliseconds", "started");
            around = std::chrono::system_clock::time_point(std::chrono::milliseconds(*t));
          }
          for (const auto& p : transport::trn_packets(deps.trn_dir, ids, around)) {
            std::string id = ids.front();
            for (const auto& x : ids) {
              if (p.packet.find("Call-ID: " + x) != std::string::npos) id = x;
            }
            add(p, id, "trn");
          }
        }
        // Both legs in one order: time, then the packet's place in the order every worker
        // shares (stamped when esg decided to send, so no answer comes before its cause).
        std::stable_sort(packets.begin(), packets.end(), [](const json& a, const json& b) {
          const auto ta = a["time"].get<int64_t>(), tb = b["time"].get<int64_t>();
          if (ta != tb) return ta < tb;
          return a["seq"].get<uint64_t>() < b["seq"].get<uint64_t>();
        });
        if (packets.empty()) return Response::error(404, "no packets for this call", "id");
        return Response::json(200, monitor({{"packets", packets}}));
      });

  server.route("GET", "/rest/v1/master/bans", [deps](const Request&, const auto&) {
    return Response::json(200, deps.border->bans().list());
  });
  server.route("DELETE", "/rest/v1/master/bans/{}", [deps](const Request&, const auto& args) {
    if (!edge::IpKey::parse(args[0])) return Response::error(400, "not an IP address", "address");
    if (!deps.border->bans().lift(args[0]))
      return Response::error(404, "no ban for this address", "address");
    return Response{204, "", "", {}};
  });
  server.route("GET", "/api/monitor/v1/esg/instance", [deps](const Request&, const auto&) {
    return Response::json(200, monitor(deps.instance ? deps.instance() : json::object()));
  });
  // The border in force: default action, rule counts, warnings about provider and PBX
  // addresses, drop and ban counters.
  server.route("GET", "/api/monitor/v1/border", [deps](const Request&, const auto&) {
    return Response::json(200, monitor(deps.border->status()));
  });

  server.route("GET", "/rest/v1/cdrs", [deps](const Request& r, const auto&) {
    store::CdrQuery q;
    if (auto v = r.query_param("from"); !v.empty()) {
      auto t = time_of(v);
      if (!t) return Response::error(400, "must be ISO 8601 UTC or milliseconds", "from");
      q.from_ms = *t;
    }
    if (auto v = r.query_param("to"); !v.empty()) {
      auto t = time_of(v);
      if (!t) return Response::error(400, "must be ISO 8601 UTC or milliseconds", "to");
      q.to_ms = *t;
    }
    q.number = r.query_param("number");
    if (auto v = r.query_param("limit"); !v.empty()) {
      if (v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(v) == 0 || std::stoul(v) > 10000)
        return Response::error(400, "must be 1 to 10000", "limit");
      q.limit = std::stoul(v);
    }
    if (deps.cdrs) deps.cdrs->flush();  // what has happened is visible
    auto rows = deps.store->cdr_query(q);
    if (!rows) return Response::error(500, "store: " + rows.error().message);
    json items = json::array();
    for (const auto& row : *rows) {
      auto j = json::parse(row.data, nullptr, false);
      if (!j.is_object()) continue;
      j["cdr_id"] = row.id;
      j["state"] = row.state;
      items.push_back(std::move(j));
    }
    return Response::json(200, {{"items", items}});
  });
}

}  // namespace esg::api
