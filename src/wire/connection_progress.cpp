// Connection progress: a look at a connection's kernel counters, taken only when a peer is
// quiet, never per message.

#include "wire/connection_progress.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include <linux/tcp.h>  // tcp_info with tcpi_bytes_received (Linux 4.1), which glibc's lacks
#include <netinet/in.h>
#include <sys/socket.h>

namespace dtask::detail {

namespace {

/// The address of one end of `fd` into `out`; false if it is not an IPv4 or IPv6 one.
template <class Name>
bool address_of(int fd, Name name, std::array<unsigned char, 28>& out) noexcept {
    sockaddr_storage address{};
    socklen_t size = sizeof address;
    if (name(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0 || size > out.size() ||
        (address.ss_family != AF_INET && address.ss_family != AF_INET6))
        return false;
    std::memcpy(out.data(), &address, size);
    return true;
}

}  // namespace

ConnectionSample sample_connection(int fd) noexcept {
    ConnectionSample sample;
    sample.fd = fd;
    if (fd < 0 || !address_of(fd, ::getsockname, sample.local) ||
        !address_of(fd, ::getpeername, sample.peer))
        return sample;
    tcp_info info{};
    socklen_t size = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0 ||
        size < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
        return sample;  // not TCP, or a kernel older than 4.1
    sample.bytes_received = info.tcpi_bytes_received;
    sample.valid = true;
    return sample;
}

bool same_connection(const ConnectionSample& a, const ConnectionSample& b) noexcept {
    return a.valid && b.valid && a.fd == b.fd && a.local == b.local && a.peer == b.peer;
}

int connection_fd(const zmq::message_t& message) noexcept {
    const char* fd = zmq_msg_gets(message.handle(), "__fd");
    if (fd == nullptr)
        return -1;
    int value = 0;
    const char* digits = fd;
    for (; *fd >= '0' && *fd <= '9' && value < 100'000'000; ++fd)
        value = value * 10 + (*fd - '0');
    return *fd == '\0' && fd != digits ? value : -1;
}

ConnectionProgress::ConnectionProgress(int fd, Probe probe) noexcept
    : probe_(probe), watched_(probe(fd)) {}

void ConnectionProgress::look(Clock::time_point quiet_since, Clock::time_point now) noexcept {
    if (!watched_.valid || (looked_ && looked_at_ > quiet_since))
        return;
    const ConnectionSample sample = probe_(watched_.fd);
    looked_ = same_connection(watched_, sample);
    looked_bytes_ = sample.bytes_received;
    looked_at_ = now;
}

bool ConnectionProgress::moved(Clock::time_point quiet_since) const noexcept {
    if (!looked_ || looked_at_ <= quiet_since)
        return false;
    const ConnectionSample sample = probe_(watched_.fd);
    return same_connection(watched_, sample) && sample.bytes_received > looked_bytes_;
}

}  // namespace dtask::detail
