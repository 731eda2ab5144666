#include "dtaskd_child.hpp"

#include <fstream>
#include <stdexcept>

#ifdef DTASK_PERF_DTASKD
namespace perf {

DtaskdChild::DtaskdChild(const std::vector<std::string>& options) {
    std::vector<std::string> args{"--listen", "tcp://127.0.0.1:*", "--keys", keys.path()};
    args.insert(args.end(), options.begin(), options.end());
    process.emplace(BenchChild::Program{DTASK_PERF_DTASKD}, args, true,
                    std::vector<std::string>{"DTASK_LOG=warn"});
    const std::string listening = "dtaskd: listening on ";
    while (auto line = process->read_line(std::chrono::seconds(30))) {
        if (line->starts_with(listening))
            endpoint = line->substr(listening.size());
        if (line->starts_with("dtaskd: join tokens in "))
            break;
    }
    if (endpoint.empty())
        throw std::runtime_error("dtaskd did not start");
}

std::string DtaskdChild::token(const std::string& role) const {
    std::ifstream file(keys.path() + "/" + role + ".token");
    std::string text;
    std::getline(file, text);
    if (text.empty())
        throw std::runtime_error("dtaskd wrote no " + role + " token in " + keys.path());
    return text;
}

}  // namespace perf
#endif
