#include "app/first_start.hpp"

#include <fmt/core.h>

#include "api/ui.hpp"

namespace esg::app {

std::string web_page_url(const Config& config, uint16_t port) {
  if (config.http.ui_dir.empty()) return "";
  const std::string& listen = config.http.listen;
  const size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  const std::string configured_port = colon == std::string::npos ? "" : listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format("http://{}:{}/ui/", host, port ? std::to_string(port) : configured_port);
}

std::vector<std::string> sample_credential_warnings(const Config& config) {
  std::vector<std::string> out;
  if (config.http.token == kSampleSecret) {
    out.push_back(fmt::format(
        "http.token is the sample config's \"{}\": anyone who reads the README can use the REST "
        "and monitoring API; set http.token to a secret of your own",
        kSampleSecret));
  }
  if (!config.http.admin_password_hash.empty() &&
      api::verify_password(kSampleSecret, config.http.admin_password_hash)) {
    out.push_back(fmt::format(
        "the web page's admin password is the sample config's \"{}\" (user \"{}\"): set "
        "http.admin.password_hash to the output of `echo 'your password' | esg hash-password`",
        kSampleSecret, config.http.admin_user));
  }
  return out;
}

}  // namespace esg::app
