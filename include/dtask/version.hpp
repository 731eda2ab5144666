#pragma once
/// \file
/// The library's version, for the preprocessor; it follows Semantic Versioning.

/// Major version: 0 while the API may still change from one minor version to the next.
#define DTASK_VERSION_MAJOR 0
/// Minor version: new features.
#define DTASK_VERSION_MINOR 1
/// Patch version: fixes only.
#define DTASK_VERSION_PATCH 0
