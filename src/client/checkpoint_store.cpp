#include "client/checkpoint_store.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dtask/error.hpp>

namespace dtask::detail {

namespace {

/// How long a write waits for a reader (a tool looking at the file) to let go.
constexpr int busy_timeout_ms = 5000;

constexpr const char* schema =
    "CREATE TABLE dtask_identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE dtask_progress (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " folded_count INTEGER NOT NULL, folded BLOB NOT NULL, accumulator BLOB NOT NULL,"
    " saved_at TEXT NOT NULL);";

/// A prepared statement, finalized when it goes.
struct Statement {
    sqlite3_stmt* stmt = nullptr;
    Statement(sqlite3* db, const char* sql) {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK)
            stmt = nullptr;
    }
    ~Statement() { sqlite3_finalize(stmt); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
};

std::string column_text(sqlite3_stmt* stmt, int column) {
    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt, column));
    const int size = sqlite3_column_bytes(stmt, column);
    return bytes != nullptr ? std::string(bytes, static_cast<std::size_t>(size)) : std::string();
}

std::mutex& open_files_mutex() {
    static std::mutex mutex;
    return mutex;
}

}  // namespace

std::set<std::pair<dev_t, ino_t>>& CheckpointStore::open_files() {
    static std::set<std::pair<dev_t, ino_t>> files;
    return files;
}

bool CheckpointStore::take_in_process(dev_t device, ino_t inode) {
    std::lock_guard lock(open_files_mutex());
    return open_files().emplace(device, inode).second;
}

CheckpointStore::CheckpointStore(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        const std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
        close();
        throw Error("checkpoint '" + path + "' cannot be opened: " + why);
    }
    // In this process, a table of the files open; across processes, an flock. The table
    // comes first: closing a descriptor of a file that another connection of this process
    // has open would drop that connection's own (POSIX) locks.
    struct stat file {};
    if (::stat(path.c_str(), &file) != 0 || !take_in_process(file.st_dev, file.st_ino)) {
        close();
        throw Error("checkpoint '" + path + "' is in use by another run");
    }
    file_ = {file.st_dev, file.st_ino};
    lock_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (lock_fd_ < 0 || flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        close();
        throw Error("checkpoint '" + path + "' " +
                    (error == EWOULDBLOCK
                         ? std::string("is in use by another run")
                         : "cannot be locked: " + std::string(std::strerror(error))));
    }
    sqlite3_busy_timeout(db_, busy_timeout_ms);
    try {
        // The first read of the file: one that is not an SQLite database fails here, unwritten.
        Statement tables(db_, "SELECT name FROM sqlite_master WHERE type = 'table'");
        if (tables.stmt == nullptr)
            fail("reading it");
        bool ours = false;
        bool others = false;
        int step = 0;
        while ((step = sqlite3_step(tables.stmt)) == SQLITE_ROW) {
            const std::string name = column_text(tables.stmt, 0);
            (name == "dtask_identity" || name == "dtask_progress" ? ours : others) = true;
        }
        if (step != SQLITE_DONE)
            fail("reading it");
        if (others)
            throw Error("checkpoint '" + path +
                        "' is an SQLite database but not a dtask checkpoint");
        exec("PRAGMA journal_mode = WAL");
        exec("PRAGMA synchronous = FULL");
        if (!ours) {
            exec("BEGIN IMMEDIATE");
            exec(schema);
            exec("COMMIT");
        }
        if (sqlite3_prepare_v2(db_,
                               "INSERT OR REPLACE INTO dtask_progress VALUES "
                               "(1, ?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                               -1, &save_, nullptr) != SQLITE_OK)
            fail("preparing its writes");
    } catch (...) {
        close();
        throw;
    }
}

CheckpointStore::~CheckpointStore() {
    close();
}

void CheckpointStore::close() noexcept {
    sqlite3_finalize(save_);
    save_ = nullptr;
    sqlite3_close_v2(db_);
    db_ = nullptr;
    // Last: closing any descriptor of the file drops SQLite's own (POSIX) locks on it.
    if (lock_fd_ >= 0)
        ::close(lock_fd_);
    lock_fd_ = -1;
    if (file_) {
        std::lock_guard lock(open_files_mutex());
        open_files().erase(*file_);
        file_.reset();
    }
}

void CheckpointStore::exec(const char* sql) const {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string why = message != nullptr ? message : sqlite3_errmsg(db_);
        sqlite3_free(message);
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw Error("checkpoint '" + path_ + "': " + why);
    }
}

