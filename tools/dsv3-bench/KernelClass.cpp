//===- KernelClass.cpp - kernel classes and per-launch time totals --------===//

#include "tools/dsv3-bench/KernelClass.h"

namespace dsv3::bench {

const char *kernelClassName(KernelClass kernelClass) {
  switch (kernelClass) {
  case KernelClass::Gemm:
    return "GEMM";
  case KernelClass::Attention:
    return "attention";
  case KernelClass::MoeRouting:
    return "MoE routing";
  case KernelClass::Norm:
    return "norms";
  case KernelClass::Rest:
    return "rest";
  }
  return "rest";
}

std::string_view kernelTemplateName(std::string_view instance) {
  const size_t arguments = instance.find('<');
  if (arguments != std::string_view::npos)
    instance = instance.substr(0, arguments);
  const size_t scope = instance.rfind("::");
  if (scope != std::string_view::npos)
    instance.remove_prefix(scope + 2);
  return instance;
}

KernelClass classifyKernel(std::string_view instance) {
  const std::string_view name = kernelTemplateName(instance);
  auto startsWith = [&](std::string_view prefix) {
    return name.substr(0, prefix.size()) == prefix;
  };
  auto contains = [&](std::string_view part) {
    return name.find(part) != std::string_view::npos;
  };
  if (contains("gemm"))
    return KernelClass::Gemm;
  if (startsWith("mla_"))
    return KernelClass::Attention;
  if (startsWith("moe_"))
    return KernelClass::MoeRouting;
  if (contains("norm"))
    return KernelClass::Norm;
  return KernelClass::Rest;
}

void KernelTimes::add(std::string_view instance, double milliseconds) {
  classMs[static_cast<size_t>(classifyKernel(instance))] += milliseconds;
  auto addTo = [&](std::map<std::string, std::pair<double, int>, std::less<>> &map,
                   std::string_view key) {
    auto found = map.find(key);
    if (found == map.end())
      found = map.emplace(std::string(key), std::make_pair(0.0, 0)).first;
    found->second.first += milliseconds;
    found->second.second += 1;
  };
  addTo(templates, kernelTemplateName(instance));
  addTo(instances, instance);
}

double KernelTimes::totalMs() const {
  double total = 0;
  for (double milliseconds : classMs)
    total += milliseconds;
  return total;
}

double KernelTimes::share(KernelClass kernelClass) const {
  const double total = totalMs();
  return total > 0 ? classMs[static_cast<size_t>(kernelClass)] / total : 0;
}

} // namespace dsv3::bench
