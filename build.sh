#!/usr/bin/env bash
# MoeCutlass build driver. The same verbs and options as build.ps1.
#
#   ./build.sh build      native library (CMake) + managed solution (dotnet)
#   ./build.sh test       build, then native unit tests (ctest), bindings check, NUnit suite; one summary line
#   ./build.sh bench ...  build, then `moecutlass bench ...` (arguments after `bench` go to the CLI)
#   ./build.sh pack       build, then the NuGet package into artifacts/packages
#   ./build.sh bindings   regenerate the C# bindings from the C header (--check: fail if out of date)
#   ./build.sh clean      remove artifacts/
#
# Options: -c|--configuration Release|Debug   --cuda AUTO|ON|OFF (native CUDA backend, default AUTO)
#          --gpu   (test/bench on a GPU machine: CUDA ON, MOECUTLASS_REQUIRE_GPU=1, managed code prebuilt)
#          --skip-native  --skip-managed  -h|--help
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

verb=${1:-}
[ -n "$verb" ] || { usage; exit 2; }
shift
configuration=Release cuda=AUTO gpu=0 skip_native=0 skip_managed=0 check=0
passthrough=()
while [ $# -gt 0 ]; do
  if [ "$verb" = bench ]; then
    # Everything after `bench` except the build options belongs to the CLI.
    case "$1" in
      -c|--configuration) configuration=$2; shift 2; continue ;;
      --cuda) cuda=$2; shift 2; continue ;;
      --gpu) gpu=1; shift; continue ;;
      *) passthrough+=("$1"); shift; continue ;;
    esac
  fi
  case "$1" in
    -c|--configuration) configuration=${2:?--configuration needs a value}; shift 2 ;;
    --cuda) cuda=${2:?--cuda needs AUTO, ON or OFF}; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --check) check=1; shift ;;
    --skip-native) skip_native=1; shift ;;
    --skip-managed) skip_managed=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown option '$1' for '$verb' (see ./build.sh --help)" >&2; exit 2 ;;
  esac
done
case "$configuration" in Release|Debug) ;; *) echo "build.sh: --configuration must be Release or Debug, not '$configuration'" >&2; exit 2 ;; esac
case "$cuda" in AUTO|ON|OFF) ;; *) echo "build.sh: --cuda must be AUTO, ON or OFF, not '$cuda'" >&2; exit 2 ;; esac
if [ "$gpu" = 1 ]; then cuda=ON; export MOECUTLASS_REQUIRE_GPU=1; fi

config_lower=$(echo "$configuration" | tr '[:upper:]' '[:lower:]')
rid=linux-$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')
native_build=artifacts/obj/native/$config_lower
native_out=artifacts/native/$rid
native_lib=$native_out/libmoecutlass.so
logs=artifacts/logs
mkdir -p "$logs"

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { [ "$(id -u)" = 0 ]; }

apt_install() {  # apt_install PACKAGE... : only as root, and only when something is missing
  # GPU runners have no network (DESIGN.md section 8): they bring what they need instead.
  [ "$gpu" = 1 ] || [ -n "${MOECUTLASS_NO_INSTALL:-}" ] && return 1
  as_root && have apt-get || return 1
  echo "installing $* with apt-get"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$logs/apt.log" 2>&1 || {
    tail -20 "$logs/apt.log" >&2; return 1; }
}

ensure_native_tools() {
  local missing=()
  have cmake || missing+=(cmake)
  have g++ || missing+=(g++)
  have ninja || missing+=(ninja-build)
  [ -f /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}" || echo "build.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
  fi
}

# The system python3 is the one that sees Debian's libclang bindings (a pyenv python on PATH does not).
bindings_python=/usr/bin/python3
bindings_available() { [ -x "$bindings_python" ] && "$bindings_python" -c 'import clang.cindex' 2>/dev/null; }
ensure_bindings_tools() {
  bindings_available || apt_install python3-clang-14 libclang1-14 || true
  bindings_available
}

