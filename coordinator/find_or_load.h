#ifndef RATCHET_COORDINATOR_FIND_OR_LOAD_H_
#define RATCHET_COORDINATOR_FIND_OR_LOAD_H_

#include <cstdint>
#include <map>
#include <mutex>

#include "absl/status/statusor.h"

namespace ratchet::coordinator {

// The cached value for `key`; on a miss, loaded outside the lock and kept. A
// cache at `bound` entries is emptied first (a bound, not an LRU: a miss only
// costs a store read).
template <typename Key, typename Value, typename Load>
absl::StatusOr<Value> FindOrLoad(std::mutex& mu, std::map<Key, Value>& cache, const Key& key,
                                 Load load, size_t bound = SIZE_MAX) {
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  absl::StatusOr<Value> loaded = load();
  if (!loaded.ok()) return loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= bound) cache.clear();
  cache[key] = *loaded;
  return loaded;
}

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_FIND_OR_LOAD_H_
