<#
.SYNOPSIS
  MoeCutlass build driver: the same verbs and options as build.sh.
.DESCRIPTION
  build     native library (CMake) + managed solution (dotnet)
  test      build, then native unit tests (ctest), the same under ASan+UBSan (a CPU-only sanitized build),
            bindings check, NUnit suite, package consumer check; one summary line
  bench     build, then `moecutlass bench <BenchArgs>`
  pack      build, then the NuGet package (+ .snupkg) into artifacts/packages
            (-Native FILE: pack that library, built elsewhere, instead of building one here)
  bindings  regenerate the C# bindings from the C header (-Check: fail if out of date)
  clean     remove artifacts/
.EXAMPLE
  ./build.ps1 test
  ./build.ps1 bench -BenchArgs '--case','ds-gate_up-e8-m1024'
  ./build.ps1 test -Gpu
  ./build.ps1 pack -Native /path/to/libmoecutlass.so
#>
[CmdletBinding(PositionalBinding = $false)]
param(
    # Not Mandatory: PowerShell would prompt for it (and hang a CI job); a missing verb prints the usage instead.
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'bench', 'pack', 'bindings', 'clean')]
    [string]$Verb = '',
    [ValidateSet('Release', 'Debug')]
    [Alias('c')]
    [string]$Configuration = 'Release',
    [ValidateSet('AUTO', 'ON', 'OFF')]
    [string]$Cuda = 'AUTO',
    [switch]$Gpu,
    [switch]$Check,
    [switch]$SkipNative,
    [switch]$SkipManaged,
    [string]$Native = '',
    [Parameter(ValueFromRemainingArguments = $true)]
    [string[]]$BenchArgs = @()
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

if (-not $Verb) {
    Write-Host 'usage: ./build.ps1 build|test|bench|pack|bindings|clean [options]  (Get-Help ./build.ps1 -Detailed for more)'
    exit 2
}

if ($Native -and $Verb -ne 'pack') { Write-Host 'build.ps1: -Native is an option of pack only'; exit 2 }
if ($Gpu) { $Cuda = 'ON'; $env:MOECUTLASS_REQUIRE_GPU = '1' }
$configLower = $Configuration.ToLowerInvariant()
$arch = [System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture.ToString().ToLowerInvariant()
$os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
$rid = "$os-$arch"
$libName = if ($IsWindows) { 'moecutlass.dll' } elseif ($IsMacOS) { 'libmoecutlass.dylib' } else { 'libmoecutlass.so' }
$nativeBuild = "artifacts/obj/native/$configLower"
$nativeOut = "artifacts/native/$rid"
$nativeLib = Join-Path $nativeOut $libName
# MOECUTLASS_LOG_DIR: where the step logs go (./build.sh test runs this script with its own, beside build.sh's logs).
$logs = if ($env:MOECUTLASS_LOG_DIR) { $env:MOECUTLASS_LOG_DIR } else { 'artifacts/logs' }
New-Item -ItemType Directory -Force $logs | Out-Null

function Invoke-Checked([string]$What, [scriptblock]$Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit $LASTEXITCODE)" }
}

function Build-Native {
    if ($SkipNative) { return }
    # @(...) around the if: an `if` that yields a one-element array yields its element, a string, and splatting a
    # string passes its characters one by one.
    $generator = @(if (Get-Command ninja -ErrorAction SilentlyContinue) { '-G', 'Ninja' })
    $cutlass = @(if ($env:CUTLASS_DIR) { "-DCUTLASS_DIR=$env:CUTLASS_DIR" })
    Invoke-Checked 'CMake configure' { cmake -S . -B $nativeBuild @generator "-DCMAKE_BUILD_TYPE=$Configuration" "-DMOECUTLASS_CUDA=$Cuda" @cutlass }
    Invoke-Checked 'native build' { cmake --build $nativeBuild --config $Configuration --parallel }
    # The install step also splits the debug info off into libmoecutlass.so.dbg (cmake/MoeCutlassSplitDebug.cmake).
    Invoke-Checked 'native install' { cmake --install $nativeBuild --config $Configuration --prefix "artifacts/obj/native-install/$configLower" }
    New-Item -ItemType Directory -Force $nativeOut | Out-Null
    $built = Get-ChildItem "artifacts/obj/native-install/$configLower" -Recurse -Filter $libName | Select-Object -First 1
    Copy-Item $built.FullName $nativeLib -Force
    if (Test-Path "$($built.FullName).dbg") {
        Copy-Item "$($built.FullName).dbg" "$nativeLib.dbg" -Force
        Write-Host "native library: $nativeLib (debug info: $nativeLib.dbg, never packed)"
    }
    else {
        Remove-Item "$nativeLib.dbg" -ErrorAction SilentlyContinue
        Write-Host "native library: $nativeLib"
    }
}

