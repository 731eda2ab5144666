#pragma once
// A TCP relay on a free loopback port that forwards every connection to a target and keeps
// a copy of every byte both ways: what an eavesdropper on the link would see.

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace test_support {

class RecordingProxy {
public:
    /// Forwards to `target_port` on 127.0.0.1.
    explicit RecordingProxy(std::uint16_t target_port) : target_port_(target_port) {
        listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address = loopback(0);
        if (listener_ < 0 ||
            bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            listen(listener_, 16) != 0)
            throw std::runtime_error("the recording proxy cannot listen");
        socklen_t length = sizeof address;
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
        stop_ = eventfd(0, EFD_CLOEXEC);
        thread_ = std::thread([this] { relay(); });
    }
    ~RecordingProxy() {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto written = write(stop_, &one, sizeof one);
        thread_.join();
        for (const auto& [a, b] : pairs_) {
            close(a);
            close(b);
        }
        close(listener_);
        close(stop_);
    }
    RecordingProxy(const RecordingProxy&) = delete;
    RecordingProxy& operator=(const RecordingProxy&) = delete;

    std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
    /// Every byte relayed so far, both directions.
    std::string recorded() const {
        std::lock_guard lock(mutex_);
        return recorded_;
    }

private:
    static sockaddr_in loopback(std::uint16_t port) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return address;
    }

    void relay() {
        std::vector<char> buffer(1 << 16);
        for (;;) {
            std::vector<pollfd> fds{{stop_, POLLIN, 0}, {listener_, POLLIN, 0}};
            for (const auto& [a, b] : pairs_) {
                fds.push_back({a, POLLIN, 0});
                fds.push_back({b, POLLIN, 0});
            }
            if (poll(fds.data(), fds.size(), -1) < 0)
                continue;
            if (fds[0].revents != 0)
                return;
            if (fds[1].revents != 0)
                accept_one();
            std::vector<std::pair<int, int>> closed;
            for (std::size_t i = 2; i < fds.size(); ++i) {
                if (fds[i].revents == 0)
                    continue;
                const auto& pair = pairs_[(i - 2) / 2];
                const int from = fds[i].fd;
                const int to = from == pair.first ? pair.second : pair.first;
                const ssize_t got = read(from, buffer.data(), buffer.size());
                if (got <= 0 || !write_all(to, buffer.data(), static_cast<std::size_t>(got))) {
                    closed.push_back(pair);
                    continue;
                }
                std::lock_guard lock(mutex_);
                recorded_.append(buffer.data(), static_cast<std::size_t>(got));
            }
            for (const auto& pair : closed) {
                if (std::erase(pairs_, pair) != 0) {
                    close(pair.first);
                    close(pair.second);
                }
            }
        }
    }

    void accept_one() {
        const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0)
            return;
        const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in target = loopback(target_port_);
        if (server < 0 ||
            connect(server, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
            close(client);
            if (server >= 0)
                close(server);
            return;
        }
        pairs_.emplace_back(client, server);
    }

    static bool write_all(int fd, const char* data, std::size_t size) {
        while (size > 0) {
            const ssize_t put = write(fd, data, size);
            if (put <= 0)
                return false;
            data += put;
            size -= static_cast<std::size_t>(put);
        }
        return true;
    }

    std::uint16_t target_port_;
    std::uint16_t port_ = 0;
    int listener_ = -1;
    int stop_ = -1;
    std::vector<std::pair<int, int>> pairs_;  // (from the peer, to the target)
    mutable std::mutex mutex_;
    std::string recorded_;
    std::thread thread_;
};

}  // namespace test_support
