#!/usr/bin/env bash
# MoeCutlass build driver. The same verbs and options as build.ps1.
#
#   ./build.sh build      native library (CMake) + managed solution (dotnet)
#   ./build.sh test       build, then native unit tests (ctest), the same under ASan+UBSan (a CPU-only sanitized build),
#                         bindings check, NUnit suite, package consumer check, build.ps1 check (pwsh from
#                         dotnet-tools.json); one summary line
#   ./build.sh bench ...  build, then `moecutlass bench ...` (arguments after `bench` go to the CLI)
#   ./build.sh pack       build, then the NuGet package (+ .snupkg) into artifacts/packages
#                         (--native FILE: pack that library, built elsewhere, instead of building one here)
#   ./build.sh bindings   regenerate the C# bindings from the C header (--check: fail if out of date)
#   ./build.sh clean      remove artifacts/
#
# Options: -c|--configuration Release|Debug   --cuda AUTO|ON|OFF (native CUDA backend, default AUTO)
#          --gpu   (test/bench on a GPU machine: CUDA ON, MOECUTLASS_REQUIRE_GPU=1, managed code prebuilt)
#          --skip-native  --skip-managed  --native FILE (pack)  -h|--help
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"

# The comment block at the top of this file, without the '#' and without anything after it.
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

verb=${1:-}
case "$verb" in
  '') usage >&2; exit 2 ;;
  -h|--help|help) usage; exit 0 ;;
esac
shift
configuration=Release cuda=AUTO gpu=0 skip_native=0 skip_managed=0 check=0 native_file=
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
    --native) native_file=${2:?--native needs the library file}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown option '$1' for '$verb' (see ./build.sh --help)" >&2; exit 2 ;;
  esac
done
case "$configuration" in Release|Debug) ;; *) echo "build.sh: --configuration must be Release or Debug, not '$configuration'" >&2; exit 2 ;; esac
case "$cuda" in AUTO|ON|OFF) ;; *) echo "build.sh: --cuda must be AUTO, ON or OFF, not '$cuda'" >&2; exit 2 ;; esac
[ -z "$native_file" ] || [ "$verb" = pack ] || { echo "build.sh: --native is an option of 'pack' only" >&2; exit 2; }
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

# Progress: a line when a long step starts and one with its elapsed seconds when it ends.
step_start() { step_name=$1; step_began=$SECONDS; echo "$1${2:+ ($2)}..."; }
step_done() { echo "$step_name: done in $((SECONDS - step_began)) s"; }

# The real diagnostics of a native build log (compiler, linker, CMake, Ninja/Make failures), read from stdin.
# Not the word "error" anywhere: "Building CXX object .../core/error.cpp.o" is progress, not an error.
native_log_filter() {
  grep -E ':[0-9]+(:[0-9]+)?: (fatal error|error|warning):|: (fatal error|error|warning):|undefined reference|collect2:|ld returned|^FAILED:|CMake (Error|Warning)|^(g?make|ninja)(\[[0-9]+\])?: .*(\*\*\*|error)|Linking' || true
}

