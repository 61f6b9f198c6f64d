<#
.SYNOPSIS
  The package consumer check, PowerShell twin of run.sh (same modes, same steps; read one to understand the other).
.DESCRIPTION
  A throw-away console app (this folder) restores the MoeCutlass package from a local folder, offline, and uses it as a
  customer would (see Program.cs for what it asserts).
  build  (needs the .NET SDK) copy this folder to artifacts/package-consumer/src, write a nuget.config there whose only
         sources are -Source (default artifacts/packages; the MoeCutlass package, mapped to it alone) and this machine's
         global packages folder (the package's dependencies), restore into a private packages folder, offline, and build
         into artifacts/package-consumer/app
  run    (needs only the .NET runtime) run artifacts/package-consumer/app
  all    build, then run (the default; `./build.ps1 test` does this on the package it has just packed)
  -Backend (or MOECUTLASS_CONSUMER_BACKEND) cpu|cuda: the context the app's grouped GEMM runs on (default cpu).
.EXAMPLE
  ./tests/PackageConsumer/run.ps1 all -Source artifacts/packages -Backend cuda
#>
[CmdletBinding(PositionalBinding = $false)]
param(
    [Parameter(Position = 0)]
    [ValidateSet('all', 'build', 'run')]
    [string]$Mode = 'all',
    [string]$Source = '',
    [ValidateSet('cpu', 'cuda')]
    [string]$Backend = $(if ($env:MOECUTLASS_CONSUMER_BACKEND) { $env:MOECUTLASS_CONSUMER_BACKEND } else { 'cpu' })
)
$ErrorActionPreference = 'Stop'
$root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$work = Join-Path $root 'artifacts/package-consumer'
if (-not $Source) { $Source = Join-Path $root 'artifacts/packages' }

# No telemetry, first-run work or update checks; and a proxy that answers nothing, so that any attempt to reach the
# network fails the check instead of quietly succeeding.
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'; $env:DOTNET_NOLOGO = '1'; $env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = '1'
$env:DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE = '1'; $env:DOTNET_GENERATE_ASPNET_CERTIFICATE = 'false'
foreach ($name in 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy') { Set-Item "env:$name" 'http://127.0.0.1:9' }
Remove-Item env:NO_PROXY, env:no_proxy -ErrorAction SilentlyContinue

function Build-Consumer {
    $sourceDir = (Resolve-Path $Source).Path
    $packages = @(Get-ChildItem $sourceDir -Filter 'MoeCutlass.*.nupkg' | Where-Object { $_.Name -notlike '*.snupkg' })
    if ($packages.Count -eq 0) { throw "no MoeCutlass.*.nupkg in $sourceDir (./build.ps1 pack makes one)" }
    if ($packages.Count -gt 1) { throw "more than one MoeCutlass package in ${sourceDir}: $($packages.Name -join ', ')" }
    $version = $packages[0].Name -replace '^MoeCutlass\.(.+)\.nupkg$', '$1'
    $global = (dotnet nuget locals global-packages --list | Where-Object { $_ -match '^global-packages:' } | Select-Object -First 1) -replace '^global-packages:\s*', ''
    if (-not (Test-Path $global)) { throw "cannot find this machine's global packages folder ('$global')" }

    foreach ($dir in 'src', 'packages', 'app') { Remove-Item -Recurse -Force (Join-Path $work $dir) -ErrorAction SilentlyContinue }
    $src = (New-Item -ItemType Directory -Force (Join-Path $work 'src')).FullName
    Copy-Item (Join-Path $PSScriptRoot '*') $src -Include 'PackageConsumer.csproj', 'Program.cs', 'Directory.Build.props', 'Directory.Build.targets'
    # <clear/> drops every inherited source (nuget.org included); the mapping takes MoeCutlass from -Source alone, so a
    # MoeCutlass in the global packages folder can never stand in for the fresh one; the private packages folder
    # (--packages) means nothing is reused from an earlier run.
    $esc = { param($s) [Security.SecurityElement]::Escape($s) }
    @"
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="moecutlass-local" value="$(& $esc $sourceDir)" />
    <add key="machine-global-packages" value="$(& $esc $global)" />
  </packageSources>
  <packageSourceMapping>
    <clear />
    <packageSource key="moecutlass-local"><package pattern="MoeCutlass" /></packageSource>
    <packageSource key="machine-global-packages"><package pattern="*" /></packageSource>
  </packageSourceMapping>
  <fallbackPackageFolders><clear /></fallbackPackageFolders>
  <disabledPackageSources><clear /></disabledPackageSources>
</configuration>
"@ | Set-Content (Join-Path $src 'nuget.config') -Encoding utf8
    Write-Host "consumer: restoring MoeCutlass $version from $sourceDir (offline), dependencies from $global"
    $project = Join-Path $src 'PackageConsumer.csproj'
    dotnet restore $project --configfile (Join-Path $src 'nuget.config') --packages (Join-Path $work 'packages') "-p:MoeCutlassPackageVersion=$version" -nologo -v:q
    if ($LASTEXITCODE -ne 0) { throw "consumer restore failed (exit $LASTEXITCODE)" }
    dotnet build $project --no-restore -c Release -o (Join-Path $work 'app') "-p:MoeCutlassPackageVersion=$version" -nologo -v:q -clp:NoSummary
    if ($LASTEXITCODE -ne 0) { throw "consumer build failed (exit $LASTEXITCODE)" }
    Write-Host "consumer: built $(Join-Path $work 'app')"
}

function Invoke-Consumer {
    $app = Join-Path $work 'app/PackageConsumer.dll'
    if (-not (Test-Path $app)) { throw "no consumer app in $(Join-Path $work 'app') (run.ps1 build first)" }
    # The check is about what the package alone provides: no override of the native library's location.
    Remove-Item env:MOECUTLASS_NATIVE_PATH -ErrorAction SilentlyContinue
    $env:MOECUTLASS_CONSUMER_BACKEND = $Backend
    dotnet $app | Out-Host
    return $LASTEXITCODE
}

try {
    if ($Mode -in 'build', 'all') { Build-Consumer }
    $rc = if ($Mode -in 'run', 'all') { Invoke-Consumer } else { 0 }
    exit $rc
}
catch {
    Write-Host "run.ps1: $_"
    exit 1
}
