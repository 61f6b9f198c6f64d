namespace MoeCutlass.Cli.Infrastructure;

/// <summary>Process exit codes of the <c>moecutlass</c> tool.</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked.</summary>
    public const int Success = 0;

    /// <summary>A library or runtime failure (native error, device fault, unexpected exception).</summary>
    public const int Failure = 1;

    /// <summary>A user error: bad option value, unknown case, missing or malformed suite file.</summary>
    public const int UsageError = 2;

    /// <summary><c>verify</c> ran, and at least one comparison exceeded its tolerance.</summary>
    public const int VerificationFailed = 3;
}
