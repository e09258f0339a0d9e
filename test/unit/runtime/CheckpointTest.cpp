//===- CheckpointTest.cpp - single-file and sharded checkpoints -----------===//
//
// Checkpoint::open finds tensors across shards and rejects, with one message
// naming the index and the shard or tensor, a missing shard, an index entry
// its shard lacks, a tensor in two shards and a malformed index; checkTensor
// says which of absent, dtype and shape is wrong.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checkpoint.h"
#include "test/unit/TempDir.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace dsv3;

namespace {

/// Named after this test in $TMPDIR.
class TempDir : public dsv3::test::TempDir {
public:
  TempDir() : dsv3::test::TempDir("checkpoint-test") {}
};

void writeText(const std::string &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

struct TestTensor {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;
};

/// Writes a safetensors file holding `tensors` (bytes: a pattern), failing
/// the test on error.
void writeShard(const std::string &path, const std::vector<TestTensor> &tensors) {
  SafetensorsWriter writer;
  for (const TestTensor &tensor : tensors) {
    Status added = writer.addTensor(
        tensor.name, tensor.dtype, tensor.shape,
        [](uint64_t offset, std::uint8_t *out, std::size_t size) {
          for (std::size_t i = 0; i < size; ++i)
            out[i] = static_cast<std::uint8_t>((offset + i) * 13 + 5);
          return Status::success();
        });
    ASSERT_TRUE(added.ok()) << added.message();
  }
  Status written = writer.write(path);
  ASSERT_TRUE(written.ok()) << written.message();
}

const std::vector<TestTensor> kShard1 = {
    {"model.embed_tokens.weight", Dtype::BF16, {64, 32}},
    {"model.layers.0.self_attn.kv_a_proj_with_mqa.weight", Dtype::F8_E4M3,
     {576, 32}},
    {"model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv",
     Dtype::F32, {5, 1}},
};
const std::vector<TestTensor> kShard2 = {
    {"model.norm.weight", Dtype::BF16, {32}},
    {"lm_head.weight", Dtype::BF16, {64, 32}},
};

/// Writes kShard1 and kShard2 with Hugging Face's names and index.
void writeShardedCheckpoint(const TempDir &dir) {
  writeShard(dir.file(shardFileName(1, 2)), kShard1);
  writeShard(dir.file(shardFileName(2, 2)), kShard2);
  std::map<std::string, std::string> weightMap;
  uint64_t total = 0;
  for (const auto &[shard, tensors] :
       {std::pair(shardFileName(1, 2), kShard1),
        std::pair(shardFileName(2, 2), kShard2)})
    for (const TestTensor &tensor : tensors) {
      weightMap[tensor.name] = shard;
      total += *tensorByteSize(tensor.dtype, tensor.shape);
    }
  Status written = writeCheckpointIndex(dir.path(), weightMap, total);
  ASSERT_TRUE(written.ok()) << written.message();
}

std::string openError(const std::string &directory) {
  StatusOr<Checkpoint> checkpoint = Checkpoint::open(directory);
  EXPECT_FALSE(checkpoint.ok()) << "opened " << directory;
  return checkpoint.ok() ? "" : checkpoint.status().message();
}

TEST(Checkpoint, ShardFileNamesAreHuggingFaces) {
  EXPECT_EQ(shardFileName(2, 3), "model-00002-of-00003.safetensors");
  EXPECT_EQ(shardFileName(163, 163), "model-00163-of-00163.safetensors");
}

TEST(Checkpoint, SingleFile) {
  TempDir dir;
  writeShard(dir.file("model.safetensors"), kShard2);
  StatusOr<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  EXPECT_EQ(checkpoint->shardCount(), 1u);
  EXPECT_EQ(checkpoint->indexPath(), "");
  EXPECT_EQ(checkpoint->tensorCount(), 2u);
  const TensorInfo *head = checkpoint->find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->bytes.size, 64u * 32u * 2u);
  EXPECT_EQ(head->bytes.data[1], std::uint8_t(1 * 13 + 5));
  EXPECT_EQ(checkpoint->locate("lm_head.weight").shard->path(),
            dir.file("model.safetensors"));
  EXPECT_EQ(checkpoint->find("model.layers.0.mlp.gate.weight"), nullptr);
}

TEST(Checkpoint, ShardedWithIndex) {
  TempDir dir;
  writeShardedCheckpoint(dir);
  StatusOr<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  EXPECT_EQ(checkpoint->indexPath(), dir.file(kIndexFileName));
  ASSERT_EQ(checkpoint->shardCount(), 2u);
  EXPECT_EQ(checkpoint->shard(0).path(), dir.file(shardFileName(1, 2)));
  EXPECT_EQ(checkpoint->shard(1).path(), dir.file(shardFileName(2, 2)));
  EXPECT_EQ(checkpoint->tensorCount(), 5u);
  EXPECT_EQ(checkpoint->locate("model.norm.weight").shard,
            &checkpoint->shard(1));
  EXPECT_EQ(checkpoint->locate("model.embed_tokens.weight").shard,
            &checkpoint->shard(0));
  EXPECT_EQ(checkpoint->totalBytes(),
            64u * 32u * 2u + 576u * 32u + 5u * 4u + 32u * 2u + 64u * 32u * 2u);

  // tensors() is sorted by name.
  std::vector<std::string> names;
  for (const Checkpoint::Location &location : checkpoint->tensors())
    names.push_back(location.tensor->name);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.front(), "lm_head.weight");

