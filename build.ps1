<#
.SYNOPSIS
  MoeCutlass build driver: the same verbs and options as build.sh.
.DESCRIPTION
  build     native library (CMake) + managed solution (dotnet)
  test      build, then native unit tests (ctest), bindings check, NUnit suite; one summary line
  bench     build, then `moecutlass bench <BenchArgs>`
  pack      build, then the NuGet package into artifacts/packages
  bindings  regenerate the C# bindings from the C header (-Check: fail if out of date)
  clean     remove artifacts/
.EXAMPLE
  ./build.ps1 test
  ./build.ps1 bench -BenchArgs '--case','ds-gate_up-e8-m1024'
  ./build.ps1 test -Gpu
#>
[CmdletBinding(PositionalBinding = $false)]
param(
    [Parameter(Position = 0, Mandatory = $true)]
    [ValidateSet('build', 'test', 'bench', 'pack', 'bindings', 'clean')]
    [string]$Verb,
    [ValidateSet('Release', 'Debug')]
    [Alias('c')]
    [string]$Configuration = 'Release',
    [ValidateSet('AUTO', 'ON', 'OFF')]
    [string]$Cuda = 'AUTO',
    [switch]$Gpu,
    [switch]$Check,
    [switch]$SkipNative,
    [switch]$SkipManaged,
    [Parameter(ValueFromRemainingArguments = $true)]
    [string[]]$BenchArgs = @()
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

if ($Gpu) { $Cuda = 'ON'; $env:MOECUTLASS_REQUIRE_GPU = '1' }
$configLower = $Configuration.ToLowerInvariant()
$arch = [System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture.ToString().ToLowerInvariant()
$os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
$rid = "$os-$arch"
$libName = if ($IsWindows) { 'moecutlass.dll' } elseif ($IsMacOS) { 'libmoecutlass.dylib' } else { 'libmoecutlass.so' }
$nativeBuild = "artifacts/obj/native/$configLower"
$nativeOut = "artifacts/native/$rid"
$nativeLib = Join-Path $nativeOut $libName
$logs = 'artifacts/logs'
New-Item -ItemType Directory -Force $logs | Out-Null

function Invoke-Checked([string]$What, [scriptblock]$Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit $LASTEXITCODE)" }
}

function Build-Native {
    if ($SkipNative) { return }
    $generator = if (Get-Command ninja -ErrorAction SilentlyContinue) { @('-G', 'Ninja') } else { @() }
    $cutlass = if ($env:CUTLASS_DIR) { @("-DCUTLASS_DIR=$env:CUTLASS_DIR") } else { @() }
    Invoke-Checked 'CMake configure' { cmake -S . -B $nativeBuild @generator "-DCMAKE_BUILD_TYPE=$Configuration" "-DMOECUTLASS_CUDA=$Cuda" @cutlass }
    Invoke-Checked 'native build' { cmake --build $nativeBuild --config $Configuration --parallel }
    Invoke-Checked 'native install' { cmake --install $nativeBuild --config $Configuration --prefix "artifacts/obj/native-install/$configLower" }
    New-Item -ItemType Directory -Force $nativeOut | Out-Null
    $built = Get-ChildItem "artifacts/obj/native-install/$configLower" -Recurse -Filter $libName | Select-Object -First 1
    Copy-Item $built.FullName $nativeLib -Force
    Write-Host "native library: $nativeLib"
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
    $extra = if ($CheckOnly) { @('--check') } else { @() }
    & $python bindings/generate_bindings.py @extra
    return $LASTEXITCODE
}

$script:passed = 0; $script:failed = 0; $script:skipped = 0
function Add-Count([int]$P, [int]$F, [int]$S) { $script:passed += $P; $script:failed += $F; $script:skipped += $S }

function Test-Native {
    $junit = Join-Path $PSScriptRoot "$logs/ctest-junit.xml"
    Remove-Item $junit -ErrorAction SilentlyContinue
    ctest --test-dir $nativeBuild --output-on-failure --output-junit $junit | Tee-Object "$logs/ctest.log" | Select-String 'tests passed|tests failed'
    if (-not (Test-Path $junit)) { Add-Count 0 1 0; return }
    $suite = ([xml](Get-Content $junit)).testsuite
    $t = [int]$suite.tests; $f = [int]$suite.failures + [int]$suite.errors; $s = [int]$suite.skipped
    if ($t -eq 0) { Add-Count 0 1 0; return }
    Write-Host "native (ctest): $($t - $f - $s) passed, $f failed, $s skipped"
    Add-Count ($t - $f - $s) $f $s
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

try {
    switch ($Verb) {
        'build' { Build-Native; Build-Managed }
        'test' {
            try {
                Build-Native; Build-Managed
                Write-Host '== native unit tests'; Test-Native
                Write-Host '== bindings check'; Test-BindingsSync
                Write-Host '== NUnit suite'; Test-Managed
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
            Build-Native; Build-Managed
            if (-not (Test-Path $nativeLib)) { throw "cannot pack without the native library ($nativeLib)" }
            $nativeDir = (Join-Path $PSScriptRoot $nativeOut) + [IO.Path]::DirectorySeparatorChar
            Invoke-Checked 'dotnet pack' { dotnet pack src/MoeCutlass/MoeCutlass.csproj -c $Configuration -nologo -v:q --no-build "-p:MoeCutlassNativeDir=$nativeDir" "-p:MoeCutlassRid=$rid" -o artifacts/packages }
        }
        'bindings' { $rc = Invoke-Bindings $Check.IsPresent; exit ([int]($rc -ne 0)) }
        'clean' { Remove-Item -Recurse -Force artifacts -ErrorAction SilentlyContinue; Write-Host 'removed artifacts/' }
    }
}
catch {
    Write-Host "build.ps1: $_" -ForegroundColor Red
    exit 1
}
