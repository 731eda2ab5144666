# Compiles SOURCE with COMPILER and passes only when the compiler refuses it with exactly one
# error, and that error is MESSAGE: a newcomer's mistake must not bury the one line that says
# what to change under pages of cereal's or the standard library's errors.
# Usage: cmake -DCOMPILER=... -DINCLUDE=dir[;dir...] -DSOURCE=... -DMESSAGE=... -P compile_fail.cmake
list(TRANSFORM INCLUDE PREPEND -I)
execute_process(COMMAND ${COMPILER} -std=gnu++20 -fsyntax-only ${INCLUDE} ${SOURCE}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(status EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must be refused")
endif()
string(REGEX MATCHALL "error:" errors "${out}")
list(LENGTH errors count)
if(NOT out MATCHES "${MESSAGE}")
  message(FATAL_ERROR "the compiler's errors do not say '${MESSAGE}':\n${out}")
endif()
if(NOT count EQUAL 1)
  message(FATAL_ERROR "${count} errors instead of the one that says '${MESSAGE}':\n${out}")
endif()
