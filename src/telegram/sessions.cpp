#include "telegram/sessions.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "base/base64.hpp"
#include "store/store.hpp"

namespace esg::telegram {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxRaw = 64ull << 20;
constexpr char kMagic[] = "ESGS1";
// In the folder: the checksum of the snapshot it was restored from or last stored as.
constexpr char kMarker[] = ".esg-snapshot";

void put64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i)
    s += char(v >> (8 * i));
}
uint64_t get64(std::string_view s, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i)
    v = v << 8 | uint8_t(s[at + i]);
  return v;
}

// The files that make the session: everything but TDLib's downloads and our marker.
std::vector<fs::path> session_files(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), root, ec);
    if (ec) break;
    if (*rel.begin() == "files") {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (rel == kMarker || !it->is_regular_file(ec)) continue;
    out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_marker(const fs::path& dir) {
  std::ifstream f(dir / kMarker);
  std::string s;
  std::getline(f, s);
  return s;
}

void write_marker(const fs::path& dir, const std::string& checksum) {
  std::ofstream(dir / kMarker, std::ios::trunc) << checksum << "\n";
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string folder_fingerprint(const std::string& dir) {
  std::string all;
  std::error_code ec;
  for (const auto& rel : session_files(dir)) {
    const fs::path p = fs::path(dir) / rel;
    all += rel.string();
    all += '\0';
    all += std::to_string(fs::file_size(p, ec));
    all += '\0';
    all += std::to_string(fs::last_write_time(p, ec).time_since_epoch().count());
    all += '\n';
  }
  return sha256_hex(all);
}

Result<std::string, std::string> pack_folder(const std::string& dir) {
  std::string raw = kMagic;
  std::error_code ec;
  for (const auto& rel : session_files(dir)) {
    std::ifstream f(fs::path(dir) / rel, std::ios::binary);
    if (!f) return unexpected("cannot read " + (fs::path(dir) / rel).string());
    std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::string name = rel.generic_string();
    if (raw.size() + name.size() + body.size() + 16 > kMaxRaw)
      return unexpected("the session folder " + dir + " is over 64 MiB");
    put64(raw, name.size());
    raw += name;
    put64(raw, body.size());
    raw += body;
  }
  uLongf size = compressBound(uLong(raw.size()));
  std::string z(8 + size, '\0');
  std::string head;
  put64(head, raw.size());
  z.replace(0, 8, head);
  if (compress2(reinterpret_cast<Bytef*>(z.data() + 8), &size,
                reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), 6) != Z_OK)
    return unexpected("cannot compress the session folder " + dir);
  z.resize(8 + size);
  return base64::encode(z);
}

Result<void, std::string> unpack_folder(std::string_view packed, const std::string& dir) {
  const std::string z = base64::decode(packed);
  if (z.size() < 8) return unexpected("the snapshot is empty");
  const uint64_t raw_size = get64(z, 0);
  if (raw_size > kMaxRaw) return unexpected("the snapshot is too large");
  std::string raw(raw_size, '\0');
  uLongf size = uLongf(raw_size);
  if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &size,
                 reinterpret_cast<const Bytef*>(z.data() + 8), uLong(z.size() - 8)) != Z_OK ||
      size != raw_size)
    return unexpected("the snapshot does not decompress");
  if (raw.compare(0, sizeof kMagic - 1, kMagic) != 0)
    return unexpected("the snapshot is not a session archive");
  // Unpacked beside the folder first: a bad archive leaves the folder as it was.
  const fs::path target(dir), fresh = target.string() + ".restoring";
  std::error_code ec;
  fs::remove_all(fresh, ec);
  fs::create_directories(fresh, ec);
  if (ec) return unexpected("cannot create " + fresh.string() + ": " + ec.message());
  for (size_t at = sizeof kMagic - 1; at < raw.size();) {
    if (at + 8 > raw.size()) return unexpected("the snapshot is truncated");
    const uint64_t n = get64(raw, at);
    if (n == 0 || n > 4096 || at + 8 + n + 8 > raw.size())
      return unexpected("the snapshot is truncated");
    const fs::path rel = raw.substr(at + 8, n);
    at += 8 + n;
    const uint64_t len = get64(raw, at);
    at += 8;
    if (len > raw.size() - at) return unexpected("the snapshot is truncated");
    // Names come from a store another instance wrote: never outside the folder.
    if (rel.is_absolute() || std::find(rel.begin(), rel.end(), "..") != rel.end())
      return unexpected("the snapshot names a file outside the folder: " + rel.string());
    fs::create_directories((fresh / rel).parent_path(), ec);
    std::ofstream f(fresh / rel, std::ios::binary | std::ios::trunc);
    f.write(raw.data() + at, std::streamsize(len));
    if (!f) return unexpected("cannot write " + (fresh / rel).string());
    at += len;
  }
  // The downloads stay (they are not in snapshots); everything else is the snapshot's.
  fs::create_directories(target, ec);
  for (const auto& rel : session_files(dir))
    fs::remove(target / rel, ec);
  for (const auto& rel : session_files(fresh.string())) {
    fs::create_directories((target / rel).parent_path(), ec);
    fs::rename(fresh / rel, target / rel, ec);
    if (ec) return unexpected("cannot move " + rel.string() + " into " + dir + ": " + ec.message());
  }
  fs::remove_all(fresh, ec);
  return {};
}