function Test-Sdk { (Get-Command dotnet -ErrorAction SilentlyContinue) -and (dotnet --list-sdks) }

function Build-Managed {
    if ($SkipManaged) { return }
    if (-not (Test-Sdk)) {
        # A GPU machine may have only the .NET runtime: the managed code is built elsewhere and carried over.
        if (-not (Test-Path "artifacts/bin/MoeCutlass.Tests/$configLower/MoeCutlass.Tests.dll")) { throw 'no .NET SDK here and no prebuilt managed output in artifacts/bin' }
        Write-Host 'no .NET SDK: using the prebuilt managed output in artifacts/bin'
        return
    }
    $nativeDir = (Join-Path $PSScriptRoot $nativeOut) + [IO.Path]::DirectorySeparatorChar
    Invoke-Checked 'dotnet build' { dotnet build MoeCutlass.sln -c $Configuration -nologo -v:q "-p:MoeCutlassNativeDir=$nativeDir" "-p:MoeCutlassRid=$rid" }
}

function Get-BindingsPython {
    foreach ($candidate in @('/usr/bin/python3', 'python3', 'python')) {
        if (Get-Command $candidate -ErrorAction SilentlyContinue) {
            & $candidate -c 'import clang.cindex' 2>$null
            if ($LASTEXITCODE -eq 0) { return $candidate }
        }
    }
    return $null
}

function Invoke-Bindings([bool]$CheckOnly) {
    $python = Get-BindingsPython
    if (-not $python) { Write-Warning 'libclang Python bindings missing (Debian: apt-get install python3-clang-14 libclang1-14)'; return 3 }
    $extra = @(if ($CheckOnly) { '--check' })  # @(...): see Build-Native
    # Out-Host: the generator's output goes to the console, not into this function's return value (which would
    # otherwise be the output lines plus the exit code, an array that never equals 0).
    & $python bindings/generate_bindings.py @extra | Out-Host
    return [int]$LASTEXITCODE
}

$script:passed = 0; $script:failed = 0; $script:skipped = 0
function Add-Count([int]$P, [int]$F, [int]$S) { $script:passed += $P; $script:failed += $F; $script:skipped += $S }

function Invoke-CtestCount([string]$Dir, [string]$Name, [string]$Label) {
    $junit = Join-Path $PSScriptRoot "$logs/$Name-junit.xml"
    Remove-Item $junit -ErrorAction SilentlyContinue
    # .Line: the matched lines as text (a MatchInfo prints with a blank line before it and the match highlighted).
    ctest --test-dir $Dir --output-on-failure --output-junit $junit | Tee-Object "$logs/$Name.log" |
        Select-String 'tests passed|tests failed' | ForEach-Object { Write-Host $_.Line }
    if (-not (Test-Path $junit)) { Add-Count 0 1 0; return }
    $suite = ([xml](Get-Content $junit)).testsuite
    $t = [int]$suite.tests; $f = [int]$suite.failures + [int]$suite.errors; $s = [int]$suite.skipped
    if ($t -eq 0) { Add-Count 0 1 0; return }
    if ($f -gt 0) { Get-Content "$logs/$Name.log" | Write-Host }
    Write-Host "${Label}: $($t - $f - $s) passed, $f failed, $s skipped"
    Add-Count ($t - $f - $s) $f $s
}

function Test-Native { Invoke-CtestCount $nativeBuild 'ctest' 'native (ctest)' }

