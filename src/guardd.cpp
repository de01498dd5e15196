#include "src/guardd.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <vector>

#include "src/error.h"
#include "src/fd_passing.h"
#include "src/guard.h"
#include "src/guard_protocol.h"
#include "src/pidfd.h"

namespace mbx {

namespace {

constexpr size_t kMaxClients = 1024;
constexpr auto kRequestTimeout = std::chrono::seconds(10);

struct Client {
    UniqueFd sock;
    uid_t uid = 0;
    std::chrono::steady_clock::time_point since;
    uint32_t sandbox = 0;  // once enrolled
};

struct Sandbox {
    UniqueFd pidfd;
    GuardPolicy policy;
    int client = -1;  // its client's socket, while connected
    uint64_t dropped = 0;
};

UniqueFd listen_on(const std::string& path) {
    // Socket activation (systemd): the socket is fd 3.
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    if (pid && fds && std::atoi(pid) == ::getpid() && std::atoi(fds) == 1) {
        ::fcntl(3, F_SETFD, FD_CLOEXEC);
        return UniqueFd(3);
    }
    std::string dir = path.substr(0, path.rfind('/'));
    if (!dir.empty()) ::mkdir(dir.c_str(), 0755);
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s) throw UserError(sys_error("socket", path));
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw UserError("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());  // a stale socket of an earlier daemon
    if (::bind(s.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0)
        throw UserError(sys_error("bind", path));
    ::chmod(path.c_str(), 0666);  // every user may ask; the checks are per request
    if (::listen(s.get(), 64) < 0) throw UserError(sys_error("listen", path));
    return s;
}

class Daemon {
public:
    Daemon(std::unique_ptr<Guard> guard, UniqueFd listener) : guard_(std::move(guard)), listener_(std::move(listener)) {
        next_id_ = guard_->max_sandbox_id() + 1;  // the sandboxes of an earlier daemon keep theirs
    }

    int run() {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        ::sigprocmask(SIG_BLOCK, &mask, nullptr);
        UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC));
        int events = guard_->event_fd([this](const std::string& line, bool denied, uint32_t id) {
            deliver(line, denied, id);
        });
        spdlog::info("mbx-guardd: the guard is loaded; waiting for sandboxes");
        for (;;) {
            std::vector<struct pollfd> p = {{listener_.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}, {events, POLLIN, 0}};
            for (auto& [fd, c] : clients_) p.push_back({fd, POLLIN, 0});
            size_t first_sandbox = p.size();
            std::vector<uint32_t> order;
            for (auto& [id, sb] : sandboxes_) {
                p.push_back({sb.pidfd.get(), POLLIN, 0});
                order.push_back(id);
            }
            int n = ::poll(p.data(), p.size(), 1000);
            if (n < 0 && errno != EINTR) throw UserError(sys_error("poll", ""));
            if (n > 0 && (p[1].revents & POLLIN)) {
                spdlog::info("mbx-guardd: stopping; the guard stays loaded ({} sandboxes confined)", sandboxes_.size());
                return 0;
            }
            guard_->consume_events();
            for (size_t i = first_sandbox; i < p.size(); ++i)
                if (p[i].revents) ended(order[i - first_sandbox]);
            for (size_t i = 3; i < first_sandbox; ++i)
                if (p[i].revents) readable(p[i].fd);
            if (n > 0 && (p[0].revents & POLLIN)) accept_one();
            expire();
        }
    }

private:
    void accept_one() {
        UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!c) return;
        struct ucred cred {};
        socklen_t len = sizeof cred;
        if (clients_.size() >= kMaxClients || ::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            send_msg(c.get(), "error too many clients");
            return;
        }
        int fd = c.get();
        clients_[fd] = Client{std::move(c), cred.uid, std::chrono::steady_clock::now(), 0};
    }

    void drop_client(int fd) {
        auto it = clients_.find(fd);
        if (it == clients_.end()) return;
        if (auto sb = sandboxes_.find(it->second.sandbox); sb != sandboxes_.end()) sb->second.client = -1;
        clients_.erase(it);
    }

