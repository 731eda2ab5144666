#pragma once
// The checkpoint file: an SQLite database in WAL mode with synchronous=FULL, so that each
// write is one transaction that is either whole in the file or not there at all (a process
// killed, or the machine losing power, in the middle of one leaves the last committed
// checkpoint). Two tables: dtask_identity (key, value), written when the file is made, and
// dtask_progress, one row replaced at each write. A lock held while it is open (an flock, and
// a table in the process) keeps two runs from using one file at once. Only this file and
// checkpoint_store.cpp see SQLite.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

struct sqlite3;
struct sqlite3_stmt;

namespace dtask::detail {

class CheckpointStore {
public:
    /// What one write holds.
    struct Progress {
        std::uint64_t folded_count = 0;
        std::string folded;       // FoldedSet::encode()
        std::string accumulator;  // serialized with cereal
    };

    /// Opens the file at `path`, creating it (with its tables) if it is missing or empty.
    /// Throws Error naming the file if it cannot, if it is not a dtask checkpoint, or if
    /// another process has it open.
    explicit CheckpointStore(const std::string& path);
    ~CheckpointStore();
    CheckpointStore(const CheckpointStore&) = delete;
    CheckpointStore& operator=(const CheckpointStore&) = delete;

    /// Whether the file had no identity: made now, or left by a run that died before.
    bool fresh() const { return identity().empty(); }
    std::map<std::string, std::string> identity() const;
    /// Adds these fields to the identity, in one transaction that also drops the progress
    /// if `drop_progress`.
    void add_identity(const std::vector<std::pair<std::string, std::string>>& fields,
                      bool drop_progress = false);
    /// The last write, if there was one.
    std::optional<Progress> progress() const;
    /// Replaces the progress, in one transaction.
    void save(const Progress& progress);

    /// Closes the file and removes it with its WAL files.
    void remove();

    /// The folded count of the checkpoint at `path`, read without taking its lock (for
    /// tests and tools); nullopt if it has none or cannot be read.
    static std::optional<std::uint64_t> folded_count(const std::string& path);

private:
    void exec(const char* sql) const;
    [[noreturn]] void fail(const std::string& doing) const;
    void close() noexcept;
    /// The files (device, inode) that a store of this process has open.
    static std::set<std::pair<dev_t, ino_t>>& open_files();
    /// Marks the file as open in this process; false if it was already.
    static bool take_in_process(dev_t device, ino_t inode);

    std::string path_;
    sqlite3* db_ = nullptr;
    sqlite3_stmt* save_ = nullptr;
    int lock_fd_ = -1;
    std::optional<std::pair<dev_t, ino_t>> file_;  // in open_files()
};

}  // namespace dtask::detail