# The native unit tests again, built with ASan+UBSan in their own CPU-only folder (cmake/MoeCutlassSanitize.cmake);
# the same build, options and counting as build.sh's test_native_sanitized (its comments say why).
function Test-NativeSanitized {
    $sanitizers = 'address,undefined'
    if ($Gpu) { Write-Host 'skipped: -Gpu (the sanitized build is CPU-only; the CPU runner runs it)'; Add-Count 0 0 1; return }
    if ($SkipNative) { Write-Host 'skipped: -SkipNative'; Add-Count 0 0 1; return }
    if (-not $IsLinux) { Write-Host 'skipped: the sanitized build runs on Linux only'; Add-Count 0 0 1; return }
    $cxx = if ($env:CXX) { $env:CXX } else { 'c++' }
    $probe = Join-Path ([IO.Path]::GetTempPath()) "mc-sanitize-probe-$PID"
    New-Item -ItemType Directory -Force $probe | Out-Null
    Set-Content "$probe/p.cpp" 'int main() { return 0; }'
    & $cxx "-fsanitize=$sanitizers" "$probe/p.cpp" -o "$probe/p" *> $null
    $ok = $LASTEXITCODE -eq 0
    if ($ok) { & "$probe/p"; $ok = $LASTEXITCODE -eq 0 }
    Remove-Item -Recurse -Force $probe
    if (-not $ok) { Write-Host "skipped: $cxx cannot build with -fsanitize=$sanitizers (install libasan/libubsan)"; Add-Count 0 0 1; return }
    $dir = 'artifacts/obj/native-sanitize'
    $generator = @(if (Get-Command ninja -ErrorAction SilentlyContinue) { '-G', 'Ninja' })
    try {
        Invoke-Checked 'sanitized CMake configure' { cmake -S . -B $dir @generator '-DCMAKE_BUILD_TYPE=Debug' '-DCMAKE_CXX_FLAGS_DEBUG=-g -O1' '-DMOECUTLASS_CUDA=OFF' "-DMOECUTLASS_SANITIZE=$sanitizers" '-DMOECUTLASS_SPLIT_DEBUG_INFO=OFF' *> "$logs/sanitize-configure.log" }
        Invoke-Checked 'sanitized native build' { cmake --build $dir --target moecutlass_native_tests --parallel *> "$logs/sanitize-build.log" }
    }
    catch { Write-Host "build.ps1: $_ (logs: $logs/sanitize-*.log)"; Add-Count 0 1 0; return }
    $saved = $env:ASAN_OPTIONS, $env:UBSAN_OPTIONS
    $env:ASAN_OPTIONS = 'detect_leaks=1:abort_on_error=1:allocator_may_return_null=1'
    $env:UBSAN_OPTIONS = 'halt_on_error=1:print_stacktrace=1'
    try { Invoke-CtestCount $dir 'ctest-sanitize' 'native (ctest, ASan+UBSan)' }
    finally { $env:ASAN_OPTIONS, $env:UBSAN_OPTIONS = $saved }
}

function Test-BindingsSync {
    $rc = Invoke-Bindings $true
    switch ($rc) { 0 { Add-Count 1 0 0 } 3 { Add-Count 0 0 1 } default { Add-Count 0 1 0 } }
}

function Test-Managed {
    $env:MOECUTLASS_NATIVE_PATH = Join-Path $PSScriptRoot $nativeLib
    $dll = "artifacts/bin/MoeCutlass.Tests/$configLower/MoeCutlass.Tests.dll"
    $output = dotnet $dll --results-directory (Join-Path $PSScriptRoot 'artifacts/TestResults') --no-progress --no-ansi 2>&1
    $rc = $LASTEXITCODE
    $output = $output | ForEach-Object { "$_" -replace "\x1b\[[0-9;]*[A-Za-z]", '' }
    $output | Set-Content "$logs/nunit.log"
    function Get-Last([string]$Key) { $m = $output | Select-String "^\s*${Key}:\s*(\d+)" | Select-Object -Last 1; if ($m) { [int]$m.Matches[0].Groups[1].Value } else { 0 } }
    $t = Get-Last 'total'; $f = Get-Last 'failed'; $p = Get-Last 'succeeded'; $s = Get-Last 'skipped'
    if ($t -eq 0) { $output | Write-Host; Add-Count 0 1 0; return }
    Write-Host "managed (NUnit): $p passed, $f failed, $s skipped"
    Add-Count $p $f $s
    if ($rc -ne 0 -and $f -eq 0) { Add-Count 0 1 0 }
}