# The real diagnostics of an MSBuild log: "file(1,2): error CS0103: ...", "error MSB4018: ...", "warning NU1603: ...".
managed_log_filter() {
  grep -E '(^|[ :])(error|warning) [A-Z]+[0-9]+:|: (error|warning) *:' || true
}

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
  local estimate="about 2 min on 2 cores"
  [ "$cuda" = OFF ] || ! have nvcc || estimate="CUDA kernels: 1-2 min each per core, much longer"
  step_start "native build" "cmake, $jobs jobs, $estimate"
  # pipefail: the pipeline fails when the build does (the filter itself never fails).
  cmake --build "$native_build" --parallel "$jobs" 2>&1 | tee "$logs/cmake-build.log" | native_log_filter ||
    { echo "build.sh: native build failed (log: $logs/cmake-build.log)" >&2; exit 1; }
  step_done
  # The install step also splits the debug info off into libmoecutlass.so.dbg (cmake/MoeCutlassSplitDebug.cmake).
  local installed="artifacts/obj/native-install/$config_lower/lib"
  cmake --install "$native_build" --prefix "artifacts/obj/native-install/$config_lower" >"$logs/cmake-install.log" 2>&1 || {
    cat "$logs/cmake-install.log" >&2; echo "build.sh: native install failed" >&2; exit 1; }
  mkdir -p "$native_out"
  cp -f "$installed/libmoecutlass.so" "$native_lib"
  if [ -f "$installed/libmoecutlass.so.dbg" ]; then
    cp -f "$installed/libmoecutlass.so.dbg" "$native_lib.dbg"
    echo "native library: $native_lib (debug info: $native_lib.dbg, never packed)"
  else
    rm -f "$native_lib.dbg"; echo "native library: $native_lib"
  fi
}

managed_prebuilt() { [ -f "artifacts/bin/MoeCutlass.Tests/$config_lower/MoeCutlass.Tests.dll" ]; }
have_sdk() { have dotnet && dotnet --list-sdks 2>/dev/null | grep -q .; }

