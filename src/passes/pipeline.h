// Pipeline: runs passes in order, verifies the graph after every pass (a pass that breaks an
// invariant is named in the error), and dumps the IR after the passes named in ZT_DUMP_IR (or
// set with DumpAfter) to ZT_DUMP_DIR/<index>-<pass>.ir or stderr.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "passes/pass.h"

namespace zt::passes {

class Pipeline {
 public:
  Pipeline();  // reads ZT_DUMP_IR / ZT_DUMP_DIR
  void Add(std::shared_ptr<Pass> pass);
  // "all" or a pass name; may be called several times.
  void DumpAfter(const std::string& pass_name) { dump_after_.insert(pass_name); }
  void set_dump_dir(const std::string& dir) { dump_dir_ = dir; }
  // Text dumps captured in memory instead of written (for `ztrain compile` and tests).
  void CaptureDumps(std::vector<std::pair<std::string, std::string>>* sink) { capture_ = sink; }

  Status Run(ir::Graph& g);

 private:
  bool ShouldDump(const std::string& pass) const;
  Status Dump(const ir::Graph& g, int index, const std::string& pass);

  std::vector<std::shared_ptr<Pass>> passes_;
  std::set<std::string> dump_after_;
  std::string dump_dir_;
  std::vector<std::pair<std::string, std::string>>* capture_ = nullptr;
};

}  // namespace zt::passes
