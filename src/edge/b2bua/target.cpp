#include "edge/b2bua/target.hpp"

#include "edge/b2bua/text.hpp"
#include "sip/uri.hpp"

namespace esg::edge {

using accounts::Account;
using accounts::Destination;
using b2bua_text::host_port;
using b2bua_text::name_addr;

LegPolicy telegram_leg_policy() {
  LegPolicy p;
  p.passheaders = {"X-TG-ID", "X-TG-Username", "X-TG-Phone", "X-TG-Name"};
  p.media = true;
  p.codecs = {"opus"};
  return p;
}

LegPolicy pbx_leg_for_telegram(LegPolicy pbx) {
  if (pbx.codecs.empty()) pbx.codecs = {"PCMA", "PCMU"};
  pbx.media = true;
  return pbx;
}

RouteTarget route_target(Context& context, const EdgeConfig& cfg, const RouteRule& r,
                         const NormFields& routed) {
  RouteTarget t;
  t.sent = routed;
  if (r.action == "pbx") {
    auto pbx = cfg.pbx(r.target);
    // Where the PBX is: its address (ip), where its REGISTER came from (register-in), or
    // the registrar we register to (register-out).
    std::string host;
    if (!pbx) {
      t.why = "no PBX connection " + r.target;
    } else if (!pbx->enabled) {
      t.why = "PBX connection " + r.target + " is disabled";
    } else if (pbx->mode == "ip") {
      t.dest = {pbx->transport, pbx->address, pbx->port};
      host = host_port(pbx->address, pbx->port);
    } else if (pbx->mode == "register-in") {
      auto binding = context.registrar() ? context.registrar()->binding(pbx->code) : std::nullopt;
      if (!binding) {
        t.why = "PBX connection " + r.target + " is not registered to esg";
      } else {
        t.dest = {binding->transport, binding->addr, binding->port};
        auto contact = sip::parse_uri(binding->contact);
        if (contact) {
          host = std::string(contact->host);
          // Appended: `":" + std::to_string(...)` trips GCC 12's -O3 -Werror=restrict.
          if (contact->port) host.append(":").append(std::to_string(contact->port));
        } else {
          host = host_port(binding->addr, binding->port);
        }
      }
    } else {
      const Account as = pbx->as_account();
      std::string why;
      if (context.account_ready(as, &why)) {
        t.dest = {pbx->transport, as.next_hop_host(), as.lookup_port()};
        host = pbx->domain;
        t.resolve = true;
      } else {
        t.why = "PBX connection " + r.target + ": " + why;
      }
    }
    if (t.why.empty() && !context.trunks().acquire("pbx:" + pbx->code, pbx->trunks))
      t.why = "PBX connection " + r.target + ": trunk limit of " + std::to_string(pbx->trunks) +
              " calls reached";
    if (!t.why.empty()) return t;
    t.kind = "pbx";
    t.code = pbx->code;
    t.trunk = "pbx:" + pbx->code;
    t.policy = LegPolicy::of(*pbx);
    const std::string user = !r.number.empty()      ? r.number
                             : !pbx->number.empty() ? pbx->number
                                                    : routed.ruri_user;
    for (const auto& [k, v] : pbx->headers)
      t.extra += k + ": " + v + "\r\n";
    const std::string domain = routed.to_domain.empty() ? host : routed.to_domain;
    t.ruri = "sip:" + (user.empty() ? "" : user + "@") + host;
    if (pbx->transport != "udp") t.ruri += ";transport=" + pbx->transport;
    t.from = name_addr(routed.from_display, routed.from_user,
                       routed.from_domain.empty() ? domain : routed.from_domain);
    t.to = name_addr({}, routed.to_user, domain);
    t.sent.ruri_user = user;
    t.decisions.push_back("to PBX connection " + pbx->code);
    return t;
  }
  if (r.action == "external") {
    auto acc = cfg.accounts ? cfg.accounts->by_code(r.target) : nullptr;
    std::string why;
    if (!acc)
      t.why = "no account " + r.target;
    else if (!acc->enabled)
      t.why = "account " + r.target + " is disabled";
    else if (!context.account_ready(*acc, &why))
      t.why = "account " + r.target + ": " + why;
    else if (!context.trunks().acquire("acc:" + acc->code, acc->trunks))
      t.why = "account " + r.target + ": trunk limit of " + std::to_string(acc->trunks) +
              " calls reached";
    if (!t.why.empty()) return t;
    t.kind = "external";
    t.code = acc->code;
    t.trunk = "acc:" + acc->code;
    t.account = acc;
    t.policy = LegPolicy::of(*acc);
    t.tls_verify = acc->tls_verify;
    t.resolve = true;
    t.decisions.push_back("to account " + acc->code);
    NormFields f = routed;
    if (!r.number.empty()) {
      f.ruri_user = r.number;
      f.to_user = r.number;
    }
    auto n = cfg.normalizer.apply(true, *acc, f, cfg.system_domain);
    for (const auto& s : n.steps) {
      t.decisions.push_back("normalization rule " + std::to_string(s.rule) + ": " + s.field + " '" +
                            s.before + "' -> '" + s.after + "'");
    }
    t.sent = n.fields;
    t.ruri = "sip:" + (n.fields.ruri_user.empty() ? "" : n.fields.ruri_user + "@") + acc->domain;
    if (acc->transport != "udp") t.ruri += ";transport=" + acc->transport;
    t.dest = {acc->transport, acc->next_hop_host(), acc->lookup_port()};
    t.from = name_addr(n.fields.from_display, n.fields.from_user, n.fields.from_domain);
    t.to = name_addr({}, n.fields.to_user, n.fields.to_domain);
    return t;
  }
  if (r.action == "telegram") {
    auto line = context.telegram().by_code(r.target);
    if (!line)
      t.why = "no running Telegram line " + r.target;
    else if (line->state != "ready")
      t.why = "Telegram line " + r.target + " is not logged in (" + line->state + ")";
    else if (!context.trunks().acquire("tg:" + line->code, line->trunks))
      t.why = "Telegram line " + r.target + ": trunk limit of " + std::to_string(line->trunks) +
              " calls reached";
    if (!t.why.empty()) return t;
    t.kind = "telegram";
    t.code = line->code;
    t.trunk = "tg:" + line->code;
    t.policy = telegram_leg_policy();
    t.dest = {"udp", line->host, line->port};
    // The dialled number names the Telegram user (the line's side reads it, 484 if it can't).
    const std::string user = !r.number.empty() ? r.number : routed.ruri_user;
    const std::string host = host_port(line->host, line->port);
    t.ruri = "sip:" + (user.empty() ? "" : user + "@") + host;
    t.from = name_addr(routed.from_display, routed.from_user, host);
    t.to = name_addr({}, user, host);
    t.sent.ruri_user = user;
    t.sent.to_user = user;
    t.decisions.push_back("to Telegram line " + line->code);
    return t;
  }
  t.why = "action " + r.action + " is not available";
  return t;
}

}  // namespace esg::edge
