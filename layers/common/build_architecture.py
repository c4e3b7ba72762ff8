"""Print the architecture SAM builds a layer for: ``build_architecture.py <LogicalId> <ARTIFACTS_DIR>``.

SAM CLI gives a makefile build only ARTIFACTS_DIR, not the architecture; it writes each
build definition (the layer's logical id and architecture) to ``.aws-sam/build.toml`` before
it builds, in a folder above ARTIFACTS_DIR (``.aws-sam/build/<id>`` or ``.aws-sam/cache/<uuid>``).
"""

import sys
import tomllib
from pathlib import Path

layer, artifacts = sys.argv[1], Path(sys.argv[2]).resolve()
for folder in artifacts.parents:
    graph = folder / "build.toml"
    if graph.is_file():
        definitions = tomllib.loads(graph.read_text()).get("layer_build_definitions", {})
        found = {d.get("architecture") for d in definitions.values() if d.get("layer") == layer}
        if len(found) == 1:
            print(found.pop())
            sys.exit(0)
sys.exit(f"{layer}: no architecture for it in a build.toml above {artifacts}; set ARCHITECTURE=arm64|x86_64")
