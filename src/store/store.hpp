#pragma once
// The store: what esg keeps between runs (DESIGN.md "Storage and scale"). Each collection is a
// table of rows with an integer id, a unique code and the object as JSON text, so the schema is
// the same on SQLite (embedded, the default) and PostgreSQL (a cluster, a later issue): the
// dialect-specific bits (id columns, upserts, pragmas) stay behind this interface.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace esg::store {

// Rules have no code of their own: insert them with an empty code (stored as NULL).
enum class Table : uint8_t { Providers, Pbx, Normalization, Routes, BorderRules, TelegramLines };
std::string_view table_name(Table t);

struct Row {
  int64_t id = 0;
  std::string code;
  std::string data;  // JSON text
};

enum class Errc : uint8_t { NotFound, Conflict, Io };
struct Error {
  Errc code;
  std::string message;
};

// Opening a store that cannot be used (start-up only).
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Cdr {
  int64_t id = 0;
  std::string call_id;         // the A leg's
  int64_t started_ms = 0;      // Unix time in milliseconds
  std::string state;           // active | answered | ended | interrupted
  std::string caller, called;  // as received (the filters also look at data)
  std::string data;            // the whole record as JSON text
};

struct CdrQuery {
  int64_t from_ms = 0;
  int64_t to_ms = INT64_MAX;
  std::string number;  // caller or called contains it (empty: any)
  size_t limit = 100;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual Result<std::vector<Row>, Error> list(Table t) = 0;
  virtual Result<Row, Error> get(Table t, int64_t id) = 0;
  virtual Result<Row, Error> find_code(Table t, const std::string& code) = 0;
  // `id` 0 takes the next free one. Conflict when the code (or id) is taken.
  virtual Result<int64_t, Error> insert(Table t, const std::string& code, const std::string& data,
                                        int64_t id = 0) = 0;
  virtual Result<void, Error> update(Table t, int64_t id, const std::string& code,
                                     const std::string& data) = 0;
  virtual Result<void, Error> remove(Table t, int64_t id) = 0;
  virtual int schema_version() = 0;

  // Call detail records: written when a call starts (state `active`), updated when it is
  // answered and when it ends, so that a crash loses nothing.
  virtual Result<int64_t, Error> cdr_insert(const Cdr& c) = 0;
  virtual Result<void, Error> cdr_update(const Cdr& c) = 0;
  virtual Result<std::vector<Cdr>, Error> cdr_query(const CdrQuery& q) = 0;
  // Runs `f` (which calls this store) as one transaction: one commit for many writes.
  virtual Result<void, Error> in_transaction(const std::function<void()>& f) = 0;
  // At start: what a crash left `active` becomes `interrupted`. Returns how many.
  virtual Result<int64_t, Error> cdr_interrupt_active() = 0;
};

// The migrations, in order; migration i brings the schema to version i + 1. `{id}` stands for
// the dialect's auto-numbered primary key column type.
const std::vector<std::string>& migrations();

// SQLite in WAL mode, the file created (with its folder) when missing. Throws StoreError.
std::unique_ptr<Store> open_sqlite(const std::string& path);

}  // namespace esg::store
