// An inverted index of the text files under a directory: for every word, the files it is in
// and how often. The host reads the files one at a time (a generator, so memory holds a file
// at a time, not the directory), a worker counts the words of each, and the counts are
// merged in file order; then the index answers queries.
//
//   inverted_index /usr/share/common-licenses                      how many files and words
//   inverted_index /usr/share/common-licenses --query patent license   files with both words
//   inverted_index DIR --dump                                          the whole index
//   inverted_index DIR --serial                                        in this process alone

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dtask/dtask.hpp>

#include "command_line.hpp"
#include "progress_bar.hpp"

namespace {

namespace fs = std::filesystem;

/// Files larger than this are left out of the index (said on stderr), so that one subtask
/// never holds more.
constexpr std::uintmax_t largest_file = 16 << 20;

/// One subtask: a file's path, relative to the directory, and its text.
struct Document {
    std::string path;
    std::string text;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(path, text);
    }
};

/// A file's words and how often each is in it, sorted by word.
struct WordCounts {
    std::string path;
    std::vector<std::pair<std::string, std::uint64_t>> words;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(path, words);
    }
};

/// How often a word is in one file (its number in Index::files).
struct Posting {
    std::uint32_t file = 0;
    std::uint64_t count = 0;
};

/// Every word, with the files it is in (in file order).
struct Index {
    std::vector<std::string> files;
    std::map<std::string, std::vector<Posting>> words;

    void add(const WordCounts& file) {
        const auto number = static_cast<std::uint32_t>(files.size());
        files.push_back(file.path);
        for (const auto& [word, count] : file.words)
            words[word].push_back(Posting{number, count});
    }
};

/// A word is a run of ASCII letters and digits, compared in lower case.
std::vector<std::string> words_of(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u)) {
            word.push_back(static_cast<char>(std::tolower(u)));
        } else if (!word.empty()) {
            words.push_back(std::move(word));
            word.clear();
        }
    }
    if (!word.empty())
        words.push_back(std::move(word));
    return words;
}

WordCounts count_words(const Document& document) {
    std::map<std::string, std::uint64_t> counts;
    for (std::string& word : words_of(document.text))
        ++counts[std::move(word)];
    return WordCounts{document.path, {counts.begin(), counts.end()}};
}

/// The regular files under `directory`, in sorted order, relative to it.
std::vector<fs::path> files_of(const fs::path& directory) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(directory)) {
        if (!entry.is_regular_file())
            continue;
        if (entry.file_size() > largest_file) {
            std::cerr << "inverted_index: " << entry.path().string() << " left out: over "
                      << (largest_file >> 20) << " MiB\n";
            continue;
        }
        files.push_back(entry.path().lexically_relative(directory));
    }
    std::sort(files.begin(), files.end());
    return files;
}

/// Yields each file as a Document, read when it is its turn to be sent.
class Documents {
public:
    explicit Documents(const std::string& directory)
        : directory_(directory),
          files_(std::make_shared<std::vector<fs::path>>(files_of(directory))) {}

    std::optional<Document> operator()() {
        if (next_ == files_->size())
            return std::nullopt;
        const fs::path& file = (*files_)[next_++];
        std::ifstream stream(directory_ / file, std::ios::binary);
        std::string text(std::istreambuf_iterator<char>(stream), {});
        if (!stream.is_open() || stream.bad())
            throw std::runtime_error("cannot read " + (directory_ / file).string());
        return Document{file.string(), std::move(text)};
    }

private:
    fs::path directory_;
    std::shared_ptr<std::vector<fs::path>> files_;  // shared: a generator is copied
    std::size_t next_ = 0;
};

// At namespace scope, so that this binary started as a worker finds map by the job's name.
const dtask::Job<Index> inverted_index{
    "inverted_index",
    [](const std::string& directory, dtask::SplitHint) { return Documents(directory); },
    count_words,
    // In subtask order (the default): file numbers follow the sorted paths.
    [](Index index, const WordCounts& file) {
        index.add(file);
        return index;
    }};

