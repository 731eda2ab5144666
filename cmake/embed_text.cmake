# Writes OUTPUT, a header holding the text of INPUT as `inline constexpr std::string_view NAME`
# in namespace dtask::detail: a file served by a binary without being installed beside it.
file(READ ${INPUT} text)
string(FIND "${text}" ")dtask_embedded\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw string's end marker )dtask_embedded\"")
endif()
file(WRITE ${OUTPUT}.new "// Generated from ${INPUT} by cmake/embed_text.cmake: edit that file, not this one.\n"
     "#pragma once\n#include <string_view>\nnamespace dtask::detail {\n"
     "inline constexpr std::string_view ${NAME} = R\"dtask_embedded(${text})dtask_embedded\";\n"
     "}  // namespace dtask::detail\n")
file(RENAME ${OUTPUT}.new ${OUTPUT})