  // A moved checkpoint keeps its pointers valid.
  const TensorInfo *before = checkpoint->find("model.norm.weight");
  Checkpoint moved = std::move(checkpoint).value();
  EXPECT_EQ(moved.find("model.norm.weight"), before);
  EXPECT_EQ(moved.find("model.norm.weight")->shape, std::vector<int64_t>{32});
}

TEST(Checkpoint, IndexIsWrittenAsHuggingFaceDoes) {
  TempDir dir;
  Status written = writeCheckpointIndex(
      dir.path(), {{"b.weight", "model-00002-of-00002.safetensors"},
                   {"a.weight", "model-00001-of-00002.safetensors"}},
      1234);
  ASSERT_TRUE(written.ok()) << written.message();
  EXPECT_EQ(readText(dir.file(kIndexFileName)),
            "{\n"
            "  \"metadata\": {\n"
            "    \"total_size\": 1234\n"
            "  },\n"
            "  \"weight_map\": {\n"
            "    \"a.weight\": \"model-00001-of-00002.safetensors\",\n"
            "    \"b.weight\": \"model-00002-of-00002.safetensors\"\n"
            "  }\n"
            "}\n");
}

TEST(Checkpoint, MissingShard) {
  TempDir dir;
  writeShardedCheckpoint(dir);
  std::filesystem::remove(dir.file(shardFileName(2, 2)));
  EXPECT_EQ(openError(dir.path()),
            dir.file(kIndexFileName) +
                ": shard 'model-00002-of-00002.safetensors' (listed for tensor "
                "'lm_head.weight' and 1 more): " +
                dir.file(shardFileName(2, 2)) +
                ": cannot open: No such file or directory");
}

TEST(Checkpoint, CorruptShardNamesTheIndexAndTheShard) {
  TempDir dir;
  writeShardedCheckpoint(dir);
  writeText(dir.file(shardFileName(1, 2)), "abc");
  EXPECT_EQ(openError(dir.path()),
            dir.file(kIndexFileName) +
                ": shard 'model-00001-of-00002.safetensors' (listed for tensor "
                "'model.embed_tokens.weight' and 2 more): " +
                dir.file(shardFileName(1, 2)) +
                ": file is 3 bytes, too short for the 8-byte header length");
}

