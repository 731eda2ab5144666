#pragma once
// The mailbox: user threads hand the I/O thread new runs, cancels and the order to stop here,
// and the strands what their split and reduce did, under a mutex, and wake it with an eventfd;
// the I/O thread takes all of them at once. It is shared with the jobs' cancel hooks and the
// strands' threads, which may be called after the client is gone.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <dtask/detail/run_state.hpp>

#include "client/user_code.hpp"

namespace dtask::detail {

struct Mailbox {
    Mailbox();
    ~Mailbox();
    Mailbox(const Mailbox&) = delete;
    Mailbox& operator=(const Mailbox&) = delete;

    void wake() const noexcept { signal(wake_fd); }
    /// Makes an eventfd readable.
    static void signal(int event_fd) noexcept;

    /// A shared object released; before the runs taken with it if none was waiting when it
    /// was posted (a run posted before it may use it: it goes after those).
    struct Unshare {
        std::uint64_t id = 0;
        bool before_incoming = false;
    };
    /// What user threads asked for since the last take().
    struct Requests {
        std::vector<std::shared_ptr<RunState>> incoming;
        std::vector<std::weak_ptr<RunState>> cancelled;
        std::vector<UserCodeDone> done;
        std::vector<Unshare> unshared;
        bool stopping = false;
        std::string stop_reason;
    };
    /// Takes every request (on the I/O thread, woken by wake_fd).
    Requests take();
    /// Hands `run` over; false, leaving it to the caller, once the client is stopping.
    bool post(std::shared_ptr<RunState>& run);
    /// Asks the I/O thread to forget `run` (a cancel hook).
    void post_cancel(std::weak_ptr<RunState> run);
    /// Tells the I/O thread what a piece of user code did (a strand's thread).
    void post_done(UserCodeDone done);
    /// Asks the I/O thread to free shared object `id` at the broker (its handle was released).
    void post_unshare(std::uint64_t id);
    /// Why the client stops (once it does).
    std::string reason_to_stop();

    int wake_fd = -1;
    int stop_fd = -1;  // written once, when the client stops; never read
    std::mutex mutex;
    std::size_t driving = 0;  // run_here calls under way
    std::condition_variable drives_ended;
    std::vector<std::shared_ptr<RunState>> incoming;
    std::vector<std::weak_ptr<RunState>> cancelled;
    std::vector<UserCodeDone> done;
    std::vector<Unshare> unshared;
    bool stopping = false;
    std::string stop_reason;
};

}  // namespace dtask::detail
