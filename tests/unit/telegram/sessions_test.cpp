// A Telegram line's session in the store (issue 23): the folder packed and unpacked as it was,
// a snapshot only when the files changed, the newest good snapshot restored, one that fails its
// checksum never used (the one before it is), and an archive never writes outside the folder.
#include "telegram/sessions.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "base/base64.hpp"
#include "store/store.hpp"

namespace {

namespace fs = std::filesystem;
using esg::Result;
using esg::telegram::pack_folder;
using esg::telegram::SessionStore;
using esg::telegram::unpack_folder;
namespace store = esg::store;

// The session table of a store (the others are not used here).
class SessionTable final : public store::Store {
 public:
  std::vector<store::SessionSnapshot> rows;  // oldest first
  int64_t clock = 1000;

  Result<void, store::Error> put_session(const store::SessionSnapshot& s, size_t keep) override {
    auto r = s;
    r.id = int64_t(rows.size()) + 1 + dropped_;
    r.taken_ms = clock++;
    rows.push_back(r);
    while (rows.size() > keep) {
      rows.erase(rows.begin());
      ++dropped_;
    }
    return {};
  }
  Result<std::vector<store::SessionSnapshot>, store::Error> sessions(int64_t line) override {
    std::vector<store::SessionSnapshot> out;
    for (auto it = rows.rbegin(); it != rows.rend(); ++it)
      if (it->line_id == line) out.push_back(*it);
    return out;
  }
  Result<void, store::Error> delete_sessions(int64_t line) override {
    std::erase_if(rows, [line](const auto& r) { return r.line_id == line; });
    return {};
  }

  Result<std::vector<store::Row>, store::Error> list(store::Table) override { return none(); }
  Result<store::Row, store::Error> get(store::Table, int64_t) override { return none(); }
  Result<store::Row, store::Error> find_code(store::Table, const std::string&) override {
    return none();
  }
  Result<int64_t, store::Error> insert(store::Table, const std::string&, const std::string&,
                                       int64_t) override {
    return none();
  }
  Result<void, store::Error> update(store::Table, int64_t, const std::string&,
                                    const std::string&) override {
    return none();
  }
  Result<void, store::Error> remove(store::Table, int64_t) override { return none(); }
  int schema_version() override { return 0; }
  Result<int64_t, store::Error> cdr_insert(const store::Cdr&) override { return none(); }
  Result<void, store::Error> cdr_update(const store::Cdr&) override { return none(); }
  Result<std::vector<store::Cdr>, store::Error> cdr_query(const store::CdrQuery&) override {
    return none();
  }
  Result<void, store::Error> in_transaction(const std::function<void()>& f) override {
    f();
    return {};
  }
  Result<int64_t, store::Error> cdr_interrupt_active(int64_t) override { return int64_t(0); }

