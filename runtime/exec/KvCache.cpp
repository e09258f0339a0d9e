//===- KvCache.cpp - the paged latent cache and its page allocator --------===//

#include "runtime/exec/KvCache.h"

#include <algorithm>

namespace dsv3::exec {

PageAllocator::PageAllocator(int64_t numPages, int64_t pageSize)
    : numPages_(numPages), pageSize_(pageSize) {
  free_.reserve(static_cast<size_t>(numPages));
  for (int64_t page = numPages - 1; page >= 0; --page)
    free_.push_back(static_cast<int32_t>(page));
}

Status PageAllocator::reserve(int64_t sequence, int64_t tokens) {
  if (tokens < 0)
    return Status::error("sequence {}: cannot reserve {} tokens", sequence,
                         tokens);
  std::vector<int32_t> &owned = owned_[sequence];
  const int64_t needed = pagesFor(tokens) - static_cast<int64_t>(owned.size());
  if (needed <= 0)
    return Status::success();
  if (needed > freePages()) {
    const int64_t ownedPages = static_cast<int64_t>(owned.size());
    if (owned.empty())
      owned_.erase(sequence);
    return Status::error(
        "KV cache full: sequence {} needs {} more page{} of {} tokens for {} "
        "tokens (it has {}), but only {} of {} are free; use more pages "
        "(--kv-pages)",
        sequence, needed, needed == 1 ? "" : "s", pageSize_, tokens,
        ownedPages, freePages(), numPages_);
  }
  for (int64_t i = 0; i < needed; ++i) {
    owned.push_back(free_.back());
    free_.pop_back();
  }
  return Status::success();
}

void PageAllocator::release(int64_t sequence) {
  auto it = owned_.find(sequence);
  if (it == owned_.end())
    return;
  // Back in reverse, so that the next reserve takes the lowest pages first.
  for (auto page = it->second.rbegin(); page != it->second.rend(); ++page)
    free_.push_back(*page);
  owned_.erase(it);
}

const std::vector<int32_t> &PageAllocator::pages(int64_t sequence) const {
  static const std::vector<int32_t> kNone;
  auto it = owned_.find(sequence);
  return it == owned_.end() ? kNone : it->second;
}

int64_t
PageAllocator::widestSequence(const std::vector<int64_t> &sequences) const {
  int64_t widest = 0;
  for (int64_t sequence : sequences)
    widest = std::max<int64_t>(widest, pages(sequence).size());
  return widest;
}

Status PageAllocator::fillBlockTable(const std::vector<int64_t> &sequences,
                                     int64_t width,
                                     std::vector<int32_t> &table) const {
  table.assign(sequences.size() * static_cast<size_t>(width), kUnusedPage);
  for (size_t row = 0; row < sequences.size(); ++row) {
    const std::vector<int32_t> &owned = pages(sequences[row]);
    if (static_cast<int64_t>(owned.size()) > width)
      return Status::error("sequence {} owns {} pages, more than the block "
                           "table's width {}",
                           sequences[row], owned.size(), width);
    std::copy(owned.begin(), owned.end(), table.begin() + row * width);
  }
  return Status::success();
}

uint64_t kvCacheLayerBytes(const plan::Plan &plan, int64_t numPages) {
  return static_cast<uint64_t>(numPages) * plan.limits()->page_size() *
         plan.model()->cache_row_elements() * 2; // bf16
}

uint64_t kvCacheBytes(const plan::Plan &plan, int64_t numPages) {
  const uint64_t layers = static_cast<uint64_t>(plan.model()->num_layers()) +
                          plan.model()->num_mtp_layers();
  return layers * plan::alignToDevice(kvCacheLayerBytes(plan, numPages));
}

StatusOr<KvCache> KvCache::create(const Device &device, const plan::Plan &plan,
                                  int64_t numPages) {
  if (numPages < 1 || numPages > INT32_MAX)
    return Status::error("the KV cache needs between 1 and 2^31-1 pages, not "
                         "{}",
                         numPages);
  KvCache cache(numPages, plan.limits()->page_size());
  const int layers = plan.model()->num_layers() + plan.model()->num_mtp_layers();
  const uint64_t layerBytes = kvCacheLayerBytes(plan, numPages);
  for (int layer = 0; layer < layers; ++layer) {
    DSV3_ASSIGN_OR_RETURN(
        DeviceBuffer buffer,
        device.allocate(layerBytes, fmt::format("KV cache layer {}", layer)));
    DSV3_RETURN_IF_ERROR(device.fill(buffer.address(), 0xFF, layerBytes));
    cache.layers_.push_back(std::move(buffer));
  }
  DSV3_RETURN_IF_ERROR(device.synchronize("filling the KV cache"));
  return cache;
}

} // namespace dsv3::exec
