//===- Checkpoint.h - a Hugging Face checkpoint directory --------*- C++ -*-===//
//
// A checkpoint is a directory holding either one `model.safetensors` or
// shards listed by `model.safetensors.index.json` ("weight_map": tensor name →
// shard file, "metadata": {"total_size": bytes}). Checkpoint opens and
// validates every shard up front and answers, per tensor name, where its
// bytes are and whether they have the dtype and shape a plan expects.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_CHECKPOINT_H
#define DSV3_RUNTIME_CHECKPOINT_H

#include "runtime/Safetensors.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

/// The file names Hugging Face uses.
inline constexpr const char *kSingleFileName = "model.safetensors";
inline constexpr const char *kIndexFileName = "model.safetensors.index.json";
/// "model-00002-of-00003.safetensors" (1-based `shard`).
std::string shardFileName(std::size_t shard, std::size_t shardCount);

class Checkpoint {
public:
  /// Opens the checkpoint in `directory`: the shards named by
  /// model.safetensors.index.json when it exists, else model.safetensors.
  /// Fails, naming the index and the shard or tensor, when a shard is missing
  /// or invalid, an index entry is absent from the shard it names, or a tensor
  /// is present in two shards.
  static StatusOr<Checkpoint> open(const std::string &directory);

  const std::string &directory() const { return directory_; }
  /// The index file's path, or empty for a single-file checkpoint.
  const std::string &indexPath() const { return indexPath_; }
  /// The shards, in the order of their file names.
  std::size_t shardCount() const { return shards_.size(); }
  const SafetensorsFile &shard(std::size_t index) const {
    return *shards_[index];
  }

  /// The tensor called `name` and the shard holding it.
  struct Location {
    const SafetensorsFile *shard = nullptr;
    const TensorInfo *tensor = nullptr;
  };
  /// The tensor called `name`, or nullptr when the checkpoint lacks it.
  const TensorInfo *find(std::string_view name) const;
  /// Where `name` is; both pointers null when absent.
  Location locate(std::string_view name) const;
  /// Every tensor, sorted by name.
  std::vector<Location> tensors() const;
  std::size_t tensorCount() const { return byName_.size(); }
  /// The bytes of all tensors together.
  uint64_t totalBytes() const;

  /// Success when `name` exists with exactly `dtype` and `shape`; otherwise
  /// one error saying what is wrong (absent, or the dtype and/or shape, with
  /// expected and actual values), naming the shard and the tensor.
  Status checkTensor(std::string_view name, Dtype dtype,
                     const std::vector<int64_t> &shape) const;

private:
  Checkpoint() = default;

  std::string directory_;
  std::string indexPath_;
  // unique_ptr: TensorInfo pointers handed out stay valid when the vector or
  // the Checkpoint moves.
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, Location, std::less<>> byName_;
};

/// Writes model.safetensors.index.json into `directory` as Hugging Face does
/// ({"metadata": {"total_size": N}, "weight_map": {...}}, keys sorted, two
/// spaces of indentation), through a temporary file renamed into place.
Status writeCheckpointIndex(const std::string &directory,
                            const std::map<std::string, std::string> &weightMap,
                            uint64_t totalSize);

} // namespace dsv3

#endif // DSV3_RUNTIME_CHECKPOINT_H
