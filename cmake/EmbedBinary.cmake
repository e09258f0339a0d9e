# cmake -DINPUT=<file> -DOUTPUT=<file.inc> -P EmbedBinary.cmake
# Writes INPUT's bytes as a comma-separated list of 0x.. values, to be
# #included inside a C array initializer (a fatbin built at build time,
# embedded in the binary that loads it).
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" length)
if(length EQUAL 0)
  message(FATAL_ERROR "${INPUT} is empty")
endif()
# 32 bytes per line keeps the file readable in an editor.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUTPUT}.tmp "${bytes}\n")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
