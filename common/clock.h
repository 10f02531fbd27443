#ifndef RATCHET_COMMON_CLOCK_H_
#define RATCHET_COMMON_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace ratchet {

inline int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ratchet

#endif  // RATCHET_COMMON_CLOCK_H_
