# lit configuration for dsv3c: dialect round-trips and verifier errors, the
# frontend's module for each bundled config, and the tools' behaviour on bad input.
import os

import lit.formats

config.name = "dsv3c"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt", "unit", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.dsv3_binary_dir, "test")

config.environment["PATH"] = os.pathsep.join(
    [config.dsv3_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
config.substitutions.append(("%configs", os.path.join(config.dsv3_source_dir, "configs")))