/// The files that hold every one of `words`, with the count of each, most matches first.
void print_query(const Index& index, const std::vector<std::string>& words) {
    std::vector<const std::vector<Posting>*> lists;
    for (const std::string& word : words) {
        const auto found = index.words.find(word);
        if (found == index.words.end()) {
            std::cout << "no file holds '" << word << "'\n";
            return;
        }
        lists.push_back(&found->second);
    }
    // Per file, its count of each word, for the files in the first list that are in all.
    std::vector<std::pair<std::uint32_t, std::vector<std::uint64_t>>> matches;
    for (const Posting& posting : *lists.front()) {
        std::vector<std::uint64_t> counts;
        for (const auto* list : lists) {
            const auto at = std::lower_bound(
                list->begin(), list->end(), posting.file,
                [](const Posting& p, std::uint32_t file) { return p.file < file; });
            if (at == list->end() || at->file != posting.file)
                break;
            counts.push_back(at->count);
        }
        if (counts.size() == lists.size())
            matches.emplace_back(posting.file, std::move(counts));
    }
    auto total = [](const auto& match) {
        std::uint64_t sum = 0;
        for (const std::uint64_t count : match.second)
            sum += count;
        return sum;
    };
    std::stable_sort(matches.begin(), matches.end(),
                     [&](const auto& a, const auto& b) { return total(a) > total(b); });
    std::cout << matches.size() << " of " << index.files.size() << " files hold every word\n";
    for (const auto& match : matches) {
        std::cout << index.files[match.first] << ":";
        for (std::size_t w = 0; w < words.size(); ++w)
            std::cout << " " << words[w] << " " << match.second[w];
        std::cout << "\n";
    }
}

/// Every word, one a line, with the files it is in: "word file:count file:count ...".
void print_index(const Index& index) {
    for (const auto& [word, postings] : index.words) {
        std::cout << word;
        for (const Posting& posting : postings)
            std::cout << " " << index.files[posting.file] << ":" << posting.count;
        std::cout << "\n";
    }
}

void print_summary(const Index& index) {
    std::uint64_t words = 0;
    for (const auto& entry : index.words)
        for (const Posting& posting : entry.second)
            words += posting.count;
    std::cout << index.files.size() << " files, " << words << " words, " << index.words.size()
              << " distinct\n";
}

void print_help() {
    std::cout << "Usage: inverted_index DIRECTORY [options]\n"
                 "Indexes the words of every file under DIRECTORY on worker processes, one file\n"
                 "a subtask, and answers a query: the files that hold all its words, with how\n"
                 "often. A word is a run of letters and digits, in lower case.\n\n"
                 "Options:\n"
                 "  --query WORD...    print the files that hold every WORD, most matches first\n"
                 "  --dump             print the whole index: word file:count file:count ...\n"
                 "  --serial           index in this process alone, without dtask\n"
              << common_usage << "\n"
              << dtask::worker_usage();
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // a worker process serves here and exits

    std::string directory;
    std::optional<std::vector<std::string>> query;
    bool dump = false;
    bool serial = false;
    WhereToRun where;
    CommandLine args("inverted_index", argc, argv);
    while (args.next()) {
        if (args.is("--query")) {
            query.emplace();
            while (args.more_values()) {
                args.next();
                for (std::string& word : words_of(args.arg()))
                    query->push_back(std::move(word));
            }
            if (query->empty())
                args.fail("--query needs at least one word");
        } else if (args.is("--dump")) {
            dump = true;
        } else if (args.is("--serial")) {
            serial = true;
        } else if (!args.arg().starts_with("-")) {
            if (!directory.empty())
                args.fail("one directory only, not '" + directory + "' and '" +
                          std::string(args.arg()) + "'");
            directory = std::string(args.arg());
        } else if (!args.common(where, print_help)) {
            args.unknown();
        }
    }
    if (directory.empty())
        args.fail("which directory?");
    if (!fs::is_directory(directory))
        args.fail("'" + directory + "' is not a directory");

    try {
        Index index;
        if (serial) {
            Documents documents(directory);
            while (auto document = documents())
                index.add(count_words(*document));
        } else {
            ProgressBar bar("inverted_index");  // on a terminal only
            index = where.with_submitter([&](dtask::Submitter& submitter) {
                return submitter.run(inverted_index, directory, bar.attach({}));
            });
        }
        if (query)
            print_query(index, *query);
        else if (dump)
            print_index(index);
        else
            print_summary(index);
    } catch (const std::exception& e) {
        std::cerr << "inverted_index: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
