//===- Checkpoint.cpp - a Hugging Face checkpoint directory ---------------===//

#include "runtime/Checkpoint.h"

#include "runtime/TextFile.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dsv3 {

using json = nlohmann::json;

namespace {

/// "a string", "an array": what a JSON value is, for messages.
std::string describeType(const json &value) {
  std::string type = value.type_name();
  bool vowel = !type.empty() && std::strchr("aeiou", type[0]) != nullptr;
  return (vowel ? "an " : "a ") + type;
}

bool pathExists(const std::string &path, int &error) {
  struct stat info;
  if (::stat(path.c_str(), &info) == 0)
    return true;
  error = errno;
  return false;
}

/// A shard must be a file of the checkpoint directory itself: an index must
/// not reach elsewhere ("../", absolute paths).
bool isPlainFileName(const std::string &name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos;
}

} // namespace

std::string shardFileName(std::size_t shard, std::size_t shardCount) {
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", shard, shardCount);
}

StatusOr<Checkpoint> Checkpoint::open(const std::string &directory) {
  Checkpoint checkpoint;
  checkpoint.directory_ = directory;
  auto inDirectory = [&](const std::string &name) {
    return directory + "/" + name;
  };

  int error = 0;
  if (!pathExists(directory, error))
    return Status::error("{}: cannot open the checkpoint directory: {}",
                         directory, std::strerror(error));
  const std::string indexPath = inDirectory(kIndexFileName);
  const std::string singlePath = inDirectory(kSingleFileName);

  // Tensor name → shard file, as the index lists them; empty without index.
  std::map<std::string, std::string> weightMap;
  // Shard file → the shard's position in shards_.
  std::map<std::string, std::size_t> shardIndexByFile;

  if (pathExists(indexPath, error)) {
    checkpoint.indexPath_ = indexPath;
    DSV3_ASSIGN_OR_RETURN(std::string text, readTextFile(indexPath));
    json index = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded()) {
      std::optional<JsonSyntaxError> syntax = findJsonSyntaxError(text);
      return Status::error("{}: not valid JSON: {} (at byte {})", indexPath,
                           syntax ? syntax->reason : "syntax error",
                           syntax ? syntax->offset : 0);
    }
    if (!index.is_object())
      return Status::error("{}: top level is {}, expected a JSON object",
                           indexPath, describeType(index));
    if (!index.contains("weight_map"))
      return Status::error("{}: missing field 'weight_map'", indexPath);
    const json &map = index["weight_map"];
    if (!map.is_object())
      return Status::error("{}: field 'weight_map' is {}, expected an object "
                           "mapping tensor names to shard files",
                           indexPath, describeType(map));
    if (map.empty())
      return Status::error("{}: field 'weight_map' lists no tensors",
                           indexPath);
    // Tensors listed per shard, for messages about a shard.
    std::map<std::string, std::vector<std::string>> namesByShard;
    for (auto &[name, shard] : map.items()) {
      if (!shard.is_string())
        return Status::error("{}: weight_map entry '{}' is {}, expected a "
                             "shard file name",
                             indexPath, name, describeType(shard));
      std::string file = shard.get<std::string>();
      if (!isPlainFileName(file))
        return Status::error("{}: weight_map entry '{}': shard '{}' is not a "
                             "file name in the checkpoint directory",
                             indexPath, name, file);
      weightMap[name] = file;
      namesByShard[file].push_back(name);
    }
    for (const auto &[file, names] : namesByShard) {
      StatusOr<SafetensorsFile> shard = SafetensorsFile::open(inDirectory(file));
      if (!shard.ok()) {
        std::string others =
            names.size() > 1 ? fmt::format(" and {} more", names.size() - 1)
                             : "";
        return Status::error("{}: shard '{}' (listed for tensor '{}'{}): {}",
                             indexPath, file, names.front(), others,
                             shard.status().message());
      }
      shardIndexByFile[file] = checkpoint.shards_.size();
      checkpoint.shards_.push_back(
          std::make_unique<SafetensorsFile>(std::move(shard).value()));
    }
    for (const auto &[name, file] : weightMap)
      if (!checkpoint.shards_[shardIndexByFile[file]]->find(name))
        return Status::error("{}: tensor '{}' is listed in shard '{}', which "
                             "does not contain it",
                             indexPath, name, file);
  } else if (pathExists(singlePath, error)) {
    DSV3_ASSIGN_OR_RETURN(SafetensorsFile file,
                          SafetensorsFile::open(singlePath));
    shardIndexByFile[kSingleFileName] = 0;
    checkpoint.shards_.push_back(
        std::make_unique<SafetensorsFile>(std::move(file)));
  } else {
    return Status::error("{}: no checkpoint: neither {} nor {} is there",
                         directory, kIndexFileName, kSingleFileName);
  }

  // Every tensor of every shard, including any the index forgot to list (a
  // loader reading whole shards would see them too); none may appear twice.
  for (const auto &[file, position] : shardIndexByFile) {
    const SafetensorsFile &shard = *checkpoint.shards_[position];
    for (const TensorInfo &tensor : shard.tensors()) {
      auto [existing, inserted] = checkpoint.byName_.emplace(
          tensor.name, Location{&shard, &tensor});
      if (!inserted) {
        const std::string &where = checkpoint.indexPath_.empty()
                                       ? directory
                                       : checkpoint.indexPath_;
        return Status::error("{}: tensor '{}' is in two shards, '{}' and '{}'",
                             where, tensor.name,
                             existing->second.shard->path(), shard.path());
      }
    }
  }
  return checkpoint;
}

