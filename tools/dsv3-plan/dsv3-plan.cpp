//===- dsv3-plan.cpp - inspect and verify plans, without a GPU ------------===//
//
// dsv3-plan dump PLAN    the plan as text (PlanDump.h), for people and lit
// dsv3-plan check PLAN   verifies the plan as dsv3-run would before running
//
//===----------------------------------------------------------------------===//

#include "runtime/plan/PlanDump.h"
#include "runtime/plan/PlanFile.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

const char kUsage[] = R"(dsv3-plan: inspect dsv3 plans (no GPU needed)

USAGE:
  dsv3-plan dump PLAN
  dsv3-plan check PLAN

dump    Verifies PLAN and prints it as text: target, limits, model, every
        weight (device dtype and shape, transform, checkpoint sources),
        constant, module, kernel, and per entry point its arena, inputs,
        outputs and every launch (grid, block, shared memory, arguments).
        Sizes are written in the step's sizes: T tokens, B sequences,
        P pages per sequence.
check   Verifies PLAN exactly as dsv3-run does before touching a GPU (file
        identifier, flatbuffer structure, schema version, every index, arena
        offset, grid, block and argument) and prints a one-line summary.

Errors are one line on stderr naming the file and the field at fault; the
exit status is then 1.
)";

int fail(const std::string &message) {
  std::fprintf(stderr, "dsv3-plan: error: %s\n", message.c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  if (argc != 3)
    return fail("expected a command and a plan file: dsv3-plan dump|check "
                "PLAN (see --help)");
  const std::string command = argv[1], path = argv[2];
  if (command != "dump" && command != "check")
    return fail("unknown command '" + command + "': expected dump or check");

  dsv3::StatusOr<dsv3::plan::PlanFile> file = dsv3::plan::PlanFile::open(path);
  if (!file.ok())
    return fail(file.status().message());
  const dsv3::plan::Plan &plan = file->plan();
  if (command == "dump") {
    std::string text = dsv3::plan::dumpPlan(plan);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }

  auto plural = [](size_t count, const char *noun) {
    return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
  };
  size_t steps = 0;
  std::string entries;
  for (const dsv3::plan::EntryPoint *entry : *plan.entry_points()) {
    steps += entry->steps() ? entry->steps()->size() : 0;
    entries += (entries.empty() ? "" : ", ") + entry->name()->str();
  }
  const size_t weights = plan.weights() ? plan.weights()->size() : 0;
  const size_t kernels = plan.kernels() ? plan.kernels()->size() : 0;
  std::printf("%s: ok: %s, %s (%llu bytes on the device), %s, entry points "
              "%s (%s)\n",
              path.c_str(), plan.target()->arch()->c_str(),
              plural(weights, "weight").c_str(),
              static_cast<unsigned long long>(
                  dsv3::plan::layoutWeights(plan).totalBytes),
              plural(kernels, "kernel").c_str(), entries.c_str(),
              plural(steps, "step").c_str());
  return 0;
}