build_native() {
  [ "$skip_native" = 1 ] && return 0
  ensure_native_tools
  local generator=()
  have ninja && generator=(-G Ninja)
  # A build folder configured with another generator cannot be reused.
  if [ -f "$native_build/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${generator[1]:-Unix Makefiles}" "$native_build/CMakeCache.txt"; then
    rm -rf "$native_build"
  fi
  cmake -S . -B "$native_build" "${generator[@]}" -DCMAKE_BUILD_TYPE="$configuration" -DMOECUTLASS_CUDA="$cuda" \
    ${CUTLASS_DIR:+-DCUTLASS_DIR="$CUTLASS_DIR"} ${MOECUTLASS_GIT_COMMIT:+-DMOECUTLASS_GIT_COMMIT="$MOECUTLASS_GIT_COMMIT"} \
    >"$logs/cmake-configure.log" 2>&1 || {
    cat "$logs/cmake-configure.log" >&2; echo "build.sh: CMake configure failed (log: $logs/cmake-configure.log)" >&2; exit 1; }
  grep -E "^-- MoeCutlass" "$logs/cmake-configure.log" || true
  local jobs; jobs=$(nproc 2>/dev/null || echo 2)
  cmake --build "$native_build" --parallel "$jobs" 2>&1 | tee "$logs/cmake-build.log" | grep -E "error|warning|Linking|FAILED" || true
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "build.sh: native build failed (log: $logs/cmake-build.log)" >&2; exit 1; }
  cmake --install "$native_build" --prefix "artifacts/obj/native-install/$config_lower" >/dev/null
  mkdir -p "$native_out"
  cp -f "artifacts/obj/native-install/$config_lower/lib/libmoecutlass.so" "$native_lib"
  echo "native library: $native_lib"
}

managed_prebuilt() { [ -f "artifacts/bin/MoeCutlass.Tests/$config_lower/MoeCutlass.Tests.dll" ]; }
have_sdk() { have dotnet && dotnet --list-sdks 2>/dev/null | grep -q .; }

build_managed() {
  [ "$skip_managed" = 1 ] && return 0
  if ! have_sdk; then
    # The GPU machine has the .NET runtime only: the managed code is built elsewhere and carried over.
    managed_prebuilt || { echo "build.sh: no .NET SDK here and no prebuilt managed output in artifacts/bin" >&2; exit 1; }
    echo "no .NET SDK: using the prebuilt managed output in artifacts/bin"
    return 0
  fi
  dotnet build MoeCutlass.sln -c "$configuration" -nologo -v:q -p:MoeCutlassNativeDir="$root/$native_out/" 2>&1 |
    tee "$logs/dotnet-build.log" | grep -E "error|warn" || true
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "build.sh: dotnet build failed (log: $logs/dotnet-build.log)" >&2; exit 1; }
}

run_bindings() {
  if ! ensure_bindings_tools; then
    echo "build.sh: libclang's Python bindings are missing: apt-get install python3-clang-14 libclang1-14" >&2
    return 3
  fi
  if [ "$check" = 1 ]; then "$bindings_python" bindings/generate_bindings.py --check; else "$bindings_python" bindings/generate_bindings.py; fi
}

# ---- test: every suite, one summary line ------------------------------------------------------------
passed=0 failed=0 skipped=0
count() { passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3)); }

test_native() {
  local junit=$logs/ctest-junit.xml
  rm -f "$junit"
  ctest --test-dir "$native_build" --output-on-failure --output-junit "$root/$junit" -j "$(nproc 2>/dev/null || echo 2)" \
    >"$logs/ctest.log" 2>&1 || true
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run" "$logs/ctest.log" || true
  if [ ! -f "$junit" ]; then
    cat "$logs/ctest.log"; echo "build.sh: ctest produced no result file" >&2; count 0 1 0; return
  fi
  # junit: <testsuite tests= failures= skipped= ...>
  read -r t f s < <(python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
print(int(s.get("tests", 0)), int(s.get("failures", 0)) + int(s.get("errors", 0)), int(s.get("skipped", 0)))
PY
)
  [ "$t" -gt 0 ] || { echo "build.sh: ctest ran no test" >&2; count 0 1 0; return; }
  [ "$f" -gt 0 ] && cat "$logs/ctest.log"
  echo "native (ctest): $((t - f - s)) passed, $f failed, $s skipped"
  count $((t - f - s)) "$f" "$s"
}

