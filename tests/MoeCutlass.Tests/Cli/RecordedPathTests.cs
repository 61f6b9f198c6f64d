using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Tests.Cli;

public class RecordedPathTests
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "moecutlass-recorded-path", "checkout");

    [Test]
    public void PathInsideTheWorkingDirectory_IsRecordedRelative()
    {
        string library = Path.Combine(Root, "artifacts", "native", "linux-x64", "libmoecutlass.so");
        Assert.That(RecordedPath.Of(library, Root), Is.EqualTo(Path.Combine("artifacts", "native", "linux-x64", "libmoecutlass.so")));
        Assert.That(RecordedPath.Of(Path.Combine(".peers", "suite.json"), Root), Is.EqualTo(Path.Combine(".peers", "suite.json")));
    }

    [Test]
    public void PathOutsideTheWorkingDirectory_StaysAbsolute()
    {
        string shared = Path.GetFullPath(Path.Combine(Root, "..", "shared", "bench", "suite.json"));
        Assert.That(RecordedPath.Of(shared, Root), Is.EqualTo(shared));
        Assert.That(RecordedPath.Of(Path.Combine("..", "shared", "suite.json"), Root),
            Is.EqualTo(Path.GetFullPath(Path.Combine(Root, "..", "shared", "suite.json"))));
    }

    [Test]
    public void EmptyPath_IsKept()
    {
        Assert.That(RecordedPath.Of("", Root), Is.Empty);
    }
}