void CheckpointStore::fail(const std::string& doing) const {
    const int code = sqlite3_errcode(db_);
    if (code == SQLITE_NOTADB)
        throw Error("checkpoint '" + path_ +
                    "' is not a dtask checkpoint (not an SQLite database)");
    throw Error("checkpoint '" + path_ + "': " + doing + " failed: " + sqlite3_errmsg(db_));
}

std::map<std::string, std::string> CheckpointStore::identity() const {
    Statement select(db_, "SELECT key, value FROM dtask_identity");
    if (select.stmt == nullptr)
        fail("reading its identity");
    std::map<std::string, std::string> fields;
    int step = 0;
    while ((step = sqlite3_step(select.stmt)) == SQLITE_ROW)
        fields[column_text(select.stmt, 0)] = column_text(select.stmt, 1);
    if (step != SQLITE_DONE)
        fail("reading its identity");
    return fields;
}

void CheckpointStore::add_identity(const std::vector<std::pair<std::string, std::string>>& fields,
                                   bool drop_progress) {
    Statement insert(db_, "INSERT OR REPLACE INTO dtask_identity VALUES (?1, ?2)");
    if (insert.stmt == nullptr)
        fail("writing its identity");
    exec("BEGIN IMMEDIATE");
    if (drop_progress)
        exec("DELETE FROM dtask_progress");
    for (const auto& [key, value] : fields) {
        sqlite3_bind_text(insert.stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
        sqlite3_bind_text(insert.stmt, 2, value.data(), static_cast<int>(value.size()),
                          SQLITE_STATIC);
        if (sqlite3_step(insert.stmt) != SQLITE_DONE) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            fail("writing its identity");
        }
        sqlite3_reset(insert.stmt);
    }
    exec("COMMIT");
}

std::optional<CheckpointStore::Progress> CheckpointStore::progress() const {
    Statement select(db_,
                     "SELECT folded_count, folded, accumulator FROM dtask_progress WHERE id = 1");
    if (select.stmt == nullptr)
        fail("reading its progress");
    const int step = sqlite3_step(select.stmt);
    if (step == SQLITE_DONE)
        return std::nullopt;
    if (step != SQLITE_ROW)
        fail("reading its progress");
    Progress progress;
    progress.folded_count = static_cast<std::uint64_t>(sqlite3_column_int64(select.stmt, 0));
    progress.folded = column_text(select.stmt, 1);
    progress.accumulator = column_text(select.stmt, 2);
    return progress;
}

void CheckpointStore::save(const Progress& progress) {
    // One statement outside BEGIN is one transaction: whole in the file, or not at all.
    sqlite3_bind_int64(save_, 1, static_cast<sqlite3_int64>(progress.folded_count));
    sqlite3_bind_blob64(save_, 2, progress.folded.data(), progress.folded.size(), SQLITE_STATIC);
    sqlite3_bind_blob64(save_, 3, progress.accumulator.data(), progress.accumulator.size(),
                        SQLITE_STATIC);
    const int step = sqlite3_step(save_);
    sqlite3_reset(save_);
    sqlite3_clear_bindings(save_);
    if (step != SQLITE_DONE)
        fail("writing its progress");
}

void CheckpointStore::remove() {
    close();
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
        ::unlink((path_ + suffix).c_str());
}

std::optional<std::uint64_t> CheckpointStore::folded_count(const std::string& path) {
    sqlite3* db = nullptr;
    std::optional<std::uint64_t> count;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_busy_timeout(db, busy_timeout_ms);
        Statement select(db, "SELECT folded_count FROM dtask_progress WHERE id = 1");
        if (select.stmt != nullptr && sqlite3_step(select.stmt) == SQLITE_ROW)
            count = static_cast<std::uint64_t>(sqlite3_column_int64(select.stmt, 0));
    }
    sqlite3_close_v2(db);
    return count;
}

}  // namespace dtask::detail
