using System.Globalization;
using System.Text.RegularExpressions;
using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Charts;

/// <summary>
/// DeepGEMM's time per case, imported from the peer script's text output (bench/results/h200-peers-*.txt), e.g.
/// <c>mixtral-gate_up-e8-t1024 | contig 479.2 us 1003.9 TF ... | masked 471.7 us ...</c>. DeepGEMM is the better
/// of its two layouts (contig, masked): a caller would pick the faster one. Lines of other peers (fp8-rowwise,
/// bf16) and comments are skipped: the comparison chart is about DeepGEMM.
/// </summary>
internal sealed partial class PeerTimes
{
    /// <summary>The name the charts give the peer.</summary>
    public const string PeerName = "DeepGEMM";

    private static readonly string[] Layouts = ["contig", "masked"];

    private PeerTimes(string source, IReadOnlyDictionary<string, double> microseconds)
    {
        Source = source;
        Microseconds = microseconds;
    }

    /// <summary>The file the times came from.</summary>
    public string Source { get; }

    /// <summary>Case name → DeepGEMM's better layout, µs.</summary>
    public IReadOnlyDictionary<string, double> Microseconds { get; }

    /// <summary>Loads <paramref name="path"/>, given as <paramref name="argument"/> ("--peer") on the command line.</summary>
    public static PeerTimes Load(string path, string argument)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new UsageException($"{argument}: no such file: {full}");
        }

        string[] lines;
        try
        {
            lines = File.ReadAllLines(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{argument}: cannot read {full}: {ex.Message}", ex);
        }

        return Parse(lines, full, argument);
    }

    public static PeerTimes Parse(IEnumerable<string> lines, string source, string argument)
    {
        var best = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string line in lines)
        {
            string[] parts = line.Split('|');
            if (line.TrimStart().StartsWith('#') || parts.Length < 2)
            {
                continue;
            }

            string caseName = parts[0].Trim();
            foreach (string part in parts.Skip(1))
            {
                Match match = Segment().Match(part);
                if (match.Success && Layouts.Contains(match.Groups["layout"].Value)
                    && double.TryParse(match.Groups["us"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double us) && us > 0)
                {
                    // A case timed twice (a rerun in the same file) keeps its best time, like the two layouts.
                    best[caseName] = best.TryGetValue(caseName, out double seen) ? Math.Min(seen, us) : us;
                }
            }
        }

        return best.Count == 0
            ? throw new UsageException($"{argument}: {source} has no DeepGEMM times (lines like 'CASE | contig 479.2 us ... | masked 471.7 us ...')")
            : new PeerTimes(source, best);
    }

    /// <summary>One "| layout 479.2 us ..." segment of a peer line.</summary>
    [GeneratedRegex(@"^\s*(?<layout>[A-Za-z0-9_-]+)\s+(?<us>[0-9]+(\.[0-9]+)?)\s*us\b")]
    private static partial Regex Segment();
}