const TensorInfo *Checkpoint::find(std::string_view name) const {
  return locate(name).tensor;
}

Checkpoint::Location Checkpoint::locate(std::string_view name) const {
  auto found = byName_.find(name);
  return found == byName_.end() ? Location{} : found->second;
}

std::vector<Checkpoint::Location> Checkpoint::tensors() const {
  std::vector<Location> locations;
  locations.reserve(byName_.size());
  for (const auto &entry : byName_)
    locations.push_back(entry.second);
  return locations;
}

uint64_t Checkpoint::totalBytes() const {
  uint64_t total = 0;
  for (const auto &entry : byName_)
    total += entry.second.tensor->bytes.size;
  return total;
}

Status Checkpoint::checkTensor(std::string_view name, Dtype dtype,
                               const std::vector<int64_t> &shape) const {
  Location location = locate(name);
  if (!location.tensor)
    return Status::error("{}: tensor '{}' is absent from the checkpoint "
                         "(expected {} {})",
                         directory_, name, dtypeName(dtype),
                         formatShape(shape));
  const TensorInfo &tensor = *location.tensor;
  std::vector<std::string> problems;
  if (tensor.dtype != dtype)
    problems.push_back(fmt::format("dtype is {}, expected {}",
                                   dtypeName(tensor.dtype), dtypeName(dtype)));
  if (tensor.shape != shape)
    problems.push_back(fmt::format("shape is {}, expected {}",
                                   formatShape(tensor.shape),
                                   formatShape(shape)));
  if (problems.empty())
    return Status::success();
  return Status::error("{}: tensor '{}': {}", location.shard->path(), name,
                       fmt::join(problems, "; "));
}

Status writeCheckpointIndex(const std::string &directory,
                            const std::map<std::string, std::string> &weightMap,
                            uint64_t totalSize) {
  json index = {{"metadata", {{"total_size", totalSize}}},
                {"weight_map", weightMap}};
  // Tensor names and shard names come from a writer that checked they are
  // UTF-8; replace rather than throw should one not be.
  std::string text =
      index.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return writeFileAtomically(directory + "/" + kIndexFileName, text);
}

} // namespace dsv3
