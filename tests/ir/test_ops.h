// Test-only ops registered into the global op registry by the IR tests (never by the library):
//   test_attrs(x){i:int, f:float, b:bool, s:string, ints:ints, dt:dtype} -> (x's type, dt[])
//       one attribute of every type and two outputs, for printer/parser round trips;
//   test_sink(x...){tag:string} -> ()            no outputs, side effects;
//   test_argmax(x f32[N,V]) -> i32[N]            integer output, no backward rule;
//   test_gather(table f32[V,D], ids i32[N]) -> f32[N,D]  ids declared non-differentiable;
//   test_gather_undeclared: the same without declaring ids non-differentiable;
//   test_nograd(x) -> x's type                   differentiable-looking, no backward rule.
// The gather backward rules record the `need` flags they were called with in LastGatherNeed().
#pragma once

#include <vector>

#include "ir/builder.h"
#include "ir/op_registry.h"
#include "ir/ops/constant.h"

namespace zt::ir::testing {

inline std::vector<bool>& LastGatherNeed() {
  static std::vector<bool> need;
  return need;
}

inline void RegisterTestOps() {
  static const bool done = [] {
    OpRegistry& r = OpRegistry::Global();
    {
      OpDef d;
      d.name = "test_attrs";
      d.input_names = {"x"};
      d.min_inputs = d.max_inputs = 1;
      d.output_names = {"", "aux"};
      d.attrs = {{"i", AttrType::kInt, std::nullopt},
                 {"f", AttrType::kFloat, 0.5},
                 {"b", AttrType::kBool, false},
                 {"s", AttrType::kString, std::string()},
                 {"ints", AttrType::kInts, std::vector<int64_t>{}},
                 {"dt", AttrType::kDType, DType::kF32}};
      d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
        return std::vector<TypeSpec>{in[0], {a.GetDType("dt"), Shape{}}};
      };
      r.Register(std::move(d));
    }
    {
      OpDef d;
      d.name = "test_sink";
      d.input_names = {"x"};
      d.min_inputs = 1;
      d.max_inputs = -1;
      d.attrs = {{"tag", AttrType::kString, std::string()}};
      d.infer = [](std::span<const TypeSpec>, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
        return std::vector<TypeSpec>{};
      };
      d.side_effects = true;
      r.Register(std::move(d));
    }
    {
      OpDef d;
      d.name = "test_argmax";
      d.input_names = {"x"};
      d.min_inputs = d.max_inputs = 1;
      d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
        if (in[0].shape.rank() != 2) return InvalidArgument("test_argmax: x must be rank 2");
        return std::vector<TypeSpec>{{DType::kI32, Shape{in[0].shape[0]}}};
      };
      r.Register(std::move(d));
    }
    for (bool declared : {true, false}) {
      OpDef d;
      d.name = declared ? "test_gather" : "test_gather_undeclared";
      d.input_names = {"table", "ids"};
      d.min_inputs = d.max_inputs = 2;
      if (declared) d.nondiff_inputs = {1};
      d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
        if (in[0].shape.rank() != 2) return InvalidArgument("test_gather: table must be rank 2");
        if (IsFloating(in[1].dtype)) return InvalidArgument("test_gather: ids must be integer");
        return std::vector<TypeSpec>{{in[0].dtype, Shape{in[1].shape.numel(), in[0].shape[1]}}};
      };
      // A literal rule: returns something for every input it is told needs a gradient (a zeros
      // table gradient is enough for these tests; ids would get zeros of their own type).
      d.grad = [](GradContext& c) -> std::vector<Value*> {
        LastGatherNeed() = c.need;
        Value* dt = c.need[0] ? ops::Fill(c.b, c.in(0)->dtype, c.in(0)->shape, 0.0, "dtable") : nullptr;
        Value* di = c.need[1] ? ops::Fill(c.b, c.in(1)->dtype, c.in(1)->shape, 0.0, "dids") : nullptr;
        return {dt, di};
      };
      r.Register(std::move(d));
    }
    {
      OpDef d;
      d.name = "test_nograd";
      d.input_names = {"x"};
      d.min_inputs = d.max_inputs = 1;
      d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
        return std::vector<TypeSpec>{in[0]};
      };
      r.Register(std::move(d));
    }
    return true;
  }();
  (void)done;
}

}  // namespace zt::ir::testing
