namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// Base of the GPU fixtures that compare the CUDA backend with the CPU reference: one CUDA context (device 0) and one
/// CPU context per fixture, created once the device requirement is met (<see cref="GpuRequirement"/>), and the
/// device error flags cleared before each test so a flag a test sees was raised by that test.
/// </summary>
public abstract class GpuTestBase : NativeTestBase
{
    protected MoeContext Cuda { get; private set; } = null!;

    protected MoeContext Cpu { get; private set; } = null!;

    [OneTimeSetUp]
    public void CreateContexts()
    {
        GpuRequirement.EnsureDevice();
        Cuda = MoeContext.CreateCuda(0);
        Cpu = MoeContext.CreateCpu();
        TestContext.Out.WriteLine($"{Cuda} and {Cpu}");
    }

    [OneTimeTearDown]
    public void DisposeContexts()
    {
        Cuda?.Dispose();
        Cpu?.Dispose();
    }

    [SetUp]
    public void ClearDeviceErrors()
    {
        var left = Cuda.QueryDeviceErrors(reset: true);
        if (left != DeviceErrorFlags.None)
        {
            TestContext.Out.WriteLine($"device error flags left by an earlier test (cleared): {left}");
        }
    }
}
