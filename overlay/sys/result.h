// Result<T>: a value or an errno, for code on the FUSE data path that must not throw.
#pragma once

#include <cerrno>
#include <utility>
#include <variant>

namespace mbx {

struct Errno {
    int value;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T v) : v_(std::move(v)) {}
    Result(Errno e) : v_(e) {}

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }
    int error() const { return ok() ? 0 : std::get<Errno>(v_).value; }
    T& value() & { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    T& operator*() & { return value(); }
    T* operator->() { return &std::get<T>(v_); }

private:
    std::variant<T, Errno> v_;
};

// Result<void>: success or an errno.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Errno e) : err_(e.value) {}
    bool ok() const { return err_ == 0; }
    explicit operator bool() const { return ok(); }
    int error() const { return err_; }

private:
    int err_ = 0;
};

inline Errno last_errno() { return Errno{errno}; }

}  // namespace mbx
