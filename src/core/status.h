// Status and StatusOr: how errors that come from outside (files, sockets, configs, checkpoints)
// travel back to the caller. Invariant: an error Status always carries a non-empty message that
// says what went wrong and, where possible, what to do about it. Bugs use CHECK (check.h) instead.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "core/check.h"

namespace zt {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kOutOfRange,
  kFailedPrecondition,
  kDataLoss,
  kUnavailable,
  kDeadlineExceeded,
  kPermissionDenied,
  kUnimplemented,
  kInternal,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: message" (or "OK").
  std::string ToString() const;
  // Returns a copy whose message is "context: message".
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status FailedPrecondition(std::string message);
Status OutOfRange(std::string message);
Status DataLoss(std::string message);
Status Unavailable(std::string message);
Status DeadlineExceeded(std::string message);
Status PermissionDenied(std::string message);
Status Unimplemented(std::string message);
Status Internal(std::string message);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const T& value) : value_(value) {}                 // NOLINT(implicit)
  StatusOr(T&& value) : value_(std::move(value)) {}           // NOLINT(implicit)
  StatusOr(Status status) : status_(std::move(status)) {      // NOLINT(implicit)
    ZT_CHECK(!status_.ok()) << "StatusOr constructed from an OK status without a value";
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  const T& value() const& {
    ZT_CHECK(ok()) << "StatusOr::value() on error: " << status_.ToString();
    return *value_;
  }
  T& value() & {
    ZT_CHECK(ok()) << "StatusOr::value() on error: " << status_.ToString();
    return *value_;
  }
  T&& value() && {
    ZT_CHECK(ok()) << "StatusOr::value() on error: " << status_.ToString();
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace zt

#define ZT_STATUS_CONCAT_INNER(a, b) a##b
#define ZT_STATUS_CONCAT(a, b) ZT_STATUS_CONCAT_INNER(a, b)

// Returns early from the enclosing function when `expr` (a Status) is an error.
#define ZT_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::zt::Status zt_status_tmp_ = (expr);         \
    if (!zt_status_tmp_.ok()) return zt_status_tmp_; \
  } while (0)

// `ZT_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a StatusOr or returns its error.
#define ZT_ASSIGN_OR_RETURN(lhs, expr) \
  ZT_ASSIGN_OR_RETURN_IMPL(ZT_STATUS_CONCAT(zt_statusor_, __LINE__), lhs, expr)
#define ZT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
