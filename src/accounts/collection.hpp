#pragma once
// A provisioned collection kept in the store (PBX connections, normalization and routing
// rules): the REST conventions of CONTRACTS.md over one table, with validation that names the
// field, write-only secrets, and a change callback so that the running configuration follows
// every change at once.

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"
#include "accounts/manager.hpp"
#include "store/store.hpp"

namespace esg::accounts {

class Collection {
 public:
  struct Spec {
    store::Table table;
    std::string noun;   // "PBX connection", for messages
    bool coded = true;  // objects have a unique `code`
    // A full object (as received, or merged) -> the object to store (with secrets).
    std::function<Result<nlohmann::json, FieldError>(const nlohmann::json&)> parse;
    // Stored object -> what the API returns (without secrets).
    std::function<nlohmann::json(const nlohmann::json&)> public_view;
    std::vector<std::string> secrets;  // fields a PUT without them keeps (pwd)
  };

  Collection(store::Store& store, Spec spec);

  Result<nlohmann::json, ApiError> list();
  Result<nlohmann::json, ApiError> get(int64_t id);
  Result<nlohmann::json, ApiError> create(const nlohmann::json& body);
  Result<nlohmann::json, ApiError> replace(int64_t id, const nlohmann::json& body);
  Result<nlohmann::json, ApiError> patch(int64_t id, const nlohmann::json& body);
  Result<void, ApiError> remove(int64_t id);

  // Every stored object, with its id (for the running configuration). Unparsable rows (a
  // newer esg wrote them) are skipped.
  std::vector<nlohmann::json> stored();
  // Called after each change, outside the collection's lock.
  void set_on_change(std::function<void()> f) { on_change_ = std::move(f); }
  const Spec& spec() const { return spec_; }

 private:
  Result<nlohmann::json, ApiError> save(int64_t id, const nlohmann::json& body, bool is_new);
  ApiError from_store(const store::Error& e) const;

  store::Store& store_;
  Spec spec_;
  std::mutex mu_;
  std::function<void()> on_change_;
};

}  // namespace esg::accounts
