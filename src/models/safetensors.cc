// Safetensors reading (mmap + strict validation) and atomic writing.
#include "models/safetensors.h"

#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace zt::models {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation

std::optional<DType> DTypeFromName(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "BF16") return DType::kBF16;
  if (s == "F16") return DType::kF16;
  if (s == "I32") return DType::kI32;
  if (s == "I64") return DType::kI64;
  if (s == "U8") return DType::kU8;
  return std::nullopt;
}

}  // namespace

const char* SafetensorsDTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
    case DType::kU8: return "U8";
  }
  return "?";
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_) munmap(mapping_, size_);
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not hang; it is rejected below as not a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return NotFound("cannot open safetensors file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return DataLoss("cannot stat " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("safetensors path " + path + " is not a regular file");
  }
  auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return DataLoss("cannot map " + path + ": " + std::strerror(errno));
    }
    f->mapping_ = p;
    f->base_ = static_cast<const char*>(p);
  }
  ::close(fd);
  ZT_RETURN_IF_ERROR(f->Parse(path));
  return f;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(std::string bytes, const std::string& label) {
  auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  f->owned_ = std::move(bytes);
  f->base_ = f->owned_.data();
  f->size_ = f->owned_.size();
  ZT_RETURN_IF_ERROR(f->Parse(label));
  return f;
}

Status SafetensorsFile::Parse(const std::string& label) {
  auto bad = [&](const std::string& what) {
    return DataLoss("safetensors file " + label + " is malformed: " + what);
  };
  if (size_ < 8) return bad("shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(base_[i]);
  if (n > kMaxHeaderBytes) return bad("header length " + std::to_string(n) + " exceeds 100 MiB");
  if (n > size_ - 8) return bad("header length " + std::to_string(n) + " runs past the end of the file");
  data_start_ = 8 + n;
  size_t data_size = size_ - data_start_;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base_ + 8, base_ + 8 + n);
  } catch (const std::exception& e) {
    return bad(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) return bad("header is not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return bad("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return bad("__metadata__ value of '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) return bad("entry '" + name + "' is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) return bad("entry '" + name + "' has no dtype string");
    auto dt = DTypeFromName(v["dtype"].get<std::string>());
    if (!dt) return bad("entry '" + name + "' has unsupported dtype " + v["dtype"].get<std::string>());
    if (!v.contains("shape") || !v["shape"].is_array()) return bad("entry '" + name + "' has no shape array");
    std::vector<int64_t> dims;
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) return bad("entry '" + name + "' has a shape entry that is not a non-negative integer");
      uint64_t x = d.get<uint64_t>();
      if (x > (1ull << 48) || (x && numel > (1ull << 62) / x)) return bad("entry '" + name + "' has an absurd shape");
      numel *= x;
      dims.push_back(static_cast<int64_t>(x));
    }
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
        !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned()) {
      return bad("entry '" + name + "' needs data_offsets [begin, end] of non-negative integers");
    }
    uint64_t b = v["data_offsets"][0].get<uint64_t>(), e = v["data_offsets"][1].get<uint64_t>();
    if (b > e) return bad("entry '" + name + "' has data_offsets begin > end");
    if (e > data_size) return bad("entry '" + name + "' ends at byte " + std::to_string(e) + " past the data (" +
                                  std::to_string(data_size) + " bytes); the file may be truncated");
    // 128-bit product: numel * size can exceed 2^64, and a wrapped product must not match.
    unsigned __int128 need = static_cast<unsigned __int128>(numel) * DTypeSize(*dt);
    if (need != e - b) {
      std::string need_text = need >> 64 ? std::to_string(numel) + " x " + std::to_string(DTypeSize(*dt))
                                         : std::to_string(static_cast<uint64_t>(need));
      return bad("entry '" + name + "' has " + std::to_string(e - b) + " bytes but its dtype and shape need " +
                 need_text);
    }
    entries_.push_back({name, *dt, Shape(dims), static_cast<size_t>(b), static_cast<size_t>(e - b)});
  }
  std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  size_t expect = 0;
  for (const auto& e : entries_) {
    if (e.offset < expect) return bad("tensors '" + e.name + "' and another overlap in the data");
    if (e.offset > expect) return bad("the data has a hole before tensor '" + e.name + "'");
    expect = e.offset + e.nbytes;
  }
  if (expect != data_size) {
    return bad("the data section has " + std::to_string(data_size - expect) + " bytes that no tensor uses");
  }
  for (size_t i = 0; i < entries_.size(); ++i) by_name_[entries_[i].name] = i;
  return OkStatus();
}

const SafetensorsEntry* SafetensorsFile::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

Tensor SafetensorsFile::View(const SafetensorsEntry& e) const {
  return Tensor(const_cast<char*>(base_ + data_start_ + e.offset), e.dtype, e.shape);
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& t : tensors) {
    if (header.contains(t.name)) return InvalidArgument("WriteSafetensors: duplicate tensor name '" + t.name + "'");
    size_t n = t.tensor.nbytes();
    header[t.name] = {{"dtype", SafetensorsDTypeName(t.tensor.dtype)},
                      {"shape", t.tensor.shape.dims()},
                      {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h;
  try {
    h = header.dump();
  } catch (const std::exception& e) {  // e.g. a name or metadata value that is not UTF-8
    return InvalidArgument("WriteSafetensors: cannot write the header of " + path + ": " + e.what());
  }
  while ((8 + h.size()) % 8 != 0) h += ' ';  // keep the data 8-byte aligned
  ZT_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  unsigned char len[8];
  uint64_t hn = h.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(hn >> (8 * i));
  ZT_RETURN_IF_ERROR(file->Write(len, 8));
  ZT_RETURN_IF_ERROR(file->Write(h.data(), h.size()));
  for (const auto& t : tensors) ZT_RETURN_IF_ERROR(file->Write(t.tensor.data, t.tensor.nbytes()));
  return file->Commit();
}

}  // namespace zt::models
