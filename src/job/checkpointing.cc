// Checkpointer: resume at start, snapshot + host tier + disk writer after due steps.
// The host tier's snapshots carry their own resume record (section "meta/resume": JSON with the
// step counters, the loss scaler and the sampler position), since no manifest describes them.
#include "job/checkpointing.h"

#include <nlohmann/json.hpp>

#include "ckpt/host_store.h"
#include "ckpt/io_pool.h"
#include "ckpt/reader.h"
#include "ckpt/reshard.h"
#include "ckpt/restore.h"
#include "ckpt/writer.h"
#include "comm/memory_store.h"
#include "comm/prefix_store.h"
#include "core/logging.h"
#include "core/settings.h"

namespace zt::job {
namespace {

constexpr const char* kResumeSection = "meta/resume";
constexpr size_t kResumeRecordReserve = 4096;  // the record is ~200 bytes of JSON

// What a resume needs besides the state sections, in both tiers' terms.
struct ResumeRecord {
  EngineState engine;
  data::SamplerState sampler;
};

nlohmann::json RecordToJson(const ResumeRecord& r) {
  const auto& s = r.engine.scaler;
  return {{"step", r.engine.global_step},
          {"applied_updates", r.engine.applied_updates},
          {"scaler", {{"scale", s.scale}, {"iter", s.iter}, {"last_overflow_iter", s.last_overflow_iter},
                      {"hysteresis_left", s.hysteresis_left}}},
          {"sampler", {{"epoch", r.sampler.epoch}, {"position", r.sampler.position}}}};
}

StatusOr<ResumeRecord> RecordFromJson(const std::string& text, const std::string& label) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  try {
    if (!j.is_object()) throw std::runtime_error("not a JSON object");
    ResumeRecord r;
    r.engine.global_step = j.at("step").get<int64_t>();
    r.engine.applied_updates = j.at("applied_updates").get<int64_t>();
    const auto& s = j.at("scaler");
    r.engine.scaler.scale = s.at("scale").get<double>();
    r.engine.scaler.iter = s.at("iter").get<int64_t>();
    r.engine.scaler.last_overflow_iter = s.at("last_overflow_iter").get<int64_t>();
    r.engine.scaler.hysteresis_left = s.at("hysteresis_left").get<int>();
    r.sampler.epoch = j.at("sampler").at("epoch").get<int64_t>();
    r.sampler.position = j.at("sampler").at("position").get<int64_t>();
    return r;
  } catch (const std::exception& e) {
    return DataLoss(label + ": the resume record is damaged (" + e.what() + ")");
  }
}

ResumeRecord RecordFromManifest(const ckpt::Manifest& m) {
  ResumeRecord r;
  r.engine.global_step = m.step;
  r.engine.applied_updates = m.applied_updates;
  r.engine.scaler = {m.scaler.scale, m.scaler.iter, m.scaler.last_overflow_iter, m.scaler.hysteresis_left};
  r.sampler = {m.sampler_epoch, m.sampler_position};
  return r;
}

// Reads "<kind>/<unit>" slices of host-memory snapshots: this rank's from the chosen slot, other
// ranks' (stage 0 restores whole parameters) from their segments on this node, the slot holding
// the same step.
class HostSections {
 public:
  HostSections(ckpt::RankSnapshot own, int64_t step) : step_(step) {
    int r = own.rank;
    snaps_[r] = std::make_unique<ckpt::RankSnapshot>(std::move(own));
  }

  Status Read(int rank, const std::string& section, int64_t first, int64_t count, float* out) {
    ZT_ASSIGN_OR_RETURN(const ckpt::RankSnapshot* s, Snapshot(rank));
    const ckpt::SnapshotSection* sec = s->Find(section);
    if (sec == nullptr || sec->dtype != DType::kF32 || first < 0 || first + count > sec->numel) {
      return DataLoss("the host-memory snapshot of rank " + std::to_string(rank) + " (step " + std::to_string(step_) +
                      ") lacks elements [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of " +
                      section);
    }
    std::memcpy(out, s->bytes.data() + sec->offset + first * sizeof(float), count * sizeof(float));
    return OkStatus();
  }

