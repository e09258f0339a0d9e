# cmake -DOUTPUT=<file.inc> -DROOT=<dir> -DFILES="a|b|c" -P EmbedFiles.cmake
# Writes one `{"relative/path", R"dsv3embed(contents)dsv3embed"},` line per file,
# so that the kernel templates travel inside dsv3c instead of beside it.
string(REPLACE "|" ";" FILES "${FILES}")
set(content "")
foreach(file ${FILES})
  file(RELATIVE_PATH name ${ROOT} ${file})
  file(READ ${file} text)
  string(FIND "${text}" ")dsv3embed\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${file} contains the raw-string delimiter )dsv3embed\"")
  endif()
  string(APPEND content "{\"${name}\", R\"dsv3embed(${text})dsv3embed\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp "${content}")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
