using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using MoeCutlass.Interop;

namespace MoeCutlass.Internal;

/// <summary>One place the loader tries.</summary>
/// <param name="Path">A file path, or a bare library name for the OS search.</param>
/// <param name="Source">Where the candidate comes from, for messages ("MOECUTLASS_NATIVE_PATH", "application directory", ...).</param>
/// <param name="IsFile">True for a file path (checked for existence first); false for a bare name given to the OS loader.</param>
internal readonly record struct NativeProbeCandidate(string Path, string Source, bool IsFile);

/// <summary>
/// Finds and loads the native library and resolves the <c>[LibraryImport("moecutlass")]</c> declarations of this
/// assembly to it through one <see cref="NativeLibrary.SetDllImportResolver"/> registration.
/// </summary>
/// <remarks>
/// Probe order: <c>MOECUTLASS_NATIVE_PATH</c> (a file, or a directory holding the library; when set it is the only
/// place tried), then <see cref="AppContext.BaseDirectory"/>, then <c>AppContext.BaseDirectory/runtimes/&lt;rid&gt;/native</c>,
/// then the bare file name through the OS search (LD_LIBRARY_PATH, rpath, system directories). Nothing here throws from
/// a static constructor or from the resolver callback.
/// </remarks>
internal static class NativeLibraryLoader
{
    /// <summary>The environment variable that, when set, names the only place the native library is loaded from.</summary>
    public const string EnvironmentVariable = "MOECUTLASS_NATIVE_PATH";

    private static readonly object s_gate = new();
    private static bool s_resolverRegistered;
    private static bool s_resolverConflict;
    private static nint s_handle;
    private static string? s_loadedPath;

    /// <summary>The platform's file name of the library (libmoecutlass.so, moecutlass.dll, libmoecutlass.dylib).</summary>
    public static string PlatformFileName =>
        OperatingSystem.IsWindows() ? NativeMethods.LibraryName + ".dll"
        : OperatingSystem.IsMacOS() || OperatingSystem.IsIOS() ? "lib" + NativeMethods.LibraryName + ".dylib"
        : "lib" + NativeMethods.LibraryName + ".so";

    /// <summary>The portable runtime identifier of this process (linux-x64, win-arm64, osx-arm64, ...).</summary>
    public static string RuntimeIdentifier
    {
        get
        {
            string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
            string arch = RuntimeInformation.ProcessArchitecture switch
            {
                Architecture.X64 => "x64",
                Architecture.X86 => "x86",
                Architecture.Arm64 => "arm64",
                Architecture.Arm => "arm",
                var other => other.ToString().ToLowerInvariant(),
            };
            return os + "-" + arch;
        }
    }

    /// <summary>The path that was loaded, or null before a successful load.</summary>
    public static string? LoadedPath => Volatile.Read(ref s_loadedPath);

    /// <summary>True when another component had already registered a DllImportResolver for this assembly.</summary>
    public static bool ResolverConflict => s_resolverConflict;

    /// <summary>
    /// Loads the library once (thread-safe) and registers the resolver. Throws <see cref="MoeCutlassLibraryException"/>
    /// listing every place tried when the library cannot be found; a later call tries again.
    /// </summary>
    /// <returns>The OS handle of the loaded library.</returns>
    public static nint EnsureLoaded()
    {
        nint handle = Volatile.Read(ref s_handle);
        if (handle != 0)
        {
            return handle;
        }

        lock (s_gate)
        {
            RegisterResolver();
            if (s_handle == 0)
            {
                var candidates = GetCandidates(
                    Environment.GetEnvironmentVariable(EnvironmentVariable), AppContext.BaseDirectory, RuntimeIdentifier, PlatformFileName);
                (nint loaded, string path) = Probe(candidates, PlatformFileName);
                Volatile.Write(ref s_loadedPath, path);
                Volatile.Write(ref s_handle, loaded);
            }

            return s_handle;
        }
    }

