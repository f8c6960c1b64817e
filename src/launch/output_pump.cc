// Line-prefixing forwarder of worker output.
#include "launch/output_pump.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace zt::launch {
namespace {

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the agent's own output is gone (EPIPE with SIGPIPE ignored): drop it
    off += static_cast<size_t>(n);
  }
}

}  // namespace

OutputPump::~OutputPump() {
  for (auto& s : streams_) close(s.fd);
}

void OutputPump::Add(int read_fd, int out_fd, std::string prefix) {
  streams_.push_back(Stream{read_fd, out_fd, std::move(prefix), {}});
}

void OutputPump::AppendPollFds(std::vector<pollfd>* fds) const {
  for (const auto& s : streams_) fds->push_back(pollfd{s.fd, POLLIN, 0});
}

OutputPump::ReadResult OutputPump::ReadOnce(Stream& s) {
  char buf[16384];
  ssize_t n;
  do {
    n = read(s.fd, buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ReadResult::kNothing;
  if (n <= 0) return ReadResult::kClosed;
  s.pending.append(buf, static_cast<size_t>(n));
  Emit(s, false);
  return ReadResult::kData;
}

void OutputPump::Emit(Stream& s, bool flush_partial) {
  std::string out;
  size_t start = 0;
  while (true) {
    size_t nl = s.pending.find('\n', start);
    size_t end = nl;
    if (nl == std::string::npos) {
      if (s.pending.size() - start >= kMaxLine) {
        end = start + kMaxLine;
      } else if (flush_partial && start < s.pending.size()) {
        end = s.pending.size();
      } else {
        break;
      }
    }
    out += s.prefix;
    out.append(s.pending, start, end - start);
    out += '\n';
    start = nl == std::string::npos ? end : nl + 1;
  }
  s.pending.erase(0, start);
  if (!out.empty()) WriteAll(s.out_fd, out);
}

void OutputPump::OnReadable(int fd) {
  auto it = std::find_if(streams_.begin(), streams_.end(), [fd](const Stream& s) { return s.fd == fd; });
  if (it == streams_.end()) return;
  if (ReadOnce(*it) == ReadResult::kClosed) {
    Emit(*it, true);
    close(it->fd);
    streams_.erase(it);
  }
}

void OutputPump::DrainAndClose() {
  for (auto& s : streams_) {
    int flags = fcntl(s.fd, F_GETFL);
    if (flags >= 0) fcntl(s.fd, F_SETFL, flags | O_NONBLOCK);
    for (int i = 0; i < 1024; ++i)  // bounded: a writer that never stops cannot hold us here
      if (ReadOnce(s) != ReadResult::kData) break;
    Emit(s, true);
    close(s.fd);
  }
  streams_.clear();
}

}  // namespace zt::launch
