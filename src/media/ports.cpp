#include "media/ports.hpp"

namespace esg::media {

PortPool::PortPool(uint16_t min, uint16_t max) {
  first_ = uint16_t(min + (min & 1));  // even
  pairs_ = max > first_ ? size_t(max - first_ + 1) / 2 : 0;
  used_.assign(pairs_, false);
}

std::optional<uint16_t> PortPool::take() {
  std::lock_guard lock(mu_);
  for (size_t n = 0; n < pairs_; ++n) {
    const size_t i = (next_ + n) % pairs_;
    if (used_[i]) continue;
    used_[i] = true;
    ++in_use_;
    next_ = (i + 1) % pairs_;
    return uint16_t(first_ + 2 * i);
  }
  return std::nullopt;
}

void PortPool::give(uint16_t rtp) {
  std::lock_guard lock(mu_);
  if (rtp < first_) return;
  const size_t i = size_t(rtp - first_) / 2;
  if (i < pairs_ && used_[i]) {
    used_[i] = false;
    --in_use_;
  }
}

size_t PortPool::free() const {
  std::lock_guard lock(mu_);
  return pairs_ - in_use_;
}

}  // namespace esg::media
