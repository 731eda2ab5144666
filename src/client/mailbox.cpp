#include "client/mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <dtask/error.hpp>

namespace dtask::detail {

Mailbox::Mailbox() {
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0 || stop_fd < 0)
        throw Error("dtask: cannot create the client's wake-up events (eventfd)");
}

Mailbox::~Mailbox() {
    close(wake_fd);
    close(stop_fd);
}

void Mailbox::signal(int event_fd) noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = write(event_fd, &one, sizeof one);
}

Mailbox::Requests Mailbox::take() {
    std::uint64_t count = 0;
    [[maybe_unused]] auto got = read(wake_fd, &count, sizeof count);
    Requests requests;
    std::lock_guard lock(mutex);
    requests.incoming.swap(incoming);
    requests.cancelled.swap(cancelled);
    requests.done.swap(done);
    requests.unshared.swap(unshared);
    if (stopping) {
        requests.stopping = true;
        requests.stop_reason = stop_reason;
    }
    return requests;
}

bool Mailbox::post(std::shared_ptr<RunState>& run) {
    {
        std::lock_guard lock(mutex);
        if (stopping)
            return false;
        incoming.push_back(std::move(run));
    }
    wake();
    return true;
}

void Mailbox::post_cancel(std::weak_ptr<RunState> run) {
    {
        std::lock_guard lock(mutex);
        cancelled.push_back(std::move(run));
    }
    wake();
}

void Mailbox::post_done(UserCodeDone piece) {
    bool first = false;
    {
        std::lock_guard lock(mutex);
        first = done.empty();
        done.push_back(std::move(piece));
    }
    // take() reads the eventfd before it takes the list: one wake serves all until then.
    if (first)
        wake();
}

void Mailbox::post_unshare(std::uint64_t id) {
    {
        std::lock_guard lock(mutex);
        if (stopping)
            return;  // the broker forgets the client's shared objects when it leaves
        unshared.push_back({id, incoming.empty()});
    }
    wake();
}

std::string Mailbox::reason_to_stop() {
    std::lock_guard lock(mutex);
    return stop_reason;
}

}  // namespace dtask::detail
