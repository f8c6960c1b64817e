// The data tests' names for the shared temporary-directory and raw-file helpers
// (support/temp_dir.h).
#pragma once

#include "support/temp_dir.h"

namespace zt::data::testing {

using zt::testing::ReadBytes;
using zt::testing::TempDir;
using zt::testing::WriteBytes;

}  // namespace zt::data::testing
