#pragma once
// A Telegram line's session kept in the store (issue 23, `telegram.session_store: store`): the
// instance serving a line packs the line's TDLib folder (its database: the authorization keys,
// the binlog; not the downloaded files) into the store, compressed and with a checksum, after
// the login, when TDLib closes, and every `telegram.session_snapshot` seconds while the files
// change; the next instance to serve the line restores the newest snapshot whose checksum holds
// before it opens TDLib, so the line comes up `ready` without a new login on a machine that
// shares no disk with the last one. A snapshot that fails its checksum is never used (the one
// before it is, and that is logged).

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace esg::store {
class Store;
}

namespace esg::telegram {

// The folder's files (but `files/`, TDLib's downloads) in one zlib-compressed archive, as
// base64 text; at most 64 MiB before compression. Errors say which file or limit.
Result<std::string, std::string> pack_folder(const std::string& dir);
// Replaces the folder's content with the archive's (unpacked beside it, then swapped in, so a
// broken archive leaves the folder as it was).
Result<void, std::string> unpack_folder(std::string_view packed, const std::string& dir);
// SHA-256, hex.
std::string sha256_hex(std::string_view data);
// What changes when TDLib writes: each file's path, size and modification time, hashed.
std::string folder_fingerprint(const std::string& dir);

class SessionStore {
 public:
  SessionStore(store::Store& store, int64_t srvidx, size_t keep = 3);

  // Before TDLib opens the line's folder: the newest good snapshot, unless the folder holds it
  // already. Returns what was done, for the log ("" when there was nothing to do).
  std::string restore(int64_t line_id, const std::string& dir);
  // Packs and stores the folder if it changed since this line's last snapshot here. Returns
  // what was done, for the log ("" when nothing changed).
  std::string snapshot(int64_t line_id, const std::string& dir);
  // A deleted line's snapshots go with it.
  void forget(int64_t line_id);

  uint64_t snapshots() const { return snapshots_; }
  uint64_t restores() const { return restores_; }
  uint64_t bad_checksums() const { return bad_; }

 private:
  store::Store& store_;
  int64_t srvidx_;
  size_t keep_;
  std::mutex mu_;
  std::map<int64_t, std::string> fingerprints_;  // per line: the folder as last stored
  std::atomic<uint64_t> snapshots_{0}, restores_{0}, bad_{0};
};

}  // namespace esg::telegram
