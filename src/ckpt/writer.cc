// CheckpointWriter: driver threads (one per checkpoint in flight), a shared IoPool, and one
// committer thread that finishes checkpoints in step order.
#include "ckpt/writer.h"

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include "ckpt/commit.h"
#include "ckpt/format.h"
#include "ckpt/io_pool.h"
#include "ckpt/shard_io.h"
#include "comm/memory_store.h"
#include "core/logging.h"

namespace zt::ckpt {
namespace {

constexpr const char* kOpenKey = "ckpt/open";

std::string NowIso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct Job {
  int64_t step = 0;
  std::unique_ptr<RankSnapshot> snapshot;
  Manifest fields;
  std::thread driver;
  StatusOr<ShardInfo> shard = Internal("shard not written");
  double seconds = 0;
};

}  // namespace

struct CheckpointWriter::Impl {
  WriterOptions o;
  FileSystem* fs = nullptr;
  comm::Store* store = nullptr;
  std::unique_ptr<comm::MemoryStore> own_store;
  std::unique_ptr<IoPool> io;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Job>> jobs;  // submitted, not finished; front is the oldest
  int in_flight = 0;
  bool stopping = false;
  int64_t last_step = -1;
  std::vector<Status> errors;  // unreported failures
  WriterStats stats;
  std::thread committer;
  int64_t previous_commit_key = -1;  // rank 0: the commit key to delete once every rank is past it

  void ReleaseSnapshot(Job& job) {
    if (!job.snapshot) return;
    if (o.pool != nullptr) {
      o.pool->Release(std::move(job.snapshot));
    } else {
      job.snapshot.reset();
    }
  }

  void Drive(Job& job) {
    auto t0 = std::chrono::steady_clock::now();
    const std::string step_dir = JoinPath(o.dir, StepDirName(job.step));
    Status made = fs->MakeDir(step_dir);
    if (!made.ok()) {
      ReleaseSnapshot(job);
      job.shard = made;
      return;
    }
    ShardWriteOptions wo;
    wo.chunk_bytes = o.chunk_bytes;
    wo.direct_io = o.direct_io;
    wo.pool = io.get();
    wo.on_bytes_written = [this, &job] { ReleaseSnapshot(job); };
    auto r = WriteShard(*fs, step_dir, *job.snapshot, wo);
    ReleaseSnapshot(job);  // when WriteShard failed before writing anything
    if (r.ok()) {
      job.shard = std::move(r->info);
    } else {
      job.shard = r.status();
    }
    job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  // Reports the shard and waits for (rank 0: makes) the commit. Returns the checkpoint's outcome.
  Status Finish(Job& job) {
    const int64_t step = job.step;
    Status reported = ReportShard(*store, step, o.rank, job.shard);
    if (o.rank != 0) {
      if (!job.shard.ok()) return job.shard.status();
      if (!reported.ok()) return reported;
      if (!o.wait_for_commit) return OkStatus();
      auto verdict = store->Get(CommitKey(step));
      if (!verdict.ok()) return verdict.status().WithContext("waiting for rank 0 to commit step " + std::to_string(step));
      if (*verdict != "ok") return Unavailable("rank 0 did not commit step " + std::to_string(step) + ": " + *verdict);
      return OkStatus();
    }
    Status outcome;
    if (!reported.ok()) {
      outcome = reported;
    } else {
      auto shards = CollectReports(*store, step, o.world_size);
      // Every rank has reported this step, so every rank is past the previous step's verdict.
      if (previous_commit_key >= 0) (void)store->Delete(CommitKey(previous_commit_key));
      previous_commit_key = step;
      if (!shards.ok()) {
        outcome = shards.status();
      } else {
        Manifest m = job.fields;
        m.step = step;
        m.world_size = o.world_size;
        m.shards = std::move(shards).value();
        if (m.created.empty()) m.created = NowIso8601();
        outcome = CommitCheckpoint(*fs, o.dir, m);
      }
    }
    if (outcome.ok()) {
      auto gc = CollectGarbage(*fs, o.dir, o.keep_last, step, /*at_open=*/false);
      if (!gc.ok()) {
        ZT_LOG(WARNING) << "checkpoint garbage collection in " << o.dir << ": " << gc.status().message();
      }
    }
    (void)store->Set(CommitKey(step), outcome.ok() ? "ok" : outcome.ToString());
    return outcome;
  }

  void CommitLoop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return stopping || !jobs.empty(); });
        if (jobs.empty()) return;
        job = jobs.front();
      }
      job->driver.join();
      Status outcome = Finish(*job);
      if (!outcome.ok()) outcome = outcome.WithContext("checkpoint of step " + std::to_string(job->step) + " in " + o.dir);
      if (o.on_done) o.on_done(job->step, outcome);
      {
        std::lock_guard<std::mutex> l(mu);
        if (outcome.ok()) {
          stats.committed++;
          stats.last_committed_step = job->step;
          stats.bytes_written += job->shard.ok() ? job->shard->bytes : 0;
        } else {
          stats.failed++;
          errors.push_back(outcome);
        }
        stats.last_write_seconds = job->seconds;
        jobs.pop_front();
        in_flight--;
      }
      cv.notify_all();
    }
  }

  Status TakeErrors() {  // mu held
    if (errors.empty()) return OkStatus();
    Status first = errors.front();
    size_t n = errors.size();
    errors.clear();
    if (n == 1) return first;
    return Status(first.code(), first.message() + " (and " + std::to_string(n - 1) + " more failed checkpoints)");
  }
};

