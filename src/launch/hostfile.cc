// Hostfile parsing (DeepSpeed format). Every rejected line is reported as "<source>:<line>: ...".
#include "launch/hostfile.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace zt::launch {
namespace {

constexpr int64_t kMaxWorldSize = 1 << 20;

// A non-negative decimal without sign, spaces or trailing characters, within int range.
bool ParseSlots(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::atoi(s.c_str());
  return true;
}

std::vector<std::string> SplitWhitespace(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

}  // namespace

int Hostfile::TotalSlots() const {
  int n = 0;
  for (const auto& h : nodes) n += h.slots;
  return n;
}

int Hostfile::FirstRank(int node_rank) const {
  ZT_CHECK(node_rank >= 0 && node_rank < static_cast<int>(nodes.size())) << "node rank " << node_rank;
  int n = 0;
  for (int i = 0; i < node_rank; ++i) n += nodes[i].slots;
  return n;
}

StatusOr<Hostfile> ParseHostfile(const std::string& text, const std::string& source) {
  Hostfile hf;
  std::map<std::string, int> seen;  // host -> line
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  int64_t total = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string where = source + ":" + std::to_string(lineno) + ": ";
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> words = SplitWhitespace(line);
    if (words.empty()) continue;
    HostSlots h;
    h.host = words[0];
    if (h.host.find('=') != std::string::npos)
      return InvalidArgument(where + "expected 'hostname slots=N', got '" + line + "'");
    bool have_slots = false;
    for (size_t i = 1; i < words.size(); ++i) {
      const std::string& w = words[i];
      auto eq = w.find('=');
      std::string key = w.substr(0, eq);
      if (eq == std::string::npos)
        return InvalidArgument(where + "'" + w + "' is not key=value; expected 'hostname slots=N'");
      if (key != "slots") return InvalidArgument(where + "unknown key '" + key + "' (only slots=N is accepted)");
      if (have_slots) return InvalidArgument(where + "slots is given twice");
      std::string value = w.substr(eq + 1);
      if (!ParseSlots(value, &h.slots) || h.slots < 1)
        return InvalidArgument(where + "slots='" + value + "' is not a positive integer");
      have_slots = true;
    }
    if (!have_slots) return InvalidArgument(where + "host '" + h.host + "' has no slots=N");
    if (auto it = seen.find(h.host); it != seen.end()) {
      return InvalidArgument(where + "host '" + h.host + "' is listed again (first on line " +
                             std::to_string(it->second) + "); list each host once with all its slots");
    }
    seen[h.host] = lineno;
    total += h.slots;
    if (total > kMaxWorldSize)
      return InvalidArgument(where + "the hosts so far have more than " + std::to_string(kMaxWorldSize) + " slots");
    hf.nodes.push_back(h);
  }
  if (hf.nodes.empty()) return InvalidArgument(source + ": no hosts (expected lines 'hostname slots=N')");
  return hf;
}

StatusOr<Hostfile> LoadHostfile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return NotFound("cannot read hostfile " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return DataLoss("error reading hostfile " + path);
  return ParseHostfile(ss.str(), path);
}

}  // namespace zt::launch
