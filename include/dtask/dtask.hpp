#pragma once
/// \file
/// The one header to include: map-reduce jobs (Job), what runs them (Cluster, Client), their
/// options, errors and logging. The user guide is docs/guide.md.
///
///     inline const dtask::Job<long> total{"total", split, map, reduce};
///     int main(int argc, char** argv) {
///         dtask::init(argc, argv);   // a worker process serves here, then exits
///         dtask::Cluster cluster;    // embedded broker + one local worker per core
///         long sum = cluster.run(total, input);
///     }

#include <dtask/client.hpp>
#include <dtask/cluster.hpp>
#include <dtask/error.hpp>
#include <dtask/init.hpp>
#include <dtask/job.hpp>
#include <dtask/job_handle.hpp>
#include <dtask/log.hpp>
#include <dtask/options.hpp>
#include <dtask/pieces.hpp>
#include <dtask/serialization.hpp>
#include <dtask/shared.hpp>
#include <dtask/submitter.hpp>
#include <dtask/version.hpp>