test_bindings() {
  local rc=0
  check=1 run_bindings >"$logs/bindings.log" 2>&1 || rc=$?
  cat "$logs/bindings.log"
  case $rc in
    0) count 1 0 0 ;;
    3) echo "bindings check skipped: install python3-clang-14 to run it"; count 0 0 1 ;;
    *) count 0 1 0 ;;
  esac
}

test_managed() {
  local exe_dir="artifacts/bin/MoeCutlass.Tests/$config_lower" rc=0
  # Every test runs everywhere; with --gpu, MOECUTLASS_REQUIRE_GPU=1 turns a missing device into failures.
  local args=(--results-directory "$root/artifacts/TestResults" --no-progress)
  export MOECUTLASS_NATIVE_PATH="$root/$native_lib"
  dotnet "$exe_dir/MoeCutlass.Tests.dll" "${args[@]}" --no-ansi >"$logs/nunit.raw.log" 2>&1 || rc=$?
  # Colour codes still appear in some terminals and CI modes; the counts are read from plain text.
  sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$logs/nunit.raw.log" >"$logs/nunit.log"
  # Microsoft.Testing.Platform's closing block: total / failed / succeeded / skipped.
  local t f p s
  t=$(sed -n 's/^ *total: *\([0-9]*\).*/\1/p' "$logs/nunit.log" | tail -1)
  f=$(sed -n 's/^ *failed: *\([0-9]*\).*/\1/p' "$logs/nunit.log" | tail -1)
  p=$(sed -n 's/^ *succeeded: *\([0-9]*\).*/\1/p' "$logs/nunit.log" | tail -1)
  s=$(sed -n 's/^ *skipped: *\([0-9]*\).*/\1/p' "$logs/nunit.log" | tail -1)
  if [ -z "$t" ] || [ "${t:-0}" = 0 ]; then
    cat "$logs/nunit.log"; echo "build.sh: the NUnit suite ran no test (exit $rc)" >&2; count 0 1 0; return
  fi
  if [ "$rc" != 0 ] || [ "${f:-0}" != 0 ]; then
    grep -E "^(failed|error) |Assert|Expected|But was|at MoeCutlass" "$logs/nunit.log" | head -80 || true
  fi
  echo "managed (NUnit): ${p:-0} passed, ${f:-0} failed, ${s:-0} skipped"
  count "${p:-0}" "${f:-0}" "${s:-0}"
  [ "$rc" = 0 ] || [ "${f:-0}" != 0 ] || { echo "build.sh: the NUnit runner exited $rc" >&2; count 0 1 0; }
}

case "$verb" in
  build)
    build_native; build_managed ;;
  test)
    # A build that fails still ends with the summary line CI reads.
    trap '[ $? = 0 ] || [ -n "${summary_done:-}" ] || echo "$passed passed, $((failed + 1)) failed, $skipped skipped"' EXIT
    build_native; build_managed
    echo "== native unit tests"; test_native
    echo "== bindings check"; test_bindings
    echo "== NUnit suite"; test_managed
    summary_done=1
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" = 0 ] ;;
  bench)
    build_native; build_managed
    export MOECUTLASS_NATIVE_PATH="$root/$native_lib"
    exec dotnet "artifacts/bin/MoeCutlass.Cli/$config_lower/MoeCutlass.Cli.dll" bench "${passthrough[@]}" ;;
  pack)
    build_native; build_managed
    [ -f "$native_lib" ] || { echo "build.sh: cannot pack without the native library ($native_lib)" >&2; exit 1; }
    dotnet pack src/MoeCutlass/MoeCutlass.csproj -c "$configuration" -nologo -v:q --no-build \
      -p:MoeCutlassNativeDir="$root/$native_out/" -o artifacts/packages
    ls -l artifacts/packages ;;
  bindings)
    run_bindings || { rc=$?; [ $rc = 3 ] && exit 1; exit $rc; } ;;
  clean)
    rm -rf artifacts; echo "removed artifacts/" ;;
  *)
    echo "build.sh: unknown verb '$verb' (build, test, bench, pack, bindings, clean)" >&2; exit 2 ;;
esac
