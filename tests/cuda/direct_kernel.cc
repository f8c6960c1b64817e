// Direct kernel runs for CUDA kernel tests (see direct_kernel.h).
#include "direct_kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "ir/op_registry.h"
#include "kernels/kernel.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace zt::testing {
namespace {

constexpr size_t kBase = 256;

struct Placed {
  Buffer buffer;
  void* data = nullptr;
};

Placed Place(Backend& b, size_t bytes, size_t offset) {
  auto buf = b.Allocate(bytes + offset + kBase, MemCategory::kActivations);
  ZT_CHECK(buf.ok()) << buf.status().ToString();
  Placed p;
  p.buffer = *buf;
  uintptr_t base = (reinterpret_cast<uintptr_t>(buf->data) + kBase - 1) & ~(kBase - 1);
  p.data = reinterpret_cast<void*>(base + offset);
  return p;
}

}  // namespace

std::vector<std::vector<char>> RunKernelDirect(Backend& backend, const std::string& op, ir::AttrMap attrs,
                                               const std::vector<DirectTensor>& inputs,
                                               const std::vector<DirectTensor>& outputs) {
  const ir::OpDef* def = ir::GetOp(op);
  ZT_CHECK_OK(ir::NormalizeAttrs(*def, attrs));
  KernelFn fn = KernelRegistry::Global().Find(op, backend.kind());
  ZT_CHECK(fn != nullptr) << "no " << DeviceKindName(backend.kind()) << " kernel for " << op;
  Stream& s = backend.stream(StreamKind::kCompute);

  std::vector<Placed> placed;
  std::vector<Tensor> in, out;
  std::vector<ir::TypeSpec> in_specs, out_specs;
  for (const auto& t : inputs) {
    size_t n = static_cast<size_t>(t.shape.numel()) * DTypeSize(t.dtype);
    ZT_CHECK_EQ(t.bytes.size(), n) << "input bytes of " << op;
    Placed p = Place(backend, n, t.offset);
    if (n) backend.CopyHostToDevice(p.data, t.bytes.data(), n, s);
    placed.push_back(p);
    in.emplace_back(p.data, t.dtype, t.shape);
    in_specs.push_back({t.dtype, t.shape});
  }
  for (const auto& t : outputs) {
    size_t n = static_cast<size_t>(t.shape.numel()) * DTypeSize(t.dtype);
    if (t.alias_input >= 0) {
      out.emplace_back(in.at(t.alias_input).data, t.dtype, t.shape);
    } else {
      Placed p = Place(backend, n, t.offset);
      if (n) backend.Memset(p.data, 0xFF, n, s);
      placed.push_back(p);
      out.emplace_back(p.data, t.dtype, t.shape);
    }
    out_specs.push_back({t.dtype, t.shape});
  }
  size_t ws_bytes = def->ComputeWorkspace(ir::NodeSig{in_specs, out_specs, attrs});
  Tensor ws;
  if (ws_bytes) {
    Placed p = Place(backend, ws_bytes, 0);
    backend.Memset(p.data, 0xFF, ws_bytes, s);
    placed.push_back(p);
    ws = Tensor(p.data, DType::kU8, Shape{static_cast<int64_t>(ws_bytes)});
  }
  KernelContext ctx{attrs, in, out, ws, backend, s};
  Status st = fn(ctx);
  ZT_CHECK(st.ok()) << op << ": " << st.ToString();
  std::vector<std::vector<char>> result;
  for (const auto& t : out) {
    std::vector<char> host(t.nbytes());
    if (!host.empty()) backend.CopyDeviceToHost(host.data(), t.data, host.size(), s);
    result.push_back(std::move(host));
  }
  backend.Synchronize();
  for (auto& p : placed) backend.Free(p.buffer);
  return result;
}

std::unique_ptr<Backend> MakeCudaBackend() {
#ifdef ZT_WITH_CUDA
  auto c = CudaBackend::Create(0);
  ZT_CHECK(c.ok()) << c.status().ToString();
  return std::move(*c);
#else
  ZT_CHECK(false) << "CUDA is not built";
  return nullptr;
#endif
}

void ExpectBitwiseEqual(const std::string& what, DType dtype, const std::vector<char>& ref,
                        const std::vector<char>& got) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  size_t es = DTypeSize(dtype);
  auto rv = FromBytes(dtype, ref), gv = FromBytes(dtype, got);
  int64_t bad = 0;
  for (size_t i = 0; i < rv.size(); ++i) {
    if (std::memcmp(ref.data() + i * es, got.data() + i * es, es) == 0) continue;
    if (bad++ < 5) {
      uint64_t rb = 0, gb = 0;
      std::memcpy(&rb, ref.data() + i * es, es);
      std::memcpy(&gb, got.data() + i * es, es);
      std::ostringstream os;
      os << what << "[" << i << "] (" << DTypeName(dtype) << "): cpu " << rv[i] << " (0x" << std::hex << rb
         << ") vs device " << std::dec << gv[i] << " (0x" << std::hex << gb << ")";
      ADD_FAILURE() << os.str();
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << rv.size() << " elements of " << what << " differ bitwise";
}

void ExpectNear(const std::string& what, DType dtype, const std::vector<char>& ref, const std::vector<char>& got,
                Tolerance tol) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  auto a = FromBytes(dtype, ref), b = FromBytes(dtype, got);
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    bool ok;
    if (std::isinf(a[i]) || std::isinf(b[i])) ok = a[i] == b[i];
    else if (std::isnan(a[i]) || std::isnan(b[i])) ok = std::isnan(a[i]) && std::isnan(b[i]);
    else ok = std::fabs(a[i] - b[i]) <= tol.atol + tol.rtol * std::fabs(a[i]);
    if (!ok && bad++ < 5) {
      ADD_FAILURE() << what << "[" << i << "] (" << DTypeName(dtype) << "): cpu " << a[i] << " vs device " << b[i]
                    << " (|diff| " << std::fabs(a[i] - b[i]) << ")";
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << a.size() << " elements of " << what << " differ beyond atol " << tol.atol
                    << " rtol " << tol.rtol;
}

}  // namespace zt::testing
