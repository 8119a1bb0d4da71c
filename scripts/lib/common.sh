# Shared by scripts/run, scripts/test, scripts/fuzz and scripts/lint. Sourced, not run.
# Installs what is missing with apt-get (as root), without touching the package lists when
# everything is already there, so a second run is fast.

set -euo pipefail

ESG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ESG_ROOT"

# Packages every build needs.
ESG_BUILD_PKGS=(cmake ninja-build g++ pkg-config libssl-dev nlohmann-json3-dev libfmt-dev
  libspdlog-dev libboost-dev libc-ares-dev libsqlite3-dev libre2-dev libspandsp-dev libopus-dev
  libspeexdsp-dev libsrtp2-dev libpq-dev libusrsctp-dev zlib1g-dev libmimalloc-dev)
# Packages the test suite adds: unit tests, benchmarks, the sanitizer and fuzzer toolchain,
# the format check, and the peers the end-to-end tests start.
ESG_TEST_PKGS=(googletest libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  clang-format clang-tidy python3 libboost-dev sip-tester openssl dnsmasq-base kamailio
  kamailio-tls-modules sipvicious coturn iproute2 iptables baresip-core chromium postgresql
  python3-prometheus-client libsrtp2-1 libavcodec59)

log() { printf '[esg %4ds] %s\n' "$SECONDS" "$*" >&2; }

missing_pkgs() {
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$p"
    fi
  done
}

ensure_pkgs() {
  local missing
  missing=$(missing_pkgs "$@")
  [ -z "$missing" ] && return 0
  # shellcheck disable=SC2086
  log "installing:" $missing
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      log "need root to install packages: $missing"; exit 2
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# Configures (once) and builds one preset.
build_preset() {
  local preset=$1 dir=$2
  shift 2
  if [ ! -f "$dir/build.ninja" ]; then
    cmake --preset "$preset" "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$(nproc)"
}

# Configures the default tree; re-running it only re-reads the cache, so it is cheap.
configure_default() {
  cmake --preset default "$@" >/dev/null
}

# TDLib for Telegram lines: libtdjson.so from the npm package @prebuilt-tdlib/linux-x64-glibc,
# pinned in third_party/package.json (and its lock), installed into the git-ignored
# third_party/node_modules. npm comes from Debian when the machine has none.
ESG_TDJSON=third_party/node_modules/@prebuilt-tdlib/linux-x64-glibc/libtdjson.so
ensure_tdlib() {
  [ -f "$ESG_TDJSON" ] && return 0
  command -v npm >/dev/null || ensure_pkgs nodejs npm
  log "installing TDLib from the npm registry into third_party/node_modules"
  (cd third_party && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# The admin web page: TypeScript compiled by tsc (pinned in web/package.json and its lock) into
# the git-ignored web/dist, which http.ui_dir names.
ensure_web() {
  command -v npm >/dev/null || ensure_pkgs nodejs npm
  if [ ! -d web/node_modules ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  log "building the web page into web/dist"
  (cd web && npm run --silent build >/dev/null)
}

# The web page's browser test: playwright-core (pinned in tests/e2e/web/package.json and its
# lock) drives Debian's chromium; it downloads no browser of its own.
ensure_browser_test() {
  command -v npm >/dev/null || ensure_pkgs nodejs npm
  [ -d tests/e2e/web/node_modules ] && return 0
  (cd tests/e2e/web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}