build_managed() {
  [ "$skip_managed" = 1 ] && return 0
  if ! have_sdk; then
    # The GPU machine has the .NET runtime only: the managed code is built elsewhere and carried over, either as
    # artifacts/bin or packed by tools/gpu-pack-managed.sh (the plotting natives make artifacts/bin too large to carry).
    if ! managed_prebuilt && [ -f .gpu/managed.tar.xz ]; then
      echo "unpacking the prebuilt managed output from .gpu/managed.tar.xz"
      mkdir -p artifacts && tar -C artifacts -xJf .gpu/managed.tar.xz
    fi
    managed_prebuilt || { echo "build.sh: no .NET SDK here and no prebuilt managed output in artifacts/bin" >&2; exit 1; }
    echo "no .NET SDK: using the prebuilt managed output in artifacts/bin"
    return 0
  fi
  step_start "dotnet build" "managed solution, about 1-2 min on a fresh clone"
  dotnet build MoeCutlass.sln -c "$configuration" -nologo -v:q -p:MoeCutlassNativeDir="$root/$native_out/" -p:MoeCutlassRid="$rid" 2>&1 |
    tee "$logs/dotnet-build.log" | managed_log_filter ||
    { echo "build.sh: dotnet build failed (log: $logs/dotnet-build.log)" >&2; exit 1; }
  step_done
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

# ctest_counts DIR JUNIT LOG LABEL [NAME=VALUE...]: run ctest in DIR (with those variables in its environment), count
# its JUnit result file.
ctest_counts() {
  local dir=$1 junit=$2 log=$3 label=$4
  shift 4
  rm -f "$junit"
  env "$@" ctest --test-dir "$dir" --output-on-failure --output-junit "$root/$junit" -j "$(nproc 2>/dev/null || echo 2)" \
    >"$log" 2>&1 || true
  grep -E "tests passed|tests failed|\*\*\*(Failed|Exception)|Not Run" "$log" || true
  if [ ! -f "$junit" ]; then
    cat "$log"; echo "build.sh: ctest produced no result file" >&2; count 0 1 0; return
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
  [ "$f" -gt 0 ] && cat "$log"
  echo "$label: $((t - f - s)) passed, $f failed, $s skipped"
  count $((t - f - s)) "$f" "$s"
}

test_native() {
  ctest_counts "$native_build" "$logs/ctest-junit.xml" "$logs/ctest.log" "native (ctest)"
}

# ---- the native unit tests again, built with AddressSanitizer + UndefinedBehaviorSanitizer (CPU only) ---------------
# Its own CPU-only build folder (cmake/MoeCutlassSanitize.cmake), so the normal build and the shipped library never see
# the flags. -O1: the usual ASan trade-off between build time and run time (2-4 min of build on 2 cores, then
# seconds of tests). Counted like the plain ctest run (one test per GoogleTest case).
sanitize_build=artifacts/obj/native-sanitize
sanitizers=address,undefined
# detect_leaks: a leak fails the test that leaked. abort_on_error: the test dies with the report. allocator_may_return_null:
# a huge request (the out-of-memory tests ask for 2^62 bytes) returns nullptr as the C++ nothrow contract says, so the
# library's out-of-memory path runs, instead of ASan aborting the process. UBSan: the first report ends the test.
sanitize_env=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
              UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
sanitizers_available() {  # the compiler CMake will use can build and link a sanitized program
  local probe; probe=$(mktemp -d)
  echo 'int main() { return 0; }' >"$probe/p.cpp"
  "${CXX:-c++}" -fsanitize=$sanitizers "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1 && "$probe/p"
  local rc=$?; rm -rf "$probe"; return $rc
}

test_native_sanitized() {
  if [ "$gpu" = 1 ]; then
    echo "skipped: --gpu (the sanitized build is CPU-only; the CPU runner runs it)"; count 0 0 1; return
  fi
  if [ "$skip_native" = 1 ]; then
    echo "skipped: --skip-native"; count 0 0 1; return
  fi
  if ! sanitizers_available; then
    echo "skipped: ${CXX:-c++} cannot build with -fsanitize=$sanitizers (install libasan/libubsan)"; count 0 0 1; return
  fi
  local generator=()
  have ninja && generator=(-G Ninja)
  if [ -f "$sanitize_build/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${generator[1]:-Unix Makefiles}" "$sanitize_build/CMakeCache.txt"; then
    rm -rf "$sanitize_build"
  fi
  if ! cmake -S . -B "$sanitize_build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" \
      -DMOECUTLASS_CUDA=OFF -DMOECUTLASS_SANITIZE=$sanitizers -DMOECUTLASS_SPLIT_DEBUG_INFO=OFF \
      >"$logs/sanitize-configure.log" 2>&1; then
    cat "$logs/sanitize-configure.log"; echo "build.sh: sanitized CMake configure failed" >&2; count 0 1 0; return
  fi
  # Only the test program: the shared library is not shipped from here (its export check belongs to the normal build).
  if ! cmake --build "$sanitize_build" --target moecutlass_native_tests --parallel "$(nproc 2>/dev/null || echo 2)" 2>&1 |
      tee "$logs/sanitize-build.log" | native_log_filter; then
    echo "build.sh: sanitized native build failed (log: $logs/sanitize-build.log)" >&2; count 0 1 0; return
  fi
  ctest_counts "$sanitize_build" "$logs/ctest-sanitize-junit.xml" "$logs/ctest-sanitize.log" "native (ctest, ASan+UBSan)" \
    "${sanitize_env[@]}"
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

# ---- pack: one package, managed + native ---------------------------------------------------------------------------
# The same commit packs to the same bytes: zip entry times come from the commit (SOURCE_DATE_EPOCH), the assembly is
# deterministic with /_/ source paths (src/MoeCutlass/MoeCutlass.csproj).
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && commit_time=$(git log -1 --format=%ct 2>/dev/null); then export SOURCE_DATE_EPOCH=$commit_time; fi

stage_native() {  # stage_native FILE : copy a library built elsewhere to $pack_native (artifacts/obj/pack-native/<rid>/),
  local file=$1 stage=artifacts/obj/pack-native/$rid   # its debug info split off
  [ -f "$file" ] || { echo "build.sh: --native $file: no such file" >&2; exit 1; }
  local machine
  machine=$(readelf -h "$file" 2>/dev/null | sed -n 's/^ *Machine: *//p') || true
  case "$rid:$machine" in
    linux-x64:*X86-64*|linux-arm64:*AArch64*) ;;
    *) echo "build.sh: --native $file is not a $rid ELF library (machine: '${machine:-not ELF}')" >&2; exit 1 ;;
  esac
  rm -rf "$stage"; mkdir -p "$stage"
  cp -f "$file" "$stage/libmoecutlass.so"
  local dbg
  for dbg in "$file.dbg" "$(dirname "$file")/libmoecutlass.so.dbg"; do
    [ -f "$dbg" ] && { cp -f "$dbg" "$stage/libmoecutlass.so.dbg"; break; }
  done
  # A library that still carries its debug info loses it here (a split one is left as it is).
  cmake -DMOECUTLASS_SPLIT_LIB="$root/$stage/libmoecutlass.so" -P cmake/MoeCutlassSplitDebug.cmake
  pack_native=$stage
  echo "native library: $file, staged as $stage/libmoecutlass.so"
}

pack_package() {  # pack_package NATIVE_DIR OUT_DIR : MoeCutlass.<version>.nupkg + .snupkg, contents checked after packing
  local native_dir=$1 out=$2 rc=0
  mkdir -p "$out"
  rm -f "$out"/MoeCutlass.*.nupkg "$out"/MoeCutlass.*.snupkg
  # The project refuses to pack without the native library and checks both packages' contents afterwards.
  dotnet pack src/MoeCutlass/MoeCutlass.csproj -c "$configuration" -nologo -v:m --no-build \
    -p:MoeCutlassNativeDir="$native_dir/" -p:MoeCutlassRid="$rid" -o "$out" >"$logs/pack.log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    grep -E "error|warn" "$logs/pack.log" >&2 || cat "$logs/pack.log" >&2
    echo "build.sh: dotnet pack failed (log: $logs/pack.log)" >&2; return 1
  fi
  grep -E "MoeCutlass: packed|warn" "$logs/pack.log" | sed 's/^ *//' || true
}

# ---- the package consumer check (tests/PackageConsumer): counts as one test -----------------------------------------
test_consumer() {
  if ! have_sdk; then
    echo "package consumer check skipped: no .NET SDK here (build it elsewhere: tests/PackageConsumer/run.sh build)"
    count 0 0 1; return
  fi
  local feed=artifacts/package-consumer/feed rc=0
  # The library built here: a CUDA context only on a GPU runner (--gpu), unless MOECUTLASS_CONSUMER_BACKEND says otherwise.
  local backend=${MOECUTLASS_CONSUMER_BACKEND:-cpu}
  [ "$gpu" = 1 ] && backend=${MOECUTLASS_CONSUMER_BACKEND:-cuda}
  { pack_package "$root/$native_out" "$feed" && bash tests/PackageConsumer/run.sh all --source "$feed" --backend "$backend"; } \
    >"$logs/consumer.log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    grep -E "^package consumer check|MoeCutlass: packed" "$logs/consumer.log" | sed 's/^ *//'
    count 1 0 0
  else
    cat "$logs/consumer.log"; echo "build.sh: the package consumer check failed (log: $logs/consumer.log)" >&2
    count 0 1 0
  fi
}

# ---- build.ps1 under PowerShell 7.6 (the local .NET tool in dotnet-tools.json): CI proves the PowerShell path -------
# Three tests: `bindings -Check`, `pack` (which builds first) and `test`, whose last line must be the summary line in
# build.sh's format with the same counts as build.sh's own suites just had (it runs the same ones).
test_powershell() {
  if ! have_sdk; then
    echo "build.ps1 check skipped: no .NET SDK here (PowerShell comes as a .NET tool)"; count 0 0 3; return
  fi
  if ! dotnet tool restore >"$logs/pwsh-tool-restore.log" 2>&1; then
    cat "$logs/pwsh-tool-restore.log"
    echo "build.sh: dotnet tool restore failed: PowerShell 7.6.10 (dotnet-tools.json) is needed to check build.ps1" >&2
    count 0 3 0; return
  fi
  local plogs=$logs/pwsh expected="$passed passed, $failed failed, $skipped skipped" last
  mkdir -p "$plogs"
  local pwsh=(env MOECUTLASS_LOG_DIR="$plogs" dotnet tool run pwsh -- -NoProfile -NonInteractive -File ./build.ps1)
  local opts=(-Configuration "$configuration" -Cuda "$cuda")
  if "${pwsh[@]}" bindings -Check >"$plogs/bindings.out" 2>&1; then
    echo "build.ps1 bindings -Check: $(tail -1 "$plogs/bindings.out")"; count 1 0 0
  else
    cat "$plogs/bindings.out"; echo "build.sh: pwsh ./build.ps1 bindings -Check failed" >&2; count 0 1 0
  fi
  if "${pwsh[@]}" pack "${opts[@]}" >"$plogs/pack.out" 2>&1; then
    echo "build.ps1 pack:" $(cd artifacts/packages && ls MoeCutlass.*nupkg); count 1 0 0
  else
    tail -40 "$plogs/pack.out"; echo "build.sh: pwsh ./build.ps1 pack failed (log: $plogs/pack.out)" >&2; count 0 1 0
  fi
  local rc=0
  "${pwsh[@]}" test "${opts[@]}" >"$plogs/test.out" 2>&1 || rc=$?
  last=$(tail -1 "$plogs/test.out")
  if [ "$rc" = 0 ] && [ "$last" = "$expected" ]; then
    echo "build.ps1 test: $last (the same as build.sh's)"; count 1 0 0
  else
    tail -40 "$plogs/test.out"
    echo "build.sh: pwsh ./build.ps1 test exited $rc, last line '$last', expected '$expected' (log: $plogs/test.out)" >&2
    count 0 1 0
  fi
}

section() {  # section TITLE FUNCTION [ESTIMATE]: one test step, its elapsed seconds at the end
  local began=$SECONDS
  echo "== $1${3:+ ($3)}"
  "$2"
  echo "   ($1: $((SECONDS - began)) s)"
}

case "$verb" in
  build)
    build_native; build_managed ;;
  test)
    # A build that fails still ends with the summary line CI reads.
    trap '[ $? = 0 ] || [ -n "${summary_done:-}" ] || echo "$passed passed, $((failed + 1)) failed, $skipped skipped"' EXIT
    build_native; build_managed
    section "native unit tests" test_native
    section "native unit tests under ASan+UBSan" test_native_sanitized "CPU-only sanitized build, about 2-4 min on 2 cores"
    section "bindings check" test_bindings
    section "NUnit suite" test_managed
    section "package consumer check" test_consumer "pack, offline restore, run"
    section "build.ps1 under PowerShell 7.6" test_powershell "bindings -Check, pack, test; about 1 min"
    summary_done=1
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" = 0 ] ;;
  bench)
    build_native; build_managed
    export MOECUTLASS_NATIVE_PATH="$root/$native_lib"
    exec dotnet "artifacts/bin/MoeCutlass.Cli/$config_lower/MoeCutlass.Cli.dll" bench "${passthrough[@]}" ;;
  pack)
    if [ -n "$native_file" ]; then
      stage_native "$native_file"; build_managed
    else
      build_native; build_managed; pack_native=$native_out
    fi
    pack_package "$root/$pack_native" artifacts/packages
    ls -l "$pack_native"/libmoecutlass.so* artifacts/packages/MoeCutlass.* | awk '{printf "%12d  %s\n", $5, $NF}' ;;
  bindings)
    run_bindings || { rc=$?; [ $rc = 3 ] && exit 1; exit $rc; } ;;
  clean)
    rm -rf artifacts; echo "removed artifacts/" ;;
  *)
    echo "build.sh: unknown verb '$verb' (build, test, bench, pack, bindings, clean)" >&2; exit 2 ;;
esac
