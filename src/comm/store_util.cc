// store_util: Add's integer rule and the timed-out-wait message shared by every Store.
#include "comm/store_util.h"

#include <stdexcept>

#include "comm/memory_store.h"

namespace zt::comm {

StatusOr<int64_t> AddToStoredInt(const std::string& key, const std::string* current, int64_t delta) {
  int64_t cur = 0;
  if (current != nullptr) {
    try {
      cur = std::stoll(*current);
    } catch (const std::exception&) {
      std::string shown = current->size() > 64 ? current->substr(0, 64) + "..." : *current;
      return InvalidArgument("store key '" + key + "' holds '" + shown + "', not an integer");
    }
  }
  int64_t v = 0;
  if (__builtin_add_overflow(cur, delta, &v)) {
    return OutOfRange("store key '" + key + "': " + std::to_string(cur) + " + " + std::to_string(delta) +
                      " overflows a 64-bit integer");
  }
  return v;
}

Status WaitTimedOut(std::chrono::milliseconds timeout, const std::vector<std::string>& missing,
                    const std::string& suffix) {
  return DeadlineExceeded("timed out after " + std::to_string(timeout.count()) + " ms waiting for store keys " +
                          JoinKeys(missing) + suffix);
}

}  // namespace zt::comm
