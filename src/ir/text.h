// The IR's stable text form (grammar in docs/ir.md). PrintGraph writes it; ParseGraph reads it
// back. Invariant: for every graph g that verifies, PrintGraph(*ParseGraph(PrintGraph(g))) ==
// PrintGraph(g). Parse errors name the line and what was expected.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "ir/graph.h"

namespace zt::ir {

std::string PrintGraph(const Graph& g);
std::string PrintNode(const Graph& g, const Node& n);  // one line, no indentation
StatusOr<std::unique_ptr<Graph>> ParseGraph(std::string_view text);

// True for names printed bare after '%': letters, digits, '_', '.', '-'.
bool IsBareName(std::string_view name);

}  // namespace zt::ir
