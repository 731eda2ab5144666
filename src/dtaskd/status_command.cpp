// dtaskd status: /api/status read over HTTP and printed as text.

#include "dtaskd/status_command.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <dtask/error.hpp>

#include "http/http_address.hpp"

namespace dtask::dtaskd {

namespace {

using nlohmann::json;

std::string duration_text(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0)
        return "-";
    const auto whole = static_cast<long long>(seconds);
    char text[64];
    if (whole >= 3600)
        std::snprintf(text, sizeof text, "%lldh%02lldm", whole / 3600, whole / 60 % 60);
    else if (whole >= 60)
        std::snprintf(text, sizeof text, "%lldm%02llds", whole / 60, whole % 60);
    else
        std::snprintf(text, sizeof text, "%.1fs", seconds);
    return text;
}

std::string clock_text(double unix_seconds) {
    const auto time = static_cast<std::time_t>(unix_seconds);
    std::tm parts{};
    localtime_r(&time, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%H:%M:%S", &parts);
    return text;
}

std::string column(std::string text, std::size_t width) {
    if (text.size() > width) {
        text.resize(width - 1);
        text.push_back('~');
    }
    text.resize(width + 1, ' ');
    return text;
}

void print(const json& status, const std::string& url) {
    std::cout << "dtaskd " << status.at("version").get<std::string>() << " (protocol "
              << status.at("protocol").get<int>() << ") at " << url << ", up "
              << duration_text(status.at("uptime_seconds").get<double>()) << "\n\n";
    const json& workers = status.at("workers");
    std::cout << "Workers: " << workers.size() << "\n";
    if (!workers.empty())
        std::cout << "  " << column("WORKER", 28) << column("WHERE", 6) << column("STATE", 10)
                  << column("BATCHES", 8) << column("DONE", 12) << "HEARD\n";
    for (const json& worker : workers)
        std::cout << "  " << column(worker.at("id").get<std::string>(), 28)
                  << column(worker.at("local").get<bool>() ? "local" : "remote", 6)
                  << column(worker.at("state").get<std::string>(), 10)
                  << column(std::to_string(worker.at("batches_held").get<std::uint64_t>()), 8)
                  << column(std::to_string(worker.at("subtasks_done").get<std::uint64_t>()), 12)
                  << duration_text(worker.at("last_heard_seconds").get<double>()) << " ago\n";
    const json& jobs = status.at("jobs");
    std::cout << "\nJobs: " << jobs.size() << "\n";
    if (!jobs.empty())
        std::cout << "  " << column("ID", 6) << column("NAME", 24) << column("STATE", 9)
                  << column("PROGRESS", 24) << column("RATE/S", 10) << column("ETA", 8)
                  << "RETRIES/QUARANTINED/BACKUPS\n";
    for (const json& job : jobs) {
        const auto done = job.at("done").get<std::uint64_t>();
        std::string progress = std::to_string(done);
        if (!job.at("total").is_null()) {
            const auto total = job.at("total").get<std::uint64_t>();
            char fraction[64];
            std::snprintf(fraction, sizeof fraction, "/%llu (%.0f%%)",
                          static_cast<unsigned long long>(total),
                          total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / total);
            progress.append(fraction);
        }
        char rate[32];
        std::snprintf(rate, sizeof rate, "%.0f", job.at("rate").get<double>());
        std::cout << "  " << column(std::to_string(job.at("id").get<std::uint64_t>()), 6)
                  << column(job.at("name").get<std::string>(), 24)
                  << column(job.at("state").get<std::string>(), 9) << column(progress, 24)
                  << column(rate, 10)
                  << column(job.at("eta_seconds").is_null()
                                ? "-"
                                : duration_text(job.at("eta_seconds").get<double>()),
                            8)
                  << job.at("retries").get<std::uint64_t>() << "/"
                  << job.at("quarantined").get<std::uint64_t>() << "/"
                  << job.at("backups").get<std::uint64_t>() << "\n";
        if (!job.at("error").is_null())
            std::cout << "        error: " << job.at("error").get<std::string>() << "\n";
    }
    const json& events = status.at("events");
    std::cout << "\nRecent events:" << (events.empty() ? " none" : "") << "\n";
    const std::size_t shown = std::min<std::size_t>(events.size(), 10);
    for (std::size_t i = events.size() - shown; i < events.size(); ++i)
        std::cout << "  " << clock_text(events[i].at("time").get<double>()) << "  "
                  << events[i].at("text").get<std::string>() << "\n";
}

}  // namespace

int print_status(const std::string& address_text, const std::string& token) {
    const detail::HttpAddress address = detail::parse_http_address(address_text);
    const std::string url = "http://" + address.host + ":" + std::to_string(address.port) + "/";
    httplib::Client client(address.host, address.port);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(10, 0);
    httplib::Headers headers;
    if (!token.empty())
        headers.emplace("Authorization", "Bearer " + token);
    const auto result = client.Get("/api/status", headers);
    if (!result) {
        std::cerr << "dtaskd status: cannot reach a dtaskd at " << url << ": "
                  << (result.error() == httplib::Error::Connection
                          ? std::string("nothing answers there")
                          : httplib::to_string(result.error()))
                  << " (is dtaskd running with --http " << address_text << "?)\n";
        return 1;
    }
    if (result->status == 401) {
        std::cerr << "dtaskd status: " << url << " needs the monitoring token: give it with "
                  << "--token-file KEYS/monitor.token or DTASK_MONITOR_TOKEN\n";
        return 1;
    }
    if (result->status != 200) {
        std::cerr << "dtaskd status: " << url << "api/status answered HTTP " << result->status
                  << ": " << result->body.substr(0, 200) << "\n";
        return 1;
    }
    try {
        print(json::parse(result->body), url);
    } catch (const json::exception& e) {
        std::cerr << "dtaskd status: " << url << "api/status is not a dtaskd's status: " << e.what()
                  << "\n";
        return 1;
    }
    return 0;
}

}  // namespace dtask::dtaskd
