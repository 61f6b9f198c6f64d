using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Tests.Cli;

/// <summary>What <c>moecutlass info</c> says each device runs, from the device's SM90a flag.</summary>
[TestFixture]
public sealed class DeviceStrategiesTests
{
    [Test]
    public void Sm90aDevices_RunTheRegistryStrategies()
    {
        foreach (DeviceInfo device in new[] { TestDevices.H100, TestDevices.H200 })
        {
            Assert.That(DeviceStrategies.Describe(device),
                Does.StartWith("single, expert_specialized, persistent, auto, cublas").And.Contain("cuBLAS 12.5+"));
        }
    }

    [Test]
    public void DevicesWithoutSm90a_RunCublasOnly_AndSayWhy()
    {
        string text = DeviceStrategies.Describe(TestDevices.A100);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(text, Does.StartWith("cublas only"));
            Assert.That(text, Does.Contain("this GPU has 8.0"));
            Assert.That(text, Does.Contain("auto resolves to it"));
        }
    }
}