CheckpointWriter::CheckpointWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Open(WriterOptions o) {
  if (o.dir.empty()) return InvalidArgument("checkpoint writer: no directory given");
  if (o.world_size < 1 || o.world_size > kMaxRanks || o.rank < 0 || o.rank >= o.world_size)
    return InvalidArgument("checkpoint writer: rank " + std::to_string(o.rank) + " of " +
                           std::to_string(o.world_size) + " is impossible");
  if (o.world_size > 1 && o.store == nullptr)
    return InvalidArgument("checkpoint writer: a job of " + std::to_string(o.world_size) + " ranks needs a store");
  if (o.max_in_flight < 1)
    return InvalidArgument("checkpoint writer: max_in_flight must be >= 1, got " + std::to_string(o.max_in_flight));
  if (o.io_threads < 0 || o.io_threads > 256)
    return InvalidArgument("checkpoint writer: io_threads must be 0-256, got " + std::to_string(o.io_threads));
  if (o.chunk_bytes < kDirectIoAlignment)
    return InvalidArgument("checkpoint writer: chunk_bytes must be >= 4096, got " + std::to_string(o.chunk_bytes));

  auto impl = std::make_unique<Impl>();
  impl->o = o;
  impl->fs = o.fs != nullptr ? o.fs : DefaultFs();
  impl->store = o.store;
  if (impl->store == nullptr) {
    impl->own_store = std::make_unique<comm::MemoryStore>();
    impl->store = impl->own_store.get();
  }
  FileSystem& fs = *impl->fs;
  comm::Store& store = *impl->store;

  if (o.rank == 0) {
    Status opened = MakeDirs(fs, o.dir);
    if (opened.ok()) {
      auto latest = ReadLatestStep(fs, o.dir);
      if (!latest.ok()) {
        ZT_LOG(WARNING) << latest.status().message()
                        << "; leaving the checkpoint directory as it is (the next commit replaces LATEST)";
      } else {
        auto gc = CollectGarbage(fs, o.dir, o.keep_last, *latest, /*at_open=*/true);
        if (!gc.ok()) {
          opened = gc.status();
        } else if (!gc->removed.empty()) {
          std::string names;
          for (const auto& n : gc->removed) names += (names.empty() ? "" : ", ") + n;
          ZT_LOG(INFO) << "checkpoint directory " << o.dir << ": removed leftovers " << names;
        }
      }
    }
    Status told = store.Set(kOpenKey, opened.ok() ? "ok" : opened.ToString());
    if (!opened.ok()) return opened.WithContext("opening checkpoint directory " + o.dir);
    ZT_RETURN_IF_ERROR(told);
  } else {
    auto v = store.Get(kOpenKey);
    if (!v.ok()) return v.status().WithContext("waiting for rank 0 to open checkpoint directory " + o.dir);
    if (*v != "ok") return Unavailable("rank 0 could not open checkpoint directory " + o.dir + ": " + *v);
  }

  impl->io = std::make_unique<IoPool>(o.io_threads);
  Impl* p = impl.get();
  impl->committer = std::thread([p] { p->CommitLoop(); });
  return std::unique_ptr<CheckpointWriter>(new CheckpointWriter(std::move(impl)));
}

CheckpointWriter::~CheckpointWriter() {
  Status s = Flush();
  if (!s.ok()) {
    ZT_LOG(ERROR) << s.message();
  }
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->committer.join();
}

Status CheckpointWriter::Submit(std::unique_ptr<RankSnapshot> snapshot, const Manifest& fields) {
  Impl& im = *impl_;
  ZT_CHECK(snapshot != nullptr) << "CheckpointWriter::Submit without a snapshot";
  ZT_CHECK(snapshot->rank == im.o.rank && snapshot->world_size == im.o.world_size)
      << "snapshot of rank " << snapshot->rank << "/" << snapshot->world_size << " given to the writer of rank "
      << im.o.rank << "/" << im.o.world_size;
  auto job = std::make_shared<Job>();
  job->step = snapshot->step;
  job->snapshot = std::move(snapshot);
  job->fields = fields;
  std::unique_lock<std::mutex> l(im.mu);
  ZT_CHECK(job->step > im.last_step) << "checkpoint steps must increase: " << job->step << " after " << im.last_step;
  im.cv.wait(l, [&] { return im.in_flight < im.o.max_in_flight; });
  im.last_step = job->step;
  im.in_flight++;
  im.stats.max_in_flight_seen = std::max(im.stats.max_in_flight_seen, im.in_flight);
  Job* j = job.get();
  job->driver = std::thread([&im, j] { im.Drive(*j); });
  im.jobs.push_back(std::move(job));
  Status earlier = im.TakeErrors();
  l.unlock();
  im.cv.notify_all();
  return earlier;
}

Status CheckpointWriter::Flush() {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> l(im.mu);
  im.cv.wait(l, [&] { return im.jobs.empty(); });
  return im.TakeErrors();
}

int CheckpointWriter::in_flight() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->in_flight;
}

WriterStats CheckpointWriter::stats() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->stats;
}

const WriterOptions& CheckpointWriter::options() const { return impl_->o; }

}  // namespace zt::ckpt
