// Activation ops: definitions, shape rules, backward rules, costs. All are elementwise, keep the
// input's shape and floating dtype, and compute in f32.
//   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   (torch approximate='tanh')
//   gelu_bwd(dy, x) -> dx = dy * gelu'(x)
//   silu(x) = x * sigmoid(x);  silu_bwd(dy, x) -> dx = dy * s (1 + x (1 - s)), s = sigmoid(x)
//   swiglu(gate, up) = silu(gate) * up (same shape and dtype)
//   swiglu_bwd(dy, gate, up) -> (dgate = dy * up * silu'(gate), dup = dy * silu(gate))
// Invariant: infer rejects non-floating inputs and any dtype or shape mismatch between operands.
#include "ir/ops/activation.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* Gelu(Builder& b, Value* x, const std::string& name) { return b.Emit1("gelu", {x}, {}, name); }
Value* Silu(Builder& b, Value* x, const std::string& name) { return b.Emit1("silu", {x}, {}, name); }
Value* SwiGlu(Builder& b, Value* gate, Value* up, const std::string& name) {
  return b.Emit1("swiglu", {gate, up}, {}, name);
}

}  // namespace ops

using namespace ops;

namespace {

// All inputs floating, of input 0's dtype and shape; one output per entry of `outputs` (input
// indices whose type each output takes).
InferFn SameTypeInfer(std::vector<const char*> names, std::vector<int> outputs) {
  return [names, outputs](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
    ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, names[0]));
    for (int i = 1; i < static_cast<int>(in.size()); ++i) {
      ZT_RETURN_IF_ERROR(ExpectSameDType(in, 0, i, names[0], names[i]));
      ZT_RETURN_IF_ERROR(ExpectSameShape(in, 0, i, names[0], names[i]));
    }
    std::vector<TypeSpec> out;
    for (int o : outputs) out.push_back(in[o]);
    return out;
  };
}

// gelu/silu: one input x; the backward op `bwd`(dy, x) -> dx.
void RegisterUnary(OpRegistry& r, const char* name, const char* doc, double flops, double bwd_flops) {
  std::string bwd = std::string(name) + "_bwd";
  {
    OpDef d;
    d.name = name;
    d.doc = doc;
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.infer = SameTypeInfer({"x"}, {0});
    d.grad = [bwd](GradContext& c) -> std::vector<Value*> {
      if (c.dout[0] == nullptr) return {nullptr};
      return {c.b.Emit1(bwd, {c.dout[0], c.in(0)}, {}, "dx")};
    };
    d.cost = ElementwiseCost(flops);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = bwd;
    d.doc = std::string("gradient of ") + name + ": dy * " + name + "'(x)";
    d.input_names = {"dy", "x"};
    d.min_inputs = d.max_inputs = 2;
    d.infer = SameTypeInfer({"dy", "x"}, {0});
    d.cost = ElementwiseCost(bwd_flops);
    r.Register(std::move(d));
  }
}

}  // namespace

void RegisterActivationOps(OpRegistry& r) {
  // Flops per element, a transcendental (tanh, exp) or a division counted as one:
  //   gelu 9: x^2, x^3, fma (2), * sqrt(2/pi), tanh, 1 + t, * 0.5, * x.
  //   gelu_bwd 17: the forward's inner 6, 1 + t, * 0.5, t * t, 1 - t^2, 3c x^2 + 1 (2),
  //     * sqrt(2/pi), * 0.5 x (2), * sech^2, +, * dy.
  //   silu 5: neg, exp, + 1, division, * x.  silu_bwd 9: sigmoid 4, 1 - s, * x, + 1, * s, * dy.
  //   swiglu 6: sigmoid 4, * gate, * up.  swiglu_bwd 12: sigmoid 4, gate * s, dup = dy * gate * s,
  //     1 - s, * gate, + 1, * s, * up, * dy.
  RegisterUnary(r, "gelu", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", 9, 17);
  RegisterUnary(r, "silu", "x * sigmoid(x)", 5, 9);
  {
    OpDef d;
    d.name = "swiglu";
    d.doc = "silu(gate) * up";
    d.input_names = {"gate", "up"};
    d.min_inputs = d.max_inputs = 2;
    d.infer = SameTypeInfer({"gate", "up"}, {0});
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      if (c.dout[0] == nullptr) return {nullptr, nullptr};
      std::vector<Value*> g = c.b.Emit("swiglu_bwd", {c.dout[0], c.in(0), c.in(1)}, {}, "dgate");
      return {c.need[0] ? g[0] : nullptr, c.need[1] ? g[1] : nullptr};
    };
    d.cost = ElementwiseCost(6);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "swiglu_bwd";
    d.doc = "gradients of swiglu: (dgate, dup)";
    d.input_names = {"dy", "gate", "up"};
    d.min_inputs = d.max_inputs = 3;
    d.output_names = {"", "dup"};
    d.infer = SameTypeInfer({"dy", "gate", "up"}, {0, 0});
    d.cost = ElementwiseCost(12);
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
