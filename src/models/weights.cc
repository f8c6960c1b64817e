// Loading parameters from (sharded) safetensors checkpoints and exporting them in transformers'
// layout. See weights.h for the invariants.
#include "models/weights.h"

#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

namespace zt::models {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr uintmax_t kMaxIndexBytes = 256ull << 20;
constexpr size_t kMaxProblemsShown = 5;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string Describe(DType t, const Shape& s) { return std::string(DTypeName(t)) + " " + s.ToString(); }

// Tensors of the checkpoint, by name, over one or more open files.
struct Source {
  struct Ref {
    const SafetensorsFile* file = nullptr;
    const SafetensorsEntry* entry = nullptr;
    std::string file_name;
  };
  std::string label;  // what messages call the checkpoint
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::vector<std::string> file_names;
  std::map<std::string, Ref> tensors;
  std::vector<std::string> warnings;
};

Status AddFile(Source* src, const std::string& file) {
  ZT_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(file));
  for (const auto& e : f->entries()) src->tensors[e.name] = {f.get(), &e, file};
  src->files.push_back(std::move(f));
  src->file_names.push_back(file);
  return OkStatus();
}

Status OpenIndex(Source* src, const std::string& index) {
  auto bad = [&](const std::string& what) {
    return DataLoss("shard index " + index + " is malformed: " + what + "; re-download or re-export the checkpoint");
  };
  std::error_code ec;
  uintmax_t size = fs::file_size(index, ec);
  if (ec) return NotFound("cannot read shard index " + index + ": " + ec.message());
  if (size > kMaxIndexBytes) return bad("it is " + std::to_string(size) + " bytes, too large for an index");
  std::ifstream in(index, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const std::exception& e) {
    return bad(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) return bad("not a JSON object");
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) return bad("no \"weight_map\" object");
  std::optional<uint64_t> total_size;
  if (auto md = j.find("metadata"); md != j.end() && !md->is_null()) {
    if (!md->is_object()) return bad("\"metadata\" is not an object");
    if (auto ts = md->find("total_size"); ts != md->end()) {
      if (!ts->is_number_unsigned()) return bad("metadata.total_size is not a non-negative integer");
      total_size = ts->get<uint64_t>();
    }
  }
  fs::path dir = fs::path(index).parent_path();
  std::map<std::string, std::vector<std::string>> by_shard;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) return bad("weight_map entry '" + it.key() + "' is not a file name string");
    std::string shard = it->get<std::string>();
    if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
        shard.find('\\') != std::string::npos)
      return bad("weight_map entry '" + it.key() + "' names '" + shard + "', not a file in the index's directory");
    by_shard[shard].push_back(it.key());
  }
  uint64_t mapped_bytes = 0;
  for (const auto& [shard, names] : by_shard) {
    std::string file = (dir / shard).string();
    if (!fs::exists(file, ec))
      return NotFound("shard index " + index + " names shard " + shard + " (for '" + names.front() +
                      "'), which does not exist; the checkpoint is incomplete: download or export it again");
    ZT_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(file));
    for (const std::string& name : names) {
      const SafetensorsEntry* e = f->Find(name);
      if (!e)
        return DataLoss("shard index " + index + " puts tensor '" + name + "' in " + shard +
                        ", which does not contain it; the index and shards do not belong together");
      src->tensors[name] = {f.get(), e, file};
      mapped_bytes += e->nbytes;
    }
    src->files.push_back(std::move(f));
    src->file_names.push_back(file);
  }
  if (total_size && *total_size != mapped_bytes)
    src->warnings.push_back("shard index " + index + " says total_size " + std::to_string(*total_size) +
                            " but its tensors hold " + std::to_string(mapped_bytes) + " bytes");
  return OkStatus();
}

StatusOr<std::unique_ptr<Source>> OpenSource(const std::string& path) {
  auto src = std::make_unique<Source>();
  src->label = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    fs::path single = fs::path(path) / kSingleName, index = fs::path(path) / kIndexName;
    if (fs::exists(single, ec)) {
      ZT_RETURN_IF_ERROR(AddFile(src.get(), single.string()));
    } else if (fs::exists(index, ec)) {
      ZT_RETURN_IF_ERROR(OpenIndex(src.get(), index.string()));
    } else {
      return NotFound("no weights in " + path + ": it holds neither " + kSingleName + " nor " + kIndexName);
    }
  } else if (!fs::exists(path, ec)) {
    return NotFound("weights " + path + " do not exist");
  } else if (EndsWith(path, ".json")) {
    ZT_RETURN_IF_ERROR(OpenIndex(src.get(), path));
  } else {
    ZT_RETURN_IF_ERROR(AddFile(src.get(), path));
  }
  return src;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "; a similarly named tensor 'x' exists ..." or "; no similarly named tensor exists ...".
