#include "telegram/td/tdjson.hpp"

#include <dlfcn.h>

#include <boost/asio/post.hpp>

#include <charconv>
#include <map>
#include <memory>
#include <thread>

#include "base/json_text.hpp"

namespace esg::telegram::td {

using nlohmann::json;

bool is_error(const json& j) {
  return j.is_object() && j.value("@type", "") == "error";
}

TdError error_of(const json& j) {
  TdError e;
  e.code = j.value("code", 0);
  e.message = j.value("message", "");
  // "Too Many Requests: retry after 30" (TDLib's 429), or Telegram's "FLOOD_WAIT_30".
  for (const char* marker : {"retry after ", "FLOOD_WAIT_"}) {
    const size_t at = e.message.find(marker);
    if (at == std::string::npos) continue;
    int n = 0;
    for (size_t i = at + std::char_traits<char>::length(marker);
         i < e.message.size() && e.message[i] >= '0' && e.message[i] <= '9' && n < 10000000; ++i)
      n = n * 10 + (e.message[i] - '0');
    e.retry_after = n;
    break;
  }
  return e;
}

Result<TdJson*, std::string> TdJson::load(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<TdJson>> loaded;
  std::lock_guard lock(mu);
  if (auto it = loaded.find(path); it != loaded.end()) return it->second.get();
  if (path.empty()) return unexpected(std::string("telegram.tdjson is not set"));
  // RTLD_LOCAL: TDLib's own OpenSSL and zlib stay out of esg's symbol space.
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) return unexpected("cannot load " + path + ": " + ::dlerror());
  auto td = std::make_unique<TdJson>();
  td->path_ = path;
  td->create_ = reinterpret_cast<int (*)()>(::dlsym(h, "td_create_client_id"));
  td->send_ = reinterpret_cast<void (*)(int, const char*)>(::dlsym(h, "td_send"));
  td->receive_ = reinterpret_cast<const char* (*)(double)>(::dlsym(h, "td_receive"));
  td->execute_ = reinterpret_cast<const char* (*)(const char*)>(::dlsym(h, "td_execute"));
  if (!td->create_ || !td->send_ || !td->receive_ || !td->execute_) {
    // Not TDLib's JSON interface (or a TDLib older than 1.7): left loaded, never used.
    return unexpected(path + " lacks td_create_client_id, td_send, td_receive or td_execute");
  }
  return (loaded[path] = std::move(td)).get();
}

json TdJson::execute(const json& request) const {
  const char* answer = execute_(json_text(request).c_str());
  if (!answer) return json{{"@type", "error"}, {"code", 500}, {"message", "no answer"}};
  return json::parse(answer, nullptr, false);
}

Hub::Hub(const TdJson& td) : td_(td), thread_([this] { loop(); }) {}

Hub::~Hub() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Hub::shutdown() {
  forget_all();
  stop_ = true;
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

int Hub::create_client(boost::asio::io_context& io, Update on_update) {
  const int id = td_.create_client_id();
  std::lock_guard lock(mu_);
  clients_[id] = Client{&io, std::move(on_update)};
  return id;
}

void Hub::forget_client(int client) {
  std::lock_guard lock(mu_);
  clients_.erase(client);
  for (auto it = pending_.begin(); it != pending_.end();) {
    it = it->second.client == client ? pending_.erase(it) : std::next(it);
  }
}

void Hub::forget_all() {
  std::lock_guard lock(mu_);
  clients_.clear();
  pending_.clear();
}

void Hub::send(int client, json request, Answer on_answer) {
  uint64_t extra;
  {
    std::lock_guard lock(mu_);
    extra = next_extra_++;
    if (on_answer) pending_[extra] = Pending{client, std::move(on_answer)};
  }
  request["@extra"] = "esg:" + std::to_string(extra);
  td_.send(client, json_text(request));
}

void Hub::loop() {
  while (!stop_) {
    const char* text = td_.receive(0.2);
    if (!text) continue;
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) continue;
    const int client = j.value("@client_id", 0);
    std::lock_guard lock(mu_);
    auto c = clients_.find(client);
    if (c == clients_.end()) continue;
    const auto extra = j.find("@extra");
    if (extra != j.end() && extra->is_string() && extra->get<std::string>().rfind("esg:", 0) == 0) {
      const std::string& e = extra->get_ref<const std::string&>();
      uint64_t id = 0;
      std::from_chars(e.data() + 4, e.data() + e.size(), id);
      auto p = pending_.find(id);
      if (p == pending_.end()) continue;
      auto answer = std::move(p->second.on_answer);
      pending_.erase(p);
      boost::asio::post(*c->second.io, [answer = std::move(answer), j = std::move(j)]() mutable {
        if (is_error(j))
          answer(unexpected(error_of(j)));
        else
          answer(std::move(j));
      });
      continue;
    }
    // An update: the line handles it on its worker.
    boost::asio::post(*c->second.io,
                      [update = c->second.on_update, j = std::move(j)] { update(j); });
  }
}

}  // namespace esg::telegram::td