# ---- pack: one package, managed + native ----------------------------------------------------------------------------
# The same commit packs to the same bytes: zip entry times come from the commit (SOURCE_DATE_EPOCH), the assembly is
# deterministic with /_/ source paths (src/MoeCutlass/MoeCutlass.csproj).
if (-not $env:SOURCE_DATE_EPOCH -and (Get-Command git -ErrorAction SilentlyContinue)) {
    $commitTime = git log -1 --format=%ct 2>$null
    if ($LASTEXITCODE -eq 0 -and $commitTime) { $env:SOURCE_DATE_EPOCH = $commitTime }
}

function Copy-StagedNative([string]$File) {
    # A library built elsewhere, staged in $script:packNative (artifacts/obj/pack-native/<rid>/), its debug info split off.
    if (-not (Test-Path $File -PathType Leaf)) { throw "-Native ${File}: no such file" }
    $File = (Resolve-Path $File).Path
    $stream = [IO.File]::OpenRead($File)
    $head = New-Object byte[] 20
    $null = $stream.Read($head, 0, 20); $stream.Dispose()
    $isElf = $head[0] -eq 0x7F -and $head[1] -eq 0x45 -and $head[2] -eq 0x4C -and $head[3] -eq 0x46
    $machine = [BitConverter]::ToUInt16($head, 18)
    $ok = switch ($rid) {
        'linux-x64' { $isElf -and $machine -eq 0x3E }
        'linux-arm64' { $isElf -and $machine -eq 0xB7 }
        default { $head[0] -eq 0x4D -and $head[1] -eq 0x5A }  # win-*: a PE file ('MZ')
    }
    if (-not $ok) { throw "-Native $File is not a $rid library" }
    $stage = "artifacts/obj/pack-native/$rid"
    Remove-Item -Recurse -Force $stage -ErrorAction SilentlyContinue
    New-Item -ItemType Directory -Force $stage | Out-Null
    Copy-Item $File (Join-Path $stage $libName) -Force
    foreach ($dbg in @("$File.dbg", (Join-Path (Split-Path $File) "$libName.dbg"))) {
        if (Test-Path $dbg) { Copy-Item $dbg (Join-Path $stage "$libName.dbg") -Force; break }
    }
    if ($os -eq 'linux') {
        # A library that still carries its debug info loses it here (a split one is left as it is).
        Invoke-Checked 'debug info split' { cmake "-DMOECUTLASS_SPLIT_LIB=$(Join-Path $PSScriptRoot $stage $libName)" -P cmake/MoeCutlassSplitDebug.cmake }
    }
    $script:packNative = $stage
    Write-Host "native library: $File, staged as $stage/$libName"
}

