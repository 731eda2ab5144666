#pragma once
// The figures dtask_perf measures, and how it reports them: a table on stdout and a JSON file
// for bench/plot_performance.py and for comparing runs.

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace perf {

double median(std::vector<double> values);

/// What a figure should reach, on its value or on its ratio to its baseline.
struct Target {
    enum class On { value, ratio };
    On on = On::value;
    bool at_least = true;  // false: at most
    double threshold = 0;

    static Target value_at_least(double threshold) { return {On::value, true, threshold}; }
    static Target value_at_most(double threshold) { return {On::value, false, threshold}; }
    static Target ratio_at_least(double threshold) { return {On::ratio, true, threshold}; }
    static Target ratio_at_most(double threshold) { return {On::ratio, false, threshold}; }
};

/// Which way a figure improves.
enum class Better { higher, lower };

/// One measured quantity: one value per repetition, and, when it has a baseline, the
/// baseline's value measured in the same repetition.
struct Figure {
    Figure() = default;
    Figure(std::string scenario_name, std::string figure_name, std::string unit_name,
           Better direction)
        : scenario(std::move(scenario_name)),
          name(std::move(figure_name)),
          unit(std::move(unit_name)),
          better(direction) {}

    std::string scenario;
    std::string name;
    std::string unit;
    Better better = Better::higher;
    std::vector<double> repetitions;
    std::string baseline;  // what the baseline is; empty: none
    std::vector<double> baseline_repetitions;
    std::optional<Target> target;
    /// Facts about the measurement (sizes, transports, derived values) for the JSON file.
    std::vector<std::pair<std::string, std::variant<double, std::string>>> details;

    void add(double value) { repetitions.push_back(value); }
    void add(double value, double baseline_value) {
        repetitions.push_back(value);
        baseline_repetitions.push_back(baseline_value);
    }
    void detail(std::string key, std::variant<double, std::string> value) {
        details.emplace_back(std::move(key), std::move(value));
    }

    /// The median of the repetitions.
    double value() const { return median(repetitions); }
    std::optional<double> baseline_value() const;
    /// value / baseline of each repetition (the two were measured side by side); empty
    /// without a baseline.
    std::vector<double> ratios() const;
    /// The median of ratios().
    std::optional<double> ratio() const;
    /// Whether the target is met; nullopt without a target.
    std::optional<bool> met() const;
};

/// The measurement settings, as the JSON file records them.
struct RunSettings {
    bool quick = false;
    int repeat = 5;
    std::string only;
    /// /proc/loadavg's 1-minute figure when the run started: other work on the machine
    /// makes every figure noisy, so the file says how busy it was.
    double load_at_start = 0;
};

/// The 1-minute load average now.
double load_average();

/// The table: one row per figure.
void print_table(const std::vector<Figure>& figures);

/// Writes the JSON result file: settings, machine, figures, errors, elapsed seconds.
/// Throws if the file cannot be written.
void write_json(const std::string& path, const RunSettings& settings,
                const std::vector<Figure>& figures, const std::vector<std::string>& errors,
                double elapsed_seconds);

}  // namespace perf
