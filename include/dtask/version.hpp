#pragma once
/// \file The library's version.

#define DTASK_VERSION_MAJOR 0
#define DTASK_VERSION_MINOR 1
#define DTASK_VERSION_PATCH 0