TEST(Checkpoint, IndexEntryAbsentFromItsShard) {
  TempDir dir;
  writeShardedCheckpoint(dir);
  // The index says model.norm.weight is in shard 1; it is in shard 2.
  std::string index = readText(dir.file(kIndexFileName));
  std::string entry =
      "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"";
  index.replace(index.find(entry), entry.size(),
                "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"");
  writeText(dir.file(kIndexFileName), index);
  EXPECT_EQ(openError(dir.path()),
            dir.file(kIndexFileName) +
                ": tensor 'model.norm.weight' is listed in shard "
                "'model-00001-of-00002.safetensors', which does not contain "
                "it");
}

TEST(Checkpoint, TensorInTwoShards) {
  TempDir dir;
  writeShardedCheckpoint(dir);
  std::vector<TestTensor> shard2 = kShard2;
  shard2.push_back(kShard1.front()); // embed_tokens in both shards
  writeShard(dir.file(shardFileName(2, 2)), shard2);
  EXPECT_EQ(openError(dir.path()),
            dir.file(kIndexFileName) +
                ": tensor 'model.embed_tokens.weight' is in two shards, '" +
                dir.file(shardFileName(1, 2)) + "' and '" +
                dir.file(shardFileName(2, 2)) + "'");
}

TEST(Checkpoint, MalformedIndex) {
  TempDir dir;
  writeShardedCheckpoint(dir);
  const std::string index = dir.file(kIndexFileName);
  writeText(index, "{\"weight_map\": {\"a\": }}");
  EXPECT_EQ(openError(dir.path()),
            index + ": not valid JSON: syntax error while parsing value - "
                    "unexpected '}'; expected '[', '{', or a literal (at byte "
                    "21)");
  writeText(index, "[]");
  EXPECT_EQ(openError(dir.path()),
            index + ": top level is an array, expected a JSON object");
  writeText(index, "{\"metadata\": {}}");
  EXPECT_EQ(openError(dir.path()), index + ": missing field 'weight_map'");
  writeText(index, "{\"weight_map\": [\"model.safetensors\"]}");
  EXPECT_EQ(openError(dir.path()),
            index + ": field 'weight_map' is an array, expected an object "
                    "mapping tensor names to shard files");
  writeText(index, "{\"weight_map\": {}}");
  EXPECT_EQ(openError(dir.path()),
            index + ": field 'weight_map' lists no tensors");
  writeText(index, "{\"weight_map\": {\"lm_head.weight\": 2}}");
  EXPECT_EQ(openError(dir.path()),
            index + ": weight_map entry 'lm_head.weight' is a number, expected "
                    "a shard file name");
  writeText(index, "{\"weight_map\": {\"lm_head.weight\": \"../x.safetensors\"}}");
  EXPECT_EQ(openError(dir.path()),
            index + ": weight_map entry 'lm_head.weight': shard "
                    "'../x.safetensors' is not a file name in the checkpoint "
                    "directory");
}

TEST(Checkpoint, NoCheckpointAtAll) {
  TempDir dir;
  EXPECT_EQ(openError(dir.path()),
            dir.path() + ": no checkpoint: neither "
                         "model.safetensors.index.json nor model.safetensors "
                         "is there");
  EXPECT_EQ(openError(dir.file("absent")),
            dir.file("absent") + ": cannot open the checkpoint directory: No "
                                 "such file or directory");
}

TEST(Checkpoint, CheckTensorSaysWhatIsWrong) {
  TempDir dir;
  writeShardedCheckpoint(dir);
  StatusOr<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  const std::string kvA = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";
  const std::string shard1 = dir.file(shardFileName(1, 2));

  EXPECT_TRUE(checkpoint->checkTensor(kvA, Dtype::F8_E4M3, {576, 32}).ok());
  EXPECT_EQ(checkpoint->checkTensor(kvA, Dtype::BF16, {576, 32}).message(),
            shard1 + ": tensor '" + kvA + "': dtype is F8_E4M3, expected BF16");
  EXPECT_EQ(checkpoint->checkTensor(kvA, Dtype::F8_E4M3, {512, 32}).message(),
            shard1 + ": tensor '" + kvA +
                "': shape is [576, 32], expected [512, 32]");
  EXPECT_EQ(checkpoint->checkTensor(kvA, Dtype::BF16, {576}).message(),
            shard1 + ": tensor '" + kvA +
                "': dtype is F8_E4M3, expected BF16; shape is [576, 32], "
                "expected [576]");
  EXPECT_EQ(checkpoint
                ->checkTensor("model.layers.0.mlp.gate.weight", Dtype::BF16,
                              {256, 7168})
                .message(),
            dir.path() + ": tensor 'model.layers.0.mlp.gate.weight' is absent "
                         "from the checkpoint (expected BF16 [256, 7168])");
}

} // namespace