std::string SimilarHint(const std::string& name, const Source& src, const std::set<std::string>& used) {
  std::string best;
  size_t best_d = std::string::npos;
  std::string tail = name.substr(name.find('.') == std::string::npos ? 0 : name.find('.') + 1);
  for (const auto& [other, ref] : src.tensors) {
    if (used.count(other)) continue;
    size_t d = EditDistance(name, other);
    if (EndsWith(other, "." + tail) || EndsWith(name, "." + other)) d = std::min<size_t>(d, 1);
    if (d < best_d) best_d = d, best = other;
  }
  if (best_d <= std::max<size_t>(3, name.size() / 5))
    return "; a similarly named tensor '" + best + "' exists: is the checkpoint from another naming convention?";
  return "; no similarly named tensor exists among its " + std::to_string(src.tensors.size()) +
         " tensors: is it a checkpoint of a different model?";
}

bool IsFloatDType(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

float LoadAsF32(const char* p, DType t) {
  switch (t) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::kBF16: {
      BFloat16 h;
      std::memcpy(&h.bits, p, 2);
      return BF16ToFloat(h);
    }
    case DType::kF16: {
      Half h;
      std::memcpy(&h.bits, p, 2);
      return HalfToFloat(h);
    }
    default: ZT_CHECK(false) << "not a float dtype";
  }
  return 0;
}

void StoreF32(char* p, DType t, float v) {
  switch (t) {
    case DType::kF32: std::memcpy(p, &v, 4); break;
    case DType::kBF16: {
      BFloat16 h = FloatToBF16(v);
      std::memcpy(p, &h.bits, 2);
      break;
    }
    case DType::kF16: {
      Half h = FloatToHalf(v);
      std::memcpy(p, &h.bits, 2);
      break;
    }
    default: ZT_CHECK(false) << "not a float dtype";
  }
}

// `src` in dtype `to`: the view itself when nothing changes and it is aligned, else a copy in `buf`.
Tensor Convert(const Tensor& src, DType to, std::unique_ptr<uint64_t[]>* buf) {
  size_t in_size = DTypeSize(src.dtype);
  bool aligned = reinterpret_cast<uintptr_t>(src.data) % in_size == 0;
  if (src.dtype == to && aligned) return src;
  size_t n = static_cast<size_t>(src.numel());
  *buf = std::make_unique<uint64_t[]>((n * DTypeSize(to) + 7) / 8 + 1);
  char* out = reinterpret_cast<char*>(buf->get());
  const char* in = static_cast<const char*>(src.data);
  if (src.dtype == to) {
    if (n) std::memcpy(out, in, n * in_size);
  } else {
    size_t out_size = DTypeSize(to);
    for (size_t i = 0; i < n; ++i) StoreF32(out + i * out_size, to, LoadAsF32(in + i * in_size, src.dtype));
  }
  return Tensor(out, to, src.shape);
}

bool KnownNonParameter(const std::string& name) {
  return EndsWith(name, ".attn.bias") || EndsWith(name, ".attn.masked_bias") ||
         EndsWith(name, ".rotary_emb.inv_freq") || name == "attn.bias" || name == "attn.masked_bias";
}

