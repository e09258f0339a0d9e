// The generation loop on the CPU, with a model whose logits follow a rule:
// prefill packing, sequences leaving the batch at max tokens, EOS and stop
// strings, streamed text, teacher forcing in lockstep, penalties and seeds
// through the host sampler, page release, and every request error.
#include "runtime/generate/Generator.h"
#include "runtime/generate/TextStream.h"
#include "runtime/tokenizer/Utf8.h"

#include "test/unit/TempDir.h"
#include "test/unit/tokenizer/TinyTokenizer.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>

namespace dsv3::generate {
namespace {

constexpr int64_t kVocab = 304; // the tiny tokenizer's ids end at 303
constexpr int32_t kEos = 301;   // "</s>"

/// A model whose next-token logits are 10 at rule(last fed token, its
/// position) and -10 elsewhere, or all `flat` when no rule is set. It
/// checks every step's inputs and records them.
class RuleModel : public ModelSteps {
public:
  std::function<int32_t(int32_t token, int32_t position)> rule;
  bool flat = false;
  struct Step {
    bool prefill;
    exec::StepInputs inputs;
  };
  std::vector<Step> steps;
  std::vector<float> logits;
  int64_t columns = kVocab + 3; // padded rows, as plans may have

  Status run(bool prefill, const exec::StepInputs &inputs) override {
    const size_t B = inputs.lastRows.size(), T = inputs.tokens.size();
    if (inputs.positions.size() != T || inputs.tokenSeq.size() != T ||
        inputs.blockTable.size() != B * inputs.pagesPerSequence)
      return Status::error("malformed step inputs");
    if (!prefill && T != B)
      return Status::error("a decode step feeds one token per sequence");
    steps.push_back({prefill, inputs});
    logits.assign(B * columns, flat ? 0.0f : -10.0f);
    for (size_t b = 0; b < B; ++b) {
      const int32_t row = inputs.lastRows[b];
      if (inputs.tokenSeq[row] != static_cast<int32_t>(b))
        return Status::error("last row of sequence {} is not its token", b);
      if (!flat)
        logits[b * columns + rule(inputs.tokens[row], inputs.positions[row])] = 10.0f;
      // A padded column that must never be sampled.
      logits[b * columns + kVocab] = 100.0f;
    }
    return Status::success();
  }
  StatusOr<std::vector<float>> readLogits() override { return logits; }
  bool samplesOnDevice() const override { return false; }
  int64_t countRows() const override { return 0; }
  StatusOr<std::vector<int32_t>>
  sampleTokens(const std::vector<sample::SamplingParams> &) override {
    return Status::error("no device sampler");
  }
  Status clearTokenCounts(int64_t) override { return Status::error("none"); }
};

/// Collects streamed text and can force the tokens fed next.
class Recorder : public GenerationObserver {
public:
  std::map<size_t, std::vector<std::string>> pieces;
  std::function<void(int64_t, const std::vector<size_t> &, std::vector<int32_t> &)> force;
  std::vector<size_t> stepSizes;
  void onText(size_t sequence, std::string_view text) override {
    pieces[sequence].emplace_back(text);
  }
  Status afterStep(int64_t step, const std::vector<size_t> &sequences,
                   const std::vector<int32_t> &, std::vector<int32_t> &fed) override {
    stepSizes.push_back(sequences.size());
    if (force)
      force(step, sequences, fed);
    return Status::success();
  }
  std::string joined(size_t sequence) {
    std::string all;
    for (const std::string &piece : pieces[sequence])
      all += piece;
    return all;
  }
};

class GeneratorTest : public ::testing::Test {
protected:
  void SetUp() override {
    test::writeTokenizer(dir, test::tinyTokenizerJson());
    auto loaded = Tokenizer::load(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    tokenizer.emplace(std::move(*loaded));
  }
  ModelLimits limits(int64_t maxTokens = 64, int64_t maxSequences = 4) {
    return {maxTokens, maxSequences, kVocab};
  }
  static SequenceRequest request(std::vector<int32_t> prompt, int64_t maxNew) {
    SequenceRequest r;
    r.prompt = std::move(prompt);
    r.maxNewTokens = maxNew;
    return r;
  }
  /// Ids of the bytes of `text` (the tiny tokenizer's ids 0-255 are bytes).
  static std::vector<int32_t> bytesOf(const std::string &text) {
    std::vector<int32_t> ids;
    for (unsigned char c : text)
      ids.push_back(c);
    return ids;
  }

  test::TempDir dir;
  std::optional<Tokenizer> tokenizer;
  RuleModel model;
  exec::PageAllocator pages{32, 4};
};

TEST_F(GeneratorTest, GreedyRunsEachSequenceToItsLength) {
  model.rule = [](int32_t token, int32_t) { return (token + 1) % 256; };
  Generator generator(model, pages, limits(), nullptr);
  Recorder recorder;
  auto results = generator.generate(
      {request({5, 6}, 5), request({100}, 2), request({7, 8, 9}, 3)}, &recorder);
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_EQ((*results)[0].tokens, (std::vector<int32_t>{7, 8, 9, 10, 11}));
  EXPECT_EQ((*results)[1].tokens, (std::vector<int32_t>{101, 102}));
  EXPECT_EQ((*results)[2].tokens, (std::vector<int32_t>{10, 11, 12}));
  for (const SequenceResult &result : *results)
    EXPECT_EQ(result.finish, FinishReason::Length);
  // One prefill of all three, then finished sequences leave the batch.
  EXPECT_EQ(recorder.stepSizes, (std::vector<size_t>{3, 3, 2, 1, 1}));
  ASSERT_EQ(model.steps.size(), 5u);
  EXPECT_TRUE(model.steps[0].prefill);
  EXPECT_EQ(model.steps[0].inputs.tokens.size(), 6u);
  // Decode positions continue each sequence.
  EXPECT_EQ(model.steps[1].inputs.positions, (std::vector<int32_t>{2, 1, 3}));
  EXPECT_EQ(model.steps[3].inputs.positions, (std::vector<int32_t>{4}));
  EXPECT_EQ(pages.freePages(), 32);
}

TEST_F(GeneratorTest, PromptsArePackedIntoPrefillStepsOfMaxTokens) {
  model.rule = [](int32_t token, int32_t) { return token; };
  Generator generator(model, pages, limits(/*maxTokens=*/8), nullptr);
  auto results = generator.generate(
      {request({1, 2, 3, 4, 5}, 1), request({6, 7, 8}, 1), request({9, 10, 11, 12}, 2)});
  ASSERT_TRUE(results.ok()) << results.status().message();
  ASSERT_EQ(model.steps.size(), 3u);
  EXPECT_TRUE(model.steps[0].prefill);
  EXPECT_EQ(model.steps[0].inputs.tokens.size(), 8u);
  EXPECT_TRUE(model.steps[1].prefill);
  EXPECT_EQ(model.steps[1].inputs.tokens, (std::vector<int32_t>{9, 10, 11, 12}));
  EXPECT_FALSE(model.steps[2].prefill);
  EXPECT_EQ((*results)[2].tokens, (std::vector<int32_t>{12, 12}));
}

TEST_F(GeneratorTest, EosEndsASequenceAndIsNotText) {
  // "hi" then EOS for the first prompt; the second never ends early.
  model.rule = [](int32_t token, int32_t position) {
    if (position == 0)
      return token == 'a' ? int32_t{'h'} : int32_t{'x'};
    if (token == 'h')
      return int32_t{'i'};
    if (token == 'i')
      return kEos;
    return int32_t{'x'};
  };
  Generator generator(model, pages, limits(), &*tokenizer);
  Recorder recorder;
  auto results =
      generator.generate({request({'a'}, 10), request({'b'}, 4)}, &recorder);
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_EQ((*results)[0].tokens, (std::vector<int32_t>{'h', 'i', kEos}));
  EXPECT_EQ((*results)[0].finish, FinishReason::EndOfSequence);
  EXPECT_EQ((*results)[0].text, "hi");
  EXPECT_EQ(recorder.joined(0), "hi");
  EXPECT_EQ((*results)[1].text, "xxxx");
  EXPECT_EQ((*results)[1].finish, FinishReason::Length);
  // Without stopAtEos the sequence runs on (EOS is special: no text).
  SequenceRequest ignoring = request({'a'}, 5);
  ignoring.stopAtEos = false;
  results = generator.generate({ignoring});
  ASSERT_TRUE(results.ok());
  EXPECT_EQ((*results)[0].tokens.size(), 5u);
  EXPECT_EQ((*results)[0].finish, FinishReason::Length);
  EXPECT_EQ((*results)[0].text, "hixx");
}

/// A model that spells `script` byte by byte, whatever it is fed.
std::function<int32_t(int32_t, int32_t)> spelling(const std::string &script,
                                                  int32_t promptLength) {
  return [script, promptLength](int32_t, int32_t position) {
    const size_t at = static_cast<size_t>(position - promptLength + 1);
    return at < script.size() ? int32_t{static_cast<unsigned char>(script[at])}
                              : int32_t{'.'};
  };
}

TEST_F(GeneratorTest, StopStringsEndTheTextAcrossTokens) {
  model.rule = spelling("hello world, again", 1);
  Generator generator(model, pages, limits(), &*tokenizer);
  Recorder recorder;
  SequenceRequest r = request({'>'}, 30);
  r.stopStrings = {"wor", "again"};
  auto results = generator.generate({r}, &recorder);
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_EQ((*results)[0].finish, FinishReason::StopString);
  EXPECT_EQ((*results)[0].text, "hello ");
  EXPECT_EQ(recorder.joined(0), "hello ");
  // The ids run up to the token that completed the stop string.
  EXPECT_EQ((*results)[0].tokens.size(), 9u);
  // "w" and "wo" were held back, never streamed and then taken back.
  for (const std::string &piece : recorder.pieces[0])
    EXPECT_EQ(piece.find('w'), std::string::npos) << piece;
}

TEST_F(GeneratorTest, StreamedTextNeverSplitsACharacter) {
  const std::string script = "h\xC3\xA9llo \xF0\x9F\x91\x8D \xE4\xB8\xAD!";
  model.rule = spelling(script, 1);
  Generator generator(model, pages, limits(), &*tokenizer);
  Recorder recorder;
  auto results =
      generator.generate({request({'>'}, static_cast<int64_t>(script.size()))}, &recorder);
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_EQ((*results)[0].text, script);
  EXPECT_EQ(recorder.joined(0), script);
  for (const std::string &piece : recorder.pieces[0])
    EXPECT_EQ(tokenizer::findInvalidUtf8(piece), std::nullopt) << piece;
  // Cut inside the emoji by max tokens: the partial character is U+FFFD.
  results = generator.generate({request({'>'}, 9)});
  ASSERT_TRUE(results.ok());
  EXPECT_EQ((*results)[0].text, "h\xC3\xA9llo \xEF\xBF\xBD");
}

TEST_F(GeneratorTest, LockstepFeedsForcedTokensAndIgnoresEos) {
  model.rule = [](int32_t token, int32_t) { return token == 3 ? kEos : 3; };
  Generator generator(model, pages, limits(), &*tokenizer, {/*lockstep=*/true});
  Recorder recorder;
  recorder.force = [](int64_t step, const std::vector<size_t> &,
                      std::vector<int32_t> &fed) {
    for (int32_t &token : fed)
      token = static_cast<int32_t>(40 + step);
  };
  auto results =
      generator.generate({request({1, 2}, 4), request({3}, 4)}, &recorder);
  ASSERT_TRUE(results.ok()) << results.status().message();
  ASSERT_EQ(model.steps.size(), 4u);
  EXPECT_EQ(model.steps[1].inputs.tokens, (std::vector<int32_t>{40, 40}));
  EXPECT_EQ(model.steps[3].inputs.tokens, (std::vector<int32_t>{42, 42}));
  EXPECT_EQ((*results)[1].tokens, (std::vector<int32_t>{kEos, 3, 3, 3}));
  EXPECT_EQ((*results)[1].finish, FinishReason::Length);
  // Lockstep prefills once: prompts beyond max_tokens are an error.
  Generator small(model, pages, limits(/*maxTokens=*/2), nullptr, {true});
  EXPECT_EQ(small.generate({request({1, 2}, 1), request({3}, 1)}).status().message(),
            "the prompts hold 3 tokens, but the plan's prefill step takes at "
            "most 2 (dsv3c --max-tokens)");
}

TEST_F(GeneratorTest, FrequencyPenaltyTurnsGreedyAwayFromRepeats) {
  // Logits 10 at the rule's token (7); with frequency penalty 25 a second
  // 7 falls below the -10 of the others, so the argmax moves to id 0 (the
  // lowest of the ties), then 1, ... each penalized once generated.
  model.rule = [](int32_t, int32_t) { return 7; };
  Generator generator(model, pages, limits(), nullptr);
  SequenceRequest r = request({1}, 4);
  r.sampling.frequencyPenalty = 25.0f;
  auto results = generator.generate({r});
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_EQ((*results)[0].tokens, (std::vector<int32_t>{7, 0, 1, 2}));
  r.sampling.frequencyPenalty = 0;
  results = generator.generate({r});
  ASSERT_TRUE(results.ok());
  EXPECT_EQ((*results)[0].tokens, (std::vector<int32_t>{7, 7, 7, 7}));
}

TEST_F(GeneratorTest, SeedsMakeSequencesReproducibleAndBatchIndependent) {
  model.flat = true; // uniform over every id: each draw is the seed's
  // Prefill steps of 4 tokens: the third prompt is prefilled a step later
  // than the others, and must still draw as it does alone.
  Generator generator(model, pages, limits(/*maxTokens=*/4), nullptr);
  SequenceRequest r = request({1, 2}, 12);
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 99;
  SequenceRequest other = r;
  other.sampling.seed = 100;
  auto batch = generator.generate({r, other, r});
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  auto alone = generator.generate({r});
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ((*batch)[0].tokens, (*alone)[0].tokens);
  EXPECT_EQ((*batch)[2].tokens, (*alone)[0].tokens);
  EXPECT_NE((*batch)[1].tokens, (*alone)[0].tokens);
  for (int32_t token : (*batch)[1].tokens)
    EXPECT_LT(token, kVocab); // the padded columns are never sampled
  // A vocabulary limit keeps every draw below it.
  r.sampling.vocabLimit = 10;
  alone = generator.generate({r});
  ASSERT_TRUE(alone.ok());
  for (int32_t token : (*alone)[0].tokens)
    EXPECT_LT(token, 10);
}

TEST_F(GeneratorTest, BadRequestsAreRefusedBeforeAnyStep) {
  model.rule = [](int32_t token, int32_t) { return token; };
  Generator generator(model, pages, limits(/*maxTokens=*/8, /*maxSequences=*/2),
                      nullptr);
  auto error = [&](std::vector<SequenceRequest> requests) {
    auto results = generator.generate(requests);
    return results.ok() ? std::string("ok") : results.status().message();
  };
  EXPECT_EQ(error({}), "no prompt to generate from");
  EXPECT_EQ(error({request({1}, 1), request({1}, 1), request({1}, 1)}),
            "3 sequences, but the plan runs at most 2 per step (dsv3c "
            "--max-sequences)");
  EXPECT_EQ(error({request({}, 1)}), "sequence 0: the prompt has no tokens");
  EXPECT_EQ(error({request(std::vector<int32_t>(9, 1), 1)}),
            "sequence 0: the prompt has 9 tokens, but the plan's prefill step "
            "takes at most 8 (dsv3c --max-tokens)");
  EXPECT_EQ(error({request({1}, 1), request({1, 304}, 1)}),
            "sequence 1: prompt token 1 is 304, outside the vocabulary (0..303)");
  EXPECT_EQ(error({request({1}, 0)}),
            "sequence 0: max new tokens is 0; it must be at least 1");
  SequenceRequest bad = request({1}, 1);
  bad.sampling.topP = 0;
  EXPECT_EQ(error({bad}), "sequence 0: top_p 0 is outside (0, 1]");
  bad.sampling.topP = 1;
  bad.sampling.temperature = -1;
  EXPECT_EQ(error({bad}), "sequence 0: temperature -1 is not a number >= 0");
  bad.sampling.temperature = 1;
  bad.sampling.minP = 1.5f;
  EXPECT_EQ(error({bad}), "sequence 0: min_p 1.5 is outside [0, 1]");
  bad.sampling.minP = 0;
  bad.sampling.topK = -3;
  EXPECT_EQ(error({bad}), "sequence 0: top_k -3 is negative (0 turns it off)");
  bad.sampling.topK = 0;
  bad.sampling.presencePenalty = INFINITY;
  EXPECT_EQ(error({bad}),
            "sequence 0: penalties must be finite (presence inf, frequency 0)");
  bad.sampling.presencePenalty = 0;
  bad.stopStrings = {"x"};
  EXPECT_EQ(error({bad}),
            "sequence 0: stop strings need a tokenizer to turn tokens into text");
  EXPECT_TRUE(model.steps.empty());
}

TEST_F(GeneratorTest, AFullCacheIsAnErrorAndPagesComeBack) {
  model.rule = [](int32_t token, int32_t) { return token; };
  exec::PageAllocator few(2, 4); // 8 tokens of cache
  Generator generator(model, few, limits(), nullptr);
  auto results = generator.generate({request({1, 2, 3, 4, 5}, 6)});
  ASSERT_FALSE(results.ok());
  EXPECT_NE(results.status().message().find("KV cache full"), std::string::npos)
      << results.status().message();
  EXPECT_EQ(few.freePages(), 2);
  // Exactly enough: 5 prompt tokens + 3 fed back = 8.
  results = generator.generate({request({1, 2, 3, 4, 5}, 4)});
  ASSERT_TRUE(results.ok()) << results.status().message();
  EXPECT_EQ(few.freePages(), 2);
}

TEST(TextStreamTest, HoldsBackStopPrefixesAndIncompleteCharacters) {
  test::TempDir dir;
  test::writeTokenizer(dir, test::tinyTokenizerJson());
  auto tokenizer = Tokenizer::load(dir.path());
  ASSERT_TRUE(tokenizer.ok());
  TextStream stream(*tokenizer, {"<end>"});
  for (int32_t byte : {'a', '<', 'e'})
    EXPECT_FALSE(stream.push(byte));
  EXPECT_EQ(stream.takeReady(), "a");
  EXPECT_FALSE(stream.push('x')); // "<ex" can no longer become "<end>"
  EXPECT_EQ(stream.takeReady(), "<ex");
  EXPECT_FALSE(stream.push(0xC3)); // first byte of "é"
  EXPECT_EQ(stream.takeReady(), "");
  EXPECT_FALSE(stream.push(0xA9));
  EXPECT_EQ(stream.takeReady(), "\xC3\xA9");
  EXPECT_FALSE(stream.push(0xFF)); // never valid: replaced at once
  EXPECT_EQ(stream.takeReady(), "\xEF\xBF\xBD");
  EXPECT_FALSE(stream.push(300)); // <s> is special: no text
  EXPECT_FALSE(stream.push(302)); // <tool> is added, not special: verbatim
  EXPECT_EQ(stream.takeReady(), "<tool>");
  for (int32_t byte : {'<', 'e', 'n', 'd'})
    EXPECT_FALSE(stream.push(byte));
  EXPECT_TRUE(stream.push('>'));
  EXPECT_TRUE(stream.stopped());
  EXPECT_EQ(stream.finish(), "");
  EXPECT_EQ(stream.text(), "a<ex\xC3\xA9\xEF\xBF\xBD<tool>");
  EXPECT_TRUE(stream.push('z')); // ignored after the stop
  EXPECT_EQ(stream.text(), "a<ex\xC3\xA9\xEF\xBF\xBD<tool>");
}

TEST(TextStreamTest, IncompleteUtf8TailsAreThoseThatCanStillBecomeValid) {
  using tokenizer::incompleteUtf8Tail;
  EXPECT_EQ(incompleteUtf8Tail(""), 0u);
  EXPECT_EQ(incompleteUtf8Tail("ab"), 0u);
  EXPECT_EQ(incompleteUtf8Tail("a\xC3"), 1u);
  EXPECT_EQ(incompleteUtf8Tail("\xC3\xA9"), 0u);
  EXPECT_EQ(incompleteUtf8Tail("\xF0\x9F\x91"), 3u);
  EXPECT_EQ(incompleteUtf8Tail("\xF0\x9F"), 2u);
  EXPECT_EQ(incompleteUtf8Tail("\xF0\x9F\x91\x8D"), 0u);
  EXPECT_EQ(incompleteUtf8Tail("\xE0\x80"), 0u); // overlong: never valid
  EXPECT_EQ(incompleteUtf8Tail("\xED\xA0"), 0u); // a surrogate
  EXPECT_EQ(incompleteUtf8Tail("\xFF"), 0u);
  EXPECT_EQ(incompleteUtf8Tail("\x80\x80"), 0u); // continuations alone
}

} // namespace
} // namespace dsv3::generate
