#pragma once
// Several "machines" on one switch: a network namespace per host, each with a veth pair to a
// Linux bridge in a namespace of its own, all in one /24 with this machine on it too (the
// bridge's own namespace keeps the host's firewall, which may filter bridged packets, out of
// the way). A host's switch port can be taken down: its cable pulled.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include "process.hpp"
#include "remote_network.hpp"

namespace test_support {

/// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), the ip command and the bridge driver;
/// otherwise `why_not()` says why, and the caller skips. Everything is removed with it.
class ManyHosts {
public:
    /// `hosts` hosts, numbered from 0, at addresses .1, .2, ...; this machine at .254.
    explicit ManyHosts(int hosts) {
        remove_abandoned();
        const int pid = getpid();
        const std::string id = std::to_string(pid);
        prefix_ = "dtask-hosts-" + id + "-";
        // 10.128.0.0 to 10.191.255.0: concurrent test processes get different subnets.
        subnet_ =
            "10." + std::to_string(128 + pid / 256 % 64) + "." + std::to_string(pid % 256) + ".";
        switch_ = prefix_ + "switch";
        uplink_ = "dtm" + id + "r";  // this machine's end: "dtm" + 7 digits + "r" fits in 15
        std::vector<std::string> commands = {
            "ip netns add " + switch_,
            "ip -n " + switch_ + " link add br0 type bridge",
            "ip -n " + switch_ + " link set br0 up",
            "ip link add " + uplink_ + " type veth peer name uplink netns " + switch_,
            "ip -n " + switch_ + " link set uplink master br0",
            "ip -n " + switch_ + " link set uplink up",
            "ip addr add " + subnet_ + "254/24 dev " + uplink_,
            "ip link set " + uplink_ + " up"};
        for (int host = 0; host < hosts; ++host) {
            const std::string name = prefix_ + std::to_string(host);
            const std::string port = port_of(host);
            hosts_.push_back(name);
            for (const std::string& command :
                 {"ip netns add " + name,
                  "ip -n " + switch_ + " link add " + port + " type veth peer name eth0 netns " +
                      name,
                  "ip -n " + switch_ + " link set " + port + " master br0",
                  "ip -n " + switch_ + " link set " + port + " up",
                  "ip -n " + name + " addr add " + address(host) + "/24 dev eth0",
                  "ip -n " + name + " link set eth0 up", "ip -n " + name + " link set lo up"})
                commands.push_back(command);
        }
        for (const std::string& command : commands) {
            if (!run(command)) {
                why_not_ = "'" + command +
                           "' failed (network namespaces and bridges need root, the ip command "
                           "and the bridge driver)";
                return;
            }
        }
    }
    ~ManyHosts() {
        for (const std::string& name : hosts_)
            run("ip netns del " + name);  // takes its veth pair with it
        run("ip netns del " + switch_);   // and the bridge
        run("ip link del " + uplink_);    // gone already with its peer, unless that failed
    }
    ManyHosts(const ManyHosts&) = delete;
    ManyHosts& operator=(const ManyHosts&) = delete;

    const std::string& why_not() const { return why_not_; }
    /// The IPv4 address of `host`.
    std::string address(int host) const { return subnet_ + std::to_string(host + 1); }
    /// The command prefix that runs a program on `host` (as Dtaskd's wrapper takes it).
    std::vector<std::string> on(int host) const {
        return {RemoteNetwork::ip_program(), "netns", "exec", hosts_.at(host)};
    }
    /// Starts `program` with `args` on `host` (see Process; `ip netns exec` execs it, so the
    /// pid is the program's).
    Process start(int host, const std::string& program, std::vector<std::string> args,
                  const std::string& output_file = {},
                  const std::vector<std::string>& environment = {}) const {
        args.insert(args.begin(), {"netns", "exec", hosts_.at(host), program});
        return Process(RemoteNetwork::ip_program(), args, output_file, environment);
    }
    /// Takes `host`'s switch port down: nothing reaches it or comes from it, and nobody is
    /// told. False if that failed.
    bool cut(int host) const {
        return run("ip -n " + switch_ + " link set " + port_of(host) + " down");
    }

private:
    static std::string port_of(int host) { return "port" + std::to_string(host); }

    /// Deletes the namespaces (and links) of test processes that died without their
    /// destructor (killed, or stopped by a sanitizer): their names hold the owner's pid.
    static void remove_abandoned() {
        FILE* list = popen("ip netns list 2>/dev/null", "r");
        if (list == nullptr)
            return;
        std::vector<std::string> abandoned, owners;
        char line[256];
        const std::string prefix = "dtask-hosts-";
        while (std::fgets(line, sizeof line, list) != nullptr) {
            const std::string entry(line);
            if (entry.rfind(prefix, 0) != 0)
                continue;
            const auto digits = entry.find_first_not_of("0123456789", prefix.size());
            const std::string id = entry.substr(prefix.size(), digits - prefix.size());
            if (id.empty() || access(("/proc/" + id).c_str(), F_OK) == 0)
                continue;
            abandoned.push_back(entry.substr(0, entry.find_first_of(" \n")));
            owners.push_back(id);
        }
        pclose(list);
        for (const std::string& name : abandoned)
            run("ip netns del " + name);
        for (const std::string& id : owners)
            run("ip link del dtm" + id + "r");
    }

    static bool run(const std::string& command) {
        return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
    }

    std::string prefix_, subnet_, switch_, uplink_, why_not_;
    std::vector<std::string> hosts_;
};

}  // namespace test_support
