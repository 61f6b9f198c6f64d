// The package consumer check: uses the MoeCutlass package the way a customer's app does and fails (exit 1) unless
//   - the native library was loaded from the app's runtimes/<rid>/native folder, where the package's runtimes asset
//     lands, and is byte for byte the file NuGet resolved from the package (SHA-256 recorded at build time);
//   - the library's "library loaded" log event names that same file;
//   - the native library reports the package's version, and the managed assembly carries it too;
//   - a small grouped GEMM (3 experts, one of them empty, two 128-blocks of scales along N and K) on a CPU context (or a
//     CUDA context: MOECUTLASS_CONSUMER_BACKEND=cuda or --backend cuda) matches a double-precision reference.
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using MoeCutlass;

var failures = new List<string>();
void Check(bool condition, string what)
{
    Console.WriteLine($"  {(condition ? "ok  " : "FAIL")} {what}");
    if (!condition)
    {
        failures.Add(what);
    }
}

string backendName = (args.Length == 2 && args[0] == "--backend" ? args[1] : Environment.GetEnvironmentVariable("MOECUTLASS_CONSUMER_BACKEND"))
    ?.Trim().ToLowerInvariant() is { Length: > 0 } b ? b : "cpu";
if (backendName is not ("cpu" or "cuda"))
{
    Console.Error.WriteLine($"unknown backend '{backendName}' (cpu or cuda)");
    return 2;
}

var metadata = typeof(Program).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().ToDictionary(a => a.Key, a => a.Value ?? "");
string packageVersion = metadata["MoeCutlassPackageVersion"];
string rid = RuntimeInformation.RuntimeIdentifier;
string portableRid = (OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux") + "-" +
    RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
string fileName = OperatingSystem.IsWindows() ? "moecutlass.dll" : OperatingSystem.IsMacOS() ? "libmoecutlass.dylib" : "libmoecutlass.so";
Console.WriteLine($"MoeCutlass package consumer: package {packageVersion}, backend {backendName}, runtime {RuntimeInformation.FrameworkDescription}, {portableRid} ({rid})");

// An override would bypass the package; this check is about what the package alone provides.
if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MOECUTLASS_NATIVE_PATH")))
{
    Console.Error.WriteLine("MOECUTLASS_NATIVE_PATH is set: unset it, the consumer check must load the package's library");
    return 2;
}

using var logs = new CapturingLoggerFactory();
try
{
    // ---- where the native library came from -------------------------------------------------------------------------
    MoeCutlassLibrary.Initialize(logs);
    string loaded = Path.GetFullPath(MoeCutlassLibrary.LoadedPath);
    string expectedPath = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "runtimes", portableRid, "native", fileName));
    Console.WriteLine($"  loaded {loaded}");
    Check(loaded == expectedPath, $"native library loaded from the app's runtimes/{portableRid}/native (expected {expectedPath})");

    string? logged = logs.Events.Where(e => e.Id.Name == "LibraryLoaded").Select(e => e.Get("Path")).FirstOrDefault();
    Check(logged is not null && Path.GetFullPath(logged) == loaded, $"the LibraryLoaded log event names the same file ({logged ?? "no event"})");

    metadata.TryGetValue($"MoeCutlassNativeSha256:{portableRid}", out string? packagedHash);
    metadata.TryGetValue($"MoeCutlassNativeSource:{portableRid}", out string? packagedFrom);
    string loadedHash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(loaded)));
    Check(packagedHash is not null && string.Equals(loadedHash, packagedHash, StringComparison.OrdinalIgnoreCase),
        $"it is the package's runtimes/{portableRid}/native/{fileName}, byte for byte (sha256 {loadedHash[..16]}..., " +
        $"package asset {packagedFrom ?? "missing"})");

    string managedPath = typeof(MoeContext).Assembly.Location;
    Check(Path.GetDirectoryName(Path.GetFullPath(managedPath)) == Path.GetFullPath(AppContext.BaseDirectory).TrimEnd(Path.DirectorySeparatorChar),
        $"MoeCutlass.dll comes from the app folder ({managedPath})");

    // ---- versions -------------------------------------------------------------------------------------------------
    BuildInfo info = MoeCutlassLibrary.BuildInfo;
    string nativeCore = info.Version.Split('+')[0];
    string packageCore = packageVersion.Split('-', '+')[0];
    string managedVersion = typeof(MoeContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "";
    Console.WriteLine($"  native {info.Version} (commit '{info.GitCommit}', ABI {info.AbiVersion}, CUDA {info.HasCuda} '{info.CudaArchitectures}', {info.Compiler})");
    Console.WriteLine($"  managed {managedVersion}");
    Check(nativeCore == packageCore, $"native library version {nativeCore} equals the package version {packageCore}");
    Check(managedVersion.Split('+')[0] == packageVersion, $"assembly informational version {managedVersion} carries the package version {packageVersion}");
    string managedCommit = managedVersion.Contains('+') ? managedVersion[(managedVersion.IndexOf('+') + 1)..] : "";
    if (info.GitCommit.Length > 0 && managedCommit.Length > 0 && !managedCommit.StartsWith(info.GitCommit, StringComparison.OrdinalIgnoreCase))
    {
        Console.WriteLine($"  note: native commit {info.GitCommit} differs from the managed commit {managedCommit} (a library built elsewhere?)");
    }

    // ---- a small grouped GEMM ---------------------------------------------------------------------------------------
    MoeContext context;
    if (backendName == "cuda")
    {
        if (!info.HasCuda || MoeCutlassLibrary.DeviceCount == 0)
        {
            Check(false, $"a CUDA context needs a CUDA build of the library (HasCuda {info.HasCuda}) and a device (found {(info.HasCuda ? MoeCutlassLibrary.DeviceCount : 0)})");
            return Finish();
        }

        context = MoeContext.CreateCuda(0, logs);
    }
    else
    {
        context = MoeContext.CreateCpu(0, logs);
    }

    using (context)
    {
        Console.WriteLine($"  context {context}");
        RunGroupedGemm(context);
    }
}
catch (Exception ex)
{
    Check(false, $"no exception ({ex.GetType().Name}: {ex.Message})");
}

