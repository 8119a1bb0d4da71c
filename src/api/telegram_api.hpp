#pragma once
// REST for Telegram lines (issue 8): the collection at /rest/v1/telegram/lines, the login
// steps and logout at /rest/v1/telegram/lines/{id}/login and .../logout, and their state at
// /api/monitor/v1/telegram/lines.

#include "accounts/collection.hpp"
#include "api/http_server.hpp"
#include "telegram/lines.hpp"

namespace esg::api {

void add_telegram_routes(HttpServer& server, accounts::Collection& collection,
                         telegram::Lines& lines);

}  // namespace esg::api
