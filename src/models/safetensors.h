// Safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON mapping tensor names to {dtype, shape, data_offsets} (plus an optional
// "__metadata__" string map), then the data. Reading validates everything before any tensor is
// used: header bounds, JSON shape, dtypes, shapes, that every tensor's byte range matches its
// dtype and shape, lies inside the data, and that ranges neither overlap nor leave holes.
// A bad file is a DataLoss/InvalidArgument error naming the file and the problem, never a crash.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace zt::models {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  size_t offset = 0;  // within the data section
  size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  // Maps the file read-only. Errors name the path.
  static StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Validates an in-memory image (used by Open and by tests).
  static StatusOr<std::unique_ptr<SafetensorsFile>> FromBytes(std::string bytes, const std::string& label);
  ~SafetensorsFile();

  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // sorted by offset
  const SafetensorsEntry* Find(const std::string& name) const;
  // A read-only view of a tensor's bytes (const_cast for the Tensor view type; do not write).
  Tensor View(const SafetensorsEntry& e) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  Status Parse(const std::string& label);

  const char* base_ = nullptr;  // whole file
  size_t size_ = 0;
  size_t data_start_ = 0;
  void* mapping_ = nullptr;
  std::string owned_;  // for FromBytes
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  Tensor tensor;  // host memory
};
// Writes atomically: to "<path>.tmp", fsync, rename, fsync the directory. Names must be unique;
// names and metadata must be UTF-8 (else InvalidArgument, nothing written).
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

// Safetensors dtype names ("F32", "BF16", "F16", "I32", "I64", "U8").
const char* SafetensorsDTypeName(DType t);

}  // namespace zt::models