function Invoke-Pack([string]$NativeDir, [string]$OutDir) {
    # MoeCutlass.<version>.nupkg + .snupkg; the project refuses to pack without the native library and checks both
    # packages' contents afterwards.
    New-Item -ItemType Directory -Force $OutDir | Out-Null
    # The project appends the library's file name to MoeCutlassNativeDir as given: it must end with a separator.
    $NativeDir = $NativeDir.TrimEnd('/', '\') + [IO.Path]::DirectorySeparatorChar
    Remove-Item (Join-Path $OutDir 'MoeCutlass.*nupkg') -ErrorAction SilentlyContinue
    dotnet pack src/MoeCutlass/MoeCutlass.csproj -c $Configuration -nologo -v:m --no-build "-p:MoeCutlassNativeDir=$NativeDir" "-p:MoeCutlassRid=$rid" -o $OutDir *> "$logs/pack.log"
    if ($LASTEXITCODE -ne 0) {
        Select-String 'error|warn' "$logs/pack.log" | ForEach-Object { Write-Host $_.Line }
        throw "dotnet pack failed (log: $logs/pack.log)"
    }
    Select-String 'MoeCutlass: packed|warn' "$logs/pack.log" | ForEach-Object { Write-Host $_.Line.Trim() }
}

function Get-PowerShellCommand {
    # The command that starts this PowerShell again: its own executable, or, when it runs as a .NET tool
    # (`dotnet tool run pwsh`: the process is dotnet), dotnet with this PowerShell's pwsh.dll.
    $self = (Get-Process -Id $PID).Path
    if ([IO.Path]::GetFileNameWithoutExtension($self) -eq 'dotnet') { return @($self, (Join-Path $PSHOME 'pwsh.dll')) }
    return @($self)
}

# ---- the package consumer check (tests/PackageConsumer): counts as one test ------------------------------------------
function Test-Consumer {
    if (-not (Test-Sdk)) {
        Write-Host 'package consumer check skipped: no .NET SDK here (build it elsewhere: tests/PackageConsumer/run.ps1 build)'
        Add-Count 0 0 1; return
    }
    $feed = 'artifacts/package-consumer/feed'
    # The library built here: a CUDA context only on a GPU runner (-Gpu), unless MOECUTLASS_CONSUMER_BACKEND says otherwise.
    $backend = if ($env:MOECUTLASS_CONSUMER_BACKEND) { $env:MOECUTLASS_CONSUMER_BACKEND } elseif ($Gpu) { 'cuda' } else { 'cpu' }
    try {
        Invoke-Pack (Join-Path $PSScriptRoot $nativeOut) $feed *> "$logs/consumer.log"
        # A child PowerShell: run.ps1 changes its environment (no network, no MOECUTLASS_NATIVE_PATH).
        $pwsh = @(Get-PowerShellCommand)
        & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -File tests/PackageConsumer/run.ps1 all -Source $feed -Backend $backend *>> "$logs/consumer.log"
        if ($LASTEXITCODE -ne 0) { throw "the consumer app failed (exit $LASTEXITCODE)" }
        Select-String '^package consumer check|MoeCutlass: packed' "$logs/consumer.log" | ForEach-Object { Write-Host $_.Line.Trim() }
        Add-Count 1 0 0
    }
    catch {
        Get-Content "$logs/consumer.log" -ErrorAction SilentlyContinue | Write-Host
        Write-Host "build.ps1: the package consumer check failed: $_ (log: $logs/consumer.log)"
        Add-Count 0 1 0
    }
}

try {
    switch ($Verb) {
        'build' { Build-Native; Build-Managed }
        'test' {
            try {
                Build-Native; Build-Managed
                Write-Host '== native unit tests'; Test-Native
                Write-Host '== native unit tests under ASan+UBSan'; Test-NativeSanitized
                Write-Host '== bindings check'; Test-BindingsSync
                Write-Host '== NUnit suite'; Test-Managed
                Write-Host '== package consumer check'; Test-Consumer
            }
            catch { Write-Host "build.ps1: $_"; Add-Count 0 1 0 }
            Write-Host "$script:passed passed, $script:failed failed, $script:skipped skipped"
            exit ([int]($script:failed -ne 0))
        }
        'bench' {
            Build-Native; Build-Managed
            $env:MOECUTLASS_NATIVE_PATH = Join-Path $PSScriptRoot $nativeLib
            dotnet "artifacts/bin/MoeCutlass.Cli/$configLower/MoeCutlass.Cli.dll" bench @BenchArgs
            exit $LASTEXITCODE
        }
        'pack' {
            if ($Native) { Copy-StagedNative $Native; Build-Managed }
            else { Build-Native; Build-Managed; $script:packNative = $nativeOut }
            Invoke-Pack (Join-Path $PSScriptRoot $script:packNative) 'artifacts/packages'
            Get-ChildItem (Join-Path $script:packNative "$libName*"), 'artifacts/packages/MoeCutlass.*' |
                ForEach-Object { '{0,12}  {1}' -f $_.Length, $_.FullName }
        }
        'bindings' { $rc = Invoke-Bindings $Check.IsPresent; exit ([int]($rc -ne 0)) }
        'clean' { Remove-Item -Recurse -Force artifacts -ErrorAction SilentlyContinue; Write-Host 'removed artifacts/' }
    }
}
catch {
    Write-Host "build.ps1: $_" -ForegroundColor Red
    exit 1
}
