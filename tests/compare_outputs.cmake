# cmake -DFIRST=<cmd;args> -DSECOND=<cmd;args> -P compare_outputs.cmake
# Runs both commands and fails unless both succeed with the same standard output.
execute_process(COMMAND ${FIRST} OUTPUT_VARIABLE first_out RESULT_VARIABLE first_rc TIMEOUT 120)
execute_process(COMMAND ${SECOND} OUTPUT_VARIABLE second_out RESULT_VARIABLE second_rc TIMEOUT 120)
if(NOT first_rc EQUAL 0 OR NOT second_rc EQUAL 0)
  message(FATAL_ERROR "exit codes ${first_rc} and ${second_rc}\n--- ${FIRST}\n${first_out}\n--- ${SECOND}\n${second_out}")
endif()
if(NOT first_out STREQUAL second_out)
  message(FATAL_ERROR "outputs differ\n--- ${FIRST}\n${first_out}\n--- ${SECOND}\n${second_out}")
endif()
if(first_out STREQUAL "")
  message(FATAL_ERROR "no output from ${FIRST}")
endif()
message(STATUS "identical output:\n${first_out}")
