// OutputPump: copies the workers' stdout and stderr (pipes) to the agent's own, one whole line at
// a time with a "[rank N] " prefix, so lines of different ranks never interleave mid-line.
// Invariant: every byte a worker wrote is forwarded, in order per stream; a last line without a
// newline gets one when its pipe closes (or when Flush is called), and a line longer than
// kMaxLine is forwarded in pieces, each prefixed.
#pragma once

#include <poll.h>

#include <string>
#include <vector>

namespace zt::launch {

class OutputPump {
 public:
  static constexpr size_t kMaxLine = 64 * 1024;

  OutputPump() = default;
  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;
  ~OutputPump();  // closes the read ends still open

  // Takes ownership of `read_fd`; lines go to `out_fd` (1 or 2) prefixed by `prefix`.
  void Add(int read_fd, int out_fd, std::string prefix);
  // Appends a pollfd for each open stream (POLLIN).
  void AppendPollFds(std::vector<pollfd>* fds) const;
  // Reads whatever is ready on `fd` (one of ours) and forwards complete lines; closes it at EOF.
  void OnReadable(int fd);
  // Reads everything available now without blocking, then forwards partial lines and closes all.
  void DrainAndClose();
  bool empty() const { return streams_.empty(); }

 private:
  struct Stream {
    int fd;
    int out_fd;
    std::string prefix;
    std::string pending;  // bytes after the last newline forwarded
  };
  enum class ReadResult { kData, kNothing, kClosed };
  ReadResult ReadOnce(Stream& s);
  void Emit(Stream& s, bool flush_partial);
  std::vector<Stream> streams_;
};

}  // namespace zt::launch