 private:
  static esg::Unexpected<store::Error> none() {
    return esg::unexpected(store::Error{store::Errc::NotFound, "not here"});
  }
  int64_t dropped_ = 0;
};

std::string dir_named(const std::string& name) {
  const fs::path p = fs::path(::testing::TempDir()) / ("esg-sessions-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void put(const std::string& dir, const std::string& rel, const std::string& body) {
  fs::create_directories((fs::path(dir) / rel).parent_path());
  std::ofstream(fs::path(dir) / rel, std::ios::binary | std::ios::trunc) << body;
}

std::string get(const std::string& dir, const std::string& rel) {
  std::ifstream f(fs::path(dir) / rel, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(Sessions, AFolderComesBackAsItWasButTheDownloads) {
  const std::string a = dir_named("a"), b = dir_named("b");
  put(a, "db/td.binlog", std::string(100000, '\x42') + "end");
  put(a, "db/db.sqlite", "sqlite");
  put(a, "files/photo.jpg", "not in the snapshot");
  put(b, "db/stale", "goes");
  put(b, "files/kept.jpg", "stays");
  auto packed = pack_folder(a);
  ASSERT_TRUE(packed) << packed.error();
  EXPECT_LT(packed->size(), 5000u) << "compressed";
  ASSERT_TRUE(unpack_folder(*packed, b));
  EXPECT_EQ(get(b, "db/td.binlog"), get(a, "db/td.binlog"));
  EXPECT_EQ(get(b, "db/db.sqlite"), "sqlite");
  EXPECT_FALSE(fs::exists(fs::path(b) / "db/stale"));
  EXPECT_FALSE(fs::exists(fs::path(b) / "files/photo.jpg"));
  EXPECT_EQ(get(b, "files/kept.jpg"), "stays");
}

TEST(Sessions, ABrokenOrHostileArchiveLeavesTheFolderAsItWas) {
  const std::string b = dir_named("hostile");
  put(b, "db/td.binlog", "mine");
  EXPECT_FALSE(unpack_folder(esg::base64::encode("garbage that is not zlib"), b));
  // A well-formed archive whose file name climbs out of the folder.
  std::string raw = "ESGS1";
  auto put64 = [&raw](uint64_t v) {
    for (int i = 7; i >= 0; --i)
      raw += char(v >> (8 * i));
  };
  put64(9);
  raw += "../escape";
  put64(4);
  raw += "evil";
  uLongf size = compressBound(uLong(raw.size()));
  std::string z(8 + size, '\0');
  for (int i = 0; i < 8; ++i)
    z[size_t(i)] = char(uint64_t(raw.size()) >> (8 * (7 - i)));
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(z.data() + 8), &size,
                      reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), 6),
            Z_OK);
  z.resize(8 + size);
  auto r = unpack_folder(esg::base64::encode(z), b);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("outside the folder"), std::string::npos) << r.error();
  EXPECT_FALSE(fs::exists(fs::path(b).parent_path() / "escape"));
  // A truncated one.
  auto packed = pack_folder(b);
  ASSERT_TRUE(packed);
  auto cut = esg::base64::decode(*packed);
  cut.resize(cut.size() - 3);
  EXPECT_FALSE(unpack_folder(esg::base64::encode(cut), b));
  EXPECT_EQ(get(b, "db/td.binlog"), "mine");
}

TEST(Sessions, OnlyChangedFoldersAreStoredAndTheNewestGoodOneIsRestored) {
  SessionTable table;
  SessionStore here(table, 1), there(table, 2);
  const std::string a = dir_named("owner"), b = dir_named("next");
  put(a, "db/td.binlog", "v1");
  EXPECT_NE(here.snapshot(7, a).find("stored"), std::string::npos);
  EXPECT_EQ(here.snapshot(7, a), "") << "nothing changed";
  put(a, "db/td.binlog", "v2 longer");
  EXPECT_NE(here.snapshot(7, a).find("stored"), std::string::npos);
  ASSERT_EQ(table.rows.size(), 2u);
  EXPECT_EQ(table.rows[1].srvidx, 1);
  // The next instance restores the newest.
  EXPECT_NE(there.restore(7, b).find("restored snapshot 2"), std::string::npos);
  EXPECT_EQ(get(b, "db/td.binlog"), "v2 longer");
  EXPECT_NE(there.restore(7, b).find("holds the newest"), std::string::npos);
  // The newest fails its checksum: never used, the one before is, and it is said.
  table.rows[1].data[10] ^= 1;
  const std::string c = dir_named("third");
  const std::string said = there.restore(7, c);
  EXPECT_NE(said.find("snapshot 2 (srvidx 1) fails its checksum"), std::string::npos) << said;
  EXPECT_NE(said.find("restored snapshot 1"), std::string::npos) << said;
  EXPECT_EQ(get(c, "db/td.binlog"), "v1");
  EXPECT_EQ(there.bad_checksums(), 1u);
  // Only the newest `keep` stay; a deleted line's go.
  SessionStore keep2(table, 1, 2);
  for (int i = 0; i < 4; ++i) {
    put(a, "db/td.binlog", "v" + std::to_string(3 + i));
    keep2.snapshot(7, a);
  }
  EXPECT_EQ(table.rows.size(), 2u);
  keep2.forget(7);
  EXPECT_TRUE(table.rows.empty());
  EXPECT_EQ(there.restore(7, dir_named("none")), "");
}

}  // namespace
