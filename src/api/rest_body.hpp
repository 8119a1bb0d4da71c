#pragma once
// What the REST handlers share: a manager's answer as a response, and the request's JSON body.

#include <nlohmann/json.hpp>

#include "accounts/manager.hpp"
#include "api/http_server.hpp"
#include "base/result.hpp"

namespace esg::api {

inline Response from(const Result<nlohmann::json, accounts::ApiError>& r, int ok_status = 200) {
  if (!r) return Response::error(r.error().status, r.error().message, r.error().field);
  return Response::json(ok_status, *r);
}

// Parses the body, or says where the JSON is broken.
inline Result<nlohmann::json, Response> body_of(const Request& req) {
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return unexpected(Response::error(400, "the body is not valid JSON"));
  if (!j.is_object()) return unexpected(Response::error(400, "the body must be a JSON object"));
  return j;
}

}  // namespace esg::api
