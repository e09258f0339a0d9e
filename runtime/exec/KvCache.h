//===- KvCache.h - the paged latent cache and its page allocator ---*- C++ -*-===//
//
// Every layer (main layers, then MTP layers) has one device buffer of
// num_pages x page_size rows of cache_row_elements bf16 values (MLA's
// compressed latent and the roped key: 576 values for DeepSeek-V3). A
// sequence owns a list of pages; position p of the sequence lives in row
// pages[p / page_size] * page_size + p % page_size of every layer's buffer.
// The block table a step uploads is those page lists, one row per sequence.
//
// PageAllocator is the bookkeeping alone (no device), so it is tested on the
// CPU; KvCache adds the device buffers.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_KVCACHE_H
#define DSV3_RUNTIME_EXEC_KVCACHE_H

#include "runtime/Status.h"
#include "runtime/exec/Device.h"
#include "runtime/plan/PlanFile.h"

#include <cstdint>
#include <map>
#include <vector>

namespace dsv3::exec {

/// Block-table entries past a sequence's pages: never read by the kernels
/// (they read only the pages of positions up to each token's own), and not
/// a valid page, so a wrong read faults instead of reading another sequence.
inline constexpr int32_t kUnusedPage = -1;

/// Hands out pages of the cache to sequences. A sequence is any caller-chosen
/// id; pages are reused after release, and a page is never owned twice.
class PageAllocator {
public:
  PageAllocator(int64_t numPages, int64_t pageSize);

  int64_t numPages() const { return numPages_; }
  int64_t pageSize() const { return pageSize_; }
  int64_t freePages() const { return static_cast<int64_t>(free_.size()); }

  /// Pages needed for `tokens` tokens.
  int64_t pagesFor(int64_t tokens) const {
    return (tokens + pageSize_ - 1) / pageSize_;
  }

  /// Makes `sequence` own enough pages for its first `tokens` tokens, keeping
  /// the pages it has and adding more as needed. On failure (too few free
  /// pages) nothing changes.
  Status reserve(int64_t sequence, int64_t tokens);
  /// Returns all pages of `sequence` (none when unknown).
  void release(int64_t sequence);
  /// The pages of `sequence` in position order; empty when unknown.
  const std::vector<int32_t> &pages(int64_t sequence) const;

  /// The block table of a step over `sequences` (row b: the pages of
  /// sequences[b], then kUnusedPage up to `width` entries), row-major.
  /// Fails when a sequence owns more than `width` pages.
  Status fillBlockTable(const std::vector<int64_t> &sequences, int64_t width,
                        std::vector<int32_t> &table) const;
  /// The most pages any of `sequences` owns (the narrowest block table).
  int64_t widestSequence(const std::vector<int64_t> &sequences) const;

private:
  int64_t numPages_, pageSize_;
  /// Free pages, taken from the back: lowest page numbers first.
  std::vector<int32_t> free_;
  std::map<int64_t, std::vector<int32_t>> owned_;
};

/// Bytes of one layer's cache buffer for `numPages` pages.
uint64_t kvCacheLayerBytes(const plan::Plan &plan, int64_t numPages);
/// Bytes of every layer's cache buffer (each aligned as allocated).
uint64_t kvCacheBytes(const plan::Plan &plan, int64_t numPages);

/// The device buffers of the cache, one per layer, and their pages.
class KvCache {
public:
  /// Allocates num_layers + num_mtp_layers buffers of `numPages` pages and
  /// fills them with 0xFF bytes (bf16 NaN), so that reading a row nobody
  /// wrote shows up in the logits instead of passing silently.
  static StatusOr<KvCache> create(const Device &device, const plan::Plan &plan,
                                  int64_t numPages);

  int layerCount() const { return static_cast<int>(layers_.size()); }
  CUdeviceptr layerAddress(int layer) const {
    return layers_[layer].address();
  }
  PageAllocator &pages() { return pages_; }
  const PageAllocator &pages() const { return pages_; }

private:
  KvCache(int64_t numPages, int64_t pageSize) : pages_(numPages, pageSize) {}

  std::vector<DeviceBuffer> layers_;
  PageAllocator pages_;
};

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_KVCACHE_H
