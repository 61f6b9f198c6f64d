using System.Reflection;
using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass.Tests;

[TestFixture]
public sealed class LibraryTests : NativeTestBase
{
    [Test]
    public void Initialize_IsIdempotent_AndRecordsTheLoadedFile()
    {
        MoeCutlassLibrary.Initialize();
        MoeCutlassLibrary.Initialize();
        string path = MoeCutlassLibrary.LoadedPath;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Path.IsPathFullyQualified(path), Is.True, path);
            Assert.That(File.Exists(path), Is.True, path);
            Assert.That(Path.GetFileName(path), Is.EqualTo(NativeLibraryLoader.PlatformFileName));
        }

        string? requested = Environment.GetEnvironmentVariable(NativeLibraryLoader.EnvironmentVariable);
        if (!string.IsNullOrEmpty(requested))
        {
            string expected = Directory.Exists(requested) ? Path.Combine(requested, NativeLibraryLoader.PlatformFileName) : requested;
            Assert.That(path, Is.EqualTo(Path.GetFullPath(expected)), "MOECUTLASS_NATIVE_PATH is authoritative");
        }
    }

    [Test]
    public void BuildInfo_MatchesAbiAndManagedVersion()
    {
        var info = MoeCutlassLibrary.BuildInfo;
        string managed = typeof(MoeContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        string managedCore = managed.Split('+', '-')[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(info.AbiVersion, Is.EqualTo(NativeConstants.MC_ABI_VERSION));
            Assert.That(MoeCutlassLibrary.ExpectedAbiVersion, Is.EqualTo(NativeConstants.MC_ABI_VERSION));
            Assert.That(info.Version, Does.StartWith(managedCore), "native and managed versions come from the one VERSION file");
            Assert.That(info.Compiler, Is.Not.Empty);
            Assert.That(info.HasCuda || info.CudaArchitectures.Length == 0, Is.True, "architectures only with CUDA");
        }
    }

    [Test]
    public void AbiMismatch_NamesBothVersionsAndThePath()
    {
        Assert.That(MoeCutlassLibrary.CheckAbiVersion("/x/libmoecutlass.so", NativeConstants.MC_ABI_VERSION), Is.Null);
        var ex = MoeCutlassLibrary.CheckAbiVersion("/x/libmoecutlass.so", NativeConstants.MC_ABI_VERSION + 41);
        Assert.That(ex, Is.TypeOf<MoeCutlassLibraryException>());
        Assert.That(ex!.Message, Does.Contain("/x/libmoecutlass.so")
            .And.Contain($"ABI version {NativeConstants.MC_ABI_VERSION + 41}")
            .And.Contain($"needs ABI version {NativeConstants.MC_ABI_VERSION}"));
        Assert.That(ex.Status, Is.EqualTo(MoeStatus.Internal));
    }

    [Test]
    public void DeviceCount_IsConsistentWithTryCreateCuda()
    {
        int count = MoeCutlassLibrary.DeviceCount;
        Assert.That(count, Is.GreaterThanOrEqualTo(0));
        bool created = MoeContext.TryCreateCuda(0, out var context);
        try
        {
            Assert.That(created, Is.EqualTo(count > 0));
            Assert.That(context is null, Is.EqualTo(!created));
        }
        finally
        {
            context?.Dispose();
        }
    }

    [Test]
    public void WithoutDevices_CudaCallsReportNoDeviceOrUnsupported()
    {
        if (MoeCutlassLibrary.DeviceCount > 0)
        {
            Assert.Ignore("this machine has a CUDA device; the no-device paths are not reachable here");
        }

        var expected = MoeCutlassLibrary.BuildInfo.HasCuda ? MoeStatus.NoDevice : MoeStatus.Unsupported;
        var create = Assert.Throws(Is.InstanceOf<MoeCutlassException>(), () => MoeContext.CreateCuda(0).Dispose()) as MoeCutlassException;
        var info = Assert.Throws(Is.InstanceOf<MoeCutlassException>(), () => MoeCutlassLibrary.GetDeviceInfo(0)) as MoeCutlassException;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(create!.Status, Is.EqualTo(expected));
            Assert.That(create, expected == MoeStatus.NoDevice ? Is.TypeOf<MoeCutlassNoDeviceException>() : Is.TypeOf<MoeCutlassUnsupportedException>());
            Assert.That(create.Message, Does.EndWith($"[{MoeCutlassLibrary.GetStatusName(expected)}]"));
            Assert.That(info!.Status, Is.AnyOf(MoeStatus.NoDevice, MoeStatus.Unsupported));
        }
    }

    [Test]
    public void EveryNativeStatusCode_HasTheSameEnumValueAndName()
    {
        var constants = typeof(NativeConstants).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.Name.StartsWith("MC_STATUS_", StringComparison.Ordinal))
            .ToDictionary(f => f.Name, f => (int)f.GetRawConstantValue()!);
        Assert.That(constants, Has.Count.EqualTo(Enum.GetValues<MoeStatus>().Length), "one enum member per MC_STATUS_* code");
        foreach (var (name, value) in constants)
        {
            string pascal = string.Concat(name["MC_STATUS_".Length..].Split('_').Select(p => p[0] + p[1..].ToLowerInvariant()));
            Assert.That(Enum.TryParse<MoeStatus>(pascal, out var status), Is.True, $"{name} -> {pascal}");
            using (Assert.EnterMultipleScope())
            {
                Assert.That((int)status, Is.EqualTo(value), name);
                Assert.That(MoeCutlassLibrary.GetStatusName(status), Is.EqualTo(name));
                Assert.That(NativeStatus.FallbackName(value), Is.EqualTo(name));
            }
        }
    }

    [Test]
    public void EnumValues_MatchTheHeaderConstants()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That((int)Backend.Cpu, Is.EqualTo(NativeConstants.MC_BACKEND_CPU));
            Assert.That((int)Backend.Cuda, Is.EqualTo(NativeConstants.MC_BACKEND_CUDA));
            Assert.That((int)DType.Float32, Is.EqualTo(NativeConstants.MC_DTYPE_FP32));
            Assert.That((int)DType.BFloat16, Is.EqualTo(NativeConstants.MC_DTYPE_BF16));
            Assert.That((int)DType.Float16, Is.EqualTo(NativeConstants.MC_DTYPE_FP16));
            Assert.That((int)DType.Float8E4M3, Is.EqualTo(NativeConstants.MC_DTYPE_E4M3));
            Assert.That((int)GemmStrategy.Auto, Is.EqualTo(NativeConstants.MC_STRATEGY_AUTO));
            Assert.That((int)GemmStrategy.Single, Is.EqualTo(NativeConstants.MC_STRATEGY_SINGLE));
            Assert.That((int)GemmStrategy.ExpertSpecialized, Is.EqualTo(NativeConstants.MC_STRATEGY_EXPERT_SPECIALIZED));
            Assert.That((int)GemmStrategy.Persistent, Is.EqualTo(NativeConstants.MC_STRATEGY_PERSISTENT));
            Assert.That((int)GemmStrategy.Cublas, Is.EqualTo(NativeConstants.MC_STRATEGY_CUBLAS));
            Assert.That((int)DeviceErrorFlags.OffsetsNotMonotonic, Is.EqualTo(NativeConstants.MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC));
            Assert.That((int)DeviceErrorFlags.OffsetsNegative, Is.EqualTo(NativeConstants.MC_DEVICE_ERROR_OFFSETS_NEGATIVE));
            Assert.That((int)DeviceErrorFlags.OffsetsBeyondRows, Is.EqualTo(NativeConstants.MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS));
        }
    }

    [TestCase(MoeStatus.NullPointer, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.OutOfRange, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.Misaligned, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.InvalidDtype, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.InvalidStrategy, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.InvalidBackend, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.ContextMismatch, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.InvalidOffsets, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.BufferTooSmall, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.InvalidStructSize, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.InvalidArgument, typeof(MoeCutlassArgumentException))]
    [TestCase(MoeStatus.InvalidHandle, typeof(MoeCutlassInvalidHandleException))]
    [TestCase(MoeStatus.Unsupported, typeof(MoeCutlassUnsupportedException))]
    [TestCase(MoeStatus.NoDevice, typeof(MoeCutlassNoDeviceException))]
    [TestCase(MoeStatus.OutOfMemory, typeof(MoeCutlassOutOfMemoryException))]
    [TestCase(MoeStatus.DeviceFault, typeof(MoeCutlassDeviceFaultException))]
    [TestCase(MoeStatus.CudaError, typeof(MoeCutlassCudaException))]
    [TestCase(MoeStatus.Internal, typeof(MoeCutlassException))]
    [TestCase(MoeStatus.NotReady, typeof(MoeCutlassException))]
    [TestCase(MoeStatus.Busy, typeof(MoeCutlassException))]
    public void StatusMapping_GivesTheDocumentedExceptionType(MoeStatus status, Type expected)
    {
        var exception = NativeStatus.Create((int)status);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exception, Is.TypeOf(expected));
            Assert.That(exception, Is.InstanceOf<IMoeCutlassException>());
            Assert.That(((IMoeCutlassException)exception).Status, Is.EqualTo(status));
            // Argument statuses are ArgumentExceptions (catch (ArgumentException) sees them); the others MoeCutlassExceptions.
            Assert.That(exception is ArgumentException, Is.EqualTo(expected == typeof(MoeCutlassArgumentException)));
            Assert.That(exception is MoeCutlassException, Is.EqualTo(expected != typeof(MoeCutlassArgumentException)));
            Assert.That(exception.Message, Does.EndWith($"[{MoeCutlassLibrary.GetStatusName(status)}]"));
        }
    }

    [Test]
    public void NativeFailure_MessageIsNativeMessagePlusStatusName()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var ex = Assert.Throws<MoeCutlassArgumentException>(
            () => context.CreateGroupedGemmPlan(new GroupedGemmOptions(4097, 64, 128, DType.BFloat16, GemmStrategy.Auto, 8)));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.NativeMessage, Does.Contain("experts").And.Contain("4097"));
            // An argument rejection speaks C#: the native text with the C field (desc->experts) and the C function
            // replaced by the managed parameter, then the status name; ArgumentException appends the parameter.
            Assert.That(ex.Message, Is.EqualTo(
                "options.Experts = 4097 is outside 1 .. 4096 (MC_MAX_EXPERTS) [MC_STATUS_OUT_OF_RANGE] (Parameter 'options')"));
            Assert.That(ex.NativeMessage, Does.StartWith("mc_grouped_gemm_plan_create: desc->experts = 4097"));
            Assert.That(ex.Status, Is.EqualTo(MoeStatus.OutOfRange));
        }
    }
}