    void readable(int fd) {
        auto it = clients_.find(fd);
        if (it == clients_.end()) return;
        Client& c = it->second;
        std::string msg;
        UniqueFd pidfd;
        errno = 0;  // stays 0 at end of stream
        if (!recv_msg(fd, msg, &pidfd, kGuardMaxRequest)) {
            if (errno == EMSGSIZE) send_msg(fd, "error request too large");
            if (errno != EAGAIN && errno != EWOULDBLOCK) drop_client(fd);
            return;
        }
        if (c.sandbox) {  // one request per connection
            send_msg(fd, "error one request per connection");
            drop_client(fd);
            return;
        }
        try {
            std::string verb = request_verb(msg);
            if (verb == "enroll") {
                uint32_t id = enroll(c, msg, std::move(pidfd));
                c.sandbox = id;
                send_msg(fd, "ok");
                return;
            }
            Sandbox& sb = owned_sandbox(c, pidfd.get());
            if (verb == "policy") {
                PolicyChange change = decode_policy_change(msg);
                GuardPolicy now = sb.policy;
                if (change.net) {  // the mode and addresses; the listen rules stay as enrolled
                    now.net = *change.net;
                    for (auto& r : sb.policy.net.rules)
                        if (r.family == MBX_NET_LISTEN_FAMILY && now.net.rules.size() < MBX_GUARD_MAX_NET_RULES)
                            now.net.rules.push_back(r);
                }
                if (change.exec) {  // the lists; the reverse-shell rule stays as enrolled
                    now.exec.allow = change.exec->allow;
                    now.exec.deny = change.exec->deny;
                }
                uint32_t id = *guard_->mark_of(pidfd.get());
                guard_->change_policy(id, sb.policy, now);
                spdlog::info("mbx-guardd: sandbox {}: policy changed by uid {} (net {}, {} exec rules)", id, c.uid,
                             now.net.spec, now.exec.allow.size() + now.exec.deny.size());
                sb.policy = std::move(now);
                send_msg(fd, "ok");
            } else {
                send_msg(fd, "ok\n" + encode_enroll(sb.policy));
            }
            drop_client(fd);
        } catch (const UserError& e) {
            spdlog::info("mbx-guardd: refused a request of uid {}: {}", c.uid, e.what());
            send_msg(fd, std::string("error ") + e.what());
            drop_client(fd);
        }
    }

    uint32_t enroll(const Client& c, const std::string& msg, UniqueFd pidfd) {
        if (!pidfd) throw UserError("no pidfd attached");
        GuardPolicy policy = decode_enroll(msg);
        auto uid = pidfd_uid(pidfd.get());
        if (!uid) throw UserError("the descriptor is not a pidfd of a live process");
        if (*uid != c.uid && c.uid != 0) throw UserError("that process is not yours");
        if (guard_->is_marked(pidfd.get())) throw UserError("that process is confined already");
        uint32_t id = next_id_++;
        guard_->enroll_as(pidfd.get(), id, policy);
        spdlog::info("mbx-guardd: sandbox {} of uid {} enrolled (pid {})", id, c.uid,
                     pidfd_pid(pidfd.get()).value_or(-1));
        sandboxes_[id] = Sandbox{std::move(pidfd), std::move(policy), c.sock.get(), 0};
        return id;
    }

    // The sandbox whose first process pidfd names, if the client may change it.
    Sandbox& owned_sandbox(const Client& c, int pidfd) {
        if (pidfd < 0) throw UserError("no pidfd attached");
        auto uid = pidfd_uid(pidfd);
        if (!uid) throw UserError("the descriptor is not a pidfd of a live process");
        if (*uid != c.uid && c.uid != 0) throw UserError("that process is not yours");
        auto id = guard_->mark_of(pidfd);
        auto it = id ? sandboxes_.find(*id) : sandboxes_.end();
        if (it == sandboxes_.end() || pidfd_pid(it->second.pidfd.get()) != pidfd_pid(pidfd))
            throw UserError("that process is not the first of a sandbox this daemon enrolled");
        return it->second;
    }

    void deliver(const std::string& line, bool denied, uint32_t id) {
        auto it = sandboxes_.find(id);
        if (it == sandboxes_.end() || it->second.client < 0) return;
        std::string m = std::string("E ") + (denied ? "1 " : "0 ") + line;
        if (::send(it->second.client, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) ++it->second.dropped;
    }

    // The sandbox's first process has exited (and with it, its PID
    // namespace): what it sent is delivered, its policy goes.
    void ended(uint32_t id) {
        auto it = sandboxes_.find(id);
        if (it == sandboxes_.end()) return;
        guard_->consume_events();
        if (it->second.client >= 0) {
            send_msg(it->second.client, "X");
            int fd = it->second.client;
            it->second.client = -1;
            clients_.erase(fd);
        }
        if (it->second.dropped)
            spdlog::info("mbx-guardd: sandbox {}: {} records dropped (its client did not read)", id, it->second.dropped);
        guard_->forget(id, it->second.policy);
        sandboxes_.erase(it);
    }

    // A client that has not made its request in time.
    void expire() {
        auto now = std::chrono::steady_clock::now();
        std::vector<int> late;
        for (auto& [fd, c] : clients_)
            if (!c.sandbox && now - c.since > kRequestTimeout) late.push_back(fd);
        for (int fd : late) {
            send_msg(fd, "error no request within 10 s");
            drop_client(fd);
        }
    }

    std::unique_ptr<Guard> guard_;
    UniqueFd listener_;
    std::map<int, Client> clients_;
    std::map<uint32_t, Sandbox> sandboxes_;
    uint32_t next_id_ = 1;
};

}  // namespace

int run_guardd(const GuarddOptions& opt) {
    if (::geteuid() != 0) throw UserError("mbx-guardd must run as root (it loads the BPF LSM guard)");
    auto guard = Guard::load_pinned(opt.pin_dir.empty() ? "/sys/fs/bpf/mbx" : opt.pin_dir);
    auto listener = listen_on(opt.socket_path.empty() ? guard_socket_path() : opt.socket_path);
    return Daemon(std::move(guard), std::move(listener)).run();
}

}  // namespace mbx