return Finish();

int Finish()
{
    if (failures.Count > 0)
    {
        Console.WriteLine($"package consumer check FAILED ({failures.Count}): {string.Join("; ", failures)}");
        return 1;
    }

    Console.WriteLine($"package consumer check passed (package {packageVersion}, backend {backendName})");
    return 0;
}

void RunGroupedGemm(MoeContext context)
{
    const int experts = 3, n = 192, k = 256, block = 128;
    int[] offsets = [0, 3, 3, 7]; // expert 1 has no rows
    int rows = offsets[^1];
    int nBlocks = (n + block - 1) / block, kBlocks = (k + block - 1) / block;

    // Values exactly representable in e4m3, scales powers of two: the only rounding is the bf16 output's.
    (double Value, byte Code)[] e4m3 = [(0, 0x00), (0.5, 0x30), (1, 0x38), (1.5, 0x3C), (2, 0x40), (3, 0x44),
        (-0.5, 0xB0), (-1, 0xB8), (-1.5, 0xBC), (-2, 0xC0), (-3, 0xC4)];
    float[] scaleChoices = [0.25f, 0.5f, 1f, 2f, 4f];
    var random = new Random(20260);
    var aIndex = new int[rows * k];
    var bIndex = new int[experts * n * k];
    for (int i = 0; i < aIndex.Length; i++) aIndex[i] = random.Next(e4m3.Length);
    for (int i = 0; i < bIndex.Length; i++) bIndex[i] = random.Next(e4m3.Length);
    var aScales = new float[rows * kBlocks];
    var bScales = new float[experts * nBlocks * kBlocks];
    for (int i = 0; i < aScales.Length; i++) aScales[i] = scaleChoices[random.Next(scaleChoices.Length)];
    for (int i = 0; i < bScales.Length; i++) bScales[i] = scaleChoices[random.Next(scaleChoices.Length)];

    var expected = new double[rows * n];
    for (int e = 0; e < experts; e++)
    {
        for (int r = offsets[e]; r < offsets[e + 1]; r++)
        {
            for (int col = 0; col < n; col++)
            {
                double sum = 0;
                for (int kb = 0; kb < kBlocks; kb++)
                {
                    double partial = 0;
                    for (int kk = kb * block; kk < Math.Min(k, (kb + 1) * block); kk++)
                    {
                        partial += e4m3[aIndex[r * k + kk]].Value * e4m3[bIndex[(e * n + col) * k + kk]].Value;
                    }

                    sum += partial * aScales[r * kBlocks + kb] * bScales[(e * nBlocks + col / block) * kBlocks + kb];
                }

                expected[r * n + col] = sum;
            }
        }
    }

    var options = new GroupedGemmOptions(experts, n, k, DType.BFloat16, GemmStrategy.Auto, MaxRows: rows);
    using var plan = context.CreateGroupedGemmPlan(options);
    using var a = context.Upload<byte>(aIndex.Select(i => e4m3[i].Code).ToArray());
    using var aS = context.Upload<float>(aScales);
    using var bBuf = context.Upload<byte>(bIndex.Select(i => e4m3[i].Code).ToArray());
    using var bS = context.Upload<float>(bScales);
    using var off = context.Upload<int>(offsets);
    using var d = context.Allocate<BFloat16>((long)rows * n);
    d.Fill(BFloat16.NaN);
    plan.Run(rows, a, aS, bBuf, bS, off, d);
    context.Synchronize();
    BFloat16[] got = d.ToArray();

    double worst = 0;
    int bad = 0;
    for (int i = 0; i < expected.Length; i++)
    {
        double g = (double)got[i], want = expected[i];
        double error = Math.Abs(g - want);
        // bf16 keeps 8 significant bits: round-to-nearest is within 2^-9 relative; allow 2^-8.
        if (!(error <= Math.Abs(want) / 256 + 1e-6))
        {
            if (bad++ < 5)
            {
                Console.WriteLine($"    D[{i / n},{i % n}] = {g}, expected {want}");
            }
        }

        worst = Math.Max(worst, want == 0 ? error : error / Math.Abs(want));
    }

    Check(bad == 0, $"grouped GEMM E={experts} N={n} K={k} rows={rows} (per expert {string.Join("/", offsets.Zip(offsets.Skip(1), (x, y) => y - x))}) " +
        $"on {context.Backend} via {plan.KernelList} matches the double-precision reference ({bad} of {expected.Length} outside 2^-8, worst relative error {worst:G3})");
    Check(context.QueryDeviceErrors() == DeviceErrorFlags.None, "no device error flags");
}

/// <summary>Keeps every log event the library writes (and echoes it), so the check can read the "library loaded" event.</summary>
internal sealed class CapturingLoggerFactory : ILoggerFactory
{
    public List<LogEvent> Events { get; } = [];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    internal sealed record LogEvent(EventId Id, string Category, string Message, IReadOnlyList<KeyValuePair<string, object?>> State)
    {
        public string? Get(string key) => State.FirstOrDefault(p => p.Key == key).Value?.ToString();
    }

    private sealed class Logger(CapturingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string message = formatter(state, exception);
            lock (owner.Events)
            {
                owner.Events.Add(new LogEvent(eventId, category, message, state as IReadOnlyList<KeyValuePair<string, object?>> ?? []));
            }

            Console.WriteLine($"  log {logLevel} {category}[{eventId.Name}]: {message}");
        }
    }
}
