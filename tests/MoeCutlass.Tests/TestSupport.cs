using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace MoeCutlass.Tests;

/// <summary>Base of fixtures that need the native library: loads it once per fixture (a load failure fails the fixture).</summary>
public abstract class NativeTestBase
{
    [OneTimeSetUp]
    public void LoadNativeLibrary() => MoeCutlassLibrary.Initialize();

    /// <summary>A fresh random seed per test (override with MOECUTLASS_TEST_SEED), printed so a failure can be replayed.</summary>
    protected static Random NewRandom()
    {
        string? fixedSeed = Environment.GetEnvironmentVariable("MOECUTLASS_TEST_SEED");
        int seed = fixedSeed is null ? Random.Shared.Next() : int.Parse(fixedSeed, CultureInfo.InvariantCulture);
        TestContext.Out.WriteLine($"seed = {seed} (replay with MOECUTLASS_TEST_SEED={seed})");
        return new Random(seed);
    }
}

/// <summary>Managed reference codecs and rounding helpers.</summary>
internal static class Numerics
{
    /// <summary>Decodes an OCP e4m3 (E4M3FN) code: bias 7, no infinities, NaN = S.1111.111.</summary>
    public static double DecodeE4M3(byte code)
    {
        int exponent = (code >> 3) & 0xF;
        int mantissa = code & 0x7;
        if (exponent == 0xF && mantissa == 0x7)
        {
            return double.NaN;
        }

        double magnitude = exponent == 0 ? mantissa * Math.ScaleB(1.0, -9) : (8 + mantissa) * Math.ScaleB(1.0, exponent - 10);
        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }

    public static bool IsE4M3NaN(byte code) => (code & 0x7F) == 0x7F;

    /// <summary>The spacing of bf16 values at |x| (the subnormal spacing below 2^-126).</summary>
    public static double UlpBFloat16(double x)
    {
        int e = x == 0 ? -126 : Math.Max(Math.ILogB(Math.Abs(x)), -126);
        return Math.ScaleB(1.0, e - 7);
    }

    /// <summary>The spacing of fp16 values at |x| (2^-24 below 2^-14).</summary>
    public static double UlpHalf(double x)
    {
        int e = x == 0 ? -14 : Math.Max(Math.ILogB(Math.Abs(x)), -14);
        return Math.ScaleB(1.0, e - 10);
    }

    /// <summary>A normal-ish random value with a random binary magnitude in [2^minExp, 2^maxExp).</summary>
    public static float RandomValue(Random random, int minExp, int maxExp)
    {
        double magnitude = Math.ScaleB(1.0 + random.NextDouble(), random.Next(minExp, maxExp));
        return (float)(random.Next(2) == 0 ? magnitude : -magnitude);
    }

    /// <summary>Gaussian sample (Box-Muller).</summary>
    public static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble();
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}

/// <summary>NUL-terminated UTF-8 strings for direct native calls.</summary>
internal static class Utf8
{
    public static byte[] Z(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }
}

/// <summary>One captured log entry.</summary>
internal sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, object?> State);

/// <summary>An ILoggerProvider that records everything logged through it.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly List<LogEntry> _entries = [];

    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = new Dictionary<string, object?>();
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
            {
                foreach (var pair in pairs)
                {
                    values[pair.Key] = pair.Value;
                }
            }

            lock (owner._entries)
            {
                owner._entries.Add(new LogEntry(category, logLevel, eventId, formatter(state, exception), values));
            }
        }
    }
}

/// <summary>A CPU context with the standard grouped-GEMM operands of a small valid problem, for validation tests.</summary>
internal sealed class GemmFixture : IDisposable
{
    public const int Experts = 4;
    public const int N = 64;
    public const int K = 128;
    public const int MaxRows = 64;
    public const int Rows = 40;
    public static readonly BFloat16 Canary = BFloat16.FromBits(0x7E57);

    public GemmFixture(MoeContext? context = null)
    {
        Context = context ?? MoeContext.CreateCpu(threads: 1);
        Plan = Context.CreateGroupedGemmPlan(new GroupedGemmOptions(Experts, N, K, DType.BFloat16, GemmStrategy.Auto, MaxRows));
        A = Context.Allocate<byte>((long)MaxRows * K);
        A.Fill(0x38); // 1.0
        AScales = Context.Allocate<float>(MaxRows * MoeContext.ScaleBlocks(K));
        AScales.Fill(1f);
        B = Context.Allocate<byte>((long)Experts * N * K);
        B.Fill(0x38);
        BScales = Context.Allocate<float>(Experts * MoeContext.ScaleBlocks(N) * MoeContext.ScaleBlocks(K));
        BScales.Fill(1f);
        Offsets = Context.Upload<int>([0, 10, 20, 30, Rows]);
        D = Context.Allocate<BFloat16>((long)MaxRows * N);
        D.Fill(Canary);
    }

    public MoeContext Context { get; }

    public GroupedGemmPlan Plan { get; }

    public DeviceBuffer<byte> A { get; }

    public DeviceBuffer<float> AScales { get; }

    public DeviceBuffer<byte> B { get; }

    public DeviceBuffer<float> BScales { get; }

    public DeviceBuffer<int> Offsets { get; }

    public DeviceBuffer<BFloat16> D { get; }

    public void Run(int rows = Rows, MoeStream? stream = null) => Plan.Run(rows, A, AScales, B, BScales, Offsets, D, stream);

    /// <summary>Whether D still holds only the canary pattern.</summary>
    public bool OutputUntouched() => D.ToArray().All(v => v.Bits == Canary.Bits);

    public void Dispose()
    {
        Plan.Dispose();
        A.Dispose();
        AScales.Dispose();
        B.Dispose();
        BScales.Dispose();
        Offsets.Dispose();
        D.Dispose();
        Context.Dispose();
    }
}

internal static class TestUtil
{
    public static string Hex(nint pointer) => "0x" + ((ulong)pointer).ToString("x", CultureInfo.InvariantCulture);
}

/// <summary>Stream capture for the GPU tests.</summary>
internal static class Capture
{
    /// <summary>
    /// Captures what <paramref name="work"/> enqueues on <paramref name="stream"/> into a graph. When the work throws,
    /// the capture is ended (and its graph dropped) so the stream stays usable, and the work's exception is the one
    /// that propagates.
    /// </summary>
    public static MoeGraph Graph(MoeStream stream, Action work)
    {
        stream.BeginCapture();
        try
        {
            work();
        }
        catch
        {
            try
            {
                stream.EndCapture().Dispose();
            }
            catch (MoeCutlassException)
            {
                // the work's own exception is the one to report
            }

            throw;
        }

        return stream.EndCapture();
    }
}
