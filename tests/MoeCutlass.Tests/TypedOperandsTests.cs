namespace MoeCutlass.Tests;

/// <summary>
/// Issue 14 item 4: argument exceptions are <see cref="ArgumentException"/>s that name the C# parameter, operands are
/// checked against the plan (element type and size) before any native call, empty buffers are normal, and a disposed
/// buffer names its type readably.
/// </summary>
[TestFixture]
public sealed class TypedOperandsTests : NativeTestBase
{
    private GemmFixture _gemm = null!;

    [SetUp]
    public void CreateGemm() => _gemm = new GemmFixture();

    [TearDown]
    public void DisposeGemm() => _gemm.Dispose();

    // ---- a) MoeCutlassArgumentException is an ArgumentException with ParamName and a C# message ----

    [Test]
    public void LibraryRejection_IsCaughtAsArgumentException_WithTheManagedParameterName()
    {
        nint misaligned = _gemm.D.Pointer + 4;
        ArgumentException? caught = null;
        try
        {
            _gemm.Plan.Run(GemmFixture.Rows, _gemm.A.Pointer, _gemm.AScales.Pointer, _gemm.B.Pointer, _gemm.BScales.Pointer,
                _gemm.Offsets.Pointer, misaligned);
        }
        catch (ArgumentException ex)
        {
            caught = ex;
        }

        Assert.That(caught, Is.TypeOf<MoeCutlassArgumentException>());
        var argument = (MoeCutlassArgumentException)caught!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(argument.ParamName, Is.EqualTo("output"));
            Assert.That(argument.Status, Is.EqualTo(MoeStatus.Misaligned));
            Assert.That(argument.Message, Does.StartWith("output must be 16-byte aligned"));
            Assert.That(argument.Message, Does.Not.Contain("args->").And.Not.Contain(TestUtil.Hex(misaligned)));
            Assert.That(argument.NativeMessage, Does.Contain("args->d").And.Contain(TestUtil.Hex(misaligned)), "the native detail is kept");
            Assert.That(_gemm.OutputUntouched(), Is.True);
        }
    }

    [TestCase(-1)]
    [TestCase(GemmFixture.MaxRows + 1)]
    public void RowsOutOfRange_NamesRows(int rows)
    {
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => _gemm.Run(rows));
        Assert.That(ex!.ParamName, Is.EqualTo("rows"));
        Assert.That(ex.Message, Does.StartWith($"rows = {rows} is outside 0 .. {GemmFixture.MaxRows}"));
        Assert.That(Assert.Throws<MoeCutlassArgumentException>(() => _gemm.Plan.Resolve(rows))!.ParamName, Is.EqualTo("rows"));
    }

    [Test]
    public void PlanOptionsRejected_NameOptionsAndTheProperty()
    {
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            _gemm.Context.CreateGroupedGemmPlan(new GroupedGemmOptions(4097, 64, 128, DType.BFloat16, GemmStrategy.Auto, 8)).Dispose());
        Assert.That(ex!.ParamName, Is.EqualTo("options"));
        Assert.That(ex.Message, Does.StartWith("options.Experts = 4097").And.Not.Contain("desc->"));
        Assert.That(ex.NativeMessage, Does.Contain("desc->experts"));
        Assert.That(ex, Is.InstanceOf<ArgumentException>());
    }

    [Test]
    public void ContextOptionsRejected_NameTheParameter()
    {
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeContext.CreateCpu(threads: -2).Dispose());
        Assert.That(ex!.ParamName, Is.EqualTo("threads"));
        Assert.That(ex.Message, Does.StartWith("threads = -2"));
    }

    [Test]
    public void QuantizeRejected_NamesTheParameter()
    {
        using var input = _gemm.Context.Upload<float>(new float[128]);
        using var output = _gemm.Context.Allocate<byte>(128);
        using var scales = _gemm.Context.Allocate<float>(1);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => _gemm.Context.QuantizeActivations(input, 1, -128, output, scales));
        Assert.That(ex!.ParamName, Is.EqualTo("cols"));
    }

    [TestCase("a")]
    [TestCase("aScales")]
    [TestCase("b")]
    [TestCase("bScales")]
    [TestCase("expertOffsets")]
    [TestCase("output")]
    public void RawOverload_WithAMadeUpPointer_IsRejectedOnTheCpuBackend_NamingTheParameter(string operand)
    {
        // The raw Run(nint ...) overload is documented as unchecked (on CUDA a made-up address is a device fault); on
        // the CPU backend every operand must be context memory, so 0x1000 is an argument error, not a crash.
        var g = _gemm;
        nint P(string name, nint pointer) => name == operand ? 0x1000 : pointer;
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => g.Plan.Run(GemmFixture.Rows, P("a", g.A.Pointer),
            P("aScales", g.AScales.Pointer), P("b", g.B.Pointer), P("bScales", g.BScales.Pointer), P("expertOffsets", g.Offsets.Pointer),
            P("output", g.D.Pointer)));
        Assert.That(ex!.ParamName, Is.EqualTo(operand));
        Assert.That(ex.Message, Does.StartWith($"{operand} is not inside"));
        Assert.That(g.OutputUntouched(), Is.True);
    }

    // ---- b) typed operands ----

    [Test]
    public void Bf16Plan_WithHalfOutput_IsRejectedBeforeAnyNativeCall()
    {
        using var half = _gemm.Context.Allocate<Half>((long)GemmFixture.MaxRows * GemmFixture.N);
        half.Fill((Half)(-3f));
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            _gemm.Plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, half));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.ParamName, Is.EqualTo("output"));
            Assert.That(ex.Status, Is.EqualTo(MoeStatus.InvalidDtype));
            Assert.That(ex.Message, Does.Contain("DeviceBuffer<BFloat16>").And.Contain("DeviceBuffer<Half>"));
            Assert.That(half.ToArray(), Is.All.EqualTo((Half)(-3f)), "nothing written");
        }
    }

    [Test]
    public void Fp16Plan_WithBFloat16Output_IsRejected_AndHalfOrRawBitsAreAccepted()
    {
        using var plan = _gemm.Context.CreateGroupedGemmPlan(
            new GroupedGemmOptions(GemmFixture.Experts, GemmFixture.N, GemmFixture.K, DType.Float16, GemmStrategy.Auto, GemmFixture.MaxRows));
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, _gemm.D));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
        Assert.That(ex.Status, Is.EqualTo(MoeStatus.InvalidDtype));
        Assert.That(_gemm.OutputUntouched(), Is.True);

        using var half = _gemm.Context.Allocate<Half>((long)GemmFixture.MaxRows * GemmFixture.N);
        plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, half);
        Assert.That(half.ToArray().Take(GemmFixture.Rows * GemmFixture.N), Is.All.EqualTo((Half)128f));
        using var bits = _gemm.Context.Allocate<ushort>((long)GemmFixture.MaxRows * GemmFixture.N);
        Assert.That(() => plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, bits), Throws.Nothing);
    }

    [Test]
    public void FloatOffsets_AreRejected_NamingExpertOffsets()
    {
        using var offsets = _gemm.Context.Upload<float>([0f, 10f, 20f, 30f, 40f]);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            _gemm.Plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, offsets, _gemm.D));
        Assert.That(ex!.ParamName, Is.EqualTo("expertOffsets"));
        Assert.That(ex.Status, Is.EqualTo(MoeStatus.InvalidDtype));
        Assert.That(ex.Message, Does.Contain("DeviceBuffer<int>").And.Contain("DeviceBuffer<float>"));
        Assert.That(_gemm.OutputUntouched(), Is.True);
    }

    [Test]
    public void SwappedOperands_AreCaught_NamingTheFirstWrongParameter()
    {
        var g = _gemm;
        using (Assert.EnterMultipleScope())
        {
            // Different element types: A (byte) and its scales (float).
            Assert.That(() => g.Plan.Run(GemmFixture.Rows, g.AScales, g.A, g.B, g.BScales, g.Offsets, g.D),
                Throws.TypeOf<MoeCutlassArgumentException>().With.Property("ParamName").EqualTo("a")
                    .And.Property("Status").EqualTo(MoeStatus.InvalidDtype));
            // Same element type, different sizes: A [rows, K] and B [E, N, K] are both bytes.
            Assert.That(() => g.Plan.Run(GemmFixture.Rows, g.B, g.AScales, g.A, g.BScales, g.Offsets, g.D),
                Throws.TypeOf<MoeCutlassArgumentException>().With.Property("ParamName").EqualTo("b")
                    .And.Property("Status").EqualTo(MoeStatus.BufferTooSmall));
            // The two scale buffers (floats).
            Assert.That(() => g.Plan.Run(GemmFixture.Rows, g.A, g.BScales, g.B, g.AScales, g.Offsets, g.D),
                Throws.TypeOf<MoeCutlassArgumentException>().With.Property("ParamName").EqualTo("aScales")
                    .And.Property("Status").EqualTo(MoeStatus.BufferTooSmall));
            // B scales given as offsets (float vs int).
            Assert.That(() => g.Plan.Run(GemmFixture.Rows, g.A, g.AScales, g.B, g.Offsets, g.BScales, g.D),
                Throws.TypeOf<MoeCutlassArgumentException>().With.Property("ParamName").EqualTo("bScales"));
            Assert.That(g.OutputUntouched(), Is.True);
        }
    }

    // ---- c) empty buffers ----

    [Test]
    public void AllocateZero_And_UploadEmpty_GiveEmptyBuffers_WithNoNativeAllocation()
    {
        long before = _gemm.Context.AllocationCount;
        using var empty = _gemm.Context.Allocate<float>(0);
        using var uploaded = _gemm.Context.Upload<int>(ReadOnlySpan<int>.Empty);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(empty.Length, Is.Zero);
            Assert.That(empty.SizeInBytes, Is.Zero);
            Assert.That(empty.Pointer, Is.EqualTo((nint)0));
            Assert.That(uploaded.Length, Is.Zero);
            Assert.That(empty.ToArray(), Is.Empty);
            Assert.That(_gemm.Context.AllocationCount, Is.EqualTo(before));
            Assert.That(() => empty.Fill(1f), Throws.Nothing);
            Assert.That(() => empty.CopyFrom(ReadOnlySpan<float>.Empty), Throws.Nothing);
            Assert.That(() => empty.CopyTo(Span<float>.Empty), Throws.Nothing);
            using var other = _gemm.Context.Allocate<float>(4);
            Assert.That(() => other.CopyFrom(empty), Throws.Nothing);
            Assert.That(() => _gemm.Context.Convert(empty, DType.Float32, other, DType.Float32, 0), Throws.Nothing);
            Assert.That(() => empty.CopyFrom(new float[1]), Throws.TypeOf<ArgumentOutOfRangeException>());
        }
    }

    [Test]
    public void EmptyBuffer_DisposedAfterItsContext_StillReleasesCleanly()
    {
        var context = MoeContext.CreateCpu(threads: 1);
        var empty = context.Allocate<byte>(0);
        context.Dispose();
        Assert.That(() => empty.Dispose(), Throws.Nothing);
        Assert.That(empty.IsDisposed, Is.True);
        Assert.That(() => empty.Pointer, Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void RunWithNoRows_AcceptsEmptyActivationsAndOutput()
    {
        using var a = _gemm.Context.Allocate<byte>(0);
        using var aScales = _gemm.Context.Allocate<float>(0);
        using var d = _gemm.Context.Allocate<BFloat16>(0);
        using var offsets = _gemm.Context.Upload<int>(new int[GemmFixture.Experts + 1]);
        Assert.That(() => _gemm.Plan.Run(0, a, aScales, _gemm.B, _gemm.BScales, offsets, d), Throws.Nothing);
        // With rows > 0 an empty buffer is too small, named.
        Assert.That(() => _gemm.Plan.Run(1, a, _gemm.AScales, _gemm.B, _gemm.BScales, offsets, _gemm.D),
            Throws.TypeOf<MoeCutlassArgumentException>().With.Property("ParamName").EqualTo("a"));
    }

    [Test]
    public void QuantizeWithNoRows_AcceptsEmptyBuffers()
    {
        using var input = _gemm.Context.Allocate<float>(0);
        using var output = _gemm.Context.Allocate<byte>(0);
        using var scales = _gemm.Context.Allocate<float>(0);
        Assert.That(() => _gemm.Context.QuantizeActivations(input, 0, 128, output, scales), Throws.Nothing);
    }

    // ---- d) readable type name of a disposed buffer ----

    [Test]
    public void DisposedBuffer_NamesItsTypeAsCSharpWouldWriteIt()
    {
        var buffer = _gemm.Context.Allocate<byte>(16);
        buffer.Dispose();
        var ex = Assert.Throws<ObjectDisposedException>(() => _ = buffer.Pointer);
        Assert.That(ex!.ObjectName, Is.EqualTo("DeviceBuffer<byte>"));
        Assert.That(ex.Message, Does.Not.Contain("System.Private.CoreLib").And.Not.Contain("`1"));
        var bf16 = _gemm.Context.Allocate<BFloat16>(4);
        bf16.Dispose();
        Assert.That(Assert.Throws<ObjectDisposedException>(() => bf16.ToArray())!.ObjectName, Is.EqualTo("DeviceBuffer<BFloat16>"));
        Assert.That(bf16.ToString(), Does.StartWith("DeviceBuffer<BFloat16>[4]"));
    }
}
