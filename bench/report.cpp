#include "report.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <sys/utsname.h>
#include <unistd.h>

#ifndef DTASK_PERF_BUILD_TYPE
#define DTASK_PERF_BUILD_TYPE ""
#endif
#ifndef DTASK_PERF_SANITIZE
#define DTASK_PERF_SANITIZE ""
#endif

namespace perf {

double median(std::vector<double> values) {
    if (values.empty())
        return std::nan("");
    std::sort(values.begin(), values.end());
    const std::size_t middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

double load_average() {
    std::ifstream file("/proc/loadavg");
    double one_minute = std::nan("");
    file >> one_minute;
    return one_minute;
}

std::optional<double> Figure::baseline_value() const {
    if (baseline_repetitions.empty())
        return std::nullopt;
    return median(baseline_repetitions);
}

std::vector<double> Figure::ratios() const {
    std::vector<double> each;
    if (baseline_repetitions.size() != repetitions.size())
        return each;
    for (std::size_t i = 0; i < repetitions.size(); ++i)
        each.push_back(repetitions[i] / baseline_repetitions[i]);
    return each;
}

std::optional<double> Figure::ratio() const {
    const std::vector<double> each = ratios();
    if (each.empty())
        return std::nullopt;
    return median(each);
}

std::optional<bool> Figure::met() const {
    if (!target || repetitions.empty())
        return std::nullopt;
    const std::optional<double> measured = target->on == Target::On::ratio ? ratio() : value();
    if (!measured || std::isnan(*measured))
        return false;
    return target->at_least ? *measured >= target->threshold : *measured <= target->threshold;
}

namespace {

/// A value with its unit, as the table shows it: rates in k/s or M/s.
std::string shown(double value, const std::string& unit) {
    char text[64];
    if (std::isnan(value))
        return "-";
    if (unit == "subtasks/s" || unit == "messages/s") {
        if (value >= 1e6)
            std::snprintf(text, sizeof text, "%.2f M/s", value / 1e6);
        else
            std::snprintf(text, sizeof text, "%.1f k/s", value / 1e3);
    } else if (unit == "%") {
        std::snprintf(text, sizeof text, "%.1f %%", value);
    } else {
        std::snprintf(text, sizeof text, "%.4g %s", value, unit.c_str());
    }
    return text;
}

std::string target_text(const Figure& figure) {
    if (!figure.target)
        return "";
    const Target& target = *figure.target;
    const std::string bound = target.at_least ? ">= " : "<= ";
    if (target.on == Target::On::ratio) {
        char text[32];
        std::snprintf(text, sizeof text, "%.3g", target.threshold);
        return "ratio " + bound + text;
    }
    return bound + shown(target.threshold, figure.unit);
}

std::string json_string(const std::string& text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char escaped[8];
                    std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
                    out += escaped;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

std::string json_number(double value) {
    if (!std::isfinite(value))
        return "null";
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
}

std::string json_numbers(const std::vector<double>& values) {
    std::string out = "[";
    for (std::size_t i = 0; i < values.size(); ++i)
        out += (i ? ", " : "") + json_number(values[i]);
    return out + "]";
}

std::string first_line_starting(const std::string& path, const std::string& key) {
    std::ifstream file(path);
    std::string line;
    while (std::getline(file, line)) {
        if (line.rfind(key, 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos)
                return line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    }
    return "unknown";
}

std::string machine_json(const RunSettings& settings) {
    utsname names{};
    uname(&names);
    char date[64] = {};
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
#if defined(__clang__)
    const std::string compiler = __VERSION__;
#else
    const std::string compiler = std::string("g++ ") + __VERSION__;
#endif
    std::ostringstream out;
    out << "{\"nproc\": " << sysconf(_SC_NPROCESSORS_ONLN)
        << ", \"cpu\": " << json_string(first_line_starting("/proc/cpuinfo", "model name"))
        << ", \"kernel\": "
        << json_string(std::string(names.sysname) + " " + names.release + " " + names.machine)
        << ", \"compiler\": " << json_string(compiler)
        << ", \"build_type\": " << json_string(DTASK_PERF_BUILD_TYPE)
        << ", \"sanitize\": " << json_string(DTASK_PERF_SANITIZE)
        << ", \"date\": " << json_string(date)
        << ", \"load_average_start\": " << json_number(settings.load_at_start)
        << ", \"load_average_end\": " << json_number(load_average()) << "}";
    return out.str();
}

std::string figure_json(const Figure& figure) {
    std::ostringstream out;
    out << "    {\"scenario\": " << json_string(figure.scenario)
        << ", \"name\": " << json_string(figure.name)
        << ", \"value\": " << json_number(figure.value())
        << ", \"unit\": " << json_string(figure.unit)
        << ", \"better\": " << json_string(figure.better == Better::higher ? "higher" : "lower")
        << ",\n     \"repetitions\": " << json_numbers(figure.repetitions);
    if (figure.baseline.empty()) {
        out << ",\n     \"baseline\": null, \"ratio\": null";
    } else {
        out << ",\n     \"baseline\": {\"name\": " << json_string(figure.baseline)
            << ", \"value\": " << json_number(figure.baseline_value().value_or(std::nan("")))
            << ", \"repetitions\": " << json_numbers(figure.baseline_repetitions) << "}"
            << ", \"ratio\": " << json_number(figure.ratio().value_or(std::nan("")))
            << ", \"ratio_repetitions\": " << json_numbers(figure.ratios());
    }
    if (figure.target) {
        const Target& target = *figure.target;
        out << ",\n     \"target\": {\"on\": \""
            << (target.on == Target::On::ratio ? "ratio" : "value") << "\", \""
            << (target.at_least ? "at_least" : "at_most") << "\": " << json_number(target.threshold)
            << ", \"text\": " << json_string(target_text(figure)) << "}"
            << ", \"met\": " << (*figure.met() ? "true" : "false");
    } else {
        out << ",\n     \"target\": null, \"met\": null";
    }
    out << ",\n     \"details\": {";
    for (std::size_t i = 0; i < figure.details.size(); ++i) {
        const auto& [key, value] = figure.details[i];
        out << (i ? ", " : "") << json_string(key) << ": "
            << (std::holds_alternative<double>(value) ? json_number(std::get<double>(value))
                                                      : json_string(std::get<std::string>(value)));
    }
    out << "}}";
    return out.str();
}

}  // namespace

void print_table(const std::vector<Figure>& figures) {
    using Row = std::array<std::string, 6>;
    std::vector<Row> rows{{"figure", "value", "baseline", "ratio", "target", "met"}};
    for (const Figure& figure : figures) {
        Row row{figure.name, shown(figure.value(), figure.unit), "", "", target_text(figure), ""};
        if (auto value = figure.baseline_value())
            row[2] = figure.baseline + " " + shown(*value, figure.unit);
        if (auto ratio = figure.ratio()) {
            // With the spread of the repetitions' ratios: the range in which the median lies.
            const std::vector<double> each = figure.ratios();
            const auto [low, high] = std::minmax_element(each.begin(), each.end());
            char text[48];
            if (each.size() > 1)
                std::snprintf(text, sizeof text, "%.3f (%.3f-%.3f)", *ratio, *low, *high);
            else
                std::snprintf(text, sizeof text, "%.3f", *ratio);
            row[3] = text;
        }
        if (auto met = figure.met())
            row[5] = *met ? "yes" : "NO";
        rows.push_back(row);
    }
    Row::size_type columns = rows.front().size();
    std::array<std::size_t, 6> widths{};
    for (const Row& row : rows) {
        for (Row::size_type i = 0; i < columns; ++i)
            widths[i] = std::max(widths[i], row[i].size());
    }
    for (const Row& row : rows) {
        std::string line;
        for (Row::size_type i = 0; i < columns; ++i) {
            // Numbers to the right, words to the left.
            const bool right = i == 1 || i == 3;
            const std::string padding(widths[i] - row[i].size(), ' ');
            line += (i ? "  " : "") + (right ? padding + row[i] : row[i] + padding);
        }
        line.erase(line.find_last_not_of(' ') + 1);
        std::printf("%s\n", line.c_str());
    }
}

void write_json(const std::string& path, const RunSettings& settings,
                const std::vector<Figure>& figures, const std::vector<std::string>& errors,
                double elapsed_seconds) {
    std::ofstream out(path);
    if (!out)
        throw std::runtime_error("cannot write " + path);
    out << "{\n  \"settings\": {\"quick\": " << (settings.quick ? "true" : "false")
        << ", \"repeat\": " << settings.repeat
        << ", \"only\": " << (settings.only.empty() ? "null" : json_string(settings.only)) << "},\n"
        << "  \"machine\": " << machine_json(settings) << ",\n"
        << "  \"elapsed_seconds\": " << json_number(elapsed_seconds) << ",\n"
        << "  \"errors\": [";
    for (std::size_t i = 0; i < errors.size(); ++i)
        out << (i ? ", " : "") << json_string(errors[i]);
    out << "],\n  \"figures\": [\n";
    for (std::size_t i = 0; i < figures.size(); ++i)
        out << figure_json(figures[i]) << (i + 1 < figures.size() ? ",\n" : "\n");
    out << "  ]\n}\n";
    if (!out)
        throw std::runtime_error("cannot write " + path);
}

}  // namespace perf
