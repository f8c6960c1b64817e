// store_wire: frame encoding and bounds-checked decoding for the TCP store protocol.
#include "comm/store_wire.h"

#include "core/check.h"

namespace zt::comm::wire {
namespace {

void PutLe(std::string* b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

FrameWriter::FrameWriter(Op op) {
  buf_.assign(4, '\0');
  buf_.push_back(static_cast<char>(op));
}

FrameWriter& FrameWriter::U8(uint8_t v) {
  buf_.push_back(static_cast<char>(v));
  return *this;
}

FrameWriter& FrameWriter::U32(uint32_t v) {
  PutLe(&buf_, v, 4);
  return *this;
}

FrameWriter& FrameWriter::I64(int64_t v) {
  PutLe(&buf_, static_cast<uint64_t>(v), 8);
  return *this;
}

FrameWriter& FrameWriter::Str(std::string_view s) {
  ZT_CHECK(s.size() <= 0xffffffffu) << "store frame string too long";
  PutLe(&buf_, s.size(), 4);
  buf_.append(s);
  return *this;
}

std::string FrameWriter::Finish() {
  size_t n = buf_.size() - 4;
  ZT_CHECK(n <= 0xffffffffu) << "store frame too long";
  for (int i = 0; i < 4; ++i) buf_[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return std::move(buf_);
}

uint32_t LoadU32(const char* p) { return static_cast<uint32_t>(GetLe(p, 4)); }

bool FrameReader::U8(uint8_t* v) {
  if (p_.size() < 1) return false;
  *v = static_cast<uint8_t>(p_[0]);
  p_.remove_prefix(1);
  return true;
}

bool FrameReader::U32(uint32_t* v) {
  if (p_.size() < 4) return false;
  *v = static_cast<uint32_t>(GetLe(p_.data(), 4));
  p_.remove_prefix(4);
  return true;
}

bool FrameReader::I64(int64_t* v) {
  if (p_.size() < 8) return false;
  *v = static_cast<int64_t>(GetLe(p_.data(), 8));
  p_.remove_prefix(8);
  return true;
}

bool FrameReader::Str(std::string* s, size_t max) {
  if (p_.size() < 4) return false;
  uint64_t n = GetLe(p_.data(), 4);
  if (n > max || n > p_.size() - 4) return false;
  s->assign(p_.data() + 4, n);
  p_.remove_prefix(4 + n);
  return true;
}

bool TokensEqual(std::string_view a, std::string_view b) {
  size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile uint8_t diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    uint8_t x = i < a.size() ? static_cast<uint8_t>(a[i]) : 0;
    uint8_t y = i < b.size() ? static_cast<uint8_t>(b[i]) : 0;
    diff = diff | static_cast<uint8_t>(x ^ y);
  }
  return diff == 0;
}

}  // namespace zt::comm::wire
