// Word frequencies over the files of a directory: the host reads the files in chunks (a lazy
// generator, so memory stays bounded however large the directory), workers count the words
// of each chunk, and the counts are merged as they arrive.
//
//   word_count DIR                 top 10 words on one local worker per core
//   word_count DIR --top 25 --serial   the same count in this process alone

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <dtask/dtask.hpp>

#include "command_line.hpp"
#include "progress_bar.hpp"

namespace {

namespace fs = std::filesystem;
using Counts = std::unordered_map<std::string, std::uint64_t>;

struct Corpus {
    std::string directory;
    std::size_t chunk_bytes = 1 << 20;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(directory, chunk_bytes);
    }
};

/// A word is a run of ASCII letters, digits and apostrophes, compared in lower case.
void count_words(std::string_view text, Counts& counts) {
    std::string word;
    auto flush = [&] {
        if (!word.empty())
            ++counts[word];
        word.clear();
    };
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '\'') {
            word.push_back(static_cast<char>(std::tolower(u)));
        } else {
            flush();
        }
    }
    flush();
}

std::vector<fs::path> files_of(const std::string& directory) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(directory)) {
        if (entry.is_regular_file())
            files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

/// Yields the text of the files in chunks of about `chunk_bytes`, cut between words so that
/// no word is split across two chunks.
class Chunks {
public:
    Chunks(std::vector<fs::path> files, std::size_t chunk_bytes)
        : files_(std::make_shared<std::vector<fs::path>>(std::move(files))),
          chunk_bytes_(chunk_bytes) {}

    std::optional<std::string> operator()() {
        std::string chunk = std::move(carry_);
        carry_.clear();
        while (chunk.size() < chunk_bytes_) {
            if (!stream_ || !*stream_ || stream_->eof()) {
                if (next_file_ == files_->size())
                    break;
                stream_ =
                    std::make_shared<std::ifstream>((*files_)[next_file_++], std::ios::binary);
                if (!*stream_)
                    throw std::runtime_error("cannot read " + (*files_)[next_file_ - 1].string());
                if (!chunk.empty())
                    chunk.push_back('\n');  // files never run into each other
            }
            const std::size_t before = chunk.size();
            chunk.resize(chunk_bytes_);
            stream_->read(chunk.data() + before,
                          static_cast<std::streamsize>(chunk_bytes_ - before));
            chunk.resize(before + static_cast<std::size_t>(stream_->gcount()));
        }
        if (chunk.empty())
            return std::nullopt;
        // Keep a word cut at the end of the chunk for the next one.
        if (stream_ && *stream_ && !stream_->eof()) {
            std::size_t cut = chunk.size();
            while (cut > 0 && (std::isalnum(static_cast<unsigned char>(chunk[cut - 1])) ||
                               chunk[cut - 1] == '\'')) {
                --cut;
            }
            if (cut > 0) {
                carry_ = chunk.substr(cut);
                chunk.resize(cut);
            }
        }
        return chunk;
    }

private:
    std::shared_ptr<std::vector<fs::path>> files_;
    std::size_t chunk_bytes_;
    std::size_t next_file_ = 0;
    std::shared_ptr<std::ifstream> stream_;
    std::string carry_;
};

}  // namespace

inline const dtask::Job<Counts> word_count{
    "word_count",
    [](const Corpus& corpus, dtask::SplitHint) {
        return Chunks(files_of(corpus.directory), corpus.chunk_bytes);
    },
    [](const std::string& text) {
        Counts counts;
        count_words(text, counts);
        return counts;
    },
    [](Counts total, Counts part) {
        if (total.size() < part.size())
            total.swap(part);
        for (auto& [word, count] : part)
            total[word] += count;
        return total;
    },
    // Adding counts is commutative: fold each partial as soon as it arrives.
    dtask::JobOptions{.order = dtask::ReduceOrder::arrival_order}};

namespace {

void print_help() {
    std::cout
        << "Usage: word_count DIRECTORY [options]\n"
           "Counts the words of every file under DIRECTORY on worker processes and prints\n"
           "the most frequent ones (a word: letters, digits and apostrophes, lower-cased).\n\n"
           "Options:\n"
           "  --top K            how many words to print (default 10)\n"
           "  --chunk BYTES      text per subtask (default 1048576)\n"
           "  --workers W        local worker processes (default: one per core; 0: none)\n"
           "  --listen ENDPOINT  also accept workers at ENDPOINT (repeatable)\n"
           "  --connect ENDPOINT submit to the broker at ENDPOINT instead of starting one\n"
           "  --serial           count in this process alone, without dtask (for comparison)\n"
           "  --help             this text\n"
           "  --version          the dtask release\n\n"
        << dtask::worker_usage();
}

void print_top(const Counts& counts, std::size_t top) {
    std::vector<std::pair<std::string, std::uint64_t>> ranked(counts.begin(), counts.end());
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::uint64_t words = 0;
    for (const auto& [word, count] : ranked)
        words += count;
    std::cout << words << " words, " << ranked.size() << " distinct\n";
    for (std::size_t i = 0; i < std::min(top, ranked.size()); ++i) {
        std::cout << ranked[i].second << " " << ranked[i].first << "\n";
    }
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);

    Corpus corpus;
    std::size_t top = 10;
    bool serial = false;
    dtask::ClusterOptions cluster_options;
    WhereToRun where;  // --connect; --workers is cluster_options', which may be 0 here
    CommandLine args("word_count", argc, argv);
    while (args.next()) {
        if (args.is("--top")) {
            top = args.number();
        } else if (args.is("--chunk")) {
            corpus.chunk_bytes = args.number(1, std::size_t{1} << 30);
        } else if (args.is("--workers")) {
            cluster_options.local_workers = static_cast<int>(args.number(0, 1024));
        } else if (args.is("--listen")) {
            cluster_options.listen.emplace_back(args.value());
        } else if (args.is("--serial")) {
            serial = true;
        } else if (!args.arg().starts_with("-")) {
            if (!corpus.directory.empty())
                args.fail("one directory only, not '" + corpus.directory + "' and '" +
                          std::string(args.arg()) + "'");
            corpus.directory = std::string(args.arg());
        } else if (!args.common(where, print_help)) {  // --help, --version, --connect
            args.unknown();
        }
    }
    if (corpus.directory.empty())
        args.fail("which directory?");
    if (!fs::is_directory(corpus.directory))
        args.fail("'" + corpus.directory + "' is not a directory");
    const auto& connect = where.connect;

    try {
        Counts counts;
        if (serial) {
            Chunks chunks(files_of(corpus.directory), corpus.chunk_bytes);
            while (auto chunk = chunks())
                count_words(*chunk, counts);
        } else if (connect) {
            ProgressBar bar("word_count");  // on a terminal only
            dtask::Client client(*connect);
            counts = client.run(word_count, corpus, bar.attach({}));
        } else {
            ProgressBar bar("word_count");
            dtask::Cluster cluster(cluster_options);
            counts = cluster.run(word_count, corpus, bar.attach({}));
        }
        print_top(counts, top);
    } catch (const std::exception& e) {
        std::cerr << "word_count: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
