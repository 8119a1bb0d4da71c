#pragma once
// The media port range (instance `media.ports`): even RTP ports with the odd port above for
// RTCP (RFC 3550 §11). Shared by the workers; taken per call leg, not per packet, so a mutex is
// enough. A port that another program holds is skipped when its bind fails.

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace esg::media {

class PortPool {
 public:
  PortPool(uint16_t min, uint16_t max);
  // An even port whose pair is free in the pool, taken in turn through the range (a port just
  // given back is the last to be taken again: late packets of the old call land nowhere).
  std::optional<uint16_t> take();
  void give(uint16_t rtp);
  size_t free() const;
  size_t size() const { return pairs_; }

 private:
  mutable std::mutex mu_;
  uint16_t first_ = 0;
  size_t pairs_ = 0;
  std::vector<bool> used_;
  size_t next_ = 0, in_use_ = 0;
};

}  // namespace esg::media
