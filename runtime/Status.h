//===- Status.h - success or an error message, for the runtime --*- C++ -*-===//
//
// The runtime reports failures by value, never by exception (DESIGN.md section
// 7): a function that can fail returns a Status, or a StatusOr<T> when it also
// produces a value. An error is one line of text that names the thing at fault
// (file, tensor, field, byte offset), so that it can be printed as is.
//
//   Status checkShape(...) {
//     if (bad)
//       return Status::error("{}: tensor '{}': shape is {}", path, name, ...);
//     return Status::success();
//   }
//   StatusOr<Checkpoint> open(...) {
//     DSV3_RETURN_IF_ERROR(checkShape(...));
//     DSV3_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(p));
//     ...
//   }
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_STATUS_H
#define DSV3_RUNTIME_STATUS_H

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace dsv3 {

/// Success, or an error carrying a message.
class [[nodiscard]] Status {
public:
  /// Success.
  Status() = default;
  static Status success() { return Status(); }

  /// An error whose message is fmt::format(format, args...).
  template <typename... Args>
  static Status error(fmt::format_string<Args...> format, Args &&...args) {
    return Status(fmt::format(format, std::forward<Args>(args)...));
  }

  bool ok() const { return !failed_; }
  /// The error message; empty on success.
  const std::string &message() const { return message_; }

  /// The same error with `prefix` put in front of its message (success stays
  /// success), for callers that add where the failing call was made from.
  Status withPrefix(const std::string &prefix) const {
    return ok() ? Status() : Status(prefix + message_);
  }

private:
  explicit Status(std::string message)
      : failed_(true), message_(std::move(message)) {}

  bool failed_ = false;
  std::string message_;
};

/// A value of type T, or the error that prevented producing it.
template <typename T> class [[nodiscard]] StatusOr {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>,
                "StatusOr<Status> is meaningless; return a Status");

public:
  /// An error. Constructing from a successful Status is a programming error:
  /// there would be neither a value nor a reason for its absence.
  StatusOr(Status status) : status_(std::move(status)) {
    if (status_.ok()) {
      std::fputs("dsv3: internal error: StatusOr built from a successful "
                 "Status without a value\n",
                 stderr);
      std::abort();
    }
  }
  StatusOr(T value) : value_(std::move(value)) {}

  bool ok() const { return value_.has_value(); }
  /// The error; success when a value is held.
  const Status &status() const & { return status_; }
  Status status() && { return std::move(status_); }

  /// The value. Calling these on an error is a programming error (checked).
  T &value() & {
    checkHasValue();
    return *value_;
  }
  const T &value() const & {
    checkHasValue();
    return *value_;
  }
  T &&value() && {
    checkHasValue();
    return std::move(*value_);
  }
  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
  T &&operator*() && { return std::move(*this).value(); }
  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }

private:
  void checkHasValue() const {
    if (!value_) {
      std::fprintf(stderr,
                   "dsv3: internal error: value of a failed StatusOr read: %s\n",
                   status_.message().c_str());
      std::abort();
    }
  }

  Status status_;
  std::optional<T> value_;
};

} // namespace dsv3

#define DSV3_STATUS_CONCAT_INNER(a, b) a##b
#define DSV3_STATUS_CONCAT(a, b) DSV3_STATUS_CONCAT_INNER(a, b)

/// Returns the Status of `expr` from the enclosing function when it is an error.
#define DSV3_RETURN_IF_ERROR(expr)                                             \
  do {                                                                         \
    ::dsv3::Status dsv3ReturnIfErrorStatus_ = (expr);                          \
    if (!dsv3ReturnIfErrorStatus_.ok())                                        \
      return dsv3ReturnIfErrorStatus_;                                         \
  } while (false)

/// Evaluates `expr` (a StatusOr); returns its error from the enclosing
/// function, or assigns its value to `lhs` (which may be a declaration).
#define DSV3_ASSIGN_OR_RETURN(lhs, expr)                                       \
  DSV3_ASSIGN_OR_RETURN_IMPL(DSV3_STATUS_CONCAT(dsv3StatusOr_, __LINE__), lhs, \
                             expr)
#define DSV3_ASSIGN_OR_RETURN_IMPL(temp, lhs, expr)                            \
  auto temp = (expr);                                                          \
  if (!temp.ok())                                                              \
    return std::move(temp).status();                                           \
  lhs = std::move(temp).value()

#endif // DSV3_RUNTIME_STATUS_H