 private:
  StatusOr<const ckpt::RankSnapshot*> Snapshot(int rank) {
    auto it = snaps_.find(rank);
    if (it != snaps_.end()) return it->second.get();
    const std::string prefix = settings::GetString("ZT_SHM_PREFIX");
    auto store = ckpt::HostStore::Open(prefix, rank, /*create=*/false);
    if (!store.ok()) {
      return store.status().WithContext("reading rank " + std::to_string(rank) +
                                        "'s host-memory snapshot (it must be on this node)");
    }
    for (const ckpt::HostSlotInfo& info : (*store)->List()) {
      if (info.step != step_) continue;
      ZT_ASSIGN_OR_RETURN(ckpt::RankSnapshot s, (*store)->ReadSlot(info.slot));
      auto owned = std::make_unique<ckpt::RankSnapshot>(std::move(s));
      const ckpt::RankSnapshot* p = owned.get();
      snaps_[rank] = std::move(owned);
      return p;
    }
    return NotFound("rank " + std::to_string(rank) + "'s host-memory segment no longer holds step " +
                    std::to_string(step_));
  }

  int64_t step_;
  std::map<int, std::unique_ptr<ckpt::RankSnapshot>> snaps_;
};

}  // namespace

struct Checkpointer::Impl {
  const config::RunConfig& config;
  Engine& engine;
  data::BatchSampler& sampler;
  int rank = 0;
  int world_size = 1;
  comm::MemoryStore local_store;  // a single process's store
  comm::Store* store = nullptr;
  std::unique_ptr<ckpt::HostStore> host;
  std::unique_ptr<ckpt::SnapshotPool> pool;
  std::unique_ptr<ckpt::CheckpointWriter> writer;
  int64_t last_saved = -1;
  // One thread finishes snapshots in step order: waits for their copies, publishes them to the
  // host tier and submits them to the writer. Declared last: destroyed (drained) first.
  ckpt::TaskGroup finishing;
  std::unique_ptr<ckpt::IoPool> finisher;

  Impl(const config::RunConfig& c, Engine& e, data::BatchSampler& s) : config(c), engine(e), sampler(s) {}

  ckpt::Manifest ManifestFields(const ResumeRecord& r) const {
    ckpt::Manifest m;
    m.step = r.engine.global_step;
    m.applied_updates = r.engine.applied_updates;
    m.world_size = world_size;
    m.zero_stage = config.zero_stage;
    m.precision = config::PrecisionName(config.precision);
    m.layout = engine.checkpoint_layout();
    m.layout.stage = config.zero_stage;
    m.layout.world_size = world_size;
    const auto& s = r.engine.scaler;
    m.scaler = {s.scale, s.iter, s.last_overflow_iter, s.hysteresis_left};
    m.sampler_epoch = r.sampler.epoch;
    m.sampler_position = r.sampler.position;
    m.seed = config.run.seed;
    m.config = config.raw;
    return m;
  }

  Status Apply(const ResumeRecord& r) {
    engine.Restore(r.engine);
    return sampler.Restore(r.sampler);
  }

  StatusOr<ResumePoint> RestoreFromDisk(const ckpt::RestoreChoice& choice) {
    auto reader = ckpt::LoadCheckpoint(config.checkpoint.dir, choice.step);
    if (!reader.ok()) return reader.status().WithContext("resuming from " + choice.Describe());
    const ckpt::Manifest& m = (*reader)->manifest();
    auto* rd = reader->get();
    ZT_RETURN_IF_ERROR(engine.RestoreState(m.layout, [rd](int r, const std::string& section, int64_t first,
                                                          int64_t count, float* out) {
      return rd->ReadElements(r, section, DType::kF32, first, count, out);
    }).WithContext("resuming from " + choice.Describe()));
    if (m.world_size != world_size) {
      ZT_LOG(INFO) << "resharded checkpoint step " << m.step << " from " << m.world_size << " to " << world_size
                   << " ranks";
    }
    ZT_RETURN_IF_ERROR(Apply(RecordFromManifest(m)));
    return ResumePoint{m.step, choice.Describe()};
  }

