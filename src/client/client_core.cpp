#include "client/client_core.hpp"

#include <dtask/error.hpp>

#include "client/client_loop.hpp"
#include "client/mailbox.hpp"
#include "client/user_code.hpp"
#include "log.hpp"
#include "thread_name.hpp"

namespace dtask::detail {

ClientCore::ClientCore(zmq::context_t& context, ClientCoreOptions options)
    : options_(std::move(options)),
      context_(context),
      mailbox_(std::make_shared<Mailbox>()),
      user_code_(std::make_unique<UserCode>(mailbox_)) {
    // Connect here, so that a bad endpoint is an error of the constructor; from then on
    // only the I/O thread uses the socket.
    try {
        loop_ = std::make_unique<ClientLoop>(*this);
    } catch (const zmq::error_t& e) {
        throw TransportError("dtask: cannot connect to the broker at '" + options_.endpoint +
                             "': " + e.what());
    }
    thread_ = std::thread([this] {
        name_this_thread("dtask-client");
        try {
            loop_->run();
        } catch (const std::exception& e) {
            log_warning("client",
                        std::string("I/O thread stopped by an unexpected error: ") + e.what());
            loop_->abandon(e.what());
        }
    });
}

ClientCore::~ClientCore() {
    {
        std::lock_guard lock(shared_mutex_);
        for (const auto& made : shared_made_) {
            if (auto object = made.lock())
                object->release();
        }
    }
    stop("the cluster or client was destroyed while it ran");
    loop_.reset();
    // After the I/O thread: a split or reduce still under way is waited for here.
    user_code_.reset();
}

bool ClientCore::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(workers_mutex_);
    return workers_changed_.wait_for(lock, timeout, [&] { return workers_.load() >= count; });
}

void ClientCore::enqueue(std::shared_ptr<RunState> run) {
    if (!mailbox_->post(run))
        run->fail(std::make_exception_ptr(
            Error("job '" + run->job_name() + "' was submitted after shutdown")));
}

std::shared_ptr<SharedObject> ClientCore::share(const void* owner, std::string bytes) {
    // Unique in the process, not only in this client: no two objects are ever taken for one.
    static std::atomic<std::uint64_t> last_id{0};
    const std::uint64_t id = last_id.fetch_add(1, std::memory_order_relaxed) + 1;
    auto object = std::make_shared<SharedObject>(
        owner, id, std::move(bytes),
        [mailbox = mailbox_](std::uint64_t released) { mailbox->post_unshare(released); });
    std::lock_guard lock(shared_mutex_);
    // Forgets those gone when the list doubles: its length stays within twice the live ones.
    if (shared_made_.size() >= 64 && shared_made_.size() == shared_made_.capacity())
        std::erase_if(shared_made_, [](const auto& made) { return made.expired(); });
    shared_made_.push_back(object);
    return object;
}

void ClientCore::run_here(std::shared_ptr<RunState> run) {
    std::unique_ptr<ClientLoop> loop;
    {
        std::lock_guard lock(mailbox_->mutex);
        if (mailbox_->stopping) {
            run->fail(std::make_exception_ptr(
                Error("job '" + run->job_name() + "' was submitted after shutdown")));
            return;
        }
        if (!spare_loops_.empty()) {
            loop = std::move(spare_loops_.back());
            spare_loops_.pop_back();
        }
        ++mailbox_->driving;
    }
    bool reusable = true;
    try {
        if (!loop)
            loop = std::make_unique<ClientLoop>(*this);
        loop->drive(run);
    } catch (const std::exception& e) {
        run->fail(std::make_exception_ptr(TransportError(
            "job '" + run->job_name() + "': its connection to the broker failed: " + e.what())));
        reusable = false;  // the loop goes, and its socket with it
    }
    std::lock_guard lock(mailbox_->mutex);
    if (reusable && !loop->refused() && !mailbox_->stopping) {
        spare_loops_.push_back(std::move(loop));
    } else if (loop) {
        loop->say_goodbye_if_possible();
        loop.reset();  // closes its socket before stop() lets the context go
    }
    --mailbox_->driving;
    mailbox_->drives_ended.notify_all();
}

void ClientCore::stop(const std::string& reason) {
    {
        std::lock_guard lock(mailbox_->mutex);
        if (!mailbox_->stopping) {
            mailbox_->stopping = true;
            mailbox_->stop_reason = reason;
        }
    }
    mailbox_->wake();
    Mailbox::signal(mailbox_->stop_fd);
    if (thread_.joinable())
        thread_.join();
    {
        // The jobs driven by user threads fail too; their sockets must close before the
        // context they belong to does.
        std::unique_lock lock(mailbox_->mutex);
        mailbox_->drives_ended.wait(lock, [&] { return mailbox_->driving == 0; });
    }
    // The I/O thread failed the jobs it had; fail any handed over after its last look.
    std::vector<std::shared_ptr<RunState>> left;
    std::vector<std::unique_ptr<ClientLoop>> spares;
    {
        std::lock_guard lock(mailbox_->mutex);
        left.swap(mailbox_->incoming);
        spares.swap(spare_loops_);
    }
    for (auto& spare : spares)
        spare->say_goodbye_if_possible();
    for (auto& run : left)
        run->fail(std::make_exception_ptr(Error("job '" + run->job_name() + "': " + reason)));
}

}  // namespace dtask::detail
