using MoeCutlass.Interop;

namespace MoeCutlass.Tests;

/// <summary>
/// Every validation path: the specific exception type and status, a message naming the argument and its value, and
/// an output buffer that still holds its canary pattern afterwards (a rejected call writes nothing).
/// </summary>
[TestFixture]
public sealed unsafe class ValidationTests : NativeTestBase
{
    private GemmFixture _gemm = null!;

    [SetUp]
    public void CreateGemm() => _gemm = new GemmFixture();

    [TearDown]
    public void DisposeGemm() => _gemm.Dispose();

    [Test]
    public void ValidRun_Succeeds_AndWritesOnlyTheOffsetRows()
    {
        // The baseline the rejections are measured against: the same operands are accepted.
        _gemm.Run();
        var d = _gemm.D.ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Take(GemmFixture.Rows * GemmFixture.N).Select(v => (float)v), Is.All.EqualTo(128f), "1 * 1 summed over K = 128");
            Assert.That(d.Skip(GemmFixture.Rows * GemmFixture.N).Select(v => v.Bits), Is.All.EqualTo(GemmFixture.Canary.Bits));
        }
    }

    [Test]
    public void Run_AllocatesNothingOnTheManagedHeap()
    {
        // The hot path: argument checks, handle leases and the args struct live on the stack.
        using var stream = _gemm.Context.CreateStream();
        nint a = _gemm.A.Pointer, aScales = _gemm.AScales.Pointer, b = _gemm.B.Pointer, bScales = _gemm.BScales.Pointer;
        nint offsets = _gemm.Offsets.Pointer, d = _gemm.D.Pointer;
        const int rows = GemmFixture.Rows;
        _gemm.Run(rows, stream);
        _gemm.Plan.Run(rows, a, aScales, b, bScales, offsets, d, stream);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++)
        {
            _gemm.Plan.Run(rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, _gemm.D, stream);
            _gemm.Plan.Run(rows, a, aScales, b, bScales, offsets, d, stream);
            _gemm.Plan.Run(rows, a, aScales, b, bScales, offsets, d);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    [Test]
    public void NullPointer_IsRejected()
    {
        AssertRunRejected(() => RawRun(a: 0), MoeStatus.NullPointer, "args->a", "NULL");
        AssertRunRejected(() => RawRun(offsets: 0), MoeStatus.NullPointer, "args->expert_offsets");
        AssertRunRejected(() => RawRun(d: 0), MoeStatus.NullPointer, "args->d");
    }

    [TestCase(0)]
    [TestCase(-3)]
    [TestCase(4097)]
    public void Experts_OutOfRange_IsRejected(int experts) =>
        AssertPlanRejected(new GroupedGemmOptions(experts, 64, 128, DType.BFloat16, GemmStrategy.Auto, 16), MoeStatus.OutOfRange,
            "desc->experts", $"= {experts}", "4096");

    [TestCase(0)]
    [TestCase(-8)]
    [TestCase(2_000_000)]
    public void N_OutOfRange_IsRejected(int n) =>
        AssertPlanRejected(new GroupedGemmOptions(4, n, 128, DType.BFloat16, GemmStrategy.Auto, 16), MoeStatus.OutOfRange, "desc->n", $"= {n}");

    [TestCase(0)]
    [TestCase(-16)]
    public void K_OutOfRange_IsRejected(int k) =>
        AssertPlanRejected(new GroupedGemmOptions(4, 64, k, DType.BFloat16, GemmStrategy.Auto, 16), MoeStatus.OutOfRange, "desc->k", $"= {k}");

    [Test]
    public void K_NotMultipleOf16_IsMisaligned() =>
        AssertPlanRejected(new GroupedGemmOptions(4, 64, 200, DType.BFloat16, GemmStrategy.Auto, 16), MoeStatus.Misaligned,
            "desc->k", "= 200", "16");

    [Test]
    public void N_NotMultipleOf8_IsMisaligned() =>
        AssertPlanRejected(new GroupedGemmOptions(4, 100, 128, DType.BFloat16, GemmStrategy.Auto, 16), MoeStatus.Misaligned,
            "desc->n", "= 100", "8");

    [Test]
    public void MaxRows_Negative_IsRejected() =>
        AssertPlanRejected(new GroupedGemmOptions(4, 64, 128, DType.BFloat16, GemmStrategy.Auto, -1), MoeStatus.OutOfRange,
            "desc->max_rows", "= -1");

    [TestCase(-1)]
    [TestCase(GemmFixture.MaxRows + 1)]
    public void Rows_OutsideZeroToMaxRows_IsRejected(int rows) =>
        AssertRunRejected(() => _gemm.Run(rows), MoeStatus.OutOfRange, "args->rows", $"= {rows}", GemmFixture.MaxRows.ToString());

    [TestCase(1)]
    [TestCase(4)]
    public void MisalignedPointers_AreRejected(int byteOffset)
    {
        nint a = _gemm.A.Pointer + byteOffset;
        AssertRunRejected(() => RawRun(a: a), MoeStatus.Misaligned, "args->a", TestUtil.Hex(a), "16-byte");
        nint scales = _gemm.AScales.Pointer + byteOffset;
        AssertRunRejected(() => RawRun(aScales: scales), MoeStatus.Misaligned, "args->a_scales", TestUtil.Hex(scales));
        nint d = _gemm.D.Pointer + byteOffset;
        AssertRunRejected(() => RawRun(d: d), MoeStatus.Misaligned, "args->d", TestUtil.Hex(d));
    }

    [Test]
    public void MisalignedOffsets_AreRejected()
    {
        nint offsets = _gemm.Offsets.Pointer + 2;
        AssertRunRejected(() => RawRun(offsets: offsets), MoeStatus.Misaligned, "args->expert_offsets", TestUtil.Hex(offsets));
    }

    [TestCase(9)]
    [TestCase(0)]
    [TestCase((int)DType.Float32)]
    [TestCase((int)DType.Float8E4M3)]
    public void OutputDType_NotBf16OrFp16_IsRejected(int dtype) =>
        AssertPlanRejected(new GroupedGemmOptions(4, 64, 128, (DType)dtype, GemmStrategy.Auto, 16), MoeStatus.InvalidDtype,
            "desc->output_dtype", $"= {dtype}");

    [Test]
    public void UnknownDType_InConvert_IsRejected()
    {
        using var source = _gemm.Context.Upload<float>([1f, 2f]);
        using var destination = _gemm.Context.Allocate<float>(2);
        destination.Fill(-7f);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => _gemm.Context.Convert(source, (DType)77, destination, DType.Float32, 2));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.InvalidDtype));
        Assert.That(ex.NativeMessage, Does.Contain("src_dtype").And.Contain("77"));
        Assert.That(destination.ToArray(), Is.All.EqualTo(-7f));
    }

    [TestCase(5)] // the first value past MC_STRATEGY_CUBLAS (4)
    [TestCase(7)]
    [TestCase(-1)]
    public void UnknownStrategy_IsRejected(int strategy) =>
        AssertPlanRejected(new GroupedGemmOptions(4, 64, 128, DType.BFloat16, (GemmStrategy)strategy, 16), MoeStatus.InvalidStrategy,
            "desc->strategy", $"= {strategy}");

    [TestCase(2)]
    [TestCase(-1)]
    public void UnknownBackend_IsRejected(int backend)
    {
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeContext.Create((Backend)backend).Dispose());
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.InvalidBackend));
        Assert.That(ex.NativeMessage, Does.Contain("desc->backend").And.Contain($"= {backend}"));
    }

    [Test]
    public void CpuBackend_WithDeviceOtherThanZero_IsRejected()
    {
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeContext.Create(Backend.Cpu, device: 3).Dispose());
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.OutOfRange));
        Assert.That(ex.NativeMessage, Does.Contain("desc->device").And.Contain("= 3"));
    }

    [Test]
    public void NegativeCpuThreads_AreRejected()
    {
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeContext.CreateCpu(threads: -2).Dispose());
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.OutOfRange));
        Assert.That(ex.NativeMessage, Does.Contain("cpu_threads").And.Contain("-2"));
    }

    [Test]
    public void StreamOfAnotherContext_IsAContextMismatch()
    {
        using var other = MoeContext.CreateCpu(threads: 1);
        using var foreignStream = other.CreateStream();
        AssertRunRejected(() => _gemm.Run(stream: foreignStream), MoeStatus.ContextMismatch, "stream");
    }

    [Test]
    public void BufferOfAnotherContext_IsRejectedByTheFacade()
    {
        using var other = MoeContext.CreateCpu(threads: 1);
        using var foreign = other.Allocate<BFloat16>((long)GemmFixture.MaxRows * GemmFixture.N);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            _gemm.Plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, foreign));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
    }

    [Test]
    public void WrongElementSize_IsRejectedByTheFacade()
    {
        using var wide = _gemm.Context.Allocate<float>((long)GemmFixture.MaxRows * GemmFixture.N);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            _gemm.Plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, wide));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
        Assert.That(_gemm.OutputUntouched(), Is.True);
    }

    [Test]
    public void NullBuffer_IsArgumentNullException()
    {
        var ex = Assert.Throws<ArgumentNullException>(() =>
            _gemm.Plan.Run(GemmFixture.Rows, null!, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, _gemm.D));
        Assert.That(ex!.ParamName, Is.EqualTo("a"));
    }

    [Test]
    public void DestroyedHandles_AreInvalidHandle_NativelyAndObjectDisposedInTheFacade()
    {
        var stream = _gemm.Context.CreateStream();
        nint rawStream = stream.Handle.DangerousGetHandle();
        stream.Dispose();
        Assert.That(NativeMethods.mc_stream_synchronize(rawStream), Is.EqualTo(NativeConstants.MC_STATUS_INVALID_HANDLE));
        Assert.That(NativeStatus_LastError(), Does.Contain("stream").And.Contain(TestUtil.Hex(rawStream)));
        Assert.Throws<ObjectDisposedException>(stream.Synchronize);
        Assert.Throws<ObjectDisposedException>(() => _gemm.Run(stream: stream));

        var plan = _gemm.Context.CreateGroupedGemmPlan(new GroupedGemmOptions(4, 64, 128, DType.BFloat16, GemmStrategy.Auto, 8));
        nint rawPlan = plan.Handle.DangerousGetHandle();
        plan.Dispose();
        var info = new mc_grouped_gemm_plan_info { struct_size = (uint)sizeof(mc_grouped_gemm_plan_info) };
        Assert.That(NativeMethods.mc_grouped_gemm_plan_get_info(rawPlan, &info), Is.EqualTo(NativeConstants.MC_STATUS_INVALID_HANDLE));
        var ex = Assert.Throws<MoeCutlassInvalidHandleException>(() => GetPlanInfo(rawPlan));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.InvalidHandle));
        Assert.That(ex.NativeMessage, Does.Contain("plan").And.Contain(TestUtil.Hex(rawPlan)));
        Assert.Throws<ObjectDisposedException>(() => plan.Run(1, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, _gemm.D));
        Assert.That(_gemm.OutputUntouched(), Is.True);
    }

    [Test]
    public void HandleOfTheWrongKind_IsInvalidHandle()
    {
        using var @event = _gemm.Context.CreateEvent();
        nint rawEvent = @event.Handle.DangerousGetHandle();
        Assert.That(NativeMethods.mc_stream_synchronize(rawEvent), Is.EqualTo(NativeConstants.MC_STATUS_INVALID_HANDLE));
        Assert.That(NativeStatus_LastError(), Does.Contain("mc_event").And.Contain("mc_stream"));
    }

    [Test]
    public void DecreasingOffsets_AreInvalidOffsets()
    {
        _gemm.Offsets.CopyFrom([0, 20, 10, 30, GemmFixture.Rows]);
        AssertRunRejected(() => _gemm.Run(), MoeStatus.InvalidOffsets, "args->expert_offsets[2]", "= 10", "20");
    }

    [Test]
    public void NegativeOffsets_AreInvalidOffsets()
    {
        _gemm.Offsets.CopyFrom([-4, 10, 20, 30, GemmFixture.Rows]);
        AssertRunRejected(() => _gemm.Run(), MoeStatus.InvalidOffsets, "args->expert_offsets[0]", "= -4");
    }

    [Test]
    public void OffsetsBeyondRows_AreInvalidOffsets()
    {
        _gemm.Offsets.CopyFrom([0, 10, 20, 30, GemmFixture.Rows + 1]);
        AssertRunRejected(() => _gemm.Run(), MoeStatus.InvalidOffsets, "args->expert_offsets[4]", $"= {GemmFixture.Rows + 1}",
            $"rows = {GemmFixture.Rows}");
    }

    [Test]
    public void OutputTooSmall_IsBufferTooSmall_BeforeAnyNativeCall()
    {
        using var small = _gemm.Context.Allocate<BFloat16>((long)(GemmFixture.Rows - 1) * GemmFixture.N);
        small.Fill(GemmFixture.Canary);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            _gemm.Plan.Run(GemmFixture.Rows, _gemm.A, _gemm.AScales, _gemm.B, _gemm.BScales, _gemm.Offsets, small));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.BufferTooSmall));
        Assert.That(ex.ParamName, Is.EqualTo("output"));
        Assert.That(ex.Message, Does.StartWith($"output has {(GemmFixture.Rows - 1) * GemmFixture.N} elements, but the run needs "
            + $"{GemmFixture.Rows * GemmFixture.N} (rows x N = {GemmFixture.Rows} x {GemmFixture.N})"));
        Assert.That(ex.NativeMessage, Is.Empty, "the facade rejected it");
        Assert.That(small.ToArray().Select(v => v.Bits), Is.All.EqualTo(GemmFixture.Canary.Bits));
    }

    [Test]
    public void OutputTooSmall_ThroughTheRawOverload_IsBufferTooSmall_NamingOutput()
    {
        using var small = _gemm.Context.Allocate<BFloat16>((long)(GemmFixture.Rows - 1) * GemmFixture.N);
        small.Fill(GemmFixture.Canary);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => RawRun(d: small.Pointer));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.BufferTooSmall));
        Assert.That(ex.NativeMessage, Does.Contain("args->d").And.Contain(TestUtil.Hex(small.Pointer))
            .And.Contain((GemmFixture.Rows * GemmFixture.N * 2).ToString()));
        Assert.That(ex.ParamName, Is.EqualTo("output"));
        Assert.That(ex.Message, Does.StartWith("output needs").And.Not.Contain("args->").And.Not.Contain("mc_grouped_gemm_run"));
        Assert.That(small.ToArray().Select(v => v.Bits), Is.All.EqualTo(GemmFixture.Canary.Bits));
    }

    [Test]
    public void PointerNearTheEndOfAnAllocation_IsBufferTooSmall()
    {
        // A 16-byte aligned pointer into the weights whose remaining bytes cannot hold E*N*K.
        nint b = _gemm.B.Pointer + 16;
        AssertRunRejected(() => RawRun(b: b), MoeStatus.BufferTooSmall, "args->b", TestUtil.Hex(b));
    }

    [Test]
    public void WrongStructSize_IsInvalidStructSize()
    {
        var desc = new mc_grouped_gemm_desc
        {
            struct_size = 3,
            experts = 4,
            n = 64,
            k = 128,
            output_dtype = NativeConstants.MC_DTYPE_BF16,
            strategy = NativeConstants.MC_STRATEGY_AUTO,
            max_rows = 16,
        };
        nint plan = 0;
        using var lease = _gemm.Context.Lease();
        int status = NativeMethods.mc_grouped_gemm_plan_create(lease.Raw, &desc, &plan);
        Assert.That(status, Is.EqualTo(NativeConstants.MC_STATUS_INVALID_STRUCT_SIZE));
        Assert.That(plan, Is.EqualTo((nint)0), "no handle is written");
        Assert.That(NativeStatus_LastError(), Does.Contain("desc->struct_size").And.Contain("= 3").And.Contain("mc_grouped_gemm_desc"));

        var args = new mc_grouped_gemm_args
        {
            struct_size = (uint)sizeof(mc_grouped_gemm_args) + 8,
            rows = GemmFixture.Rows,
            a = (void*)_gemm.A.Pointer,
            a_scales = (float*)_gemm.AScales.Pointer,
            b = (void*)_gemm.B.Pointer,
            b_scales = (float*)_gemm.BScales.Pointer,
            expert_offsets = (int*)_gemm.Offsets.Pointer,
            d = (void*)_gemm.D.Pointer,
        };
        Assert.That(NativeMethods.mc_grouped_gemm_run(_gemm.Plan.Handle.DangerousGetHandle(), &args, 0),
            Is.EqualTo(NativeConstants.MC_STATUS_INVALID_STRUCT_SIZE));
        Assert.That(_gemm.OutputUntouched(), Is.True);

        var build = new mc_build_info { struct_size = 16 };
        Assert.That(NativeMethods.mc_get_build_info(&build), Is.EqualTo(NativeConstants.MC_STATUS_INVALID_STRUCT_SIZE));
        Assert.That(build.abi_version, Is.Zero, "a rejected call writes nothing");
    }

    [Test]
    public void QuantizeRejection_LeavesTheOutputUntouched()
    {
        using var input = _gemm.Context.Upload<float>(Enumerable.Repeat(3f, 128).ToArray());
        using var output = _gemm.Context.Allocate<byte>(128);
        using var scales = _gemm.Context.Allocate<float>(1);
        output.Fill(0xAB);
        scales.Fill(-1f);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => _gemm.Context.QuantizeActivations(input, 2, 128, output, scales));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.BufferTooSmall), ex.Message);
        ex = Assert.Throws<MoeCutlassArgumentException>(() => _gemm.Context.QuantizeActivations(input, 1, -128, output, scales));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.OutOfRange));
        Assert.That(ex.NativeMessage, Does.Contain("cols").And.Contain("-128"));
        Assert.That(output.ToArray(), Is.All.EqualTo((byte)0xAB));
        Assert.That(scales.ToArray(), Is.All.EqualTo(-1f));
    }

    [Test]
    public void ManagedRangeMistakes_AreBclExceptions()
    {
        using var buffer = _gemm.Context.Allocate<int>(4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => buffer.CopyFrom([1, 2, 3], offset: 2), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Property(nameof(ArgumentException.ParamName)).EqualTo("source"));
            Assert.That(() => buffer.CopyTo(new int[5]), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Property(nameof(ArgumentException.ParamName)).EqualTo("destination"));
            Assert.That(() => buffer.CopyTo(new int[1], offset: -1), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Property(nameof(ArgumentException.ParamName)).EqualTo("offset"));
            Assert.That(() => _gemm.Context.Allocate<float>(-1), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Property(nameof(ArgumentException.ParamName)).EqualTo("length"));
            Assert.That(() => _gemm.Context.CreateGroupedGemmPlan(null!), Throws.TypeOf<ArgumentNullException>());
            Assert.That(() => _gemm.Context.Allocate<long>(long.MaxValue / 4), Throws.TypeOf<ArgumentOutOfRangeException>());
        }
    }

    private static void GetPlanInfo(nint plan)
    {
        var info = new mc_grouped_gemm_plan_info { struct_size = (uint)sizeof(mc_grouped_gemm_plan_info) };
        MoeCutlass.Internal.NativeStatus.Check(NativeMethods.mc_grouped_gemm_plan_get_info(plan, &info));
    }

    private static string NativeStatus_LastError() => MoeCutlass.Internal.NativeStatus.LastError();

    private void RawRun(nint? a = null, nint? aScales = null, nint? b = null, nint? offsets = null, nint? d = null) =>
        _gemm.Plan.Run(GemmFixture.Rows, a ?? _gemm.A.Pointer, aScales ?? _gemm.AScales.Pointer, b ?? _gemm.B.Pointer, _gemm.BScales.Pointer,
            offsets ?? _gemm.Offsets.Pointer, d ?? _gemm.D.Pointer);

    private void AssertRunRejected(Action run, MoeStatus status, params string[] messageParts)
    {
        var thrown = Assert.Throws(Is.InstanceOf<Exception>(), () => run());
        Assert.That(thrown, Is.TypeOf<MoeCutlassArgumentException>(), thrown?.Message);
        var ex = (MoeCutlassArgumentException)thrown!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Status, Is.EqualTo(status), ex.Message);
            foreach (string part in messageParts)
            {
                Assert.That(ex.NativeMessage, Does.Contain(part));
            }

            Assert.That(ex.Message, Does.Contain($"[{MoeCutlassLibrary.GetStatusName(status)}]"));
            Assert.That(ex.Message, Does.Not.Contain("args->"), "the managed message names C# parameters");
            Assert.That(_gemm.OutputUntouched(), Is.True, "a rejected run must not write D");
        }
    }

    private void AssertPlanRejected(GroupedGemmOptions options, MoeStatus status, params string[] messageParts)
    {
        long before = _gemm.Context.AllocationCount;
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => _gemm.Context.CreateGroupedGemmPlan(options).Dispose());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Status, Is.EqualTo(status), ex.Message);
            foreach (string part in messageParts)
            {
                Assert.That(ex.NativeMessage, Does.Contain(part));
            }

            Assert.That(_gemm.Context.AllocationCount, Is.EqualTo(before));
        }
    }
}