  StatusOr<ResumePoint> RestoreFromHost(const ckpt::RestoreChoice& choice) {
    ZT_ASSIGN_OR_RETURN(ckpt::RankSnapshot own, host->ReadSlot(choice.host_slot));
    const ckpt::SnapshotSection* meta = own.Find(kResumeSection);
    if (meta == nullptr) return DataLoss("host-memory snapshot " + choice.Describe() + " has no resume record");
    std::string text(own.bytes.data() + meta->offset, meta->nbytes());
    ZT_ASSIGN_OR_RETURN(ResumeRecord record, RecordFromJson(text, "host-memory snapshot " + choice.Describe()));
    passes::ZeroLayout source = engine.checkpoint_layout();  // same job, same world size
    source.world_size = world_size;
    HostSections sections(std::move(own), choice.step);
    ZT_RETURN_IF_ERROR(engine.RestoreState(source, [&](int r, const std::string& section, int64_t first,
                                                       int64_t count, float* out) {
      return sections.Read(r, section, first, count, out);
    }).WithContext("resuming from " + choice.Describe()));
    ZT_RETURN_IF_ERROR(Apply(record));
    return ResumePoint{record.engine.global_step, choice.Describe()};
  }
};

Checkpointer::Checkpointer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpointer::~Checkpointer() {
  if (!impl_) return;
  Status s = Finish();
  if (!s.ok()) {
    ZT_LOG(WARNING) << "checkpoint writer: " << s.ToString();
  }
}

StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Create(const config::RunConfig& c, Engine& engine,
                                                            data::BatchSampler& sampler, comm::Store* store, int rank,
                                                            int world_size) {
  auto impl = std::make_unique<Impl>(c, engine, sampler);
  impl->rank = rank;
  impl->world_size = world_size;
  impl->store = store ? store : &impl->local_store;
  const auto& k = c.checkpoint;
  if (k.host_tier) {
    auto host = ckpt::OpenJobHostStore(rank);
    if (!host.ok()) return host.status().WithContext("opening the host-memory checkpoint tier");
    impl->host = std::move(*host);  // null outside `ztrain launch`: no host tier
  }
  impl->pool = std::make_unique<ckpt::SnapshotPool>(k.max_in_flight + 1, engine.snapshot_allocator());
  impl->finisher = std::make_unique<ckpt::IoPool>(1);
  return std::unique_ptr<Checkpointer>(new Checkpointer(std::move(impl)));
}

StatusOr<ResumePoint> Checkpointer::Resume() {
  Impl& m = *impl_;
  const auto& k = m.config.checkpoint;
  ResumePoint fresh{0, "nothing"};
  if (k.resume) {
    std::unique_ptr<ckpt::DiskCatalog> disk = k.disk_tier ? ckpt::DiskCatalogFor(k.dir) : nullptr;
    comm::PrefixStore scoped(*m.store, "ckpt-resume/");
    ZT_ASSIGN_OR_RETURN(ckpt::RestoreChoice choice,
                        ckpt::ChooseRestore(m.host.get(), disk.get(), scoped, m.rank, m.world_size));
    // (ChooseRestore has logged every checkpoint it skipped, and why.)
    if (choice.source == ckpt::RestoreSource::kDisk) {
      ZT_ASSIGN_OR_RETURN(fresh, m.RestoreFromDisk(choice));
    } else if (choice.source == ckpt::RestoreSource::kHostMemory) {
      ZT_ASSIGN_OR_RETURN(fresh, m.RestoreFromHost(choice));
    }
    if (m.rank == 0 && choice.source != ckpt::RestoreSource::kNone) {
      std::printf("resumed from %s\n", fresh.source.c_str());
      std::fflush(stdout);
    }
  }
  if (!k.resume && k.disk_tier) {
    // Starting over in a directory of checkpoints would interleave two runs' steps: refuse.
    auto list = ckpt::ListCheckpoints(k.dir);
    if (list.ok() && (!list->latest.empty() || !list->entries.empty())) {
      return FailedPrecondition("checkpoint.dir " + k.dir + " already holds checkpoints" +
                                (list->latest.empty() ? std::string() : " (LATEST: " + list->latest + ")") +
                                " and checkpoint.resume is \"never\": give another checkpoint.dir, remove that one, "
                                "or resume with \"auto\"");
    }
  }
  m.last_saved = fresh.step;
  if (k.enabled() && (m.host || k.disk_tier)) {
    // Size (and on a GPU, pin) every snapshot buffer now: page-locking takes ~0.2 s per GB, which
    // the first max_in_flight + 1 checkpoints would otherwise pay on the training thread.
    std::vector<size_t> sizes = {kResumeRecordReserve};
    for (size_t n : m.engine.SnapshotSectionBytes()) sizes.push_back(n);
    const size_t need = ckpt::RankSnapshot().BytesToAdd(sizes);
    std::vector<std::unique_ptr<ckpt::RankSnapshot>> all;
    for (int i = 0; i < m.pool->capacity(); ++i) {
      all.push_back(m.pool->Acquire());
      all.back()->bytes.reserve(need);
    }
    for (auto& s : all) m.pool->Release(std::move(s));
  }
  if (k.disk_tier) {
    ckpt::WriterOptions o;
    o.dir = k.dir;
    o.rank = m.rank;
    o.world_size = m.world_size;
    o.store = m.world_size > 1 ? m.store : nullptr;
    o.pool = m.pool.get();
    o.max_in_flight = k.max_in_flight;
    o.io_threads = k.io_threads;
    o.chunk_bytes = static_cast<size_t>(k.chunk_bytes);
    o.direct_io = k.direct_io;
    o.keep_last = k.keep_last;
    auto w = ckpt::CheckpointWriter::Open(o);
    if (!w.ok()) return w.status().WithContext("opening the checkpoint directory " + k.dir);
    m.writer = std::move(*w);
  }
  return fresh;
}

