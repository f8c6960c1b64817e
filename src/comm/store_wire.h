// store_wire: the TCP store's wire format (docs/comm.md, "The TCP store protocol"), shared by the
// server and the client. A frame is a 4-byte little-endian body length N (1 <= N <= the cap) and
// N body bytes: a 1-byte op followed by its fields (u8, u32 LE, i64 LE, strings as u32 LE length +
// bytes). Every request gets exactly one reply frame, in order.
// Invariant: a reader never trusts a length: FrameReader checks each field against the bytes
// present, and callers check frame lengths against the caps below before buffering a body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zt::comm::wire {

constexpr uint32_t kMagic = 0x5A545331;  // "ZTS1"
constexpr uint32_t kVersion = 1;

constexpr size_t kMaxKeyBytes = size_t{64} << 10;     // 64 KiB
constexpr size_t kMaxValueBytes = size_t{64} << 20;   // 64 MiB
constexpr size_t kMaxFrameBytes = kMaxValueBytes + (size_t{1} << 20);  // a value plus its key
constexpr size_t kMaxHelloFrameBytes = 4096;          // before the token is checked
constexpr size_t kMaxTokenBytes = 1024;

enum class Op : uint8_t {
  // client -> server
  kHello = 0x01,   // u32 magic, u32 version, str token       -> kOk | kError (then close)
  kSet = 0x02,     // str key, str value                      -> kOk
  kGet = 0x03,     // str key (waits until it exists)         -> kValue | kTimedOut (after kCancel)
  kAdd = 0x04,     // str key, i64 delta                      -> kInt | kError
  kWait = 0x05,    // u32 n, n x str key (waits)              -> kOk | kTimedOut (after kCancel)
  kDelete = 0x06,  // str key                                 -> kBool
  kCancel = 0x07,  // ends this connection's waiting request  -> kOk (after that request's reply)
  // server -> client
  kOk = 0x80,
  kValue = 0x81,     // str value
  kInt = 0x82,       // i64
  kBool = 0x83,      // u8 (0 or 1)
  kTimedOut = 0x84,  // u32 n, n x str key still missing
  kError = 0x85,     // u8 StatusCode, str message
};

// Builds one frame. Finish() fills in the length prefix.
class FrameWriter {
 public:
  explicit FrameWriter(Op op);
  FrameWriter& U8(uint8_t v);
  FrameWriter& U32(uint32_t v);
  FrameWriter& I64(int64_t v);
  FrameWriter& Str(std::string_view s);
  std::string Finish();  // moves the frame out; the writer is spent

 private:
  std::string buf_;
};

// Reads the fields of one frame body. Every getter returns false (and reads nothing) when the body
// has too few bytes left or a string is longer than `max`.
class FrameReader {
 public:
  explicit FrameReader(std::string_view body) : p_(body) {}
  bool U8(uint8_t* v);
  bool U32(uint32_t* v);
  bool I64(int64_t* v);
  bool Str(std::string* s, size_t max);
  size_t left() const { return p_.size(); }
  bool AtEnd() const { return p_.empty(); }

 private:
  std::string_view p_;
};

// Little-endian u32 at p (4 bytes).
uint32_t LoadU32(const char* p);

// Constant-time comparison (time depends only on the lengths, never on where the bytes differ).
bool TokensEqual(std::string_view a, std::string_view b);

}  // namespace zt::comm::wire
