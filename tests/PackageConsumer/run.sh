#!/usr/bin/env bash
# The package consumer check: a throw-away console app (this folder) restores the MoeCutlass package from a local
# folder, offline, and uses it as a customer would (see Program.cs for what it asserts).
#
#   tests/PackageConsumer/run.sh [all|build|run] [--source DIR] [--backend cpu|cuda]
#
#   build  (needs the .NET SDK) copy this folder to artifacts/package-consumer/src, write a nuget.config there whose only
#          sources are DIR (default artifacts/packages; the MoeCutlass package, mapped to it alone) and this machine's
#          global packages folder (the package's dependencies), restore into a private packages folder, offline, and
#          build into artifacts/package-consumer/app
#   run    (needs only the .NET runtime: a GPU machine) run artifacts/package-consumer/app
#   all    build, then run (the default; `./build.sh test` does this on the package it has just packed)
#
# --backend (or MOECUTLASS_CONSUMER_BACKEND) cpu|cuda: the context the app's grouped GEMM runs on (default cpu).
# Everything under artifacts/package-consumer/ except feed/ (./build.sh test's package folder) is recreated each time.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
template="$root/tests/PackageConsumer"
work="$root/artifacts/package-consumer"

mode=all source="$root/artifacts/packages" backend=${MOECUTLASS_CONSUMER_BACKEND:-cpu}
while [ $# -gt 0 ]; do
  case "$1" in
    all|build|run) mode=$1; shift ;;
    --source) source=$(cd "${2:?--source needs a folder}" && pwd); shift 2 ;;
    --backend) backend=${2:?--backend needs cpu or cuda}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# No telemetry, first-run work or update checks; and a proxy that answers nothing, so that any attempt to reach the
# network fails the check instead of quietly succeeding.
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
  DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE=1 DOTNET_GENERATE_ASPNET_CERTIFICATE=false \
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 \
  http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9
unset NO_PROXY no_proxy

build() {
  local packages=("$source"/MoeCutlass.*.nupkg)
  [ -f "${packages[0]}" ] || { echo "run.sh: no MoeCutlass.*.nupkg in $source (./build.sh pack makes one)" >&2; exit 1; }
  [ ${#packages[@]} = 1 ] || { echo "run.sh: more than one MoeCutlass package in $source: ${packages[*]##*/}" >&2; exit 1; }
  local version=${packages[0]##*/MoeCutlass.}; version=${version%.nupkg}
  local global
  global=$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: *//p')
  [ -d "$global" ] || { echo "run.sh: cannot find this machine's global packages folder ('$global')" >&2; exit 1; }

  rm -rf "$work/src" "$work/packages" "$work/app"
  mkdir -p "$work/src"
  cp "$template"/PackageConsumer.csproj "$template"/Program.cs "$template"/Directory.Build.props \
    "$template"/Directory.Build.targets "$work/src/"
  # <clear/> drops every inherited source (nuget.org included); the mapping takes MoeCutlass from DIR alone, so a
  # MoeCutlass in the global packages folder can never stand in for the fresh one; the private packages folder
  # (--packages) means nothing is reused from an earlier run.
  cat >"$work/src/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="moecutlass-local" value="$source" />
    <add key="machine-global-packages" value="$global" />
  </packageSources>
  <packageSourceMapping>
    <clear />
    <packageSource key="moecutlass-local"><package pattern="MoeCutlass" /></packageSource>
    <packageSource key="machine-global-packages"><package pattern="*" /></packageSource>
  </packageSourceMapping>
  <fallbackPackageFolders><clear /></fallbackPackageFolders>
  <disabledPackageSources><clear /></disabledPackageSources>
</configuration>
EOF
  echo "consumer: restoring MoeCutlass $version from $source (offline), dependencies from $global"
  dotnet restore "$work/src/PackageConsumer.csproj" --configfile "$work/src/nuget.config" --packages "$work/packages" \
    -p:MoeCutlassPackageVersion="$version" -nologo -v:q
  dotnet build "$work/src/PackageConsumer.csproj" --no-restore -c Release -o "$work/app" \
    -p:MoeCutlassPackageVersion="$version" -nologo -v:q -clp:NoSummary
  echo "consumer: built $work/app"
}

run() {
  [ -f "$work/app/PackageConsumer.dll" ] || { echo "run.sh: no consumer app in $work/app (run.sh build first)" >&2; exit 1; }
  # The check is about what the package alone provides: no override of the native library's location.
  env -u MOECUTLASS_NATIVE_PATH MOECUTLASS_CONSUMER_BACKEND="$backend" dotnet "$work/app/PackageConsumer.dll"
}

case "$mode" in
  build) build ;;
  run) run ;;
  all) build; run ;;
esac
