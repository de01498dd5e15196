#include "src/monitor_log.h"

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "src/json_text.h"

namespace mbx {

namespace {

using overlay::Access;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The record's hook (named as the guard names the same operation) and, for
// opens and renames, which kind.
std::pair<const char*, const char*> hook_of(Access a) {
    switch (a) {
        case Access::Read: return {"open", "r"};
        case Access::Write: return {"open", "w"};
        case Access::ReadWrite: return {"open", "rw"};
        case Access::Exec: return {"open", "x"};
        case Access::Missing: return {"lookup", nullptr};
        case Access::Create: return {"create", nullptr};
        case Access::Mkdir: return {"mkdir", nullptr};
        case Access::Mknod: return {"mknod", nullptr};
        case Access::Symlink: return {"symlink", nullptr};
        case Access::Link: return {"link", nullptr};
        case Access::Unlink: return {"unlink", nullptr};
        case Access::Rmdir: return {"rmdir", nullptr};
        case Access::RenameFrom: return {"rename", "from"};
        case Access::RenameTo: return {"rename", "to"};
        case Access::Setattr: return {"setattr", nullptr};
        case Access::Xattr: return {"setxattr", nullptr};
    }
    return {"?", nullptr};
}

}  // namespace

std::string view_access_json(Access a, const std::string& path, int error, pid_t pid) {
    auto [hook, access] = hook_of(a);
    nlohmann::json j = {{"time_ms", now_ms()}, {"hook", hook},  {"denied", false}, {"source", "view"},
                        {"pid", pid},          {"path", path}, {"result", error ? std::strerror(error) : "ok"}};
    if (access) j["access"] = access;
    return json_text(j, -1);
}

std::string monitor_json(const std::vector<std::string>& recorded, const std::string& missing,
                         const std::string& cwd) {
    nlohmann::json j = {{"time_ms", now_ms()}, {"hook", "monitor"}, {"denied", false},
                        {"recorded", recorded}, {"cwd", cwd}};
    if (!missing.empty()) j["not_recorded"] = missing;
    return json_text(j, -1);
}

ViewRecorder::ViewRecorder(GuardEventSink sink, size_t max) : sink_(std::move(sink)), max_(max) {}

overlay::AccessLog ViewRecorder::access_log() {
    return [this](Access a, const std::string& path, int error, pid_t pid) { record(a, path, error, pid); };
}

void ViewRecorder::record(Access a, const std::string& path, int error, pid_t pid) {
    std::string key = std::to_string(int(a)) + ":" + std::to_string(error) + ":" + path;
    {
        std::lock_guard lock(mu_);
        if (seen_.count(key)) return;
        if (seen_.size() >= max_) {
            ++dropped_;
            return;
        }
        seen_.insert(std::move(key));
    }
    sink_(view_access_json(a, path, error, pid), false, 0);
}

}  // namespace mbx
