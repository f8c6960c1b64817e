// Backend: the device-facing interface the runtime executes on: memory (with per-category
// accounting), streams, events and copies. `cpu` implements it now; `cuda` plugs in later without
// touching ir/ or passes/. Invariant: every byte a kernel touches was obtained through Allocate
// (or is host memory the caller owns and copies through the Copy* calls).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "backend/memory_stats.h"
#include "core/mem_category.h"
#include "core/status.h"

namespace zt {

enum class DeviceKind { kCPU = 0, kCUDA = 1 };
const char* DeviceKindName(DeviceKind k);

// Streams a node can be assigned to. On the CPU backend all run in program order on the calling
// thread; on CUDA each is a separate cudaStream_t ordered by events.
enum class StreamKind : int { kCompute = 0, kComm = 1, kCopy = 2 };
inline constexpr int kNumStreamKinds = 3;

struct Buffer {
  void* data = nullptr;
  size_t bytes = 0;  // as accounted (aligned)
  MemCategory category = MemCategory::kWorkspace;
};

class Stream {
 public:
  virtual ~Stream() = default;
  virtual void Synchronize() = 0;  // host waits for everything queued on this stream
};

class Event {
 public:
  virtual ~Event() = default;
  virtual void Record(Stream& s) = 0;      // marks the point after all work queued on s so far
  virtual void StreamWait(Stream& s) = 0;  // work queued on s after this waits for the point
  virtual void Synchronize() = 0;          // host waits for the point
  // Like StreamWait, but inside a CUDA-graph capture the wait becomes an external event node, so
  // each replay waits for the event's newest Record made outside the graph.
  virtual void StreamWaitExternal(Stream& s) { StreamWait(s); }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceKind kind() const = 0;
  virtual std::string Describe() const = 0;

  // Allocation failure (out of memory) is a Status that names the category and the size.
  virtual StatusOr<Buffer> Allocate(size_t bytes, MemCategory category) = 0;
  virtual void Free(Buffer& buffer) = 0;  // resets buffer
  virtual MemoryStats& stats() = 0;

  virtual Stream& stream(StreamKind k) = 0;
  virtual std::unique_ptr<Event> CreateEvent() = 0;

  // Copies between host memory and backend memory, queued on `s`.
  virtual void CopyHostToDevice(void* dst, const void* src, size_t n, Stream& s) = 0;
  virtual void CopyDeviceToHost(void* dst, const void* src, size_t n, Stream& s) = 0;
  virtual void CopyDeviceToDevice(void* dst, const void* src, size_t n, Stream& s) = 0;
  virtual void Memset(void* dst, int value, size_t n, Stream& s) = 0;
  virtual void Synchronize() = 0;  // all streams

  // Host memory for staging device data (checkpoint snapshots): 4096-aligned, page-locked where
  // the device copies faster from it (CUDA), so CopyDeviceToHost into it is asynchronous. Null
  // when none can be had. The default is plain aligned memory. Free it before the backend goes.
  virtual void* AllocateHost(size_t bytes);
  virtual void FreeHost(void* p);
};

}  // namespace zt
