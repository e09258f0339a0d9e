//===- TextFile.cpp - reading a small file whole --------------------------===//

#include "runtime/TextFile.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace dsv3 {

StatusOr<std::string> readTextFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::error("{}: cannot read: {}", path, std::strerror(errno));
  std::string contents;
  char buffer[1 << 16];
  while (true) {
    ssize_t count = ::read(fd, buffer, sizeof buffer);
    if (count < 0 && errno == EINTR)
      continue;
    if (count < 0) {
      int error = errno;
      ::close(fd);
      return Status::error("{}: cannot read: {}", path, std::strerror(error));
    }
    if (count == 0)
      break;
    contents.append(buffer, static_cast<std::size_t>(count));
  }
  ::close(fd);
  return contents;
}

} // namespace dsv3