Status Checkpointer::AfterStep(int64_t step, bool last) {
  Impl& m = *impl_;
  const auto& k = m.config.checkpoint;
  if (!k.enabled() || step <= m.last_saved) return OkStatus();
  if (step % k.interval != 0 && !last) return OkStatus();
  if (!m.host && !m.writer) return OkStatus();
  // A failure of an earlier checkpoint's finishing is reported here, once.
  ZT_RETURN_IF_ERROR(m.finishing.TakeError());
  std::unique_ptr<ckpt::RankSnapshot> snap = m.pool->Acquire();  // blocks while C+1 are in use
  ResumeRecord record{m.engine.state(), m.sampler.State()};
  std::string meta = RecordToJson(record).dump();
  std::memcpy(snap->AddSection(kResumeSection, DType::kU8, static_cast<int64_t>(meta.size())), meta.data(),
              meta.size());
  auto pending = m.engine.StartSnapshot(snap.get());  // queues the copies; training goes on
  if (!pending.ok()) {
    m.pool->Release(std::move(snap));
    return pending.status();
  }
  m.last_saved = step;
  ckpt::Manifest fields = m.ManifestFields(record);
  m.finishing.Add();
  // The task owns the snapshot until it hands it to the writer (or back to the pool).
  // (IoPool runs every queued task, so the released snapshot always comes back.)
  auto task = [&m, step, raw = snap.release(), p = std::shared_ptr<PendingSnapshot>(std::move(*pending)),
               fields = std::move(fields)] {
    std::unique_ptr<ckpt::RankSnapshot> owned(raw);
    Status s = p->Wait();
    if (s.ok() && m.host) {
      Status put = m.host->Put(*owned);
      if (!put.ok()) {
        ZT_LOG(WARNING) << "host-memory checkpoint of step " << step << " failed: " << put.ToString();
      }
    }
    if (s.ok() && m.writer) {
      s = m.writer->Submit(std::move(owned), fields);
    } else {
      m.pool->Release(std::move(owned));
    }
    m.finishing.Done(s);
  };
  m.finisher->Run(std::move(task));
  return OkStatus();
}

Status Checkpointer::Finish() {
  Impl& m = *impl_;
  (void)m.finishing.Wait();  // its first error is taken next
  Status finished = m.finishing.TakeError();
  if (m.writer) {
    Status flushed = m.writer->Flush();
    if (finished.ok()) finished = flushed;
  }
  return finished;
}

}  // namespace zt::job
