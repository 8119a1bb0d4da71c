#include "accounts/collection.hpp"

namespace esg::accounts {

using nlohmann::json;

Collection::Collection(store::Store& store, Spec spec) : store_(store), spec_(std::move(spec)) {}

ApiError Collection::from_store(const store::Error& e) const {
  switch (e.code) {
    case store::Errc::NotFound:
      return {404, "no " + spec_.noun + " with this id", "id"};
    case store::Errc::Conflict:
      return {409, "a " + spec_.noun + " with this code already exists", "code"};
    case store::Errc::Io:
      break;
  }
  return {500, "store: " + e.message, ""};
}

Result<json, ApiError> Collection::list() {
  auto rows = store_.list(spec_.table);
  if (!rows) return unexpected(from_store(rows.error()));
  json items = json::array();
  for (const auto& r : *rows) {
    auto j = json::parse(r.data, nullptr, false);
    if (!j.is_object()) continue;
    j["id"] = r.id;
    items.push_back(spec_.public_view(j));
  }
  return json{{"items", items}};
}

Result<json, ApiError> Collection::get(int64_t id) {
  auto row = store_.get(spec_.table, id);
  if (!row) return unexpected(from_store(row.error()));
  auto j = json::parse(row->data, nullptr, false);
  if (!j.is_object()) return unexpected(ApiError{500, "the stored object is not JSON", ""});
  j["id"] = row->id;
  return spec_.public_view(j);
}

Result<json, ApiError> Collection::save(int64_t id, const json& body, bool is_new) {
  if (!body.is_object()) return unexpected(ApiError{400, "the body must be a JSON object", ""});
  if (body.contains("id") && !body["id"].is_null() &&
      (!body["id"].is_number_integer() || (!is_new && body["id"].get<int64_t>() != id))) {
    return unexpected(
        ApiError{400, is_new ? "id must be an integer" : "id does not match the path", "id"});
  }
  json input = body;
  input.erase("id");
  auto parsed = spec_.parse(input);
  if (!parsed) return unexpected(ApiError{400, parsed.error().message, parsed.error().field});
  json stored = *parsed;
  stored.erase("id");
  const std::string code = spec_.coded ? stored.value("code", std::string()) : std::string();
  if (is_new) {
    const int64_t want =
        body.contains("id") && body["id"].is_number_integer() ? body["id"].get<int64_t>() : 0;
    auto r = store_.insert(spec_.table, code, stored.dump(), want);
    if (!r) return unexpected(from_store(r.error()));
    id = *r;
  } else {
    auto r = store_.update(spec_.table, id, code, stored.dump());
    if (!r) return unexpected(from_store(r.error()));
  }
  stored["id"] = id;
  return spec_.public_view(stored);
}

Result<json, ApiError> Collection::create(const json& body) {
  Result<json, ApiError> r = json();
  {
    std::lock_guard lock(mu_);
    r = save(0, body, true);
  }
  if (r && on_change_) on_change_();
  return r;
}

Result<json, ApiError> Collection::replace(int64_t id, const json& body) {
  Result<json, ApiError> r = json();
  {
    std::lock_guard lock(mu_);
    auto row = store_.get(spec_.table, id);
    if (!row) return unexpected(from_store(row.error()));
    json j = body;
    // Secrets are write-only: a PUT without them keeps the stored ones, so an object read
    // back from GET can be edited and put back.
    if (j.is_object()) {
      auto old = json::parse(row->data, nullptr, false);
      for (const auto& s : spec_.secrets) {
        if (!j.contains(s) && old.is_object() && old.contains(s)) j[s] = old[s];
      }
    }
    r = save(id, j, false);
  }
  if (r && on_change_) on_change_();
  return r;
}

Result<json, ApiError> Collection::patch(int64_t id, const json& body) {
  if (!body.is_object()) return unexpected(ApiError{400, "the body must be a JSON object", ""});
  Result<json, ApiError> r = json();
  {
    std::lock_guard lock(mu_);
    auto row = store_.get(spec_.table, id);
    if (!row) return unexpected(from_store(row.error()));
    json merged = json::parse(row->data, nullptr, false);
    if (!merged.is_object()) merged = json::object();
    merged.merge_patch(body);  // RFC 7386: null removes a field (back to its default)
    merged["id"] = id;
    r = save(id, merged, false);
  }
  if (r && on_change_) on_change_();
  return r;
}

Result<void, ApiError> Collection::remove(int64_t id) {
  {
    std::lock_guard lock(mu_);
    auto r = store_.remove(spec_.table, id);
    if (!r) return unexpected(from_store(r.error()));
  }
  if (on_change_) on_change_();
  return {};
}

std::vector<json> Collection::stored() {
  std::vector<json> out;
  auto rows = store_.list(spec_.table);
  if (!rows) return out;
  for (const auto& r : *rows) {
    auto j = json::parse(r.data, nullptr, false);
    if (!j.is_object()) continue;
    j["id"] = r.id;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace esg::accounts
