#include "sip/editor.hpp"

#include "sip/detail/lex.hpp"
#include "sip/params.hpp"

namespace esg::sip {

namespace {

std::string field(std::string_view name, std::string_view value) {
  std::string out;
  out.reserve(name.size() + value.size() + 2);
  out.append(name).append(": ").append(value);
  return out;
}

// Where the header parameters of the first value start and where that value ends.
struct Span {
  size_t params_begin;
  size_t value_end;
};
Span locate_params(std::string_view value, bool list) {
  size_t end = list ? detail::find_top_level(value, ',') : std::string_view::npos;
  if (end == std::string_view::npos) end = value.size();
  std::string_view first = value.substr(0, end);
  size_t gt = std::string_view::npos;
  size_t lt = detail::find_top_level(first, '<');
  if (lt != std::string_view::npos) gt = first.find('>', lt);
  size_t from = gt == std::string_view::npos ? 0 : gt + 1;
  size_t semi = detail::find_top_level(first, ';', from);
  if (semi == std::string_view::npos) {
    // No parameters yet: they go after the value, before trailing whitespace.
    size_t e = end;
    while (e > 0 && detail::is_ws(value[e - 1]))
      --e;
    return {e, e};
  }
  size_t e = end;
  while (e > semi && detail::is_ws(value[e - 1]))
    --e;
  return {semi, e};
}

std::string rebuild(std::string_view value, std::string_view name,
                    std::optional<std::optional<std::string_view>> replacement, bool list) {
  const Span span = locate_params(value, list);
  std::string out(value.substr(0, span.params_begin));
  ParamCursor cursor(value.substr(span.params_begin, span.value_end - span.params_begin));
  Param p;
  bool done = false;
  while (cursor.next(p)) {
    if (text::iequals(p.name, name)) {
      if (!replacement || done) continue;  // removed (or a duplicate of the one we set)
      done = true;
      out.append(";").append(name);
      if (*replacement) out.append("=").append(**replacement);
      continue;
    }
    out.append(";").append(p.name);
    if (p.has_value) out.append("=").append(p.value);
  }
  if (replacement && !done) {
    out.append(";").append(name);
    if (*replacement) out.append("=").append(**replacement);
  }
  out.append(value.substr(span.value_end));
  return out;
}

}  // namespace

std::string with_param(std::string_view value, std::string_view name,
                       std::optional<std::string_view> param_value, bool list) {
  return rebuild(value, name, std::optional<std::optional<std::string_view>>(param_value), list);
}

std::string without_param(std::string_view value, std::string_view name, bool list) {
  return rebuild(value, name, std::nullopt, list);
}

bool is_list_header(HeaderId id) {
  switch (id) {
    case HeaderId::Via:
    case HeaderId::Contact:
    case HeaderId::Route:
    case HeaderId::RecordRoute:
    case HeaderId::Accept:
    case HeaderId::Allow:
    case HeaderId::AllowEvents:
    case HeaderId::Supported:
    case HeaderId::Require:
    case HeaderId::ProxyRequire:
    case HeaderId::Unsupported:
      return true;
    default:
      return false;
  }
}

std::string_view Editor::Entry::value() const {
  std::string_view t = edited ? std::string_view(text) : raw;
  size_t colon = t.find(':');
  return text::trim(t.substr(colon + 1));
}

Editor::Editor(const Message& message) : msg_(message) {
  entries_.reserve(message.headers().size() + 4);
  for (const auto& h : message.headers()) {
    Entry e;
    e.id = h.id;
    e.raw = h.raw;
    if (h.raw.find('\n') + 1 != h.raw.size()) {
      // A folded field: keep it as one unfolded line so later edits see one value.
      e.text = field(h.name, h.value);
      e.edited = true;
    }
    entries_.push_back(std::move(e));
  }
}

std::string Editor::Entry::field_name() const {
  std::string_view t = edited ? std::string_view(text) : raw;
  return std::string(text::trim(t.substr(0, t.find(':'))));
}

bool Editor::matches(const Entry& e, std::string_view name) const {
  const HeaderId id = header_id(name);
  if (id != HeaderId::Other) return e.id == id;
  return e.id == HeaderId::Other && text::iequals(e.field_name(), name);
}

Editor::Entry* Editor::first(HeaderId id) {
  for (auto& e : entries_) {
    if (!e.removed && e.id == id) return &e;
  }
  return nullptr;
}

void Editor::set_request_uri(std::string_view uri) {
  std::string line(msg_.method_text());
  line.append(" ").append(uri).append(" SIP/2.0");
  start_line_ = std::move(line);
}

void Editor::set_status(uint16_t code, std::string_view reason) {
  start_line_ = "SIP/2.0 " + std::to_string(code) + " " + std::string(reason);
}

size_t Editor::remove(HeaderId id) {
  size_t n = 0;
  for (auto& e : entries_) {
    if (!e.removed && e.id == id) {
      e.removed = true;
      ++n;
    }
  }
  return n;
}

size_t Editor::remove(std::string_view name) {
  size_t n = 0;
  for (auto& e : entries_) {
    if (!e.removed && matches(e, name)) {
      e.removed = true;
      ++n;
    }
  }
  return n;
}

bool Editor::remove_first(HeaderId id) {
  Entry* e = first(id);
  if (e) e->removed = true;
  return e != nullptr;
}

void Editor::add_front(std::string_view name, std::string_view value) {
  Entry e;
  e.id = header_id(name);
  e.text = field(name, value);
  e.edited = true;
  entries_.insert(entries_.begin(), std::move(e));
}

void Editor::add_back(std::string_view name, std::string_view value) {
  Entry e;
  e.id = header_id(name);
  e.text = field(name, value);
  e.edited = true;
  entries_.push_back(std::move(e));
}

void Editor::set(std::string_view name, std::string_view value) {
  bool placed = false;
  for (auto& e : entries_) {
    if (e.removed || !matches(e, name)) continue;
    if (placed) {
      e.removed = true;
      continue;
    }
    e.text = field(name, value);
    e.edited = true;
    placed = true;
  }
  if (!placed) add_back(name, value);
}

bool Editor::set_param(HeaderId id, std::string_view name, std::optional<std::string_view> value) {
  Entry* e = first(id);
  if (!e) return false;
  e->text = field(e->field_name(), with_param(e->value(), name, value, is_list_header(id)));
  e->edited = true;
  return true;
}

bool Editor::remove_param(HeaderId id, std::string_view name) {
  Entry* e = first(id);
  if (!e) return false;
  e->text = field(e->field_name(), without_param(e->value(), name, is_list_header(id)));
  e->edited = true;
  return true;
}

bool Editor::set_uri(HeaderId id, std::string_view uri) {
  Entry* e = first(id);
  if (!e) return false;
  std::string_view value = e->value();
  size_t end = is_list_header(id) ? detail::find_top_level(value, ',') : std::string_view::npos;
  std::string_view first_value = value.substr(0, end);
  auto parsed = parse_name_addr(first_value);
  if (!parsed) return false;
  const size_t uri_begin = size_t(parsed->uri.text.data() - first_value.data());
  const size_t uri_end = uri_begin + parsed->uri.text.size();
  std::string out(value.substr(0, uri_begin));
  const bool needs_brackets =
      !parsed->angle_brackets && uri.find_first_of(",;?") != std::string_view::npos;
  if (needs_brackets) out.append("<");
  out.append(uri);
  if (needs_brackets) out.append(">");
  out.append(value.substr(uri_end));
  e->text = field(e->field_name(), out);
  e->edited = true;
  return true;
}

void Editor::set_body(std::string_view body, std::string_view content_type) {
  body_ = std::string(body);
  if (body.empty()) {
    remove(HeaderId::ContentType);
  } else if (!content_type.empty()) {
    set("Content-Type", content_type);
  }
}

std::string Editor::serialize() const {
  const std::string_view body = body_ ? std::string_view(*body_) : msg_.body();
  std::string out;
  out.reserve(msg_.bytes().size() + 256 + (body_ ? body_->size() : 0));
  out.append(start_line_ ? std::string_view(*start_line_) : msg_.start_line()).append("\r\n");
  bool length_written = false;
  for (const auto& e : entries_) {
    if (e.removed) continue;
    if (e.id == HeaderId::ContentLength) {
      if (length_written) continue;
      length_written = true;
      auto v = text::parse_uint(e.value());
      if (!e.edited && v && *v == body.size()) {
        out.append(e.raw);
      } else {
        out.append(field(e.field_name(), std::to_string(body.size()))).append("\r\n");
      }
      continue;
    }
    if (e.edited) {
      out.append(e.text).append("\r\n");
    } else {
      out.append(e.raw);
    }
  }
  if (!length_written)
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  out.append("\r\n").append(body);
  return out;
}

}  // namespace esg::sip
