#!/usr/bin/env bash
# Packs the managed build output (artifacts/bin) into .gpu/managed.tar.xz for the GPU machine, keeping only the
# linux-x64 native runtimes of NuGet packages: ScottPlot's SkiaSharp and HarfBuzz bring natives for about twenty
# platforms (some 150 MB per project), and a device call carries at most 64 MiB. On the GPU machine build.sh
# unpacks it when artifacts/bin is missing, so carry [".gpu", ".peers"] and run e.g.
#   bash .gpu/run.sh ./build.sh test --gpu
# Run after `dotnet build` (or .ci/run) and ../shared/tools/gpu-stage.sh, from the project root.
set -euo pipefail
[ -d artifacts/bin ] || { echo "no artifacts/bin: build the managed code first" >&2; exit 1; }
mkdir -p .gpu
(cd artifacts && find bin -path '*/runtimes/*' ! -path '*/runtimes/linux-x64' ! -path '*/runtimes/linux-x64/*' -prune -o -type f -print) |
  tar -C artifacts -cJf .gpu/managed.tar.xz -T -
du -h .gpu/managed.tar.xz | awk '{print "packed .gpu/managed.tar.xz (" $1 ")"}'
