// Autodiff: appends the backward graph of a scalar loss with respect to marked parameters.
// Invariants: a node's backward rule runs only when one of its outputs carries a gradient and one
// of its inputs needs one (integer values never do); a value used several times gets the sum of
// its gradients; every parameter gets a gradient value (zeros when the loss does not depend on
// it), recorded in Graph::grads() and placed in the gradients memory category.
#pragma once

#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace zt::ir {

struct AutodiffOptions {
  // The gradient fed into the loss. nullptr: a constant 1. Otherwise a scalar input (the fp16
  // loss scale, for example) whose value the runtime sets each step.
  Value* seed = nullptr;
};

// Appends nodes (phase backward) computing d loss / d p for every p in params, which must be
// values of kind param. Sets g.loss() and g.grads().
Status AppendBackward(Graph& g, Value* loss, const std::vector<Value*>& params,
                      const AutodiffOptions& options = {});

// All values of kind param, in creation order.
std::vector<Value*> ParamsOf(const Graph& g);

}  // namespace zt::ir