SessionStore::SessionStore(store::Store& store, int64_t srvidx, size_t keep)
    : store_(store), srvidx_(srvidx), keep_(keep) {}

std::string SessionStore::restore(int64_t line_id, const std::string& dir) {
  auto all = store_.sessions(line_id);
  if (!all) return "cannot read the session snapshots: " + all.error().message;
  if (all->empty()) return "";
  std::string said;
  for (const auto& s : *all) {
    if (sha256_hex(s.data) != s.checksum) {
      ++bad_;
      said += "snapshot " + std::to_string(s.id) + " (srvidx " + std::to_string(s.srvidx) +
              ") fails its checksum, not used; ";
      continue;
    }
    if (read_marker(dir) == s.checksum) return said + "the folder holds the newest snapshot";
    auto r = unpack_folder(s.data, dir);
    if (!r) {
      ++bad_;
      said += "snapshot " + std::to_string(s.id) + ": " + r.error() + ", not used; ";
      continue;
    }
    write_marker(dir, s.checksum);
    ++restores_;
    {
      std::lock_guard lock(mu_);
      fingerprints_[line_id] = folder_fingerprint(dir);
    }
    return said + "restored snapshot " + std::to_string(s.id) + " taken by srvidx " +
           std::to_string(s.srvidx);
  }
  return said + "no usable snapshot: the folder as it is";
}

std::string SessionStore::snapshot(int64_t line_id, const std::string& dir) {
  const std::string fp = folder_fingerprint(dir);
  {
    std::lock_guard lock(mu_);
    auto it = fingerprints_.find(line_id);
    if (it != fingerprints_.end() && it->second == fp) return "";
  }
  auto packed = pack_folder(dir);
  if (!packed) return "no snapshot: " + packed.error();
  store::SessionSnapshot s;
  s.line_id = line_id;
  s.srvidx = srvidx_;
  s.checksum = sha256_hex(*packed);
  s.data = std::move(*packed);
  const size_t bytes = s.data.size();
  auto r = store_.put_session(s, keep_);
  if (!r) return "no snapshot: " + r.error().message;
  write_marker(dir, s.checksum);
  {
    std::lock_guard lock(mu_);
    fingerprints_[line_id] = fp;
  }
  ++snapshots_;
  return "snapshot stored (" + std::to_string(bytes) + " bytes)";
}

void SessionStore::forget(int64_t line_id) {
  (void)store_.delete_sessions(line_id);
  std::lock_guard lock(mu_);
  fingerprints_.erase(line_id);
}

}  // namespace esg::telegram