std::string ShardName(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

Status RemoveIfExists(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  if (ec) return Unavailable("cannot remove " + p.string() + ": " + ec.message());
  return OkStatus();
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::vector<ParamSpec> ParamSpecs(const BuiltModel& m) {
  std::vector<ParamSpec> out;
  for (const ir::Value* p : m.params) out.push_back({p->name, p->dtype, p->shape});
  return out;
}

StatusOr<std::vector<ParamSpec>> ModelParamSpecs(const ModelConfig& c, DType dtype) {
  ir::Graph g("params");
  ir::Builder b(&g);
  ZT_ASSIGN_OR_RETURN(BuiltModel m, BuildModel(b, c, {.batch = 1, .seq = 1, .dtype = dtype}));
  return ParamSpecs(m);
}

StatusOr<LoadResult> LoadWeights(const std::string& path, const std::vector<ParamSpec>& params,
                                 const WeightSink& sink) {
  ZT_ASSIGN_OR_RETURN(std::unique_ptr<Source> src, OpenSource(path));
  // Resolve and check every parameter before the sink sees any.
  std::vector<const Source::Ref*> refs(params.size(), nullptr);
  std::set<std::string> used;
  std::vector<std::string> missing, problems;
  for (size_t i = 0; i < params.size(); ++i) {
    const ParamSpec& p = params[i];
    std::string found = p.name;
    auto it = src->tensors.find(found);
    for (const char* prefix : {"transformer.", "model."}) {
      if (it == src->tensors.end() && StartsWith(p.name, prefix)) {
        found = p.name.substr(std::strlen(prefix));
        it = src->tensors.find(found);
      }
    }
    if (it == src->tensors.end()) {
      missing.push_back(p.name);
      continue;
    }
    used.insert(found);
    refs[i] = &it->second;
    const SafetensorsEntry& e = *it->second.entry;
    if (e.shape != p.shape) {
      std::string hint;
      if (p.shape.rank() == 2 && e.shape.rank() == 2 && e.shape[0] == p.shape[1] && e.shape[1] == p.shape[0])
        hint = " (transposed: the file uses the other weight layout, [out, in] vs [in, out])";
      problems.push_back("parameter '" + p.name + "' has shape " + p.shape.ToString() + " in the model but " +
                         e.shape.ToString() + " in " + it->second.file_name + hint +
                         "; the config does not match the checkpoint");
    } else if (e.dtype != p.dtype && !(IsFloatDType(e.dtype) && IsFloatDType(p.dtype))) {
      problems.push_back("parameter '" + p.name + "' is " + DTypeName(p.dtype) + " but " + it->second.file_name +
                         " stores it as " + SafetensorsDTypeName(e.dtype) +
                         "; only f32/bf16/f16 convert to each other");
    }
  }
  if (!missing.empty()) {
    std::string msg = std::to_string(missing.size()) + " of the model's " + std::to_string(params.size()) +
                      " parameters are missing from " + src->label + ":";
    for (size_t i = 0; i < std::min(missing.size(), kMaxProblemsShown); ++i)
      msg += "\n  '" + missing[i] + "'" + SimilarHint(missing[i], *src, used);
    if (missing.size() > kMaxProblemsShown) msg += "\n  and " + std::to_string(missing.size() - kMaxProblemsShown) + " more";
    return NotFound(msg);
  }
  if (!problems.empty()) {
    std::string msg = "the weights in " + src->label + " do not fit the model:";
    for (size_t i = 0; i < std::min(problems.size(), kMaxProblemsShown); ++i) msg += "\n  " + problems[i];
    if (problems.size() > kMaxProblemsShown) msg += "\n  and " + std::to_string(problems.size() - kMaxProblemsShown) + " more";
    return InvalidArgument(msg);
  }

  LoadResult result;
  result.files = src->file_names;
  result.warnings = src->warnings;
  // Unused tensors: known non-parameters silently, a tied model's lm_head if it equals the embedding.
  std::set<std::string> param_names;
  for (const auto& p : params) param_names.insert(p.name);
  const Source::Ref* embed = nullptr;
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == "transformer.wte.weight" || params[i].name == "model.embed_tokens.weight") embed = refs[i];
  for (const auto& [name, ref] : src->tensors) {
    if (used.count(name) || KnownNonParameter(name)) continue;
    if (name == "lm_head.weight" && !param_names.count(name) && embed) {
      const SafetensorsEntry& h = *ref.entry;
      const SafetensorsEntry& w = *embed->entry;
      Tensor hv = ref.file->View(h), wv = embed->file->View(w);
      if (h.dtype == w.dtype && h.shape == w.shape && std::memcmp(hv.data, wv.data, h.nbytes) == 0) continue;
      result.warnings.push_back("lm_head.weight in " + ref.file_name + " differs from the embedding '" +
                                w.name + "', but the model ties its output head to the embedding: the file's "
                                "lm_head.weight is ignored (was the checkpoint trained with untied embeddings?)");
      continue;
    }
    result.warnings.push_back("tensor '" + name + "' (" + Describe(ref.entry->dtype, ref.entry->shape) + ") in " +
                              ref.file_name + " is not a parameter of the model; ignored");
  }

  for (size_t i = 0; i < params.size(); ++i) {
    std::unique_ptr<uint64_t[]> buf;
    Tensor host = Convert(refs[i]->file->View(*refs[i]->entry), params[i].dtype, &buf);
    ZT_RETURN_IF_ERROR(sink(params[i].name, host).WithContext("loading parameter '" + params[i].name + "'"));
  }
  return result;
}

StatusOr<std::vector<std::string>> ExportWeights(const std::string& dir, const ModelConfig& config,
                                                 const std::vector<TensorToWrite>& tensors,
                                                 uint64_t max_shard_bytes) {
  if (max_shard_bytes == 0) return InvalidArgument("ExportWeights: max_shard_bytes must be > 0");
  // The tensors must be exactly the model's parameters, so that config.json describes them.
  ZT_ASSIGN_OR_RETURN(std::vector<ParamSpec> specs, ModelParamSpecs(config));
  std::map<std::string, const TensorToWrite*> by_name;
  for (const auto& t : tensors) {
    if (!by_name.emplace(t.name, &t).second)
      return InvalidArgument("ExportWeights: tensor '" + t.name + "' is given twice");
  }
  for (const auto& s : specs) {
    auto it = by_name.find(s.name);
    if (it == by_name.end())
      return InvalidArgument("ExportWeights: parameter '" + s.name + "' of the " + ModelFamilyName(config.family) +
                             " model is not among the tensors to export");
    if (it->second->tensor.shape != s.shape)
      return InvalidArgument("ExportWeights: tensor '" + s.name + "' has shape " +
                             it->second->tensor.shape.ToString() + " but the config's model needs " +
                             s.shape.ToString());
    if (!IsFloatDType(it->second->tensor.dtype))
      return InvalidArgument("ExportWeights: tensor '" + s.name + "' is " + DTypeName(it->second->tensor.dtype) +
                             "; parameters are exported as f32, bf16 or f16");
  }
  if (by_name.size() != specs.size()) {
    std::set<std::string> known;
    for (const auto& s : specs) known.insert(s.name);
    for (const auto& t : tensors)
      if (!known.count(t.name))
        return InvalidArgument("ExportWeights: tensor '" + t.name + "' is not a parameter of the " +
                               ModelFamilyName(config.family) + " model in the config");
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) return Unavailable("cannot create export directory " + dir + ": " + ec.message());
  fs::path d(dir);
  // Unmark the directory first: without config.json, an index or model.safetensors, a crash below
  // leaves nothing that looks like a finished export.
  ZT_RETURN_IF_ERROR(RemoveIfExists(d / "config.json"));
  ZT_RETURN_IF_ERROR(RemoveIfExists(d / kIndexName));
  ZT_RETURN_IF_ERROR(RemoveIfExists(d / kSingleName));
  SyncDir(dir);

  std::vector<std::vector<TensorToWrite>> shards(1);
  uint64_t shard_bytes = 0, total = 0;
  for (const auto& t : tensors) {
    uint64_t n = t.tensor.nbytes();
    if (!shards.back().empty() && shard_bytes + n > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += n;
    total += n;
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};  // transformers requires it
  std::vector<std::string> written;
  std::set<std::string> keep;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::map<std::string, std::string> sorted_map;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string name = shards.size() == 1 ? kSingleName : ShardName(i, shards.size());
    std::string file = (d / name).string();
    ZT_RETURN_IF_ERROR(WriteSafetensors(file, shards[i], metadata));
    written.push_back(file);
    keep.insert(name);
    for (const auto& t : shards[i]) sorted_map[t.name] = name;
  }
  // Shards of earlier exports that are not part of this one.
  static const std::regex kShardPattern(R"(model-\d{5}-of-\d{5}\.safetensors)");
  for (const auto& entry : fs::directory_iterator(d, ec)) {
    std::string name = entry.path().filename().string();
    if (std::regex_match(name, kShardPattern) && !keep.count(name)) ZT_RETURN_IF_ERROR(RemoveIfExists(entry.path()));
  }
  if (ec) return Unavailable("cannot list " + dir + ": " + ec.message());
  SyncDir(dir);
  if (shards.size() > 1) {
    for (const auto& [k, v] : sorted_map) weight_map[k] = v;
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = std::move(weight_map);
    std::string file = (d / kIndexName).string();
    ZT_RETURN_IF_ERROR(WriteFileAtomically(file, index.dump(2) + "\n"));
    written.push_back(file);
  }
  std::string config_file = (d / "config.json").string();
  ZT_RETURN_IF_ERROR(WriteHfConfig(config, config_file, tensors.empty() ? DType::kF32 : tensors[0].tensor.dtype));
  written.push_back(config_file);
  return written;
}

}  // namespace zt::models
