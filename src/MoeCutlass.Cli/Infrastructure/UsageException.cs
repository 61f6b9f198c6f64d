namespace MoeCutlass.Cli.Infrastructure;

/// <summary>
/// A mistake by the user (bad option value, unknown case name, missing suite file). Reported as one
/// <c>error: ...</c> line on stderr with exit code <see cref="ExitCodes.UsageError"/>, never with a stack trace.
/// </summary>
internal sealed class UsageException : Exception
{
    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
