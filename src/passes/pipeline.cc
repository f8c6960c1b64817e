// Pass pipeline with verification and IR dumps.
#include "passes/pipeline.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/logging.h"
#include "core/settings.h"
#include "ir/text.h"
#include "ir/verifier.h"

namespace zt::passes {

Pipeline::Pipeline() {
  std::stringstream ss(settings::DumpIrAfter());
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) dump_after_.insert(item);
  }
  dump_dir_ = settings::DumpDir();
}

void Pipeline::Add(std::shared_ptr<Pass> pass) { passes_.push_back(std::move(pass)); }

bool Pipeline::ShouldDump(const std::string& pass) const {
  return dump_after_.count("all") || dump_after_.count(pass);
}

Status Pipeline::Dump(const ir::Graph& g, int index, const std::string& pass) {
  std::string text = ir::PrintGraph(g);
  if (capture_) {
    capture_->push_back({pass, text});
    return OkStatus();
  }
  if (dump_dir_.empty()) {
    std::fprintf(stderr, "// IR after pass %d '%s'\n%s", index, pass.c_str(), text.c_str());
    return OkStatus();
  }
  std::string path = dump_dir_ + "/" + std::to_string(index) + "-" + pass + ".ir";
  std::ofstream f(path);
  f << text;
  if (!f) return Unavailable("cannot write IR dump " + path + "; check that ZT_DUMP_DIR exists and is writable");
  return OkStatus();
}

Status Pipeline::Run(ir::Graph& g) {
  ZT_RETURN_IF_ERROR(ir::Verify(g).WithContext("graph before the first pass"));
  if (ShouldDump("input")) ZT_RETURN_IF_ERROR(Dump(g, 0, "input"));
  int index = 1;
  for (auto& p : passes_) {
    auto changed = p->Run(g);
    if (!changed.ok()) return changed.status().WithContext("pass '" + p->name() + "'");
    Status v = ir::Verify(g);
    if (!v.ok()) return v.WithContext("graph after pass '" + p->name() + "' is invalid");
    ZT_LOG(DEBUG) << "pass " << p->name() << (*changed ? " changed the graph" : " left the graph unchanged");
    if (ShouldDump(p->name())) ZT_RETURN_IF_ERROR(Dump(g, index, p->name()));
    ++index;
  }
  return OkStatus();
}

}  // namespace zt::passes
