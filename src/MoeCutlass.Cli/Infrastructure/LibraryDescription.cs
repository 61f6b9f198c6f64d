namespace MoeCutlass.Cli.Infrastructure;

/// <summary>One-line description of the loaded native library for report headers.</summary>
internal static class LibraryDescription
{
    public static string Text
    {
        get
        {
            BuildInfo build = MoeCutlassLibrary.BuildInfo;
            string cuda = build.HasCuda ? $"CUDA {build.CudaArchitectures}" : "no CUDA";
            return $"{build.Version} (ABI {build.AbiVersion}, {cuda}) at {MoeCutlassLibrary.LoadedPath}";
        }
    }
}
