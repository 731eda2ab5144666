#pragma once
// A second network namespace linked to this one by a veth pair: a "remote machine" on this
// one, whose link the fault tests and the fault measurements (bench/faults.cpp) can cut or
// slow down.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include "process.hpp"

namespace test_support {

/// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and the ip command; otherwise `why_not()` says
/// why, and the caller skips.
class RemoteNetwork {
public:
    RemoteNetwork() {
        remove_abandoned();
        const std::string id = std::to_string(getpid());  // "dtv" + id + "h" fits in 15
        const std::string subnet = "10.213." + std::to_string(getpid() % 250 + 1) + ".";
        name_ = "dtask-test-" + id;
        host_link_ = "dtv" + id + "h";
        host_address_ = subnet + "1";
        remote_link_ = "dtv" + id + "r";
        const std::string& remote_link = remote_link_;
        for (const std::string& command :
             {"ip netns add " + name_,
              "ip link add " + host_link_ + " type veth peer name " + remote_link,
              "ip link set " + remote_link + " netns " + name_,
              "ip addr add " + host_address_ + "/30 dev " + host_link_,
              "ip link set " + host_link_ + " up",
              "ip netns exec " + name_ + " ip addr add " + subnet + "2/30 dev " + remote_link,
              "ip netns exec " + name_ + " ip link set " + remote_link + " up",
              "ip netns exec " + name_ + " ip link set lo up"}) {
            if (!run(command)) {
                why_not_ =
                    "'" + command + "' failed (network namespaces need root and the ip command)";
                return;
            }
        }
    }
    ~RemoteNetwork() {
        run("ip netns del " + name_);  // takes the veth pair with it, and its qdiscs
        run("ip link del " + host_link_);
    }

    /// Starts `program` with `args` inside the namespace (see Process; `ip netns exec` execs
    /// it, so the pid is the program's).
    Process start(const std::string& program, std::vector<std::string> args,
                  const std::string& output_file = {},
                  const std::vector<std::string>& environment = {}) const {
        args.insert(args.begin(), {"netns", "exec", name_, program});
        return Process(ip_program(), args, output_file, environment);
    }

    /// The ip command's path.
    static std::string ip_program() {
        for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
            if (access(path, X_OK) == 0)
                return path;
        }
        return "ip";
    }

    const std::string& why_not() const { return why_not_; }
    const std::string& name() const { return name_; }
    const std::string& host_address() const { return host_address_; }
    /// Takes the link down: packets in either direction are dropped. False if that failed.
    bool cut() const { return run("ip link set " + host_link_ + " down"); }
    bool heal() const { return run("ip link set " + host_link_ + " up"); }
    /// Shapes the link to `rate` (tc's notation, e.g. "4mbit") in both directions, with a
    /// token bucket filter on each end. False if that failed (no tc, or not allowed).
    bool shape(const std::string& rate) const {
        const std::string tbf = " root tbf rate " + rate + " burst 32kbit latency 400ms";
        return run("tc qdisc add dev " + host_link_ + tbf) &&
               run("ip netns exec " + name_ + " tc qdisc add dev " + remote_link_ + tbf);
    }

private:
    /// Deletes the namespaces (and links) of test processes that died without their
    /// destructor (killed, or stopped by a sanitizer): the name ends in the owner's pid.
    static void remove_abandoned() {
        FILE* list = popen("ip netns list 2>/dev/null", "r");
        if (list == nullptr)
            return;
        std::vector<std::string> abandoned;
        char line[256];
        while (std::fgets(line, sizeof line, list) != nullptr) {
            const std::string entry(line);
            const std::string prefix = "dtask-test-";
            if (entry.rfind(prefix, 0) != 0)
                continue;
            const std::string id =
                entry.substr(prefix.size(),
                             entry.find_first_not_of("0123456789", prefix.size()) - prefix.size());
            if (!id.empty() && access(("/proc/" + id).c_str(), F_OK) != 0)
                abandoned.push_back(id);
        }
        pclose(list);
        for (const std::string& id : abandoned) {
            run("ip netns del dtask-test-" + id);
            run("ip link del dtv" + id + "h");
        }
    }

    static bool run(const std::string& command) {
        return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
    }

    std::string name_, host_link_, remote_link_, host_address_, why_not_;
};

}  // namespace test_support
