#include "src/guard_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "src/error.h"
#include "src/fd_passing.h"
#include "src/guard_protocol.h"

namespace mbx {

std::unique_ptr<GuardClient> GuardClient::connect(const std::string& path) {
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!s) throw UserError(sys_error("socket", ""));
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw UserError("mbx-guardd socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(s.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0)
        throw UserError("mbx-guardd is not reachable at " + path + ": " + std::strerror(errno));
    return std::unique_ptr<GuardClient>(new GuardClient(std::move(s)));
}

GuardClient::~GuardClient() { stop_events(); }

std::string GuardClient::request(const std::string& msg, int pidfd) {
    struct timeval tv{10, 0};
    ::setsockopt(sock_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string reply;
    if (!send_msg(sock_.get(), msg, pidfd) || !recv_msg(sock_.get(), reply, nullptr, kGuardMaxRequest))
        throw UserError(std::string("mbx-guardd did not answer: ") + std::strerror(errno));
    struct timeval none{0, 0};
    ::setsockopt(sock_.get(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    if (reply.starts_with("error ")) throw UserError("mbx-guardd refused: " + reply.substr(6));
    if (reply != "ok" && !reply.starts_with("ok\n")) throw UserError("mbx-guardd answered something else than ok");
    return reply;
}

void GuardClient::enroll(int pidfd, const GuardPolicy& policy) {
    request(encode_enroll(policy), pidfd);
    enrolled_ = true;
    if (sink_) read_events();
}

void GuardClient::update_net(int pidfd, const GuardPolicy&, const GuardPolicy& now) {
    PolicyChange change;
    change.net = now.net;
    connect(guard_socket_path())->request(encode_policy_change(change), pidfd);
}

void GuardClient::start_events(GuardEventSink sink) {
    sink_ = std::move(sink);
    if (enrolled_) read_events();
}

void GuardClient::read_events() {
    thread_ = std::thread([this, sink = sink_] {
        auto deadline = std::chrono::steady_clock::time_point::max();
        for (;;) {
            if (stop_ && deadline == std::chrono::steady_clock::time_point::max())
                deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            if (std::chrono::steady_clock::now() > deadline) return;
            struct pollfd p = {sock_.get(), POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            std::string msg;
            if (!recv_msg(sock_.get(), msg, nullptr, 16384)) return;  // the daemon is gone
            if (msg == "X") return;                                   // the sandbox has ended
            if (msg.size() > 4 && msg.starts_with("E ")) sink(msg.substr(4), msg[2] == '1', 0);
        }
    });
}

void GuardClient::stop_events() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

}  // namespace mbx
