// Collective ops: definitions and shape rules (kernels in kernels/cpu/collective.cc).
#include "ir/ops/collective.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* AllGather(Builder& b, Value* x, int64_t world_size, const std::string& name) {
  return b.Emit1("all_gather", {x}, {{"world_size", world_size}}, name);
}
Value* ReduceScatter(Builder& b, Value* x, int64_t world_size, const std::string& op, const std::string& name) {
  return b.Emit1("reduce_scatter", {x}, {{"world_size", world_size}, {"op", op}}, name);
}
Value* AllReduce(Builder& b, Value* x, const std::string& op, const std::string& name) {
  return b.Emit1("all_reduce", {x}, {{"op", op}}, name);
}

}  // namespace ops

bool IsCollective(const OpDef& op) {
  return op.name == "all_gather" || op.name == "reduce_scatter" || op.name == "all_reduce";
}

namespace {

Status CheckReduceOp(const AttrMap& a) {
  const std::string& op = a.GetString("op");
  if (op != "sum" && op != "avg") return InvalidArgument("attribute 'op' must be \"sum\" or \"avg\", is \"" + op + "\"");
  return OkStatus();
}

Status CheckWorld(const AttrMap& a) {
  if (a.GetInt("world_size") < 1) return InvalidArgument("attribute 'world_size' must be >= 1");
  return OkStatus();
}

CostFn CommCost() {
  return [](const NodeSig& s) { return Cost{0, ops::InputBytes(s), ops::OutputBytes(s)}; };
}

}  // namespace

void RegisterCollectiveOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "all_gather";
    d.doc = "the ranks' x concatenated in rank order";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"world_size", AttrType::kInt, std::nullopt}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(CheckWorld(a));
      ZT_RETURN_IF_ERROR(ops::ExpectRank(in, 0, "x", 1));
      return std::vector<TypeSpec>{{in[0].dtype, Shape{in[0].shape[0] * a.GetInt("world_size")}}};
    };
    d.cost = CommCost();
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "reduce_scatter";
    d.doc = "this rank's slice of the reduction over ranks";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"world_size", AttrType::kInt, std::nullopt}, {"op", AttrType::kString, std::string("avg")}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(CheckWorld(a));
      ZT_RETURN_IF_ERROR(CheckReduceOp(a));
      ZT_RETURN_IF_ERROR(ops::ExpectFloating(in, 0, "x"));
      ZT_RETURN_IF_ERROR(ops::ExpectRank(in, 0, "x", 1));
      int64_t n = a.GetInt("world_size");
      if (in[0].shape[0] % n != 0)
        return InvalidArgument("reduce_scatter: input 0 (x) has " + std::to_string(in[0].shape[0]) +
                               " elements, not a multiple of world_size " + std::to_string(n));
      return std::vector<TypeSpec>{{in[0].dtype, Shape{in[0].shape[0] / n}}};
    };
    d.cost = CommCost();
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "all_reduce";
    d.doc = "the reduction of x over ranks";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"op", AttrType::kString, std::string("avg")}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(CheckReduceOp(a));
      ZT_RETURN_IF_ERROR(ops::ExpectFloating(in, 0, "x"));
      return std::vector<TypeSpec>{in[0]};
    };
    d.cost = CommCost();
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
