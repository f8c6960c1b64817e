// Manifest <-> JSON. ParseManifest checks every key's presence and type and the consistency of
// the numbers (layout sums, shard ranks, section ranges), naming the key path in its errors.
#include "ckpt/manifest.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "ckpt/checksum.h"
#include "ckpt/format.h"

namespace zt::ckpt {
namespace {

using nlohmann::json;

json SectionsJson(const std::vector<SnapshotSection>& sections) {
  json a = json::array();
  for (const auto& s : sections)
    a.push_back({{"name", s.name}, {"dtype", DTypeName(s.dtype)}, {"numel", s.numel}, {"offset", s.offset}});
  return a;
}

// Reads typed fields of one JSON object, naming "<label>: key 'a.b[3].c'" in errors.
class Reader {
 public:
  Reader(const json& j, std::string path, const std::string& label) : j_(j), path_(std::move(path)), label_(label) {}

  Status IsObject() const {
    if (!j_.is_object()) return Bad(path_.empty() ? "the manifest" : "key '" + path_ + "'", "is not a JSON object");
    return OkStatus();
  }
  StatusOr<const json*> Field(const std::string& key) const {
    auto it = j_.find(key);
    if (it == j_.end()) return Bad("key '" + Path(key) + "'", "is missing");
    return &*it;
  }
  StatusOr<int64_t> Int(const std::string& key, int64_t lo, int64_t hi = std::numeric_limits<int64_t>::max()) const {
    ZT_ASSIGN_OR_RETURN(const json* v, Field(key));
    if (!v->is_number_integer()) return Bad("key '" + Path(key) + "'", "must be an integer, not " + v->dump());
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return Bad("key '" + Path(key) + "'", "is out of range: " + v->dump());
    int64_t x = v->get<int64_t>();
    if (x < lo || x > hi)
      return Bad("key '" + Path(key) + "'",
                 "is " + std::to_string(x) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
  StatusOr<uint64_t> UInt(const std::string& key) const {
    ZT_ASSIGN_OR_RETURN(const json* v, Field(key));
    if (!v->is_number_integer() || (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0))
      return Bad("key '" + Path(key) + "'", "must be a non-negative integer, not " + v->dump());
    return v->get<uint64_t>();
  }
  StatusOr<double> Double(const std::string& key) const {
    ZT_ASSIGN_OR_RETURN(const json* v, Field(key));
    if (!v->is_number()) return Bad("key '" + Path(key) + "'", "must be a number, not " + v->dump());
    double x = v->get<double>();
    if (!std::isfinite(x)) return Bad("key '" + Path(key) + "'", "must be finite");
    return x;
  }
  StatusOr<std::string> String(const std::string& key) const {
    ZT_ASSIGN_OR_RETURN(const json* v, Field(key));
    if (!v->is_string()) return Bad("key '" + Path(key) + "'", "must be a string, not " + v->dump());
    return v->get<std::string>();
  }
  StatusOr<DType> Dtype(const std::string& key) const {
    ZT_ASSIGN_OR_RETURN(std::string s, String(key));
    auto d = ParseDType(s);
    if (!d) return Bad("key '" + Path(key) + "'", "is '" + s + "', not a dtype (f32 bf16 f16 i32 i64 u8)");
    return *d;
  }
  StatusOr<const json*> Array(const std::string& key) const {
    ZT_ASSIGN_OR_RETURN(const json* v, Field(key));
    if (!v->is_array()) return Bad("key '" + Path(key) + "'", "must be an array, not " + Brief(*v));
    return v;
  }
  StatusOr<Reader> Object(const std::string& key) const {
    ZT_ASSIGN_OR_RETURN(const json* v, Field(key));
    Reader r(*v, Path(key), label_);
    ZT_RETURN_IF_ERROR(r.IsObject());
    return r;
  }
  Reader Element(const json& e, const std::string& key, size_t i) const {
    return Reader(e, Path(key) + "[" + std::to_string(i) + "]", label_);
  }
  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  // "<label>: <what> <problem>".
  Status Bad(const std::string& what, const std::string& problem) const {
    return DataLoss(label_ + ": " + what + " " + problem +
                    " (the manifest is damaged or was not written by this ztrain; use another checkpoint)");
  }
  Status BadKey(const std::string& key, const std::string& problem) const {
    return Bad("key '" + Path(key) + "'", problem);
  }

 private:
  static std::string Brief(const json& v) {
    std::string s = v.dump();
    return s.size() > 40 ? s.substr(0, 40) + "..." : s;
  }
  const json& j_;
  std::string path_;
  const std::string& label_;
};

StatusOr<passes::ZeroUnit> ParseUnit(const Reader& r, int64_t world_size) {
  ZT_RETURN_IF_ERROR(r.IsObject());
  passes::ZeroUnit u;
  ZT_ASSIGN_OR_RETURN(u.name, r.String("name"));
  if (u.name.empty()) return r.BadKey("name", "is empty");
  ZT_ASSIGN_OR_RETURN(u.dtype, r.Dtype("dtype"));
  ZT_ASSIGN_OR_RETURN(u.numel, r.Int("numel", 0));
  ZT_ASSIGN_OR_RETURN(u.padded, r.Int("padded", 0));
  ZT_ASSIGN_OR_RETURN(u.shard, r.Int("shard", 0));
  ZT_ASSIGN_OR_RETURN(u.weight_decay, r.Double("weight_decay"));
  ZT_ASSIGN_OR_RETURN(const json* params, r.Array("params"));
  int64_t offset = 0;
  for (size_t i = 0; i < params->size(); ++i) {
    Reader p = r.Element((*params)[i], "params", i);
    ZT_RETURN_IF_ERROR(p.IsObject());
    passes::ZeroParam zp;
    ZT_ASSIGN_OR_RETURN(zp.name, p.String("name"));
    ZT_ASSIGN_OR_RETURN(zp.dtype, p.Dtype("dtype"));
    ZT_ASSIGN_OR_RETURN(const json* shape, p.Array("shape"));
    std::vector<int64_t> dims;
    int64_t numel = 1;
    for (const json& d : *shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        return p.BadKey("shape", "must hold non-negative integers, not " + d.dump());
      dims.push_back(d.get<int64_t>());
      if (dims.back() > 0 && numel > std::numeric_limits<int64_t>::max() / dims.back())
        return p.BadKey("shape", "has more elements than fit in 64 bits");
      numel *= dims.back();
    }
    zp.shape = Shape(dims);
    ZT_ASSIGN_OR_RETURN(zp.offset, p.Int("offset", 0));
    if (zp.offset != offset)
      return p.BadKey("offset", "is " + std::to_string(zp.offset) + " but the parameters before it end at " +
                                    std::to_string(offset));
    if (zp.dtype != u.dtype)
      return p.BadKey("dtype", std::string("is ") + DTypeName(zp.dtype) + " but its unit is " + DTypeName(u.dtype));
    offset += numel;
    u.params.push_back(std::move(zp));
  }
  if (u.numel != offset)
    return r.BadKey("numel", "is " + std::to_string(u.numel) + " but its parameters hold " + std::to_string(offset) +
                                 " elements");
  int64_t shard = (u.numel + world_size - 1) / world_size;
  if (u.shard != shard || u.padded != shard * world_size)
    return r.Bad("unit '" + u.name + "'", "has shard " + std::to_string(u.shard) + " and padded " +
                                              std::to_string(u.padded) + "; " + std::to_string(u.numel) +
                                              " elements over " + std::to_string(world_size) + " ranks give shard " +
                                              std::to_string(shard) + " and padded " +
                                              std::to_string(shard * world_size));
  return u;
}

StatusOr<ShardInfo> ParseShard(const Reader& r, int expected_rank) {
  ZT_RETURN_IF_ERROR(r.IsObject());
  ShardInfo s;
  ZT_ASSIGN_OR_RETURN(int64_t rank, r.Int("rank", 0, std::numeric_limits<int>::max()));
  if (rank != expected_rank)
    return r.BadKey("rank", "is " + std::to_string(rank) + "; shards must be listed in rank order, so " +
                                std::to_string(expected_rank) + " was expected");
  s.rank = static_cast<int>(rank);
  ZT_ASSIGN_OR_RETURN(s.file, r.String("file"));
  if (s.file.empty() || s.file.find('/') != std::string::npos || s.file == "." || s.file == "..")
    return r.BadKey("file", "is '" + s.file + "': a shard is a plain file name inside the checkpoint directory");
  ZT_ASSIGN_OR_RETURN(s.bytes, r.UInt("bytes"));
  if (s.bytes < kShardDataOffset)
    return r.BadKey("bytes", "is " + std::to_string(s.bytes) + ", smaller than a shard's " +
                                 std::to_string(kShardDataOffset) + "-byte header block");
  ZT_ASSIGN_OR_RETURN(s.checksum, r.String("checksum"));
  if (!ParseChecksum(s.checksum))
    return r.BadKey("checksum", "is '" + s.checksum + "', expected xxh64: and 16 lowercase hex digits");
  ZT_ASSIGN_OR_RETURN(const json* sections, r.Array("sections"));
  std::set<std::string> names;
  for (size_t i = 0; i < sections->size(); ++i) {
    Reader e = r.Element((*sections)[i], "sections", i);
    ZT_RETURN_IF_ERROR(e.IsObject());
    SnapshotSection sec;
    ZT_ASSIGN_OR_RETURN(sec.name, e.String("name"));
    if (sec.name.empty()) return e.BadKey("name", "is empty");
    if (!names.insert(sec.name).second) return e.BadKey("name", "'" + sec.name + "' appears twice in this shard");
    ZT_ASSIGN_OR_RETURN(sec.dtype, e.Dtype("dtype"));
    ZT_ASSIGN_OR_RETURN(sec.numel, e.Int("numel", 0));
    ZT_ASSIGN_OR_RETURN(uint64_t off, e.UInt("offset"));
    sec.offset = static_cast<size_t>(off);
    uint64_t nbytes = static_cast<uint64_t>(sec.numel) * DTypeSize(sec.dtype);
    if (sec.numel > 0 && nbytes / DTypeSize(sec.dtype) != static_cast<uint64_t>(sec.numel))
      return e.BadKey("numel", "is too large");
    if (off < kShardDataOffset || off > s.bytes || nbytes > s.bytes - off)
      return e.Bad("section '" + sec.name + "'",
                   "lies at bytes [" + std::to_string(off) + ", " + std::to_string(off + nbytes) +
                       "), outside the shard's data [" + std::to_string(kShardDataOffset) + ", " +
                       std::to_string(s.bytes) + ")");
    s.sections.push_back(std::move(sec));
  }
  // Sections must not overlap.
  std::vector<const SnapshotSection*> by_offset;
  for (const auto& sec : s.sections) by_offset.push_back(&sec);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SnapshotSection* a, const SnapshotSection* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes() > by_offset[i]->offset)
      return r.Bad("sections '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "'", "overlap");
  return s;
}

}  // namespace

nlohmann::json ShardToJson(const ShardInfo& s) {
  return {{"rank", s.rank},
          {"file", s.file},
          {"bytes", s.bytes},
          {"checksum", s.checksum},
          {"sections", SectionsJson(s.sections)}};
}

StatusOr<ShardInfo> ParseShardInfo(const nlohmann::json& j, int expected_rank, const std::string& label) {
  return ParseShard(Reader(j, "", label), expected_rank);
}

nlohmann::json ToJson(const Manifest& m) {
  json units = json::array();
  for (const auto& u : m.layout.units) {
    json params = json::array();
    for (const auto& p : u.params)
      params.push_back({{"name", p.name}, {"dtype", DTypeName(p.dtype)}, {"shape", p.shape.dims()}, {"offset", p.offset}});
    units.push_back({{"name", u.name},
                     {"dtype", DTypeName(u.dtype)},
                     {"numel", u.numel},
                     {"padded", u.padded},
                     {"shard", u.shard},
                     {"weight_decay", u.weight_decay},
                     {"params", std::move(params)}});
  }
  json shards = json::array();
  for (const auto& s : m.shards) shards.push_back(ShardToJson(s));
  json j;
  j["format"] = kManifestFormat;
  j["format_version"] = m.format_version;
  j["step"] = m.step;
  j["applied_updates"] = m.applied_updates;
  j["world_size"] = m.world_size;
  j["zero_stage"] = m.zero_stage;
  j["precision"] = m.precision;
  j["layout"] = {{"stage", m.layout.stage}, {"world_size", m.layout.world_size}, {"units", std::move(units)}};
  j["shards"] = std::move(shards);
  j["scaler"] = {{"scale", m.scaler.scale},
                 {"iter", m.scaler.iter},
                 {"last_overflow_iter", m.scaler.last_overflow_iter},
                 {"hysteresis_left", m.scaler.hysteresis_left}};
  j["sampler"] = {{"epoch", m.sampler_epoch}, {"position", m.sampler_position}};
  j["seed"] = m.seed;
  j["config"] = m.config;
  j["created"] = m.created;
  return j;
}

StatusOr<Manifest> ParseManifest(const nlohmann::json& j, const std::string& label) {
  Reader r(j, "", label);
  ZT_RETURN_IF_ERROR(r.IsObject());
  Manifest m;
  ZT_ASSIGN_OR_RETURN(std::string format, r.String("format"));
  if (format != kManifestFormat) return r.BadKey("format", "is '" + format + "', expected '" + kManifestFormat + "'");
  ZT_ASSIGN_OR_RETURN(int64_t version, r.Int("format_version", 0, std::numeric_limits<int>::max()));
  if (version != kFormatVersion)
    return DataLoss(label + ": checkpoint format_version " + std::to_string(version) + "; this ztrain reads version " +
                    std::to_string(kFormatVersion) + " (use the ztrain that wrote it)");
  m.format_version = static_cast<int>(version);
  ZT_ASSIGN_OR_RETURN(m.step, r.Int("step", 0));
  ZT_ASSIGN_OR_RETURN(m.applied_updates, r.Int("applied_updates", 0));
  if (m.applied_updates > m.step)
    return r.BadKey("applied_updates", "is " + std::to_string(m.applied_updates) + ", more than the " +
                                           std::to_string(m.step) + " steps taken");
  ZT_ASSIGN_OR_RETURN(int64_t world, r.Int("world_size", 1, kMaxRanks));
  m.world_size = static_cast<int>(world);
  ZT_ASSIGN_OR_RETURN(int64_t stage, r.Int("zero_stage", 0, 3));
  m.zero_stage = static_cast<int>(stage);
  ZT_ASSIGN_OR_RETURN(m.precision, r.String("precision"));
  if (m.precision != "fp32" && m.precision != "bf16" && m.precision != "fp16")
    return r.BadKey("precision", "is '" + m.precision + "', expected fp32, bf16 or fp16");

  ZT_ASSIGN_OR_RETURN(Reader layout, r.Object("layout"));
  ZT_ASSIGN_OR_RETURN(int64_t lstage, layout.Int("stage", 0, 3));
  if (lstage != m.zero_stage)
    return layout.BadKey("stage", "is " + std::to_string(lstage) + " but zero_stage is " + std::to_string(m.zero_stage));
  m.layout.stage = static_cast<int>(lstage);
  ZT_ASSIGN_OR_RETURN(m.layout.world_size, layout.Int("world_size", 1, kMaxRanks));
  if (m.layout.world_size != m.world_size)
    return layout.BadKey("world_size", "is " + std::to_string(m.layout.world_size) + " but world_size is " +
                                           std::to_string(m.world_size));
  ZT_ASSIGN_OR_RETURN(const json* units, layout.Array("units"));
  std::set<std::string> unit_names;
  for (size_t i = 0; i < units->size(); ++i) {
    ZT_ASSIGN_OR_RETURN(passes::ZeroUnit u, ParseUnit(layout.Element((*units)[i], "units", i), m.world_size));
    if (!unit_names.insert(u.name).second)
      return layout.BadKey("units[" + std::to_string(i) + "].name", "'" + u.name + "' appears twice");
    m.layout.units.push_back(std::move(u));
  }

  ZT_ASSIGN_OR_RETURN(const json* shards, r.Array("shards"));
  if (shards->size() != static_cast<size_t>(m.world_size))
    return r.BadKey("shards", "lists " + std::to_string(shards->size()) + " shards for world_size " +
                                  std::to_string(m.world_size));
  std::set<std::string> files;
  for (size_t i = 0; i < shards->size(); ++i) {
    ZT_ASSIGN_OR_RETURN(ShardInfo s, ParseShard(r.Element((*shards)[i], "shards", i), static_cast<int>(i)));
    if (!files.insert(s.file).second) return r.BadKey("shards", "name the file '" + s.file + "' twice");
    m.shards.push_back(std::move(s));
  }

  ZT_ASSIGN_OR_RETURN(Reader scaler, r.Object("scaler"));
  ZT_ASSIGN_OR_RETURN(m.scaler.scale, scaler.Double("scale"));
  if (!(m.scaler.scale > 0)) return scaler.BadKey("scale", "must be > 0");
  ZT_ASSIGN_OR_RETURN(m.scaler.iter, scaler.Int("iter", 0));
  ZT_ASSIGN_OR_RETURN(m.scaler.last_overflow_iter, scaler.Int("last_overflow_iter", -1));
  ZT_ASSIGN_OR_RETURN(int64_t hyst, scaler.Int("hysteresis_left", 0, std::numeric_limits<int>::max()));
  m.scaler.hysteresis_left = static_cast<int>(hyst);

  ZT_ASSIGN_OR_RETURN(Reader sampler, r.Object("sampler"));
  ZT_ASSIGN_OR_RETURN(m.sampler_epoch, sampler.Int("epoch", 0));
  ZT_ASSIGN_OR_RETURN(m.sampler_position, sampler.Int("position", 0));
  ZT_ASSIGN_OR_RETURN(m.seed, r.UInt("seed"));
  ZT_ASSIGN_OR_RETURN(const json* config, r.Field("config"));
  if (!config->is_object() && !config->is_null())
    return r.BadKey("config", "must be the run's JSON object (or null)");
  m.config = *config;
  ZT_ASSIGN_OR_RETURN(m.created, r.String("created"));
  return m;
}

StatusOr<Manifest> ParseManifestText(const std::string& text, const std::string& label) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return DataLoss(label + ": not valid JSON (a damaged or truncated manifest); use another checkpoint");
  return ParseManifest(j, label);
}

std::string ManifestText(const Manifest& m) { return ToJson(m).dump(1) + "\n"; }

}  // namespace zt::ckpt
