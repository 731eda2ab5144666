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
    if (size >= offsetof(tcp_info, tcpi_data_segs_in) + sizeof info.tcpi_data_segs_in)
        sample.data_segs_in = info.tcpi_data_segs_in;  // Linux 4.6
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

bool ConnectionProgress::advanced(Clock::time_point quiet_since, Clock::time_point now) noexcept {
    if (!watched_.valid)
        return false;
    const ConnectionSample sample = probe_(watched_.fd);
    if (!same_connection(watched_, sample)) {
        looked_ = false;
        return false;
    }
    // Data that arrived out of order after a loss counts too: the link is carrying it.
    const bool moved =
        looked_ && looked_at_ >= quiet_since &&
        (sample.bytes_received > looked_bytes_ || sample.data_segs_in != looked_segs_);
    looked_ = true;
    looked_bytes_ = sample.bytes_received;
    looked_segs_ = sample.data_segs_in;
    looked_at_ = now;
    return moved;
}

}  // namespace dtask::detail
