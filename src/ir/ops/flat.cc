// Flat-buffer ops: definitions and shape rules (kernels in kernels/cpu/flat.cc).
#include "ir/ops/flat.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* Pack(Builder& b, const std::vector<Value*>& xs, int64_t numel, DType dtype, const std::string& name) {
  return b.Emit1("pack", xs, {{"numel", numel}, {"dtype", dtype}}, name);
}

std::vector<Value*> UnpackInto(Builder& b, Value* flat, const std::vector<Value*>& targets, const std::string& name) {
  std::vector<Value*> in = {flat};
  in.insert(in.end(), targets.begin(), targets.end());
  return b.Emit("unpack_into", in, {}, name);
}

Value* ViewSlice(Builder& b, Value* x, int64_t offset, const Shape& shape, const std::string& name) {
  return b.Emit1("view_slice", {x}, {{"offset", offset}, {"shape", shape.dims()}}, name);
}

}  // namespace ops

void RegisterFlatOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "pack";
    d.doc = "flattened inputs back to back, converted to dtype, zero-padded to numel";
    d.input_names = {"x"};
    d.min_inputs = 1;
    d.max_inputs = -1;
    d.attrs = {{"numel", AttrType::kInt, std::nullopt}, {"dtype", AttrType::kDType, std::nullopt}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      int64_t total = 0;
      for (int i = 0; i < static_cast<int>(in.size()); ++i) {
        ZT_RETURN_IF_ERROR(ops::ExpectFloating(in, i, "x"));
        total += in[i].shape.numel();
      }
      if (!IsFloating(a.GetDType("dtype"))) return InvalidArgument("pack: attribute 'dtype' must be floating");
      if (a.GetInt("numel") < total)
        return InvalidArgument("pack: attribute 'numel' " + std::to_string(a.GetInt("numel")) +
                               " is smaller than the inputs' " + std::to_string(total) + " elements");
      return std::vector<TypeSpec>{{a.GetDType("dtype"), Shape{a.GetInt("numel")}}};
    };
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "unpack_into";
    d.doc = "overwrite each target with its slice of flat (pack's layout), in place";
    d.input_names = {"flat", "target"};
    d.min_inputs = 2;
    d.max_inputs = -1;
    d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ops::ExpectFloating(in, 0, "flat"));
      ZT_RETURN_IF_ERROR(ops::ExpectRank(in, 0, "flat", 1));
      int64_t total = 0;
      std::vector<TypeSpec> out;
      for (int i = 1; i < static_cast<int>(in.size()); ++i) {
        ZT_RETURN_IF_ERROR(ops::ExpectFloating(in, i, "target"));
        total += in[i].shape.numel();
        out.push_back(in[i]);
      }
      if (total > in[0].shape[0])
        return InvalidArgument("unpack_into: the targets hold " + std::to_string(total) + " elements, input 0 (flat) only " +
                               std::to_string(in[0].shape[0]));
      return out;
    };
    d.aliases = {{kEveryOutput, 1, AliasKind::kInPlace}};  // output i overwrites input i + 1
    d.side_effects = true;
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "view_slice";
    d.doc = "elements [offset, offset + numel(shape)) of x, as shape, without a copy";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"offset", AttrType::kInt, std::nullopt}, {"shape", AttrType::kInts, std::nullopt}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      for (int64_t v : a.GetInts("shape"))
        if (v < 0) return InvalidArgument("view_slice: negative dimension in shape");
      Shape s(a.GetInts("shape"));
      int64_t off = a.GetInt("offset");
      if (off < 0 || off + s.numel() > in[0].shape.numel())
        return InvalidArgument("view_slice: elements [" + std::to_string(off) + ", " + std::to_string(off + s.numel()) +
                               ") are outside input 0 (x) of " + std::to_string(in[0].shape.numel()) + " elements");
      return std::vector<TypeSpec>{{in[0].dtype, s}};
    };
    d.cost = [](const NodeSig&) { return Cost{}; };
    d.aliases = {{0, 0, AliasKind::kView, [](const Node& n) {
                    return n.attrs.GetInt("offset") * static_cast<int64_t>(DTypeSize(n.inputs[0]->dtype));
                  }}};
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
