// Hostfile: the nodes of a multi-node job and how many workers (slots) each runs, in DeepSpeed's
// format — one `hostname slots=N` per line, `#` starts a comment, blank lines are ignored.
// Invariant: a parsed Hostfile has at least one node, distinct host names and slots >= 1; any
// other input is an error that names the file and line.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace zt::launch {

struct HostSlots {
  std::string host;
  int slots = 0;
};

struct Hostfile {
  std::vector<HostSlots> nodes;  // in file order; node rank = index

  int TotalSlots() const;
  // Global rank of node `node_rank`'s first worker: the slots of the nodes before it.
  int FirstRank(int node_rank) const;
};

// `source` names the text in error messages (usually the file's path).
StatusOr<Hostfile> ParseHostfile(const std::string& text, const std::string& source);
StatusOr<Hostfile> LoadHostfile(const std::string& path);

}  // namespace zt::launch