    /// <summary>Registers the resolver for this assembly once; tolerates a resolver registered by someone else.</summary>
    private static void RegisterResolver()
    {
        if (s_resolverRegistered)
        {
            return;
        }

        s_resolverRegistered = true;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryLoader).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // A host registered its own resolver for this assembly (allowed once per assembly); it then decides where
            // "moecutlass" comes from. Our explicit load below still reports what it found.
            s_resolverConflict = true;
        }
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!string.Equals(libraryName, NativeMethods.LibraryName, StringComparison.Ordinal))
        {
            return 0;
        }

        try
        {
            return EnsureLoaded();
        }
#pragma warning disable CA1031 // the resolver must never throw: returning 0 lets the runtime report DllNotFoundException
        catch (Exception)
#pragma warning restore CA1031
        {
            return 0;
        }
    }

    /// <summary>
    /// The places to try, in order. When <paramref name="environmentValue"/> is set it is authoritative: only it is
    /// tried (as a directory holding <paramref name="fileName"/> if it is a directory, otherwise as a file).
    /// </summary>
    internal static IReadOnlyList<NativeProbeCandidate> GetCandidates(string? environmentValue, string baseDirectory, string rid, string fileName)
    {
        if (!string.IsNullOrWhiteSpace(environmentValue))
        {
            string value = environmentValue.Trim();
            return Directory.Exists(value)
                ? [new NativeProbeCandidate(Path.Combine(value, fileName), $"{EnvironmentVariable} directory", true)]
                : [new NativeProbeCandidate(value, EnvironmentVariable, true)];
        }

        return
        [
            new NativeProbeCandidate(Path.Combine(baseDirectory, fileName), "application directory", true),
            new NativeProbeCandidate(Path.Combine(baseDirectory, "runtimes", rid, "native", fileName), $"runtimes/{rid}/native", true),
            new NativeProbeCandidate(fileName, "default OS library search", false),
        ];
    }

    /// <summary>
    /// Tries each candidate in order and returns the first that loads, with the path it was loaded from. Throws
    /// <see cref="MoeCutlassLibraryException"/> naming every candidate and why it failed when none loads.
    /// </summary>
    /// <param name="candidates">The places to try, in order.</param>
    /// <param name="fileName">The library's file name, for the message.</param>
    /// <param name="load">The loader (default <see cref="NativeLibrary.Load(string)"/>); tests substitute it.</param>
    internal static (nint Handle, string Path) Probe(IReadOnlyList<NativeProbeCandidate> candidates, string fileName, Func<string, nint>? load = null)
    {
        load ??= NativeLibrary.Load;
        var failures = new List<string>(candidates.Count);
        foreach (var candidate in candidates)
        {
            if (candidate.IsFile && !File.Exists(candidate.Path))
            {
                failures.Add($"{candidate.Path} ({candidate.Source}): file not found");
                continue;
            }

            try
            {
                nint handle = load(candidate.Path);
                if (handle != 0)
                {
                    string path = candidate.IsFile ? Path.GetFullPath(candidate.Path) : FindMappedPath(fileName) ?? candidate.Path;
                    return (handle, path);
                }

                failures.Add($"{candidate.Path} ({candidate.Source}): the loader returned no handle");
            }
            catch (Exception ex) when (ex is DllNotFoundException or BadImageFormatException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                failures.Add($"{candidate.Path} ({candidate.Source}): {ex.GetType().Name}: {ex.Message}");
            }
        }

        var message = new StringBuilder();
        message.Append("Could not load the MoeCutlass native library '").Append(fileName).Append("'. Places tried, in order:");
        foreach (string failure in failures)
        {
            message.AppendLine().Append("  - ").Append(failure);
        }

        message.AppendLine().Append("Set ").Append(EnvironmentVariable)
            .Append(" to the library file or its directory, or put it next to the application or in runtimes/<rid>/native.");
        throw new MoeCutlassLibraryException(message.ToString());
    }

    /// <summary>On Linux, the real path of a library loaded by bare name, read from /proc/self/maps; otherwise null.</summary>
    private static string? FindMappedPath(string fileName)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0 && line.EndsWith("/" + fileName, StringComparison.Ordinal))
                {
                    return line[slash..];
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }
}
